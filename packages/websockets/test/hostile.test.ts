// Hostile peers, both directions: unmasked frames, oversize and compressed-bomb messages, invalid
// UTF-8, peers that vanish, and many connections at once. Every case must end with the peer closed
// with the right code, memory bounded, and no session left behind.
import type net from "node:net";
import { WebSocketError } from "@hyperwire/core";
import { describe, expect, test } from "vitest";
import { WebSocketServer as WsServer, WebSocket as WsSocket } from "ws";
import { CLOSE_WAIT_MS, open, serverAddr, type WebSocket, type WebSocketServer } from "../src/index.js";
import {
  checkUnhandledRejections,
  deferred,
  frame,
  handRolledServer,
  parseFrames,
  RawClient,
  Resources,
  rawClosed,
  settle,
  waitFor,
  within,
} from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

const MiB = 1024 * 1024;

function echoServer(options: Parameters<Resources["listen"]>[1] = {}): Promise<WebSocketServer> {
  return res.listen(async (ws) => {
    for await (const msg of ws) await ws.send(msg);
  }, options);
}

/** A server whose handler records how its iteration ended. */
async function recordingServer(options: Parameters<Resources["listen"]>[1] = {}) {
  const outcomes: unknown[] = [];
  const server = await res.listen(async (ws) => {
    try {
      for await (const m of ws) await ws.send(m);
      outcomes.push("ended quietly");
    } catch (e) {
      outcomes.push(e);
    }
  }, options);
  return { server, outcomes };
}

/** Still serving: a fresh client gets its echo. */
async function stillServes(server: WebSocketServer): Promise<void> {
  const reply = await within(
    open(
      `ws://${serverAddr(server)}/`,
      async (ws) => {
        await ws.send("still alive?");
        return ws.receive();
      },
      { proxy: null },
    ),
    3_000,
    "an echo from the server",
  );
  expect(reply).toBe("still alive?");
}

/** The close code our client sends back to a hand-rolled server (from the frames it wrote). */
function clientCloseCode(socket: net.Socket): Promise<number> {
  let buf = Buffer.alloc(0);
  return within(
    new Promise<number>((resolve) => {
      socket.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const close = parseFrames(buf).frames.find((f) => f.opcode === 8);
        if (close) resolve(close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005);
      });
    }),
    3_000,
    "the client's close frame",
  );
}

async function iterationError(ws: WebSocket): Promise<unknown> {
  const { error } = await settle(
    within(
      (async () => {
        for await (const _ of ws) {
          // drain
        }
      })(),
      5_000,
      "the iteration to end",
    ),
  );
  return error;
}

describe("hostile clients against our server", () => {
  test("an unmasked client frame is closed with 1002", async () => {
    const { server, outcomes } = await recordingServer();
    const raw = await RawClient.connect(server.port);
    raw.write(frame(1, "not masked", { mask: false }));
    expect(await raw.closeCode()).toBe(1002);
    expect(raw.frames.some((f) => f.opcode === 1)).toBe(false);
    raw.write(frame(8, Buffer.from([0x03, 0xea]), {}));
    await raw.closed();
    await waitFor(() => outcomes.length === 1, 3_000, "the handler to finish");
    // The handler sees the code its side closed with, not 1006.
    expect((outcomes[0] as WebSocketError).closeCode).toBe(1002);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
    await stillServes(server);
  });

  test("a peer that never answers our close frame is dropped within the close wait", async () => {
    const { server } = await recordingServer();
    const raw = await RawClient.connect(server.port);
    raw.write(frame(1, "not masked", { mask: false }));
    expect(await raw.closeCode()).toBe(1002);
    // No close frame back: the server must not hold the connection longer than its close wait.
    await raw.closed(CLOSE_WAIT_MS + 2_000);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  }, 15_000);

  test("a peer that ignores our close frame is dropped after the close wait", async () => {
    const outcome = deferred<number | undefined>();
    const server = await res.listen(async (ws) => {
      await ws.close(1000);
      outcome.resolve(ws.closeCode);
    });
    const raw = await RawClient.connect(server.port);
    expect(await raw.closeCode()).toBe(1000);
    const started = performance.now();
    await raw.closed(CLOSE_WAIT_MS + 2_000);
    expect(performance.now() - started).toBeLessThan(CLOSE_WAIT_MS + 1_500);
    await within(outcome.promise, 3_000, "close() to return");
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  }, 15_000);

  test("a ping flood from a peer that never reads is cut off", async () => {
    const { server, outcomes } = await recordingServer();
    const raw = await RawClient.connect(server.port);
    raw.socket.pause();
    const ping = frame(9, Buffer.alloc(125));
    const burst = Buffer.concat(Array.from({ length: 1_000 }, () => ping));
    for (let i = 0; i < 400 && !raw.socket.destroyed; i++) {
      if (!raw.socket.write(burst)) {
        await Promise.race([
          new Promise((r) => raw.socket.once("drain", r)),
          new Promise((r) => raw.socket.once("close", r)),
        ]);
      }
    }
    raw.socket.resume();
    await raw.closed(5_000);
    await waitFor(() => outcomes.length === 1, 3_000, "the handler to finish");
    expect(outcomes[0]).toBeInstanceOf(WebSocketError);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  }, 20_000);

  test("a message flood to a handler that does not read: at most ~256 messages queue up", async () => {
    const sessions: WebSocket[] = [];
    const server = await res.listen(async (ws) => {
      sessions.push(ws);
      await ws.closed();
    });
    const peer = await res.rawClient(`ws://${serverAddr(server)}/`);
    const chunk = Buffer.alloc(64 * 1024);
    let acked = 0;
    let stopped = false;
    res.defer(() => {
      stopped = true;
    });
    const pump = (): void => {
      if (stopped || peer.readyState !== WsSocket.OPEN || acked >= 4_000) return;
      peer.send(chunk, (err) => {
        if (err) return;
        acked++;
        pump();
      });
    };
    for (let i = 0; i < 8; i++) pump();
    let last = -1;
    for (let i = 0; i < 40 && acked !== last; i++) {
      last = acked;
      await new Promise((r) => setTimeout(r, 300));
    }
    stopped = true;
    // 4,000 × 64 KiB would be 250 MiB; the sender stalls far sooner.
    expect(acked).toBeLessThan(2_000);
    expect(sessions[0]?.bufferedMessages).toBeLessThanOrEqual(256 + 32);
    // Reading catches up and the connection resumes.
    const first = await within((sessions[0] as WebSocket).receive(), 3_000, "a queued message");
    expect((first as Uint8Array).length).toBe(64 * 1024);
  }, 30_000);

  test("an unknown opcode and a reserved bit without an extension are closed with 1002", async () => {
    const server = await echoServer();
    const a = await RawClient.connect(server.port);
    a.write(frame(3, "??"));
    expect(await a.closeCode()).toBe(1002);
    const b = await RawClient.connect(server.port);
    b.write(frame(1, "compressed?", { rsv1: true }));
    expect(await b.closeCode()).toBe(1002);
    a.destroy();
    b.destroy();
    await waitFor(() => server.sessionCount === 0, 3_000, "the sessions to end");
  });

  test("a message over maxFrameSize is closed with 1009", async () => {
    const { server, outcomes } = await recordingServer({ maxFrameSize: 1024 });
    const ws = await open(`ws://${serverAddr(server)}/`, { proxy: null });
    res.defer(() => ws.terminate());
    await ws.send(new Uint8Array(1024));
    expect(((await ws.receive()) as Uint8Array).length).toBe(1024);
    await settle(ws.send(new Uint8Array(2048)));
    const error = await iterationError(ws);
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1009);
    await waitFor(() => outcomes.length === 1, 3_000, "the server handler to finish");
    expect((outcomes[0] as WebSocketError).closeCode).toBe(1009);
    expect(server.sessionCount).toBe(0);
  });

  test("a frame that declares a huge length is refused before its payload is read (memory bounded)", async () => {
    const server = await echoServer({ maxFrameSize: MiB });
    const raw = await RawClient.connect(server.port);
    // Declares 256 MiB, then streams payload until the server gives up.
    raw.write(frame(2, Buffer.alloc(0), { declaredLength: 256 * MiB }).subarray(0, 14));
    let written = 0;
    const chunk = Buffer.alloc(MiB);
    while (!raw.ended && !raw.frames.some((f) => f.opcode === 8) && written < 256 * MiB) {
      if (!raw.socket.write(chunk)) {
        await Promise.race([
          new Promise((r) => raw.socket.once("drain", r)),
          raw.until(() => raw.ended || raw.frames.length > 0, 5_000, "drain or close"),
        ]);
      }
      written += chunk.length;
    }
    expect(await raw.closeCode()).toBe(1009);
    // The server read the header and stopped: far less than the declared size went through.
    expect(written).toBeLessThan(32 * MiB);
    raw.destroy();
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("a fragmented message whose fragments add up past maxFrameSize is closed with 1009", async () => {
    const server = await echoServer({ maxFrameSize: 4096 });
    const raw = await RawClient.connect(server.port);
    raw.write(frame(2, Buffer.alloc(1500), { fin: false }));
    for (let i = 0; i < 5 && !raw.ended; i++) raw.write(frame(0, Buffer.alloc(1500), { fin: false }));
    expect(await raw.closeCode()).toBe(1009);
    raw.destroy();
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("a compressed bomb is closed with 1009 and the server keeps serving", async () => {
    const { server, outcomes } = await recordingServer({ compress: true, maxFrameSize: MiB });
    const peer = await res.rawClient(`ws://${serverAddr(server)}/`, { perMessageDeflate: true });
    expect(peer.extensions).toContain("permessage-deflate");
    const closed = rawClosed(peer);
    const rssBefore = process.memoryUsage().rss;
    // 64 MiB of zeros deflates to about 64 KiB on the wire.
    peer.send(Buffer.alloc(64 * MiB));
    const [code] = await within(closed, 10_000, "the server to close");
    expect(code).toBe(1009);
    await waitFor(() => outcomes.length === 1, 3_000, "the handler to finish");
    expect((outcomes[0] as WebSocketError).closeCode).toBe(1009);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(160 * MiB);
    expect(server.sessionCount).toBe(0);
    await stillServes(server);
  }, 30_000);

  test("invalid UTF-8 in a text message is closed with 1007", async () => {
    const { server, outcomes } = await recordingServer();
    const raw = await RawClient.connect(server.port);
    raw.write(frame(1, Buffer.from([0x68, 0x69, 0xff, 0xfe])));
    expect(await raw.closeCode()).toBe(1007);
    await waitFor(() => outcomes.length === 1, 3_000, "the handler to finish");
    expect((outcomes[0] as WebSocketError).closeCode).toBe(1007);
    const split = await RawClient.connect(server.port);
    // "é" split across two fragments is fine; a lone continuation byte is not.
    split.write(frame(1, Buffer.from([0xc3]), { fin: false }));
    split.write(frame(0, Buffer.from([0xa9])));
    await split.until(() => split.frames.length > 0, 3_000, "the echo");
    expect(split.frames[0]?.payload.toString("utf8")).toBe("é");
    split.write(frame(1, Buffer.from([0x80])));
    expect(await split.closeCode()).toBe(1007);
    raw.destroy();
    split.destroy();
    await waitFor(() => server.sessionCount === 0, 3_000, "the sessions to end");
  });

  test("a close frame with an invalid code is answered with 1002", async () => {
    const server = await echoServer();
    const raw = await RawClient.connect(server.port);
    raw.write(frame(8, Buffer.from([0x03, 0xee]))); // 1006 may not be sent
    expect(await raw.closeCode()).toBe(1002);
    raw.destroy();
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("a peer that vanishes without a close frame: the handler's iteration throws 1006, no session left", async () => {
    const { server, outcomes } = await recordingServer();
    const raw = await RawClient.connect(server.port);
    raw.write(frame(1, "hello"));
    await raw.until(() => raw.frames.length === 1, 3_000, "the echo");
    raw.destroy();
    await waitFor(() => outcomes.length === 1, 3_000, "the handler to see the loss");
    expect(outcomes[0]).toBeInstanceOf(WebSocketError);
    expect((outcomes[0] as WebSocketError).closeCode).toBe(1006);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to be freed");
  });

  test("a half-written frame and then silence is dropped by readIdleTimeout", async () => {
    const { server, outcomes } = await recordingServer({ readIdleTimeout: 200 });
    const raw = await RawClient.connect(server.port);
    raw.write(frame(1, "partial").subarray(0, 5));
    await raw.closed(3_000);
    await waitFor(() => outcomes.length === 1, 3_000, "the handler to finish");
    expect((outcomes[0] as WebSocketError).closeCode).toBe(1006);
    expect(server.sessionCount).toBe(0);
  });

  test("1,000 concurrent connections each echo a message, then all close cleanly", async () => {
    const server = await echoServer();
    const url = `ws://${serverAddr(server)}/`;
    const n = 1_000;
    const batch = 100;
    const clients: WebSocket[] = [];
    res.defer(() => Promise.all(clients.map((c) => c.terminate())));
    for (let i = 0; i < n; i += batch) {
      const opened = await Promise.all(
        Array.from({ length: batch }, () => open(url, { proxy: null, connectTimeout: 10_000 })),
      );
      clients.push(...opened);
    }
    await waitFor(() => server.sessionCount === n, 10_000, `${n} sessions`);
    const replies = await within(
      Promise.all(
        clients.map(async (c, i) => {
          await c.send(`message ${i}`);
          return c.receive();
        }),
      ),
      20_000,
      "every echo",
    );
    expect(replies).toEqual(clients.map((_, i) => `message ${i}`));
    for (let i = 0; i < n; i += batch) {
      await within(
        Promise.all(clients.slice(i, i + batch).map((c) => c.close())),
        10_000,
        "a batch of closes",
      );
    }
    expect(clients.every((c) => c.closeCode === 1000)).toBe(true);
    await waitFor(() => server.sessionCount === 0, 10_000, "every session to end");
  }, 60_000);
});

describe("hostile servers against our client", () => {
  test("a masked server frame is closed with 1002", async () => {
    const opened = deferred<net.Socket>();
    const { url } = await handRolledServer(res, (s) => opened.resolve(s));
    const ws = await open(url, { proxy: null });
    res.defer(() => ws.terminate());
    const socket = await opened.promise;
    const code = clientCloseCode(socket);
    socket.write(frame(1, "masked", { mask: true }));
    expect(await code).toBe(1002);
    const error = await iterationError(ws);
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1002);
  });

  test("invalid UTF-8 from the server is closed with 1007", async () => {
    const opened = deferred<net.Socket>();
    const { url } = await handRolledServer(res, (s) => opened.resolve(s));
    const ws = await open(url, { proxy: null });
    res.defer(() => ws.terminate());
    const socket = await opened.promise;
    const code = clientCloseCode(socket);
    socket.write(frame(1, Buffer.from([0xc0, 0xaf]), { mask: false }));
    expect(await code).toBe(1007);
    socket.destroy();
    const error = await iterationError(ws);
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1007);
  });

  test("a server message over the client's maxFrameSize is closed with 1009", async () => {
    const opened = deferred<net.Socket>();
    const { url } = await handRolledServer(res, (s) => opened.resolve(s));
    const ws = await open(url, { proxy: null, maxFrameSize: 1024 });
    res.defer(() => ws.terminate());
    const socket = await opened.promise;
    const code = clientCloseCode(socket);
    socket.write(frame(2, Buffer.alloc(0), { mask: false, declaredLength: 512 * MiB }).subarray(0, 10));
    expect(await code).toBe(1009);
    socket.destroy();
    const error = await iterationError(ws);
    expect((error as WebSocketError).closeCode).toBe(1009);
  });

  test("a compressed bomb from the server is closed with 1009", async () => {
    const server = new WsServer({ host: "127.0.0.1", port: 0, perMessageDeflate: true });
    server.on("connection", (peer) => {
      peer.on("error", () => {});
      peer.send(Buffer.alloc(64 * MiB));
    });
    await new Promise<void>((r) => server.once("listening", () => r()));
    res.defer(
      () =>
        new Promise<void>((r) => {
          for (const c of server.clients) c.terminate();
          server.close(() => r());
        }),
    );
    const { port } = server.address() as net.AddressInfo;
    const ws = await open(`ws://127.0.0.1:${port}/`, { proxy: null, compress: true, maxFrameSize: MiB });
    res.defer(() => ws.terminate());
    const error = await iterationError(ws);
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1009);
  }, 30_000);

  test("a server that vanishes: receive throws 1006", async () => {
    const opened = deferred<net.Socket>();
    const { url } = await handRolledServer(res, (s) => opened.resolve(s));
    const ws = await open(url, { proxy: null });
    res.defer(() => ws.terminate());
    const waiting = settle(ws.receive());
    (await opened.promise).destroy();
    const { error } = await within(waiting, 3_000, "receive to settle");
    expect((error as WebSocketError).closeCode).toBe(1006);
  });
});
