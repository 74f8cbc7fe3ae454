// HTTP/2 sessions: stream limits, the Rapid-Reset guard, shutdown, idle sessions, flow control and
// back-pressure, request validation (raw frames), and the library's handlers over h2.
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Response, SSEEvent } from "@hyperwire/core";
import { afterEach, describe, expect, it } from "vitest";
import { fileServer, handlerTimeout, listen, Router, serve, sseResponse } from "../src/index.js";
import { FLAG, FRAME, frame, getFields, h2get, headersFrame, RawH2, Sessions } from "./h2-helpers.js";
import { deferred, Servers, waitFor } from "./helpers.js";

const servers = new Servers();
const sessions = new Sessions();
const raws: RawH2[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await sessions.closeAll();
  await servers.closeAll();
});

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_CANCEL } =
  http2.constants;

async function rawTo(port: number): Promise<RawH2> {
  const r = await RawH2.open(port);
  raws.push(r);
  return r;
}

/** A frame that ends stream `id` one way or another: its RST_STREAM, or a GOAWAY. */
function endOf(id: number) {
  return (f: { type: number; streamId: number }) =>
    (f.type === FRAME.RST_STREAM && f.streamId === id) || f.type === FRAME.GOAWAY;
}

describe("stream limits", () => {
  it("maxConcurrentStreams is advertised; a stream past it is refused (REFUSED_STREAM before the SETTINGS ACK)", async () => {
    const release = deferred();
    const server = servers.add(
      await listen(
        async (stream) => {
          await release.promise;
          await stream.write("ok");
        },
        { port: 0, maxConcurrentStreams: 2 },
      ),
    );
    // The three HEADERS go out with the preface, before the client has seen (and ACKed) the limit.
    const r = await RawH2.open(server.port, [
      headersFrame(1, getFields("/1")),
      headersFrame(3, getFields("/3")),
      headersFrame(5, getFields("/5")),
    ]);
    raws.push(r);
    const settings = r.frames.find((f) => f.type === FRAME.SETTINGS && f.flags === 0)!;
    const values = new Map<number, number>();
    for (let i = 0; i + 6 <= settings.payload.length; i += 6) {
      values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    }
    expect(values.get(3)).toBe(2); // SETTINGS_MAX_CONCURRENT_STREAMS
    const refused = await r.waitFor(endOf(5));
    expect([refused.type, RawH2.code(refused)]).toEqual([FRAME.RST_STREAM, NGHTTP2_REFUSED_STREAM]);
    release.resolve();
    await r.waitFor((f) => f.type === FRAME.DATA && f.streamId === 3 && (f.flags & FLAG.END_STREAM) !== 0);
    expect(r.frames.some((f) => f.type === FRAME.GOAWAY)).toBe(false);
  });

  it("a peer that ignores the acknowledged limit loses the connection (nghttp2: GOAWAY, INTERNAL_ERROR)", async () => {
    const release = deferred();
    const server = servers.add(
      await listen(
        async (stream) => {
          await new Promise((r) => stream.signal.addEventListener("abort", r));
          release.resolve();
        },
        { port: 0, maxConcurrentStreams: 2 },
      ),
    );
    const r = await rawTo(server.port);
    // One round trip (PING) makes sure the server has the client's SETTINGS ACK.
    r.write(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
    await r.waitFor((f) => f.type === FRAME.PING);
    r.write(
      headersFrame(1, getFields("/1")),
      headersFrame(3, getFields("/3")),
      headersFrame(5, getFields("/5")),
    );
    const end = await r.waitFor(endOf(5));
    expect([end.type, RawH2.code(end)]).toEqual([FRAME.GOAWAY, http2.constants.NGHTTP2_INTERNAL_ERROR]);
    await r.waitClosed();
    await release.promise;
  });

  it("a peer that keeps resetting streams gets GOAWAY(ENHANCE_YOUR_CALM) past maxConcurrentStreams + 100", async () => {
    let handled = 0;
    const server = servers.add(
      await serve(
        () => {
          handled++;
          return new Response(200);
        },
        { port: 0, maxConcurrentStreams: 10 },
      ),
    );
    const r = await rawTo(server.port);
    const post: [string, string][] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "127.0.0.1"],
    ];
    const rst = Buffer.alloc(4);
    rst.writeUInt32BE(NGHTTP2_CANCEL);
    let id = 1;
    // 110 resets are allowed; the 111th is one too many.
    for (let i = 0; i < 120; i++, id += 2)
      r.write(headersFrame(id, post, false), frame(FRAME.RST_STREAM, 0, id, rst));
    const goaway = await r.waitFor((f) => f.type === FRAME.GOAWAY);
    expect(RawH2.code(goaway)).toBe(NGHTTP2_ENHANCE_YOUR_CALM);
    expect(handled).toBe(0);
    // New streams are not served any more.
    r.write(headersFrame(id, getFields("/after")));
    await r.waitClosed();
    expect(r.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === id)).toBe(false);
  });
});

describe("shutdown and idle sessions", () => {
  it("close() sends GOAWAY, lets the in-flight stream finish, refuses new connections, then resolves", async () => {
    const release = deferred();
    const started = deferred();
    let shutdowns = 0;
    const server = servers.add(
      await listen(
        async (stream) => {
          started.resolve();
          await release.promise;
          await stream.write("finished");
        },
        { port: 0, onShutdown: () => void shutdowns++ },
      ),
    );
    const s = sessions.connect(server.url);
    const reply = h2get(s, { ":path": "/" });
    await started.promise;
    expect(server.activeRequests).toBe(1);
    const goaway = once(s, "goaway");
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    const [code] = (await goaway) as [number];
    expect(code).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(closed).toBe(false);
    release.resolve();
    expect((await reply).body.toString()).toBe("finished");
    await closing;
    expect(shutdowns).toBe(1);
    await waitFor(() => server.connections === 0);
  });

  it("forceClose() destroys sessions with streams in flight", async () => {
    const started = deferred();
    const server = servers.add(
      await listen(
        async (stream) => {
          started.resolve();
          await new Promise((r) => stream.signal.addEventListener("abort", r));
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const reply = h2get(s, { ":path": "/" }).then(
      () => "answered",
      () => "failed",
    );
    await started.promise;
    await server.forceClose();
    expect(await reply).toBe("failed");
    expect(server.connections).toBe(0);
  });

  it("idleTimeout closes a session that has no streams (GOAWAY, then close)", async () => {
    const server = servers.add(
      await serve(() => new Response(200, { body: "x" }), { port: 0, idleTimeout: 100 }),
    );
    const s = sessions.connect(server.url);
    await h2get(s, { ":path": "/" });
    const [code] = (await once(s, "goaway")) as [number];
    expect(code).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await once(s, "close");
    await waitFor(() => server.connections === 0);
  });

  it("readHeaderTimeout closes an h2 session that never opens a stream", async () => {
    const server = servers.add(await serve(() => new Response(200), { port: 0, readHeaderTimeout: 100 }));
    const r = await rawTo(server.port);
    const goaway = await r.waitFor((f) => f.type === FRAME.GOAWAY);
    expect(RawH2.code(goaway)).toBe(0);
    await r.waitClosed();
  });
});

describe("flow control and back-pressure", () => {
  it("a handler that does not read holds the upload at the stream window", async () => {
    const go = deferred();
    const server = servers.add(
      await listen(
        async (stream) => {
          await go.promise;
          let n = 0;
          for await (const c of stream) n += c.byteLength;
          await stream.write(String(n));
        },
        { port: 0, http2Settings: { initialWindowSize: 65_535, connectionWindowSize: 16 << 20 } },
      ),
    );
    const s = sessions.connect(server.url);
    const req = s.request({ ":method": "POST", ":path": "/" }, { endStream: false });
    req.on("error", () => {});
    const total = 4 << 20;
    req.end(Buffer.alloc(total));
    const connWindow = () => s.state.remoteWindowSize ?? 0;
    await once(s, "remoteSettings");
    // The server's connection window is 16 MiB; what the client sent is what the window lost.
    await waitFor(() => (16 << 20) - connWindow() >= 65_535, 3_000, "the first window's worth");
    for (let i = 0; i < 3; i++) await new Promise((r) => s.ping((err) => r(err)));
    const sent = (16 << 20) - connWindow();
    expect(sent).toBeLessThan(512 * 1024);
    go.resolve();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    await once(req, "end");
    expect(Buffer.concat(chunks).toString()).toBe(String(total));
  });

  it("writes wait for a client that does not read", async () => {
    let written = 0;
    const server = servers.add(
      await listen(
        async (stream) => {
          const chunk = Buffer.alloc(16 * 1024);
          for (let i = 0; i < 256; i++) {
            await stream.write(chunk);
            written += chunk.length;
          }
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const req = s.request({ ":path": "/" });
    req.pause();
    await once(req, "response");
    await waitFor(() => written >= 32 * 1024, 3_000, "the first window's worth");
    for (let i = 0; i < 3; i++) await new Promise((r) => s.ping((err) => r(err)));
    expect(written).toBeLessThan(1 << 20);
    let got = 0;
    req.on("data", (c: Buffer) => {
      got += c.length;
    });
    req.resume();
    await once(req, "end");
    expect(got).toBe(4 << 20);
  });
});

describe("request validation", () => {
  const cases: [string, [string, string][]][] = [
    [
      "missing :method",
      [
        [":scheme", "http"],
        [":path", "/"],
        [":authority", "a"],
      ],
    ],
    ["a repeated :path", [...getFields("/"), [":path", "/again"]]],
    ["an unknown pseudo-header", getFields("/", [[":foo", "x"]])],
    ["an upper-case field name", getFields("/", [["X-Upper", "1"]])],
    ["a connection-specific field", getFields("/", [["connection", "keep-alive"]])],
    ["an empty :path", getFields("")],
    ["a :path that is not origin-form", getFields("foo")],
    ["CONNECT without :authority", [[":method", "CONNECT"]]],
  ];
  for (const [name, fields] of cases) {
    it(`refuses ${name} with RST_STREAM(PROTOCOL_ERROR), the handler unseen`, async () => {
      let calls = 0;
      const server = servers.add(
        await serve(
          () => {
            calls++;
            return new Response(200);
          },
          { port: 0 },
        ),
      );
      const r = await rawTo(server.port);
      r.write(headersFrame(1, fields));
      const end = await r.waitFor(endOf(1));
      expect([end.type, RawH2.code(end)]).toEqual([FRAME.RST_STREAM, NGHTTP2_PROTOCOL_ERROR]);
      expect(calls).toBe(0);
    });
  }

  it("refuses DATA shorter than the declared Content-Length", async () => {
    let calls = 0;
    const server = servers.add(
      await serve(
        () => {
          calls++;
          return new Response(200);
        },
        { port: 0 },
      ),
    );
    const r = await rawTo(server.port);
    const fields: [string, string][] = [
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "a"],
      ["content-length", "10"],
    ];
    r.write(headersFrame(1, fields, false), frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from("short")));
    const end = await r.waitFor(endOf(1));
    expect([end.type, RawH2.code(end)]).toEqual([FRAME.RST_STREAM, NGHTTP2_PROTOCOL_ERROR]);
    expect(calls).toBe(0);
  });

  it("DATA after END_STREAM is a connection error (STREAM_CLOSED)", async () => {
    const server = servers.add(
      await listen(
        async (stream) => {
          await new Promise((r) => stream.signal.addEventListener("abort", r));
        },
        { port: 0 },
      ),
    );
    const r = await rawTo(server.port);
    r.write(headersFrame(1, getFields("/")), frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from("late")));
    const goaway = await r.waitFor(
      (f) => f.type === FRAME.GOAWAY || (f.type === FRAME.RST_STREAM && f.streamId === 1),
    );
    expect([goaway.type, RawH2.code(goaway)]).toEqual([FRAME.GOAWAY, http2.constants.NGHTTP2_STREAM_CLOSED]);
    // nghttp2 ended the session on its own and node stopped reading without telling JavaScript; the
    // session's liveness PING (after 30 s of quiet, tested with short times in @hyperwire/h2) finds it
    // and destroys it. Here the test does not wait for that.
    await server.forceClose();
  });
});

describe("the library's handlers over h2", () => {
  it("Router: params and 404", async () => {
    const router = new Router();
    router.register(
      "GET",
      "/users/{id}",
      (req) => new Response(200, { body: `user ${req.target.slice(7)}` }),
    );
    const server = servers.add(await serve(router, { port: 0 }));
    const s = sessions.connect(server.url);
    expect((await h2get(s, { ":path": "/users/7" })).body.toString()).toBe("user 7");
    expect((await h2get(s, { ":path": "/nope" })).status).toBe(404);
  });

  it("fileServer answers a range request with 206", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hw-h2-"));
    writeFileSync(join(dir, "a.txt"), "0123456789");
    const server = servers.add(await serve(fileServer(dir), { port: 0 }));
    const s = sessions.connect(server.url);
    const r = await h2get(s, { ":path": "/a.txt", range: "bytes=2-5" });
    expect(r.status).toBe(206);
    expect(r.headers["content-range"]).toBe("bytes 2-5/10");
    expect(r.body.toString()).toBe("2345");
  });

  it("sseResponse streams events", async () => {
    const server = servers.add(
      await serve(
        () =>
          sseResponse(async (w) => {
            await w.write(new SSEEvent("one"));
            await w.write(new SSEEvent("two", { event: "n" }));
          }),
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const r = await h2get(s, { ":path": "/" });
    expect(r.headers["content-type"]).toContain("text/event-stream");
    expect(r.body.toString()).toBe("data: one\n\nevent: n\ndata: two\n\n");
  });

  it("handlerTimeout answers 503 when the handler is too slow", async () => {
    const slow = handlerTimeout(50)(
      (req) =>
        new Promise<Response>((r) =>
          req.context.signal.addEventListener("abort", () => r(new Response(200))),
        ),
    );
    const server = servers.add(await serve(slow, { port: 0 }));
    const s = sessions.connect(server.url);
    expect((await h2get(s, { ":path": "/" })).status).toBe(503);
  });
});
