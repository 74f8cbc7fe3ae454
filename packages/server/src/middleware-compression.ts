// Response compression: gzip or brotli (node:zlib), chosen from the request's Accept-Encoding. Bytes
// are compressed off the event loop (zlib's thread pool); a streamed body goes through the compressor
// chunk by chunk, each chunk flushed so that a stream of small messages (SSE, say) is not held back.
import zlib from "node:zlib";
import { ArgumentError, type Body, type Request, type Response } from "@hyperwire/core";
import type { HandlerResult } from "./handler.js";
import { addVary, asResponse, type Middleware } from "./middleware.js";

/** A content coding the middleware can produce. */
export type CompressionEncoding = "br" | "gzip";

/** Options of {@link compression}. */
export interface CompressionOptions {
  /** Bodies smaller than this many bytes are sent as they are (when their size is known). Default `1024`. */
  threshold?: number;
  /** The codings offered, in the server's order of preference for equal q-values. Default `["br", "gzip"]`. */
  encodings?: readonly CompressionEncoding[];
  /** gzip level, 0–9. Default `6` (zlib's default). */
  gzipLevel?: number;
  /** Brotli quality, 0–11. Default `4`: most of the gain for a fraction of the default 11's CPU time. */
  brotliQuality?: number;
  /**
   * Whether a response with this `Content-Type` (lower-cased, without parameters) should be
   * compressed. Default {@link isCompressibleType}: text-like types only.
   */
  filter?: (contentType: string) => boolean;
}

/** Defaults of {@link CompressionOptions}. */
export const COMPRESSION_DEFAULTS = Object.freeze({
  threshold: 1024,
  encodings: Object.freeze(["br", "gzip"] as CompressionEncoding[]),
  gzipLevel: 6,
  brotliQuality: 4,
});

const COMPRESSIBLE = new Set([
  "application/json",
  "application/javascript",
  "application/ecmascript",
  "application/xml",
  "application/x-www-form-urlencoded",
  "application/wasm",
  "application/graphql",
  "image/svg+xml",
  "image/bmp",
  "image/x-icon",
  "image/vnd.microsoft.icon",
  "font/ttf",
  "font/otf",
]);

/**
 * The default compression filter: `text/*`, `application/json`, `*+json`, `*+xml`,
 * JavaScript, XML, SVG, WebAssembly and uncompressed fonts. Images, audio, video, archives, woff
 * fonts and `application/octet-stream` are already compressed (or unknown) and are left alone.
 *
 * ```ts
 * isCompressibleType("text/html"); // true
 * isCompressibleType("image/png"); // false
 * ```
 */
export function isCompressibleType(contentType: string): boolean {
  if (contentType.startsWith("text/")) return true;
  if (contentType.endsWith("+json") || contentType.endsWith("+xml")) return true;
  return COMPRESSIBLE.has(contentType);
}

/** Accept-Encoding q-values (RFC 9110 §12.4.2): "0" to "1" with at most three decimals. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * The coding to use for a request's `Accept-Encoding` value, or `undefined` for none (identity). The
 * highest q-value wins; ties go to the order of `offered`. `q=0` refuses a coding, `*` stands for
 * every coding not named, `x-gzip` is `gzip`. Entries with a malformed q-value are ignored.
 */
export function negotiateEncoding(
  acceptEncoding: string | null,
  offered: readonly CompressionEncoding[] = COMPRESSION_DEFAULTS.encodings,
): CompressionEncoding | undefined {
  if (acceptEncoding === null) return undefined;
  const q = new Map<string, number>();
  for (const item of acceptEncoding.split(",")) {
    const parts = item.split(";");
    let coding = parts[0]!.trim().toLowerCase();
    if (coding === "") continue;
    if (coding === "x-gzip") coding = "gzip";
    let weight = 1;
    let valid = true;
    for (let i = 1; i < parts.length; i++) {
      const param = parts[i]!.trim();
      const eq = param.indexOf("=");
      if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "q") continue;
      const value = param.slice(eq + 1).trim();
      if (QVALUE.test(value)) weight = Number(value);
      else valid = false;
    }
    if (!valid) continue;
    // A coding named twice keeps its first weight, as most servers do.
    if (!q.has(coding)) q.set(coding, weight);
  }
  let best: CompressionEncoding | undefined;
  let bestQ = 0;
  for (const coding of offered) {
    const weight = q.get(coding) ?? q.get("*") ?? 0;
    if (weight > bestQ) {
      best = coding;
      bestQ = weight;
    }
  }
  return best;
}

function checkRange(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ArgumentError(`compression ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

interface Codec {
  /** A fresh streaming compressor. */
  stream(): zlib.Gzip | zlib.BrotliCompress;
  /** Compresses a whole body on the thread pool. */
  bytes(input: Uint8Array): Promise<Buffer>;
  /** The flush that ends a block so the peer can decode everything written so far. */
  flushKind: number;
}

function makeCodecs(gzipLevel: number, brotliQuality: number): Record<CompressionEncoding, Codec> {
  const gzipOptions: zlib.ZlibOptions = { level: gzipLevel };
  const brotliOptions: zlib.BrotliOptions = {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: brotliQuality },
  };
  return {
    gzip: {
      stream: () => zlib.createGzip(gzipOptions),
      bytes: (input) =>
        new Promise((resolve, reject) =>
          zlib.gzip(input, gzipOptions, (err, out) => (err ? reject(err) : resolve(out))),
        ),
      flushKind: zlib.constants.Z_SYNC_FLUSH,
    },
    br: {
      stream: () => zlib.createBrotliCompress(brotliOptions),
      bytes: (input) =>
        new Promise((resolve, reject) =>
          zlib.brotliCompress(input, brotliOptions, (err, out) => (err ? reject(err) : resolve(out))),
        ),
      flushKind: zlib.constants.BROTLI_OPERATION_FLUSH,
    },
  };
}

/**
 * Compresses an async-iterable body one chunk at a time: each source chunk is written and flushed,
 * and what the compressor made of it is yielded before the next chunk is pulled, so memory holds one
 * chunk, never the body. Stopping early (the client left) closes the compressor and the source.
 */
async function* compressStream(source: AsyncIterable<Uint8Array>, codec: Codec): AsyncGenerator<Uint8Array> {
  const z = codec.stream();
  let out: Buffer[] = [];
  let failure: Error | undefined;
  z.on("data", (chunk: Buffer) => out.push(chunk));
  z.on("error", (err: Error) => {
    failure = err;
  });
  const take = (): Buffer | undefined => {
    if (out.length === 0) return undefined;
    const all = out.length === 1 ? out[0]! : Buffer.concat(out);
    out = [];
    return all;
  };
  // The flush's callback runs after the output it made was emitted as 'data'.
  const flushed = (chunk: Uint8Array): Promise<void> =>
    new Promise((resolve, reject) => {
      z.write(chunk);
      z.flush(codec.flushKind, () => (failure === undefined ? resolve() : reject(failure)));
    });
  // end()'s callback can run before the last block is out; 'end' on the readable side cannot.
  const ended = (): Promise<void> =>
    new Promise((resolve, reject) => {
      if (failure !== undefined) {
        reject(failure);
        return;
      }
      z.once("end", resolve);
      z.once("error", reject);
      z.end();
    });
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = await it.next();
      if (next.done === true) {
        finished = true;
        break;
      }
      if (next.value.byteLength === 0) continue;
      await flushed(next.value);
      const piece = take();
      if (piece !== undefined) yield piece;
    }
    await ended();
    const tail = take();
    if (tail !== undefined) yield tail;
  } finally {
    z.destroy();
    if (!finished) await it.return?.();
  }
}

/** The media type of `res` (lower case, no parameters), or "" when it has none. */
function mediaType(res: Response): string {
  const value = res.headers.get("content-type");
  if (value === null) return "";
  const semi = value.indexOf(";");
  return (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
}

/** The body size when it is known without reading a stream; -1 otherwise. */
function knownSize(res: Response): number {
  const text = res.bodyText;
  if (text !== undefined) return Buffer.byteLength(text, "utf8");
  const body = res.body;
  if (body instanceof Uint8Array) return body.byteLength;
  const declared = res.headers.get("content-length");
  return declared !== null && /^\d+$/.test(declared) ? Number(declared) : -1;
}

/** A strong validator names one representation's bytes; the compressed bytes are another one. */
function weakenETag(res: Response): void {
  const etag = res.headers.get("etag");
  if (etag?.startsWith('"')) res.headers.set("ETag", `W/${etag}`);
}

/**
 * Middleware that compresses response bodies with gzip or brotli when the client accepts it
 * (`Accept-Encoding`, with q-values; `q=0` refuses a coding; nothing acceptable: the body is sent as
 * it is). Left alone: HEAD requests, 1xx/204/206/304 responses, responses that already have a
 * `Content-Encoding` or say `Cache-Control: no-transform`, types the filter rejects (by default
 * anything not text-like, see {@link isCompressibleType}), and bodies known to be smaller than
 * `threshold`. A byte body gets the compressed `Content-Length`; a streamed body is compressed chunk
 * by chunk (never buffered whole) and loses its `Content-Length`. Every response whose coding depends
 * on `Accept-Encoding` says `Vary: Accept-Encoding`; a strong `ETag` becomes weak when compressed.
 *
 * Bad options throw `ArgumentError`.
 *
 * ```ts
 * await serve(compression({ threshold: 512 })(handler), { port: 0 });
 * ```
 */
export function compression(options: CompressionOptions = {}): Middleware {
  const threshold = options.threshold ?? COMPRESSION_DEFAULTS.threshold;
  if (typeof threshold !== "number" || !Number.isSafeInteger(threshold) || threshold < 0) {
    throw new ArgumentError(
      `compression threshold must be a non-negative integer of bytes, got ${threshold}`,
    );
  }
  const encodings = options.encodings ?? COMPRESSION_DEFAULTS.encodings;
  if (!Array.isArray(encodings) || encodings.length === 0) {
    throw new ArgumentError('compression encodings must be a non-empty array of "br" and "gzip"');
  }
  for (const e of encodings) {
    if (e !== "br" && e !== "gzip") {
      throw new ArgumentError(`compression encodings: ${JSON.stringify(e)} is not "br" or "gzip"`);
    }
  }
  const gzipLevel = checkRange("gzipLevel", options.gzipLevel ?? COMPRESSION_DEFAULTS.gzipLevel, 0, 9);
  const brotliQuality = checkRange(
    "brotliQuality",
    options.brotliQuality ?? COMPRESSION_DEFAULTS.brotliQuality,
    0,
    11,
  );
  const filter = options.filter ?? isCompressibleType;
  if (typeof filter !== "function") throw new ArgumentError("compression filter must be a function");
  const codecs = makeCodecs(gzipLevel, brotliQuality);
  const offered = encodings.slice() as CompressionEncoding[];

  const compress = async (req: Request, result: HandlerResult): Promise<HandlerResult> => {
    const res = asResponse(result);
    if (res === undefined) return result;
    const status = res.status;
    if (status < 200 || status === 204 || status === 206 || status === 304) return res;
    if (res.headers.has("content-encoding")) return res;
    const cacheControl = res.headers.get("cache-control");
    if (cacheControl !== null && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cacheControl)) return res;
    if (!filter(mediaType(res))) return res;
    addVary(res, "Accept-Encoding");
    const size = knownSize(res);
    if (size >= 0 && size < threshold) return res;
    const encoding = negotiateEncoding(req.headers.get("accept-encoding"), offered);
    if (encoding === undefined) return res;
    const codec = codecs[encoding];
    const body: Body = res.body;
    res.headers.set("Content-Encoding", encoding);
    weakenETag(res);
    if (body instanceof Uint8Array) {
      const out = await codec.bytes(body);
      res.body = out;
      res.headers.set("Content-Length", String(out.byteLength));
    } else {
      res.headers.delete("content-length");
      res.body = compressStream(body, codec);
    }
    return res;
  };

  return (handler) => (req) => {
    if (req.method === "HEAD") return handler(req);
    const result = handler(req);
    if (result instanceof Promise) return result.then((r) => compress(req, r));
    return compress(req, result);
  };
}
