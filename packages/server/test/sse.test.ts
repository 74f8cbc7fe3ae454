import { createHook } from "node:async_hooks";
import http from "node:http";
import net from "node:net";
import { ArgumentError, ClosedError, type Request, SSEEvent } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { serve } from "../src/serve.js";
import { type SSEWriter, sseResponse } from "../src/sse.js";
import { deferred, get, headOf, raw, Servers, waitFor } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

interface Parsed {
  type: string;
  data: string;
  lastEventId: string;
}

/** The WHATWG event-stream interpretation (HTML §9.2.6), from the spec: what a browser would dispatch. */
function parseStream(text: string): { events: Parsed[]; comments: string[] } {
  const events: Parsed[] = [];
  const comments: string[] = [];
  let data = "";
  let type = "";
  let lastEventId = "";
  const lines = text.split(/\r\n|\r|\n/);
  lines.pop();
  for (const line of lines) {
    if (line === "") {
      if (data !== "") events.push({ type: type || "message", data: data.slice(0, -1), lastEventId });
      data = "";
      type = "";
      continue;
    }
    if (line.startsWith(":")) {
      comments.push(line.slice(1).trimStart());
      continue;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data += `${value}\n`;
    else if (field === "event") type = value;
    else if (field === "id" && !value.includes("\0")) lastEventId = value;
  }
  return { events, comments };
}

/** A streaming GET: the body text so far, and a way to leave. */
function open(url: string): Promise<{
  res: http.IncomingMessage;
  text: () => string;
  ended: Promise<void>;
  leave: () => void;
}> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let text = "";
      const ended = new Promise<void>((done) => {
        res.on("end", done);
        res.on("close", done);
      });
      res.on("data", (c: Buffer) => {
        text += c.toString("utf8");
      });
      res.on("error", () => {});
      resolve({ res, text: () => text, ended, leave: () => req.destroy() });
    });
    req.on("error", reject);
  });
}

/** Counts live timers made with `ms` (a duration no other part of the test uses). */
function timersOf(ms: number): { live: () => number; stop: () => void } {
  const live = new Set<number>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type === "Timeout" && (resource as { _idleTimeout?: number })._idleTimeout === ms) live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  });
  hook.enable();
  return { live: () => live.size, stop: () => hook.disable() };
}

describe("sseResponse: events on the wire", () => {
  test("events arrive in order, chunked, and parse with the event-stream rules", async () => {
    const s = servers.add(
      await serve(
        () =>
          sseResponse(async (w) => {
            await w.write("first");
            await w.write(new SSEEvent("line 1\nline 2\r\nline 3", { event: "multi", id: "2" }));
            await w.comment("just a comment");
            await w.write(new SSEEvent('{"n":3}', { event: "json", id: "3", retry: 2500 }));
            await w.write(new SSEEvent("é ☃ 😀"));
          }),
        { port: 0 },
      ),
    );
    const r = await get(s.url);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/event-stream");
    expect(r.headers["cache-control"]).toBe("no-cache");
    expect(r.headers["transfer-encoding"]).toBe("chunked");
    expect(r.headers["content-length"]).toBeUndefined();
    const { events, comments } = parseStream(r.body.toString("utf8"));
    expect(events).toEqual([
      { type: "message", data: "first", lastEventId: "" },
      { type: "multi", data: "line 1\nline 2\nline 3", lastEventId: "2" },
      { type: "json", data: '{"n":3}', lastEventId: "3" },
      { type: "message", data: "é ☃ 😀", lastEventId: "3" },
    ]);
    expect(comments).toEqual(["just a comment"]);
    expect(r.body.toString()).toContain("retry: 2500\n");
  });

  test("each write resolves once the server took the event; the client sees it before the next one", async () => {
    const gate = deferred();
    const s = servers.add(
      await serve(
        () =>
          sseResponse(async (w) => {
            await w.write("one");
            await gate.promise;
            await w.write("two");
          }),
        { port: 0 },
      ),
    );
    const c = await open(s.url);
    await waitFor(() => c.text().includes("data: one\n\n"), 3_000, "the first event");
    expect(c.text()).not.toContain("two");
    gate.resolve();
    await c.ended;
    expect(parseStream(c.text()).events.map((e) => e.data)).toEqual(["one", "two"]);
  });

  test("options: extra headers, overridden Cache-Control, another status", async () => {
    const s = servers.add(
      await serve(
        () =>
          sseResponse(
            async (w) => {
              await w.write("x");
            },
            { headers: { "X-Accel-Buffering": "no", "Cache-Control": "no-store" }, status: 201 },
          ),
        { port: 0 },
      ),
    );
    const r = await get(s.url);
    expect(r.status).toBe(201);
    expect(r.headers["x-accel-buffering"]).toBe("no");
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(r.headers["content-type"]).toBe("text/event-stream");
  });

  test("a HEAD request never starts the producer", async () => {
    let started = false;
    const s = servers.add(
      await serve(
        () =>
          sseResponse(async () => {
            started = true;
          }),
        { port: 0 },
      ),
    );
    const reply = await raw(s.port, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(headOf(reply.text)).toContain("content-type: text/event-stream");
    expect(reply.text.endsWith("\r\n\r\n")).toBe(true);
    expect(started).toBe(false);
  });
});

describe("sseResponse: bad input", () => {
  test("CR/LF injection in event or id is refused, and nothing of it reaches the wire", async () => {
    const errors: unknown[] = [];
    const s = servers.add(
      await serve(
        () =>
          sseResponse(async (w) => {
            for (const init of [{ event: "x\nevent: admin" }, { id: "1\r\ndata: forged" }, { id: "a\0" }]) {
              try {
                await w.write(new SSEEvent("payload", init));
              } catch (err) {
                errors.push(err);
              }
            }
            // Untyped callers: anything but an SSEEvent or a string is refused by write itself.
            await w.write({ data: "x" } as unknown as string).catch((err: unknown) => errors.push(err));
            await w.write("after");
          }),
        { port: 0 },
      ),
    );
    const r = await get(s.url);
    expect(errors).toHaveLength(4);
    for (const err of errors) expect(err).toBeInstanceOf(ArgumentError);
    expect(r.body.toString()).toBe("data: after\n\n");
  });

  test("bad options are an ArgumentError at construction", () => {
    const p = async () => {};
    expect(() => sseResponse(p, { keepAlive: -1 })).toThrow(ArgumentError);
    expect(() => sseResponse(p, { keepAlive: Number.NaN })).toThrow(ArgumentError);
    expect(() => sseResponse(p, { headers: { "Content-Length": "10" } })).toThrow(ArgumentError);
    expect(() => sseResponse(p, { signal: {} as AbortSignal })).toThrow(ArgumentError);
    expect(() => sseResponse(p, { status: 42 })).toThrow(ArgumentError);
    expect(() => sseResponse("nope" as unknown as () => Promise<void>)).toThrow(ArgumentError);
  });

  test("a failing producer ends the stream cleanly and is reported as a warning, not a rejection", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const s = servers.add(
        await serve(
          () =>
            sseResponse(async (w) => {
              await w.write("before");
              throw new Error("producer broke");
            }),
          { port: 0 },
        ),
      );
      const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(reply.closed).toBe(true);
      // The chunked body is complete: the event, then the last chunk.
      expect(reply.text).toContain("data: before\n\n");
      expect(reply.text.endsWith("0\r\n\r\n")).toBe(true);
      await waitFor(() => warnings.some((w) => w.message === "producer broke"), 3_000, "the warning");
    } finally {
      process.off("warning", onWarning);
    }
  });

  test("a producer that throws synchronously also just ends the stream", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const s = servers.add(
        await serve(
          () =>
            sseResponse(() => {
              throw new Error("sync failure");
            }),
          { port: 0 },
        ),
      );
      const r = await get(s.url);
      expect(r.status).toBe(200);
      expect(r.body.byteLength).toBe(0);
      await waitFor(() => warnings.some((w) => w.message === "sync failure"), 3_000, "the warning");
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("sseResponse: keep-alive, leaving, back-pressure", () => {
  test("an idle stream gets keep-alive comments; a client that leaves is noticed through them", async () => {
    let writer: SSEWriter | undefined;
    const aborted = deferred();
    const s = servers.add(
      await serve(
        () =>
          sseResponse(
            async (w) => {
              writer = w;
              await w.write("hello");
              await new Promise<void>((resolve) => w.signal.addEventListener("abort", () => resolve()));
              aborted.resolve();
            },
            { keepAlive: 50 },
          ),
        { port: 0 },
      ),
    );
    const c = await open(s.url);
    await waitFor(() => parseStream(c.text()).comments.length >= 2, 3_000, "two keep-alive comments");
    expect(parseStream(c.text()).comments.slice(0, 2)).toEqual(["keep-alive", "keep-alive"]);
    expect(parseStream(c.text()).events.map((e) => e.data)).toEqual(["hello"]);
    c.leave();
    await aborted.promise;
    expect(writer!.signal.reason).toBeInstanceOf(ClosedError);
    await expect(writer!.write("too late")).rejects.toBeInstanceOf(ClosedError);
  });

  test("with signal: req.signal the producer learns at once that the client left (no keep-alive)", async () => {
    let writer: SSEWriter | undefined;
    const done = deferred();
    const s = servers.add(
      await serve(
        (req: Request) =>
          sseResponse(
            async (w) => {
              writer = w;
              await w.write("only");
              await new Promise<void>((resolve) => w.signal.addEventListener("abort", () => resolve()));
              done.resolve();
            },
            { keepAlive: 0, signal: req.signal },
          ),
        { port: 0 },
      ),
    );
    const c = await open(s.url);
    await waitFor(() => c.text().includes("data: only"), 3_000, "the event");
    c.leave();
    await done.promise;
    expect(writer!.signal.aborted).toBe(true);
  });

  test("the keep-alive timer is cleared when the stream ends", async () => {
    const timers = timersOf(43_210);
    try {
      const s = servers.add(
        await serve(
          () =>
            sseResponse(
              async (w) => {
                await w.write("a");
              },
              { keepAlive: 43_210 },
            ),
          { port: 0 },
        ),
      );
      const r = await get(s.url);
      expect(r.body.toString()).toBe("data: a\n\n");
      await waitFor(() => timers.live() === 0, 3_000, "the keep-alive timer to be cleared");
    } finally {
      timers.stop();
    }
  });

  test("writer.close() ends the stream after what was written; later writes reject", async () => {
    let late: unknown;
    const s = servers.add(
      await serve(
        () =>
          sseResponse(async (w) => {
            void w.write("queued 1");
            void w.write("queued 2");
            w.close();
            late = await w.write("after close").catch((err: unknown) => err);
            // The producer keeps running after close(); the stream does not wait for it.
            await new Promise<void>((resolve) => w.signal.addEventListener("abort", () => resolve()));
          }),
        { port: 0 },
      ),
    );
    const r = await get(s.url);
    expect(parseStream(r.body.toString()).events.map((e) => e.data)).toEqual(["queued 1", "queued 2"]);
    expect(late).toBeInstanceOf(ClosedError);
  });

  test("a client that stops reading pauses the producer; memory stays flat; leaving ends it", async () => {
    const EVENT = 16 * 1024;
    const LIMIT = 20_000; // 320 MiB if nothing pushed back
    const payload = "x".repeat(EVENT);
    let written = 0;
    let finished = false;
    let producerError: unknown;
    const s = servers.add(
      await serve(
        () =>
          sseResponse(
            async (w) => {
              try {
                for (let i = 0; i < LIMIT; i++) {
                  await w.write(payload);
                  written++;
                }
              } catch (err) {
                producerError = err;
              }
              finished = true;
            },
            { keepAlive: 0 },
          ),
        { port: 0 },
      ),
    );
    const before = process.memoryUsage();
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.pause();
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");

    // Bounded wait until the count stops growing for 300 ms: the socket buffers are full.
    let last = -1;
    let stableSince = performance.now();
    for (let round = 0; round < 400; round++) {
      await new Promise((r) => setTimeout(r, 25));
      if (written !== last) {
        last = written;
        stableSince = performance.now();
      } else if (written > 0 && performance.now() - stableSince >= 300) break;
    }
    const stalled = written;
    expect(stalled).toBeGreaterThan(0);
    expect(finished).toBe(false);
    // What the kernel buffers on loopback plus one chunk in node: far below the LIMIT.
    expect(stalled).toBeLessThan(2_048);
    const after = process.memoryUsage();
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(grown).toBeLessThan(64 * 1024 * 1024);

    // Reading again lets the producer go on: it was paused, not stuck.
    socket.resume();
    await waitFor(() => written > stalled + 10, 5_000, "the producer to continue");
    socket.destroy();
    await waitFor(() => finished, 5_000, "the producer to end");
    expect(written).toBeLessThan(LIMIT);
    expect(producerError).toBeInstanceOf(ClosedError);
  });
});
