import net from "node:net";
import { ClosedError, type Request, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { listen, serve } from "../src/index.js";
import { deferred, raw, Servers, statuses, waitFor } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

function counting() {
  const state = { calls: 0 };
  const handler = (req: Request) => {
    state.calls++;
    return new Response(200, { body: `ok ${req.target}` });
  };
  return { state, handler };
}

describe("hostile input", () => {
  const malformed: [string, string][] = [
    [
      "Content-Length with Transfer-Encoding",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "two differing Content-Lengths",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    ],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n"],
    ["a space before the colon", "GET / HTTP/1.1\r\nHost: x\r\nX-Bad : 1\r\n\r\n"],
    ["a garbage request line", "HELLO THERE\r\n\r\n"],
    ["an unknown version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n"],
    ["a missing target", "GET HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a control character in the target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a missing Host on HTTP/1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"],
    ["two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"],
    [
      "a bad chunk size",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ],
    ["a NUL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"],
  ];
  for (const [what, bytes] of malformed) {
    test(`${what} gets 400 and a closed connection, without reaching the handler`, async () => {
      const { state, handler } = counting();
      const s = servers.add(await serve(handler, { port: 0 }));
      const reply = await raw(s.port, bytes);
      expect(statuses(reply.text)).toEqual([400]);
      expect(reply.closed).toBe(true);
      expect(state.calls).toBe(0);
    });
  }

  test("a head over maxHeaderBytes gets 431", async () => {
    const { state, handler } = counting();
    const s = servers.add(await serve(handler, { port: 0, maxHeaderBytes: 2048 }));
    const reply = await raw(s.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(4096)}\r\n\r\n`);
    expect(statuses(reply.text)).toEqual([431]);
    expect(reply.closed).toBe(true);
    expect(state.calls).toBe(0);
    const fine = await raw(
      s.port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Small: ${"a".repeat(512)}\r\nConnection: close\r\n\r\n`,
    );
    expect(statuses(fine.text)).toEqual([200]);
  });

  test("a body over maxBodyBytes gets 413 before the handler runs, even streamed slowly", async () => {
    const { state, handler } = counting();
    const s = servers.add(await serve(handler, { port: 0, maxBodyBytes: 1024 }));
    const big = Buffer.alloc(4096, "b");
    const declared = await raw(s.port, [
      `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`,
      big,
    ]);
    expect(statuses(declared.text)).toEqual([413]);
    const chunked = await raw(s.port, [
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
      `${big.length.toString(16)}\r\n`,
      big,
      "\r\n0\r\n\r\n",
    ]);
    expect(statuses(chunked.text)).toEqual([413]);
    expect(chunked.closed).toBe(true);
    expect(state.calls).toBe(0);
  });

  test("slowloris: a head trickled byte by byte gets 408 within readHeaderTimeout", async () => {
    const { state, handler } = counting();
    const s = servers.add(await serve(handler, { port: 0, readHeaderTimeout: 300 }));
    const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${"s".repeat(200)}\r\n\r\n`;
    const started = performance.now();
    const socket = net.connect(s.port, "127.0.0.1");
    let text = "";
    socket.on("data", (c: Buffer) => {
      text += c.toString();
    });
    socket.on("error", () => {});
    let i = 0;
    const trickle = setInterval(() => {
      if (i < head.length && socket.writable) socket.write(head[i++]!);
    }, 10);
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    clearInterval(trickle);
    const elapsed = performance.now() - started;
    expect(statuses(text)).toEqual([408]);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1_500);
    expect(i).toBeLessThan(head.length);
    expect(state.calls).toBe(0);
  });

  test("later requests on a keep-alive connection get the head timeout too", async () => {
    const s = servers.add(await serve(counting().handler, { port: 0, readHeaderTimeout: 200 }));
    const socket = net.connect(s.port, "127.0.0.1");
    let text = "";
    socket.on("data", (c: Buffer) => {
      text += c.toString();
      // The first response is in: start the next head and never finish it.
      if (text.includes("ok /1")) socket.write("GET /2 HTTP/1.1\r\nHo");
    });
    socket.write("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    const started = performance.now();
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect(statuses(text)).toEqual([200, 408]);
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  test("a client that stops reading a large response is cut off by writeTimeout", async () => {
    const finished = deferred<string>();
    const chunk = Buffer.alloc(64 * 1024, "w");
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) yield chunk;
      } finally {
        finished.resolve("producer stopped");
      }
    }
    const s = servers.add(
      await serve(() => new Response(200, { body: endless() }), { port: 0, writeTimeout: 200 }),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.pause();
    expect(await finished.promise).toBe("producer stopped");
    await waitFor(() => s.connections === 0, 3_000, "the server to drop the connection");
    socket.destroy();
  });

  test("a fixed-size response to a client that never reads is cut off by writeTimeout", async () => {
    const big = Buffer.alloc(32 * 1024 * 1024, "f");
    const s = servers.add(
      await serve(() => new Response(200, { body: big }), { port: 0, writeTimeout: 200 }),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.pause();
    await waitFor(() => s.connections === 0, 3_000, "the server to drop the connection");
    socket.destroy();
  });

  test("a peer that resets mid-body: the stream handler sees signal aborted and a ClosedError, nothing unhandled", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const seen = deferred<{ aborted: boolean; error: unknown }>();
      const reading = deferred();
      const s = servers.add(
        await listen(
          async (stream) => {
            let error: unknown;
            try {
              for await (const _ of stream) reading.resolve();
            } catch (e) {
              error = e;
            }
            seen.resolve({ aborted: stream.signal.aborted, error });
          },
          { port: 0 },
        ),
      );
      const socket = net.connect(s.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
      socket.write(Buffer.alloc(1000, "r"));
      await reading.promise;
      socket.resetAndDestroy();
      const result = await seen.promise;
      expect(result.aborted).toBe(true);
      expect(result.error).toBeInstanceOf(ClosedError);
      // And the request-handler path: a reset during a buffered upload never reaches the handler.
      const { state, handler } = counting();
      const t = servers.add(await serve(handler, { port: 0 }));
      const up = net.connect(t.port, "127.0.0.1");
      up.on("error", () => {});
      up.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc");
      await waitFor(() => t.activeRequests === 1, 2_000, "the upload to start");
      up.resetAndDestroy();
      await waitFor(() => t.connections === 0 && t.activeRequests === 0, 2_000, "the reset to be seen");
      expect(state.calls).toBe(0);
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  test("a peer that resets mid-response: the handler's signal aborts and its body producer is stopped", async () => {
    const aborted = deferred<boolean>();
    const stopped = deferred();
    async function* stream(signal: AbortSignal): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; !signal.aborted; i++) yield Buffer.alloc(16 * 1024, i % 256);
      } finally {
        stopped.resolve();
      }
    }
    const s = servers.add(
      await serve(
        (req) => {
          req.signal.addEventListener("abort", () => aborted.resolve(true));
          return new Response(200, { body: stream(req.signal) });
        },
        { port: 0 },
      ),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => socket.once("data", r));
    socket.resetAndDestroy();
    expect(await aborted.promise).toBe(true);
    await stopped.promise;
    await waitFor(() => s.activeRequests === 0 && s.connections === 0, 2_000, "cleanup");
  });

  test("10,000 requests on keep-alive connections leave no bookkeeping behind and the heap flat", async () => {
    const s = servers.add(await serve((req) => new Response(200, { body: req.target }), { port: 0 }));
    const gc = (globalThis as { gc?: () => void }).gc;
    const batch = Array.from({ length: 50 }, (_, i) => `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join("");
    async function run(connections: number, batches: number): Promise<number> {
      let total = 0;
      await Promise.all(
        Array.from({ length: connections }, async () => {
          const socket = net.connect(s.port, "127.0.0.1");
          await new Promise((r) => socket.once("connect", r));
          for (let b = 0; b < batches; b++) {
            // Pipeline 50 requests, then wait for their 50 responses.
            await new Promise<void>((resolve) => {
              let count = 0;
              let tail = "";
              const onData = (c: Buffer) => {
                const text = tail + c.toString("latin1");
                count += text.split("HTTP/1.1 200").length - 1 - (tail.split("HTTP/1.1 200").length - 1);
                tail = text.slice(-12);
                if (count >= 50) {
                  socket.off("data", onData);
                  resolve();
                }
              };
              socket.on("data", onData);
              socket.write(batch);
            });
            total += 50;
          }
          socket.end();
          await new Promise((r) => socket.once("close", r));
        }),
      );
      return total;
    }
    await run(4, 10); // warm-up: 2,000 requests
    gc?.();
    const before = process.memoryUsage().heapUsed;
    expect(await run(10, 20)).toBe(10_000);
    await waitFor(() => s.connections === 0, 3_000, "every connection to close");
    expect(s.activeRequests).toBe(0);
    gc?.();
    const growth = process.memoryUsage().heapUsed - before;
    expect(growth).toBeLessThan((gc ? 8 : 48) * 1024 * 1024);
  });
});
