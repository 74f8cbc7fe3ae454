import net from "node:net";
import v8 from "node:v8";
import vm from "node:vm";
import { ClosedError, type Request, Response, TimeoutError } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { listen, type ServerOptions, serve, streamHandler } from "../src/index.js";
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

/** Both entry points, serving the same request handler (listen through streamHandler). */
const entryPoints = {
  serve: (h: (req: Request) => Response, options: ServerOptions) => serve(h, options),
  listen: (h: (req: Request) => Response, options: ServerOptions) => listen(streamHandler(h), options),
};

/** Handler errors reported as process warnings while `body` runs. */
async function handlerWarnings(body: () => Promise<void>): Promise<Error[]> {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => {
    if (w.name === "HyperwireHandlerError") warnings.push(w);
  };
  process.on("warning", onWarning);
  try {
    await body();
    // Warnings are emitted on the next tick.
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off("warning", onWarning);
  }
  return warnings;
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
    ["two Host headers in other cases", "GET / HTTP/1.1\r\nHOST: a\r\nhOsT: b\r\n\r\n"],
    [
      "a bad chunk size",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ],
    ["a NUL in a header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"],
    [
      "a Transfer-Encoding that does not end in chunked",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    ],
    [
      "Transfer-Encoding chunked then identity",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    ],
    ["a signed Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc"],
    ["a Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd"],
    ["a tab before the colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n"],
    ["bare LF line endings", "GET / HTTP/1.1\nHost: x\n\n"],
    [
      "chunk data longer than its size",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcGET /x HTTP/1.1\r\n0\r\n\r\n",
    ],
    [
      "a chunk size that overflows",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    ],
    ["a lower-case method", "get / HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["an HTTP/0.9 request line", "GET /\r\n\r\n"],
    ["an HTTP/2.0 request line in HTTP/1 syntax", "GET / HTTP/2.0\r\nHost: x\r\n\r\n"],
  ];
  for (const [entry, start] of Object.entries(entryPoints)) {
    for (const [what, bytes] of malformed) {
      test(`${entry}: ${what} gets 400 and a closed connection, without reaching the handler`, async () => {
        const { state, handler } = counting();
        const s = servers.add(await start(handler, { port: 0 }));
        const reply = await raw(s.port, bytes);
        expect(statuses(reply.text)).toEqual([400]);
        expect(reply.closed).toBe(true);
        expect(state.calls).toBe(0);
      });
    }

    test(`${entry}: a request line over 8 KiB gets 431; one just under is served`, async () => {
      const { state, handler } = counting();
      const s = servers.add(await start(handler, { port: 0 }));
      const long = await raw(s.port, `GET /${"a".repeat(8192)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(statuses(long.text)).toEqual([431]);
      expect(long.closed).toBe(true);
      expect(state.calls).toBe(0);
      // "GET " + target + " HTTP/1.1" is exactly 8192 bytes.
      const target = `/${"a".repeat(8192 - 14)}`;
      const fine = await raw(s.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(statuses(fine.text)).toEqual([200]);
      expect(state.calls).toBe(1);
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

  test("a declared body far over maxBodyBytes gets 413 from its head alone, even while the client uploads", async () => {
    const { state, handler } = counting();
    // The default limit (64 MiB): a 1 GiB Content-Length is refused before any body byte is sent.
    const s = servers.add(await serve(handler, { port: 0 }));
    const head = await raw(s.port, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 ** 30}\r\n\r\n`);
    expect(statuses(head.text)).toEqual([413]);
    expect(head.closed).toBe(true);
    // A client that keeps uploading (curl -T bigfile) still reads the 413 rather than a reset.
    const t = servers.add(await serve(handler, { port: 0, maxBodyBytes: 1024 }));
    const total = 32 * 1024 * 1024;
    const socket = net.connect(t.port, "127.0.0.1");
    let text = "";
    socket.on("data", (c: Buffer) => {
      text += c.toString("latin1");
    });
    socket.on("error", () => {});
    const chunk = Buffer.alloc(64 * 1024, "u");
    let sent = 0;
    let sentWhenAnswered = -1;
    socket.once("data", () => {
      sentWhenAnswered = sent;
    });
    const pump = (): void => {
      while (sent < total && socket.writable) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once("drain", pump);
          return;
        }
      }
    };
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
    pump();
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    expect(statuses(text)).toEqual([413]);
    expect(sentWhenAnswered).toBeGreaterThanOrEqual(0);
    expect(sentWhenAnswered).toBeLessThan(total);
    expect(state.calls).toBe(0);
  });

  test("slowloris: a connection that never sends a byte gets 408 within readHeaderTimeout", async () => {
    const { state, handler } = counting();
    const s = servers.add(await serve(handler, { port: 0, readHeaderTimeout: 300 }));
    const reply = await raw(s.port, [], { timeoutMs: 3_000 });
    expect(statuses(reply.text)).toEqual([408]);
    expect(reply.closed).toBe(true);
    expect(reply.elapsed).toBeGreaterThanOrEqual(290);
    expect(reply.elapsed).toBeLessThan(1_500);
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
    const answered = deferred<number>();
    const s = servers.add(
      await serve(
        () => {
          answered.resolve(performance.now());
          return new Response(200, { body: big });
        },
        { port: 0, writeTimeout: 200 },
      ),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.pause();
    const started = await answered.promise;
    expect(s.connections).toBe(1);
    await waitFor(() => s.connections === 0, 3_000, "the server to drop the connection");
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(socket.bytesRead).toBeLessThan(big.length);
    socket.destroy();
  });

  test("listen: a client that stops reading is cut off by writeTimeout, and the handler's write rejects", async () => {
    const seen = deferred<unknown>();
    const chunk = Buffer.alloc(64 * 1024, "w");
    const warnings = await handlerWarnings(async () => {
      const s = servers.add(
        await listen(
          async (stream) => {
            try {
              for (;;) await stream.write(chunk);
            } catch (e) {
              seen.resolve(e);
              throw e;
            }
          },
          { port: 0, writeTimeout: 200 },
        ),
      );
      const socket = net.connect(s.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      socket.pause();
      const err = await seen.promise;
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).phase).toBe("writeIdle");
      await waitFor(
        () => s.connections === 0 && s.activeRequests === 0,
        3_000,
        "the connection to be dropped",
      );
      socket.destroy();
    });
    // A peer that stops reading is not the handler's fault: nothing is reported.
    expect(warnings).toEqual([]);
  });

  test("listen: a body that stops arriving gets 408 within readTimeout, and the handler's read rejects", async () => {
    const seen = deferred<unknown>();
    const warnings = await handlerWarnings(async () => {
      const s = servers.add(
        await listen(
          async (stream) => {
            try {
              for await (const _ of stream);
            } catch (e) {
              seen.resolve(e);
              throw e;
            }
            await stream.write("never");
          },
          { port: 0, readTimeout: 150 },
        ),
      );
      const reply = await raw(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
      expect(statuses(reply.text)).toEqual([408]);
      expect(reply.text).not.toContain("never");
      expect(reply.closed).toBe(true);
      expect(reply.elapsed).toBeLessThan(2_000);
      const err = await seen.promise;
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).phase).toBe("readIdle");
    });
    expect(warnings).toEqual([]);
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
    // A real collection before each measurement, so the comparison is of live objects only.
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const liveHeap = async (): Promise<number> => {
      gc();
      await new Promise((r) => setImmediate(r));
      gc();
      return process.memoryUsage().heapUsed;
    };
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
    const before = await liveHeap();
    expect(await run(10, 20)).toBe(10_000);
    await waitFor(() => s.connections === 0, 3_000, "every connection to close");
    expect(s.activeRequests).toBe(0);
    // Measured here: ~50 KiB of growth; keeping each request alive would add ~14 MiB.
    const growth = (await liveHeap()) - before;
    expect(growth).toBeLessThan(2 * 1024 * 1024);
  });
});
