// WebSockets over HTTP/2 (RFC 8441, extended CONNECT), both sides: our client and our server over h2c
// and TLS, HTTP and WebSocket streams on one session, the wire seen by raw node:http2 peers with
// hand-made frames, refusals, resets, shutdown, permessage-deflate, the handshake's timeouts and
// options. The independent peer (Python's h2 with websockets' frame codec) is in interop-h2.test.ts.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import net from "node:net";
import { CookieJar } from "@hyperwire/client";
import {
  ArgumentError,
  CanceledError,
  ProxyConfig,
  type Request,
  Response,
  TimeoutError,
  WebSocketError,
} from "@hyperwire/core";
import { connectProtocol, serve } from "@hyperwire/server";
import { describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { type AcceptOptions, isUpgrade, listen, open, upgrade, type WebSocket } from "../src/index.js";
import {
  checkUnhandledRejections,
  connectProxy,
  deferred,
  type Frame,
  frame,
  Resources,
  settle,
  waitFor,
  within,
} from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();
const { NGHTTP2_CANCEL } = http2.constants;

interface Seen {
  method: string;
  target: string;
  version: string;
  protocol: string | null;
  isUpgrade: boolean;
}

/**
 * A mixed server: `/hello` (HTTP), `/ws…` (echo, subprotocols chat and superchat), `/boom` (throws
 * after one message), `/hold` (waits for the close), `/drop` (terminates after one message),
 * `/nope` (404 without upgrading), `/deflate` (echo with compress).
 */
async function mixedServer(secure = false, accept: AcceptOptions = {}) {
  const seen: Seen[] = [];
  const ended: { target: string; code: number | undefined }[] = [];
  const held: WebSocket[] = [];
  const options: AcceptOptions = { subprotocols: ["chat", "superchat"], ...accept };
  const record = (ws: WebSocket) => ended.push({ target: ws.target, code: ws.closeCode });
  const server = await serve(
    (req: Request) => {
      if (req.target === "/hello") return new Response(200, { body: "hello" });
      if (req.target === "/nope") return new Response(404, { body: "nope" });
      if (req.method === "CONNECT" && connectProtocol(req) === null) {
        return new Response(200, { body: `plain ${req.target}` });
      }
      seen.push({
        method: req.method,
        target: req.target,
        version: req.version,
        protocol: connectProtocol(req),
        isUpgrade: isUpgrade(req),
      });
      if (req.target === "/boom") {
        return upgrade(req, async (ws) => {
          await ws.receive();
          throw new Error("boom");
        });
      }
      if (req.target === "/hold") {
        return upgrade(req, async (ws) => {
          held.push(ws);
          await ws.closed();
          record(ws);
        });
      }
      if (req.target === "/drop") {
        return upgrade(req, async (ws) => {
          await ws.receive();
          ws.terminate();
        });
      }
      if (req.target === "/deflate") {
        return upgrade(
          req,
          async (ws) => {
            for await (const m of ws) await ws.send(m);
          },
          { compress: true },
        );
      }
      return upgrade(
        req,
        async (ws) => {
          try {
            for await (const m of ws) await ws.send(m);
          } catch {
            // The close code is what the test looks at.
          } finally {
            record(ws);
          }
        },
        options,
      );
    },
    {
      host: "127.0.0.1",
      port: 0,
      ...(secure ? { tls: { key: fixtures.key, cert: fixtures.cert } } : {}),
    },
  );
  res.defer(() => server.forceClose());
  const base = `${secure ? "wss" : "ws"}://127.0.0.1:${server.port}`;
  return { server, base, seen, ended, held };
}

/** A raw node:http2 client session to `port` (h2c), destroyed after the test. */
async function rawSession(port: number): Promise<ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  res.defer(() => session.destroy());
  const [settings] = (await within(
    new Promise((resolve) => session.once("remoteSettings", (s) => resolve([s]))),
    3_000,
    "the server's SETTINGS",
  )) as [http2.Settings];
  expect(settings.enableConnectProtocol).toBe(true);
  return session;
}

/** A GET on a raw session: status and body. */
async function rawGet(session: ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  const stream = session.request({ ":path": path });
  let status = 0;
  let body = "";
  stream.setEncoding("utf8");
  stream.on("response", (h) => {
    status = Number(h[":status"]);
  });
  stream.on("data", (c: string) => {
    body += c;
  });
  await within(
    new Promise((resolve, reject) => {
      stream.once("end", resolve);
      stream.once("error", reject);
    }),
    3_000,
    `GET ${path}`,
  );
  return { status, body };
}

/** A WebSocket spoken by hand on an extended CONNECT stream: masked frames out, frames parsed in. */
class RawStream {
  readonly frames: WireFrame[] = [];
  ended = false;
  closed = false;
  #buf: Buffer = Buffer.alloc(0);

  constructor(
    readonly stream: ClientHttp2Stream,
    readonly head: IncomingHttpHeaders,
  ) {
    stream.on("data", (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      for (let taken = takeFrame(this.#buf); taken !== null; taken = takeFrame(this.#buf)) {
        this.frames.push(taken.frame);
        this.#buf = taken.rest;
      }
    });
    stream.on("end", () => {
      this.ended = true;
    });
    stream.on("close", () => {
      this.closed = true;
    });
  }

  /** Opens `path` with an extended CONNECT; resolves with whatever the answer is. */
  static async connect(
    session: ClientHttp2Session,
    path: string,
    headers: http2.OutgoingHttpHeaders = {},
  ): Promise<RawStream> {
    const stream = session.request(
      {
        ":method": "CONNECT",
        ":protocol": "websocket",
        ":scheme": "http",
        ":path": path,
        ":authority": `127.0.0.1:${(session.socket as net.Socket).remotePort}`,
        "sec-websocket-version": "13",
        ...headers,
      },
      { endStream: false },
    );
    stream.on("error", () => {});
    const head = await within(
      new Promise<IncomingHttpHeaders>((resolve, reject) => {
        stream.once("response", resolve);
        stream.once("close", () => reject(new Error(`stream closed (${stream.rstCode})`)));
      }),
      3_000,
      `CONNECT ${path}`,
    );
    return new RawStream(stream, head);
  }

  get status(): number {
    return Number(this.head[":status"]);
  }

  send(opcode: number, payload: string | Uint8Array): void {
    this.stream.write(frame(opcode, payload, { mask: true }));
  }

  async next(index: number): Promise<WireFrame> {
    await waitFor(() => this.frames.length > index, 3_000, `frame #${index}`);
    return this.frames[index]!;
  }
}

/** A frame as it was on the wire. */
interface WireFrame extends Frame {
  rsv1: boolean;
  masked: boolean;
}

/** Takes one whole frame off the front of `buf` (unmasking it), or `null` while it is incomplete. */
function takeFrame(buf: Buffer): { frame: WireFrame; rest: Buffer } | null {
  if (buf.length < 2) return null;
  const b0 = buf[0] as number;
  const b1 = buf[1] as number;
  let len = b1 & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const masked = (b1 & 0x80) !== 0;
  const end = off + (masked ? 4 : 0) + len;
  if (buf.length < end) return null;
  const payload = Buffer.from(buf.subarray(end - len, end));
  if (masked)
    for (let i = 0; i < len; i++) payload[i] = (payload[i] as number) ^ (buf[off + (i % 4)] as number);
  const frame: WireFrame = {
    fin: (b0 & 0x80) !== 0,
    opcode: b0 & 0x0f,
    payload,
    rsv1: (b0 & 0x40) !== 0,
    masked,
  };
  return { frame, rest: buf.subarray(end) };
}

/** A raw node:http2 server on 127.0.0.1:0, closed after the test. */
async function rawH2Server(
  settings: http2.Settings,
  onStream: (stream: http2.ServerHttp2Stream, headers: IncomingHttpHeaders) => void,
): Promise<{ port: number; sessions: Set<http2.ServerHttp2Session> }> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("error", () => {});
    s.once("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    onStream(stream, headers);
  });
  return { port: await res.listenRaw(server, sessions), sessions };
}

describe("server: upgrade() takes an HTTP/2 extended CONNECT", () => {
  test("our client and server over h2c: text and binary echo, the chosen subprotocol, 1000 after the handler", async () => {
    const { server, base, seen, ended } = await mixedServer();
    const ws = await open(`${base}/ws?x=1`, { protocol: "h2", subprotocols: ["other", "superchat", "chat"] });
    expect(ws.subprotocol).toBe("chat");
    expect(ws.target).toBe("/ws?x=1");
    await ws.send("hello");
    expect(await ws.receive()).toBe("hello");
    await ws.send(new Uint8Array([0, 1, 2, 255]));
    expect(Buffer.from((await ws.receive()) as Uint8Array)).toEqual(Buffer.from([0, 1, 2, 255]));
    await ws.close(1000, "bye");
    expect(ws.closeCode).toBe(1000);
    expect(seen).toEqual([
      { method: "CONNECT", target: "/ws?x=1", version: "2", protocol: "websocket", isUpgrade: true },
    ]);
    await waitFor(() => ended.length === 1, 3_000, "the server session to end");
    expect(ended[0]).toEqual({ target: "/ws?x=1", code: 1000 });
    // The client's session was the WebSocket's alone: it closed with it.
    await waitFor(() => server.connections === 0, 3_000, "the client's HTTP/2 connection to close");
  });

  test("a burst of sends in one tick (held in the stream's buffer to the tick's end) arrives whole and in order", async () => {
    const { base } = await mixedServer();
    const ws = await open(`${base}/ws`, { protocol: "h2" });
    // 500 sends without awaiting: past the 64 KiB mark the later ones wait for their write.
    const sizes = await within(
      Promise.all(Array.from({ length: 500 }, (_, i) => ws.send(`${i}:${"x".repeat(200)}`))),
      5_000,
      "500 sends",
    );
    expect(sizes.every((n, i) => n === `${i}:`.length + 200)).toBe(true);
    for (let i = 0; i < 500; i++) {
      const m = (await within(ws.receive(), 3_000, `echo ${i}`)) as string;
      expect(m.slice(0, m.indexOf(":"))).toBe(String(i));
    }
    await ws.close();
  });

  test("over TLS (ALPN h2): echo, and the handler's return closes with 1000", async () => {
    const { base, ended } = await mixedServer(true);
    const reply = await open(
      `${base}/ws`,
      async (ws) => {
        await ws.send("over tls");
        return ws.receive();
      },
      { protocol: "h2", tls: { ca: fixtures.ca } },
    );
    expect(reply).toBe("over tls");
    await waitFor(() => ended.length === 1, 3_000, "the server session to end");
    expect(ended[0]!.code).toBe(1000);
  });

  test("a handler that throws closes with 1011", async () => {
    const { base } = await mixedServer();
    const ws = await open(`${base}/boom`, { protocol: "h2" });
    await ws.send("go");
    const { error } = await settle(ws.receive());
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1011);
  });

  test("the server's close() says 1001 to the session and finishes once it closed", async () => {
    const { server, base, held, ended } = await mixedServer();
    const ws = await open(`${base}/hold`, { protocol: "h2" });
    await waitFor(() => held.length === 1, 3_000, "the session to start");
    await within(server.close(), 5_000, "the server's close");
    await within(ws.closed(), 3_000, "the client's close");
    expect(ws.closeCode).toBe(1001);
    expect(ended).toEqual([{ target: "/hold", code: 1001 }]);
    await waitFor(() => server.connections === 0, 3_000, "every connection to close");
  });

  test("the server's forceClose() drops the session at once", async () => {
    const { server, base, held } = await mixedServer();
    const ws = await open(`${base}/hold`, { protocol: "h2" });
    await waitFor(() => held.length === 1, 3_000, "the session to start");
    await within(server.forceClose(), 3_000, "the server's forceClose");
    await within(ws.closed(), 3_000, "the client's close");
    expect(ws.closeCode).toBe(1006);
    await within(held[0]!.closed(), 3_000, "the server session's close");
    expect(held[0]!.closeCode).toBe(1006);
    expect(server.connections).toBe(0);
  });

  test("HTTP requests and a WebSocket share one HTTP/2 session (raw client, masked frames)", async () => {
    const { server, base, ended } = await mixedServer();
    const session = await rawSession(server.port);
    expect(await rawGet(session, "/hello")).toEqual({ status: 200, body: "hello" });
    const raw = await RawStream.connect(session, "/ws", { "sec-websocket-protocol": "chat" });
    expect(raw.status).toBe(200);
    expect(raw.head["sec-websocket-protocol"]).toBe("chat");
    // RFC 8441: no key, so no accept.
    expect(raw.head["sec-websocket-accept"]).toBeUndefined();
    raw.send(0x1, "over one session");
    const echoed = await raw.next(0);
    expect(echoed.opcode).toBe(0x1);
    expect(echoed.payload.toString()).toBe("over one session");
    // Server frames are unmasked.
    expect(echoed.masked).toBe(false);
    // An HTTP request while the WebSocket is open, on the same session.
    expect(await rawGet(session, "/hello")).toEqual({ status: 200, body: "hello" });
    expect(server.connections).toBe(1);
    expect(base).toContain(String(server.port));
    // The close handshake: the server answers the close frame and ends the stream (END_STREAM).
    raw.send(0x8, Buffer.from([0x03, 0xe8]));
    const close = await raw.next(1);
    expect(close.opcode).toBe(0x8);
    expect(close.payload.readUInt16BE(0)).toBe(1000);
    await waitFor(() => raw.ended, 3_000, "END_STREAM from the server");
    raw.stream.end();
    await waitFor(() => raw.closed, 3_000, "the stream to close");
    expect(raw.stream.rstCode).toBe(0);
    await waitFor(() => ended.length === 1, 3_000, "the server session to end");
    expect(ended[0]!.code).toBe(1000);
    expect(session.destroyed).toBe(false);
    expect(await rawGet(session, "/hello")).toEqual({ status: 200, body: "hello" });
  });

  test("refusals are answered on the stream (400, 403) and the session goes on", async () => {
    const { server } = await mixedServer();
    const session = await rawSession(server.port);
    const noVersion = await RawStream.connect(session, "/ws", { "sec-websocket-version": "8" });
    expect(noVersion.status).toBe(400);
    const foreign = await RawStream.connect(session, "/ws", { origin: "http://evil.example" });
    expect(foreign.status).toBe(403);
    const sameOrigin = await RawStream.connect(session, "/ws", { origin: `http://127.0.0.1:${server.port}` });
    expect(sameOrigin.status).toBe(200);
    const other = await RawStream.connect(session, "/ws", { ":protocol": "webtransport" });
    expect(other.status).toBe(400);
    const badProtocols = await RawStream.connect(session, "/ws", { "sec-websocket-protocol": "a b" });
    expect(badProtocols.status).toBe(400);
    // A refused stream is closed for good (RST_STREAM(NO_ERROR) after the answer).
    await waitFor(
      () => noVersion.closed && foreign.closed && other.closed,
      3_000,
      "refused streams to close",
    );
    expect(await rawGet(session, "/hello")).toEqual({ status: 200, body: "hello" });
    expect(server.connections).toBe(1);
  });

  test("the peer resetting the stream ends the WebSocket with 1006; the session serves other streams", async () => {
    const { server, ended } = await mixedServer();
    const session = await rawSession(server.port);
    const raw = await RawStream.connect(session, "/ws");
    raw.send(0x1, "ping");
    await raw.next(0);
    raw.stream.close(NGHTTP2_CANCEL);
    await waitFor(() => ended.length === 1, 3_000, "the server session to end");
    expect(ended[0]!.code).toBe(1006);
    expect(await rawGet(session, "/hello")).toEqual({ status: 200, body: "hello" });
    const again = await RawStream.connect(session, "/ws");
    again.send(0x1, "still here");
    expect((await again.next(0)).payload.toString()).toBe("still here");
  });

  test("a WebSocket the server drops resets its stream with CANCEL, and our client sees 1006", async () => {
    const { server, base } = await mixedServer();
    const session = await rawSession(server.port);
    const raw = await RawStream.connect(session, "/drop");
    raw.send(0x1, "x");
    await waitFor(() => raw.closed, 3_000, "the stream to be reset");
    expect(raw.stream.rstCode).toBe(NGHTTP2_CANCEL);
    expect(await rawGet(session, "/hello")).toEqual({ status: 200, body: "hello" });

    const ws = await open(`${base}/drop`, { protocol: "h2" });
    await ws.send("x");
    const { error } = await settle(ws.receive());
    expect((error as WebSocketError).closeCode).toBe(1006);
    await waitFor(() => server.connections === 1, 3_000, "our client's session to close");
  });

  test("permessage-deflate over HTTP/2 (compress: true)", async () => {
    const { server, base } = await mixedServer();
    const session = await rawSession(server.port);
    const raw = await RawStream.connect(session, "/deflate", {
      "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
    });
    expect(raw.status).toBe(200);
    expect(raw.head["sec-websocket-extensions"]).toMatch(/^permessage-deflate/);
    const big = "compress me ".repeat(400);
    raw.send(0x1, big);
    const echoed = await raw.next(0);
    // RSV1: the server compressed the echo; the payload is deflate data, much shorter than the text.
    expect(echoed.rsv1).toBe(true);
    expect(echoed.payload.length).toBeLessThan(big.length / 4);
    // The route without compress ignores the offer.
    const plain = await RawStream.connect(session, "/ws", {
      "sec-websocket-extensions": "permessage-deflate",
    });
    expect(plain.head["sec-websocket-extensions"]).toBeUndefined();
    // Our client negotiates it too.
    const ws = await open(`${base}/deflate`, { protocol: "h2", compress: true });
    await ws.send(big);
    expect(await ws.receive()).toBe(big);
    await ws.close();
  });

  test("a plain CONNECT (no :protocol) is unchanged: its target is :authority", async () => {
    const { server } = await mixedServer();
    const session = await rawSession(server.port);
    const stream = session.request(
      { ":method": "CONNECT", ":authority": "example.com:443" },
      { endStream: true },
    );
    let body = "";
    stream.setEncoding("utf8");
    stream.on("data", (c: string) => {
      body += c;
    });
    await within(new Promise((r) => stream.once("end", r)), 3_000, "the plain CONNECT's answer");
    expect(body).toBe("plain example.com:443");
  });
});

describe("maxFragmentation over HTTP/2", () => {
  test("the server takes a message in maxFragmentation frames and closes with 1008 past it", async () => {
    const { server } = await mixedServer(false, { maxFragmentation: 3 });
    const session = await rawSession(server.port);
    const ok = await RawStream.connect(session, "/ws");
    expect(ok.status).toBe(200);
    ok.stream.write(frame(2, "a", { fin: false, mask: true }));
    ok.stream.write(frame(0, "b", { fin: false, mask: true }));
    ok.stream.write(frame(0, "c", { fin: true, mask: true }));
    const echo = await ok.next(0);
    expect(echo.opcode).toBe(2);
    expect(echo.payload.toString()).toBe("abc");

    const tooMany = await RawStream.connect(session, "/ws");
    for (let i = 0; i < 4; i++) {
      tooMany.stream.write(frame(i === 0 ? 2 : 0, "x", { fin: false, mask: true }));
    }
    const close = await tooMany.next(0);
    expect(close.opcode).toBe(8);
    expect(close.payload.readUInt16BE(0)).toBe(1008);
    // The session goes on: the first WebSocket still echoes.
    ok.send(1, "still here");
    expect((await ok.next(1)).payload.toString()).toBe("still here");
  });
});

describe("client: open(url, { protocol: 'h2' })", () => {
  test("on the wire (a raw node:http2 server): the CONNECT's headers, masked frames, the close handshake", async () => {
    const got = deferred<{ headers: IncomingHttpHeaders; frames: WireFrame[] }>();
    const { port } = await rawH2Server({ enableConnectProtocol: true }, (stream, headers) => {
      stream.respond({ ":status": 200, "sec-websocket-protocol": "chat" });
      let buf: Buffer = Buffer.alloc(0);
      const frames: WireFrame[] = [];
      stream.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        for (let taken = takeFrame(buf); taken !== null; taken = takeFrame(buf)) {
          buf = taken.rest;
          const f = taken.frame;
          frames.push(f);
          if (f.opcode === 0x1) stream.write(frame(0x1, f.payload.toString().toUpperCase(), { mask: false }));
          // The close handshake: our close frame, then END_STREAM.
          if (f.opcode === 0x8) stream.end(frame(0x8, f.payload, { mask: false }));
        }
      });
      stream.on("end", () => got.resolve({ headers, frames }));
    });
    const ws = await open(`ws://127.0.0.1:${port}/chat?room=1`, {
      protocol: "h2",
      subprotocols: ["chat"],
      headers: { "X-Extra": "yes", Connection: "keep-alive", Host: `localhost:${port}` },
      proxy: null,
    });
    expect(ws.subprotocol).toBe("chat");
    await ws.send("hello");
    expect(await ws.receive()).toBe("HELLO");
    await ws.close(1000, "done");
    expect(ws.closeCode).toBe(1000);
    const { headers, frames } = await within(got.promise, 3_000, "the client's END_STREAM");
    expect(headers[":method"]).toBe("CONNECT");
    expect(headers[":protocol"]).toBe("websocket");
    expect(headers[":scheme"]).toBe("http");
    expect(headers[":path"]).toBe("/chat?room=1");
    expect(headers[":authority"]).toBe(`localhost:${port}`);
    expect(headers["sec-websocket-version"]).toBe("13");
    expect(headers["sec-websocket-protocol"]).toBe("chat");
    expect(headers["x-extra"]).toBe("yes");
    expect(headers["sec-websocket-key"]).toBeUndefined();
    expect(headers.upgrade).toBeUndefined();
    expect(headers.connection).toBeUndefined();
    expect(frames.map((f) => f.opcode)).toEqual([0x1, 0x8]);
    expect(frames[1]!.payload.readUInt16BE(0)).toBe(1000);
    // Every client frame was masked.
    expect(frames.every((f) => f.masked)).toBe(true);
  });

  test("a server that does not send SETTINGS_ENABLE_CONNECT_PROTOCOL: WebSocketError 1002 naming it", async () => {
    let streams = 0;
    const { port, sessions } = await rawH2Server({}, () => {
      streams++;
    });
    const { error } = await settle(open(`ws://127.0.0.1:${port}/`, { protocol: "h2" }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1002);
    expect((error as Error).message).toMatch(/SETTINGS_ENABLE_CONNECT_PROTOCOL/);
    expect(streams).toBe(0);
    // The client's session did not outlive the failure.
    await waitFor(() => sessions.size === 0, 3_000, "the client's session to close");
  });

  test("SETTINGS_ENABLE_CONNECT_PROTOCOL in a later SETTINGS frame than the first is honoured", async () => {
    // node sends the constructor's settings first; `session.settings()` right after is a second frame.
    const server = http2.createServer({ settings: {} });
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on("session", (s) => {
      sessions.add(s);
      s.on("error", () => {});
      s.once("close", () => sessions.delete(s));
      s.settings({ enableConnectProtocol: true });
    });
    let seen: IncomingHttpHeaders | undefined;
    server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      seen = headers;
      stream.respond({ ":status": 200 });
    });
    const port = await res.listenRaw(server, sessions);
    const ws = await within(open(`ws://127.0.0.1:${port}/late`, { protocol: "h2" }), 3_000, "the open");
    expect(seen?.[":protocol"]).toBe("websocket");
    expect(seen?.[":path"]).toBe("/late");
    ws.terminate();
  });

  test("a non-200 answer is a WebSocketError carrying the status (3xx included: not followed)", async () => {
    const { server, base } = await mixedServer();
    const { error } = await settle(open(`${base}/nope`, { protocol: "h2" }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1002);
    expect((error as WebSocketError).status).toBe(404);
    await waitFor(() => server.connections === 0, 3_000, "the client's session to close");
    const { port, sessions } = await rawH2Server({ enableConnectProtocol: true }, (stream) => {
      stream.respond({ ":status": 302, location: "/elsewhere" });
      stream.end();
    });
    const redirected = await settle(open(`ws://127.0.0.1:${port}/`, { protocol: "h2" }));
    expect((redirected.error as WebSocketError).status).toBe(302);
    await waitFor(() => sessions.size === 0, 3_000, "the client's session to close");
  });

  test("a subprotocol the client did not offer fails the handshake", async () => {
    const { port } = await rawH2Server({ enableConnectProtocol: true }, (stream) => {
      stream.respond({ ":status": 200, "sec-websocket-protocol": "other" });
    });
    const { error } = await settle(
      open(`ws://127.0.0.1:${port}/`, { protocol: "h2", subprotocols: ["chat"] }),
    );
    expect((error as WebSocketError).closeCode).toBe(1002);
    expect((error as Error).message).toMatch(/not offered/);
  });

  test("a server that speaks only HTTP/1.1 fails with 1002", async () => {
    const server = await listen(async () => {}, { host: "127.0.0.1", port: 0 });
    res.defer(() => server.forceClose());
    const { error } = await settle(open(`ws://127.0.0.1:${server.port}/`, { protocol: "h2" }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1002);
  });

  test("responseHeaderTimeout, readIdleTimeout after the upgrade, connectTimeout, requestTimeout, signal", async () => {
    const { port } = await rawH2Server({ enableConnectProtocol: true }, (stream, headers) => {
      // `/silent` never answers; `/quiet` answers and then says nothing.
      if (headers[":path"] === "/quiet") stream.respond({ ":status": 200 });
    });
    const header = await settle(
      open(`ws://127.0.0.1:${port}/silent`, { protocol: "h2", responseHeaderTimeout: 50 }),
    );
    expect(header.error).toBeInstanceOf(TimeoutError);
    expect((header.error as TimeoutError).phase).toBe("responseHeader");

    const whole = await settle(open(`ws://127.0.0.1:${port}/silent`, { protocol: "h2", requestTimeout: 50 }));
    expect((whole.error as TimeoutError).phase).toBe("request");

    const ws = await open(`ws://127.0.0.1:${port}/quiet`, { protocol: "h2", readIdleTimeout: 50 });
    const idle = await settle(ws.receive());
    expect((idle.error as WebSocketError).closeCode).toBe(1006);

    const controller = new AbortController();
    const pending = open(`ws://127.0.0.1:${port}/silent`, { protocol: "h2", signal: controller.signal });
    controller.abort();
    const canceled = await settle(pending);
    expect(canceled.error).toBeInstanceOf(CanceledError);

    // A TCP server that accepts and never sends SETTINGS.
    const sockets = new Set<net.Socket>();
    const mute = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", r));
    res.defer(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          mute.close(() => r());
        }),
    );
    const connect = await settle(
      open(`ws://127.0.0.1:${(mute.address() as net.AddressInfo).port}/`, {
        protocol: "h2",
        connectTimeout: 50,
      }),
    );
    expect(connect.error).toBeInstanceOf(TimeoutError);
    expect((connect.error as TimeoutError).phase).toBe("connect");
  });

  test("cookies: the jar's and the call's on the CONNECT, Set-Cookie of the 200 stored", async () => {
    const seen = deferred<string | undefined>();
    const { port } = await rawH2Server({ enableConnectProtocol: true }, (stream, headers) => {
      seen.resolve(headers.cookie as string | undefined);
      stream.respond({ ":status": 200, "set-cookie": ["session=abc; Path=/"] });
    });
    const jar = new CookieJar();
    jar.setCookie("theme=dark; Path=/", `http://127.0.0.1:${port}/`);
    const ws = await open(`ws://127.0.0.1:${port}/`, {
      protocol: "h2",
      cookieJar: jar,
      cookies: { lang: "en" },
    });
    const cookie = await within(seen.promise, 3_000, "the CONNECT");
    expect(cookie?.split("; ").sort()).toEqual(["lang=en", "theme=dark"]);
    expect(jar.cookieHeader(`http://127.0.0.1:${port}/`)).toContain("session=abc");
    ws.terminate();
  });

  test("through an HTTP CONNECT proxy: h2c and TLS h2 sessions run in the tunnel", async () => {
    const plain = await mixedServer();
    const proxy = await connectProxy(res);
    const reply = await open(
      `${plain.base}/ws`,
      async (ws) => {
        await ws.send("via proxy");
        return ws.receive();
      },
      { protocol: "h2", proxy: proxy.url },
    );
    expect(reply).toBe("via proxy");
    expect(plain.seen.at(-1)).toMatchObject({ method: "CONNECT", version: "2", protocol: "websocket" });

    const secure = await mixedServer(true);
    const port = new URL(secure.base).port;
    const viaTls = await open(
      `wss://localhost:${port}/ws`,
      async (ws) => {
        await ws.send("via proxy, tls");
        return ws.receive();
      },
      { protocol: "h2", proxy: new ProxyConfig({ all: proxy.url }), tls: { ca: fixtures.ca } },
    );
    expect(viaTls).toBe("via proxy, tls");
    expect(proxy.targets).toEqual([`127.0.0.1:${new URL(plain.base).port}`, `localhost:${port}`]);
  });

  test("options: an unknown protocol and a bad subprotocol are ArgumentErrors", async () => {
    const unknown = await settle(open("ws://127.0.0.1:1/", { protocol: "h3" as "h2" }));
    expect(unknown.error).toBeInstanceOf(ArgumentError);
    const badToken = await settle(open("ws://127.0.0.1:1/", { protocol: "h2", subprotocols: ["a b"] }));
    expect(badToken.error).toBeInstanceOf(ArgumentError);
  });
});
