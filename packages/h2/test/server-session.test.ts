import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { ServerSession, type ServerSessionOptions } from "../src/server-session.js";
import { HTTP2Settings } from "../src/settings.js";

// The server session's liveness check: a quiet session is asked for a PING ACK; one that cannot
// answer (nghttp2 ended it on its own and node stopped reading) is destroyed with its socket.

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/**
 * A TCP server that runs a ServerSession on each connection (with `options` besides the fixed ones)
 * and gives each stream to `onStream`; resolves with its port, sessions and sockets.
 */
async function sessionServer(
  options: Partial<ServerSessionOptions> = { livenessInterval: 150, pingAckTimeout: 150 },
  onStream: (session: ServerSession, stream: http2.ServerHttp2Stream) => void = (_s, stream) =>
    stream.resume(),
): Promise<{ port: number; sessions: ServerSession[]; sockets: net.Socket[] }> {
  const sessions: ServerSession[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    const s = new ServerSession(socket, {
      settings: new HTTP2Settings(),
      maxConcurrentStreams: 100,
      maxHeaderListSize: 65_536,
      firstStreamTimeout: 0,
      idleTimeout: 0,
      ...options,
    });
    s.session.on("stream", (stream) => {
      stream.on("error", () => {});
      onStream(s, stream);
    });
    sessions.push(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanup.push(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, sessions, sockets };
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe("ServerSession liveness", () => {
  test("a quiet, healthy peer is pinged and kept", async () => {
    const { port, sessions } = await sessionServer();
    const client = http2.connect(`http://127.0.0.1:${port}`);
    cleanup.push(() => client.destroy());
    let pings = 0;
    await within(
      new Promise<void>((resolve) => {
        client.on("ping", () => {
          if (++pings === 3) resolve();
        });
      }),
      5_000,
      "three liveness pings",
    );
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.session.destroyed).toBe(false);
    expect(client.destroyed).toBe(false);
  });

  test("a session nghttp2 ended on its own (DATA after END_STREAM) is destroyed with its socket", async () => {
    const { port, sockets } = await sessionServer();
    const raw = net.connect(port, "127.0.0.1");
    cleanup.push(() => raw.destroy());
    raw.on("error", () => {});
    const received: Buffer[] = [];
    raw.on("data", (c: Buffer) => received.push(c));
    await new Promise<void>((r) => raw.once("connect", () => r()));
    // GET / (HPACK static entries :method GET, :scheme http, :path /), ending the stream, then DATA on it.
    const headers = Buffer.from([0x82, 0x86, 0x84, 0x41, 0x01, 0x61]);
    raw.write(
      Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
        frame(0x4, 0, 0, Buffer.alloc(0)),
        frame(0x1, 0x1 | 0x4, 1, headers),
        frame(0x0, 0x1, 1, Buffer.from("late")),
      ]),
    );
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (sockets[0]?.destroyed) resolve();
          else setTimeout(check, 20);
        };
        check();
      }),
      5_000,
      "the server socket to close",
    );
    // nghttp2 said GOAWAY (type 7) before it stopped.
    expect(Buffer.concat(received).includes(Buffer.from([0x07]))).toBe(true);
  });
});

describe("ServerSession graceful close", () => {
  /**
   * A server whose sessions answer every stream with `body` and count the stream off as soon as the
   * response is queued, as hyperwire's server does for a response that has ended (the stream itself
   * stays open while the body drains).
   */
  function answeringServer(body: Buffer, lingerTimeout: number) {
    return sessionServer({ lingerTimeout }, (s, stream) => {
      s.streamOpened();
      stream.respond({ ":status": 200, "content-length": body.length });
      stream.end(body);
      s.streamClosed(false);
    });
  }

  test("a response still draining when close() is called arrives whole, even past lingerTimeout", async () => {
    const body = Buffer.alloc(200_000, "b");
    const { port, sessions } = await answeringServer(body, 100);
    // A 1 KB window and a paused stream: the body waits on the reader.
    const client = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1024 } });
    cleanup.push(() => client.destroy());
    client.on("error", () => {});
    const req = client.request({ ":path": "/" });
    req.on("error", () => {});
    req.pause();
    await once(req, "response");
    expect(sessions[0]!.active).toBe(0);
    sessions[0]!.close();
    // Longer than lingerTimeout: the linger starts once node has ended the socket, after the stream.
    await new Promise((r) => setTimeout(r, 400));
    let received = 0;
    req.on("data", (c: Buffer) => {
      received += c.length;
    });
    req.resume();
    await within(once(req, "end"), 5_000, "the end of the body");
    expect(received).toBe(body.length);
  });

  test("a peer that never closes its side is dropped lingerTimeout after the session ended the socket", async () => {
    const { port, sessions, sockets } = await answeringServer(Buffer.from("x"), 100);
    // allowHalfOpen: the peer does not end its side when the server ends its own.
    const raw = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    cleanup.push(() => raw.destroy());
    raw.on("error", () => {});
    raw.resume();
    await new Promise<void>((r) => raw.once("connect", () => r()));
    raw.write(
      Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
        frame(0x4, 0, 0, Buffer.alloc(0)),
      ]),
    );
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (sessions.length > 0) resolve();
          else setTimeout(check, 10);
        };
        check();
      }),
      2_000,
      "the session",
    );
    const t0 = performance.now();
    sessions[0]!.close();
    await within(once(sockets[0]!, "close"), 3_000, "the server socket to close");
    // The raw peer never ended its side: only the linger timer closed the socket.
    expect(raw.readableEnded).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });
});
