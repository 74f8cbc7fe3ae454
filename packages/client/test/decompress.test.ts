import { PassThrough, Writable } from "node:stream";
import zlib from "node:zlib";
import { ArgumentError, DecompressionLimitError, ParseError } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { Resources, rejectionOf } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

const TEXT = "hello, compressed world! ".repeat(200);

function encoded(coding: string, body: Buffer): Buffer {
  switch (coding) {
    case "gzip":
    case "x-gzip":
      return zlib.gzipSync(body);
    case "deflate":
    case "x-deflate":
      return zlib.deflateSync(body);
    case "raw-deflate":
      return zlib.deflateRawSync(body);
    default:
      return zlib.brotliCompressSync(body);
  }
}

/** A node:http server answering with `body` encoded as `coding` (raw deflate is sent as `deflate`). */
function encodingServer(coding: string, body = Buffer.from(TEXT)) {
  return res.counting((req, out) => {
    const wire = encoded(coding, body);
    out.setHeader("Content-Encoding", coding === "raw-deflate" ? "deflate" : coding);
    out.setHeader("Content-Length", wire.byteLength);
    out.setHeader("X-Accept-Encoding", req.headers["accept-encoding"] ?? "(none)");
    out.end(wire);
  });
}

class Collect extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

describe("decoding", () => {
  test.each(["gzip", "x-gzip", "deflate", "x-deflate", "raw-deflate", "br"])(
    "%s is decoded; Content-Encoding and Content-Length are left as they arrived",
    async (coding) => {
      const server = await encodingServer(coding);
      const client = res.client();
      const r = await client.get(server.url);
      expect(r.text()).toBe(TEXT);
      expect(r.headers.get("content-encoding")).toBe(coding === "raw-deflate" ? "deflate" : coding);
      expect(Number(r.headers.get("content-length"))).toBe(encoded(coding, Buffer.from(TEXT)).byteLength);
      expect(r.headers.get("x-accept-encoding")).toBe("gzip, deflate, br");
    },
  );

  test("the caller's Accept-Encoding is kept (even empty), and the body is still decoded", async () => {
    const server = await encodingServer("gzip");
    const client = res.client();
    const r = await client.get(server.url, { headers: { "Accept-Encoding": "gzip" } });
    expect(r.headers.get("x-accept-encoding")).toBe("gzip");
    expect(r.text()).toBe(TEXT);
    const empty = await client.get(server.url, { headers: { "Accept-Encoding": "" } });
    expect(empty.headers.get("x-accept-encoding")).toBe("");
  });

  test("decompress: false sends no Accept-Encoding and returns the wire bytes", async () => {
    const server = await encodingServer("gzip");
    const client = res.client();
    const r = await client.get(server.url, { decompress: false });
    expect(r.headers.get("x-accept-encoding")).toBe("(none)");
    expect(Buffer.from(r.body)).toEqual(zlib.gzipSync(Buffer.from(TEXT)));
  });

  test("an empty gzip 304, a 204 and a HEAD are left alone", async () => {
    const server = await res.counting((req, out) => {
      out.statusCode = req.url === "/304" ? 304 : req.url === "/204" ? 204 : 200;
      out.setHeader("Content-Encoding", "gzip");
      out.end();
    });
    const client = res.client({ statusException: false });
    expect((await client.get(`${server.url}/304`)).body.byteLength).toBe(0);
    expect((await client.get(`${server.url}/204`)).body.byteLength).toBe(0);
    expect((await client.head(`${server.url}/200`)).body.byteLength).toBe(0);
    expect((await client.get(`${server.url}/200`)).body.byteLength).toBe(0);
  });

  test("an unknown coding is left undecoded", async () => {
    const server = await res.counting((_req, out) => {
      out.setHeader("Content-Encoding", "zstd");
      out.end("opaque");
    });
    expect((await res.client().get(server.url)).text()).toBe("opaque");
  });

  test.each(["gzip", "deflate", "br"])("corrupt %s data is a ParseError", async (coding) => {
    const server = await res.counting((_req, out) => {
      out.setHeader("Content-Encoding", coding);
      const wire = encoded(coding, Buffer.from(TEXT));
      // Damage the middle of the stream: the decoder must notice.
      wire.fill(0xff, 4, Math.min(wire.byteLength - 2, 40));
      out.end(wire);
    });
    const err = await rejectionOf(res.client().get(server.url, { retry: false }));
    expect(err).toBeInstanceOf(ParseError);
  });

  test("maxDecompressedSize: a negative or fractional value is an ArgumentError, 0 means no limit", async () => {
    const server = await encodingServer("gzip");
    const client = res.client();
    expect(await rejectionOf(client.get(server.url, { maxDecompressedSize: -1 }))).toBeInstanceOf(
      ArgumentError,
    );
    expect(await rejectionOf(client.get(server.url, { maxDecompressedSize: 1.5 }))).toBeInstanceOf(
      ArgumentError,
    );
    expect((await client.get(server.url, { maxDecompressedSize: 0 })).text()).toBe(TEXT);
    const err = await rejectionOf(client.get(server.url, { maxDecompressedSize: 100 }));
    expect(err).toBeInstanceOf(DecompressionLimitError);
    expect((err as DecompressionLimitError).limit).toBe(100);
  });
});

/** A server streaming 1 GiB of zeros, gzipped as it goes (about 1 MiB on the wire). */
function bombServer() {
  return res.counting((_req, out) => {
    out.setHeader("Content-Encoding", "gzip");
    const gz = zlib.createGzip({ level: 9 });
    gz.pipe(out);
    const zeros = Buffer.alloc(1024 * 1024);
    let left = 1024;
    const pump = (): void => {
      while (left > 0) {
        left--;
        if (!gz.write(zeros)) {
          gz.once("drain", pump);
          return;
        }
      }
      gz.end();
    };
    out.on("close", () => gz.destroy());
    pump();
  });
}

describe("a decompression bomb (1 GiB of zeros)", () => {
  test("buffered: DecompressionLimitError, memory stays bounded", async () => {
    const server = await bombServer();
    const before = process.memoryUsage().rss;
    const err = await rejectionOf(
      res.client().get(server.url, { maxDecompressedSize: 8 * 1024 * 1024 }),
      60_000,
    );
    expect(err).toBeInstanceOf(DecompressionLimitError);
    // Generous: the limit is 8 MiB and the bomb 1 GiB.
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
  });

  test("into a responseStream: DecompressionLimitError after at most the limit was written", async () => {
    const server = await bombServer();
    let written = 0;
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        written += chunk.byteLength;
        cb();
      },
    });
    const err = await rejectionOf(
      res.client().get(server.url, { responseStream: sink, maxDecompressedSize: 4 * 1024 * 1024 }),
      60_000,
    );
    expect(err).toBeInstanceOf(DecompressionLimitError);
    expect(written).toBeLessThanOrEqual(4 * 1024 * 1024);
  });

  test("through open(): the read that passes the limit throws DecompressionLimitError", async () => {
    const server = await bombServer();
    const stream = await res.client().open("GET", server.url, { maxDecompressedSize: 2 * 1024 * 1024 });
    let read = 0;
    let err: unknown;
    try {
      for await (const chunk of stream) read += chunk.byteLength;
    } catch (e) {
      err = e;
    }
    await stream.close();
    expect(err).toBeInstanceOf(DecompressionLimitError);
    expect(read).toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});

describe("streamed bodies", () => {
  test.each(["gzip", "deflate", "br"])("%s into a responseStream arrives decoded", async (coding) => {
    const server = await encodingServer(coding);
    const sink = new Collect();
    const r = await res.client().get(server.url, { responseStream: sink });
    expect(r.body.byteLength).toBe(0);
    expect(sink.text).toBe(TEXT);
    expect(sink.writableEnded).toBe(false);
  });

  test("a slow responseStream gets the whole decoded body (back-pressure)", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, "abc");
    const server = await encodingServer("gzip", big);
    const sink = new PassThrough({ highWaterMark: 1024 });
    const got: Buffer[] = [];
    sink.on("data", (c: Buffer) => {
      got.push(c);
      sink.pause();
      setImmediate(() => sink.resume());
    });
    await res.client().get(server.url, { responseStream: sink });
    expect(Buffer.concat(got).equals(big)).toBe(true);
  });

  test.each(["gzip", "x-gzip", "deflate", "raw-deflate", "br"])("open() reads %s decoded", async (coding) => {
    const server = await encodingServer(coding);
    const r = await res.client().open("GET", server.url, async (stream) => {
      const parts: Buffer[] = [];
      for await (const chunk of stream) parts.push(Buffer.from(chunk));
      expect(Buffer.concat(parts).toString()).toBe(TEXT);
    });
    expect(r.status).toBe(200);
  });

  test("open() with decompress: false reads the wire bytes", async () => {
    const server = await encodingServer("gzip");
    const parts: Buffer[] = [];
    await res.client().open(
      "GET",
      server.url,
      async (stream) => {
        for await (const chunk of stream) parts.push(Buffer.from(chunk));
      },
      { decompress: false },
    );
    expect(Buffer.concat(parts)).toEqual(zlib.gzipSync(Buffer.from(TEXT)));
  });
});

describe("downloadProgress", () => {
  const body = Buffer.alloc(300_000, "x");

  function chunkedServer() {
    return res.counting((_req, out) => {
      out.setHeader("Content-Length", body.byteLength);
      out.write(body.subarray(0, 100_000));
      setImmediate(() => {
        out.write(body.subarray(100_000, 200_000));
        setImmediate(() => out.end(body.subarray(200_000)));
      });
    });
  }

  function checkCalls(calls: [number, number | undefined][]): void {
    expect(calls.length).toBeGreaterThan(0);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![0]).toBeGreaterThan(calls[i - 1]![0]);
    expect(calls.at(-1)).toEqual([body.byteLength, body.byteLength]);
  }

  test("request(): grows to the body size, total from Content-Length", async () => {
    const server = await chunkedServer();
    const calls: [number, number | undefined][] = [];
    const r = await res.client().get(server.url, { downloadProgress: (n, t) => calls.push([n, t]) });
    expect(r.body.byteLength).toBe(body.byteLength);
    checkCalls(calls);
  });

  test("responseStream and open() report too; wire bytes are counted for a compressed body", async () => {
    const server = await chunkedServer();
    const calls: [number, number | undefined][] = [];
    await res
      .client()
      .get(server.url, { responseStream: new Collect(), downloadProgress: (n, t) => calls.push([n, t]) });
    checkCalls(calls);
    const opened: [number, number | undefined][] = [];
    await res.client().open(
      "GET",
      server.url,
      async (s) => {
        for await (const _ of s);
      },
      { downloadProgress: (n, t) => opened.push([n, t]) },
    );
    checkCalls(opened);
    const gz = await encodingServer("gzip");
    const wire = encoded("gzip", Buffer.from(TEXT)).byteLength;
    const zipped: [number, number | undefined][] = [];
    await res.client().get(gz.url, { downloadProgress: (n, t) => zipped.push([n, t]) });
    expect(zipped.at(-1)).toEqual([wire, wire]);
  });

  test("no total without Content-Length; a followed redirect reports nothing", async () => {
    const server = await res.counting((req, out) => {
      if (req.url === "/from") {
        out.statusCode = 302;
        out.setHeader("Location", "/to");
        out.end("redirect body");
        return;
      }
      out.write("abc");
      out.end("def");
    });
    const calls: [number, number | undefined][] = [];
    const r = await res
      .client()
      .get(`${server.url}/from`, { downloadProgress: (n, t) => calls.push([n, t]) });
    expect(r.text()).toBe("abcdef");
    expect(calls.at(-1)).toEqual([6, undefined]);
    expect(calls.every(([n]) => n <= 6)).toBe(true);
  });
});
