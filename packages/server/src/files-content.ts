// serveContent: one representation (bytes, a positional reader, or a file found by serveFile) answered
// with its validators, conditional requests (304/412), a single byte range (206/416) and a
// Content-Type from the caller, the extension map or the first bytes.
import { ArgumentError, Headers, type HeadersInit, type Request, Response } from "@hyperwire/core";
import { type ContentReader, readerBody } from "./files-body.js";
import {
  evaluatePreconditions,
  formatHttpDate,
  ifRangePasses,
  normalizeEtag,
  type RangeResult,
  resolveRange,
  type Validators,
} from "./files-conditional.js";
import { contentTypeByName, SNIFF_BYTES, sniffContentType } from "./files-mime.js";

/** What {@link serveContent} serves: bytes in memory or a reader that fetches them by position. */
export type ContentSource = Uint8Array | ContentReader;

/** Options of {@link serveContent}. */
export interface ServeContentOptions {
  /** A file name whose extension picks the Content-Type (`"report.pdf"`). Default `""` (none). */
  name?: string;
  /** The size in bytes. Required for a reader without a `size`; ignored for bytes. */
  size?: number;
  /** The modification time (a `Date` or milliseconds since the epoch): sent, floored to seconds, as `Last-Modified`. Default none. */
  modtime?: Date | number;
  /** The Content-Type. Default: a `Content-Type` in `headers`, else by `name`'s extension, else sniffed from the first 512 bytes. */
  contentType?: string;
  /** The ETag (`"abc"`, `W/"abc"`, or a bare `abc`, which is quoted). Default: an `ETag` in `headers`, else none. */
  etag?: string;
  /** More response headers (Cache-Control, Content-Encoding, ...). Content-Length and Content-Range are always computed. */
  headers?: HeadersInit;
  /** Honour `Range` and send `Accept-Ranges: bytes`. Default `true`. */
  allowRanges?: boolean;
}

/** The defaults of {@link ServeContentOptions}. */
export const SERVE_CONTENT_DEFAULTS = Object.freeze({ name: "", allowRanges: true });

const EMPTY = new Uint8Array(0);

/** A representation, however its bytes are stored. */
export interface Representation {
  readonly size: number;
  /** Up to the first `n` bytes, for sniffing. */
  head(n: number): Promise<Uint8Array>;
  /** Bytes `start` (inclusive) to `end` (exclusive) as a response body. */
  body(start: number, end: number): Uint8Array | AsyncIterable<Uint8Array>;
  /** Releases what `head` may have opened, when the response goes out without a streamed body. */
  dispose?(): Promise<void> | undefined;
}

/** Everything about a representation except its bytes, resolved and validated. */
export interface RepresentationMeta {
  readonly name: string;
  /** Last-Modified in milliseconds, floored to seconds; `NaN` when unknown. */
  readonly modified: number;
  readonly contentType: string | undefined;
  readonly etag: string | undefined;
  /** Response headers to start from; this function takes ownership. */
  readonly headers: Headers;
  readonly allowRanges: boolean;
}

function bytesRepresentation(bytes: Uint8Array): Representation {
  return {
    size: bytes.byteLength,
    head: (n) => Promise.resolve(bytes.subarray(0, n)),
    body: (start, end) => (start === 0 && end === bytes.byteLength ? bytes : bytes.subarray(start, end)),
  };
}

function readerRepresentation(reader: ContentReader, size: number): Representation {
  return {
    size,
    head: async (n) => {
      const want = Math.min(n, size);
      if (want === 0) return EMPTY;
      const got = await reader.read(0, want);
      return got.byteLength > want ? got.subarray(0, want) : got;
    },
    body: (start, end) => readerBody(reader, start, end),
  };
}

/** A status-only response carrying `headers` (its body empty, so node sends `Content-Length: 0`). */
function bare(status: number, headers: Headers): Response {
  headers.delete("content-type");
  headers.delete("content-length");
  return new Response(status, { headers });
}

/**
 * Answers `req` with `rep`: validators, preconditions, Content-Type, then the range (or the whole).
 * HEAD gets every header a GET would, `Content-Length` included, and no body.
 */
export async function respond(
  req: Request,
  rep: Representation,
  meta: RepresentationMeta,
): Promise<Response> {
  let streamed = false;
  try {
    const res = await answer(req, rep, meta);
    streamed = !(res.body instanceof Uint8Array);
    return res;
  } finally {
    // A streamed body owns what head() opened; any other outcome (HEAD, 304, 412, 416, a failure)
    // must release it here.
    if (!streamed) await rep.dispose?.();
  }
}

async function answer(req: Request, rep: Representation, meta: RepresentationMeta): Promise<Response> {
  const headers = meta.headers;
  headers.delete("content-length");
  headers.delete("content-range");
  if (meta.etag !== undefined) headers.set("ETag", meta.etag);
  if (!Number.isNaN(meta.modified)) headers.set("Last-Modified", formatHttpDate(meta.modified));
  if (meta.allowRanges) headers.set("Accept-Ranges", "bytes");
  else headers.delete("accept-ranges");

  const validators: Validators = { etag: meta.etag, modified: meta.modified };
  const h = req.headers;
  const verdict = evaluatePreconditions(
    req.method,
    {
      ifMatch: h.get("if-match"),
      ifUnmodifiedSince: h.get("if-unmodified-since"),
      ifNoneMatch: h.get("if-none-match"),
      ifModifiedSince: h.get("if-modified-since"),
    },
    validators,
  );
  if (verdict === 304) {
    headers.delete("content-encoding");
    // With an ETag the date adds nothing a cache needs (RFC 9110 §15.4.5).
    if (meta.etag !== undefined) headers.delete("last-modified");
    return bare(304, headers);
  }
  if (verdict === 412) return bare(412, headers);

  const size = rep.size;
  const contentType =
    meta.contentType ??
    headers.get("content-type") ??
    contentTypeByName(meta.name) ??
    sniffContentType(await rep.head(SNIFF_BYTES));
  headers.set("Content-Type", contentType);

  let range: RangeResult = { kind: "full" };
  const rangeHeader = h.get("range");
  const ranged = req.method === "GET" || req.method === "HEAD";
  if (meta.allowRanges && ranged && rangeHeader !== null && rangeHeader.trim() !== "") {
    const ifRange = h.get("if-range");
    if (ifRange === null || ifRangePasses(ifRange, validators)) range = resolveRange(rangeHeader, size);
  }
  if (range.kind === "unsatisfiable") {
    headers.set("Content-Range", `bytes */${size}`);
    return bare(416, headers);
  }
  let status = 200;
  let start = 0;
  let end = size; // exclusive
  if (range.kind === "partial") {
    status = 206;
    start = range.start;
    end = range.end + 1;
    headers.set("Content-Range", `bytes ${range.start}-${range.end}/${size}`);
  }
  headers.set("Content-Length", String(end - start));
  const body = req.method === "HEAD" ? EMPTY : rep.body(start, end);
  return new Response(status, { headers, body });
}

function checkSize(size: unknown): number {
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new ArgumentError(`size must be a non-negative integer number of bytes, got ${String(size)}`);
  }
  return size;
}

/** Milliseconds floored to seconds, or `NaN` when there is no modification time. */
export function modifiedMillis(modtime: Date | number | undefined): number {
  if (modtime === undefined) return Number.NaN;
  const ms = modtime instanceof Date ? modtime.getTime() : modtime;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new ArgumentError(
      `modtime must be a valid Date or a number of milliseconds, got ${String(modtime)}`,
    );
  }
  return Math.floor(ms / 1000) * 1000;
}

/**
 * Serves one representation: bytes, or a reader `{ size, read(position, length) }` whose bytes are
 * fetched by position as the response is written. Sends `Content-Type` (given, by `name`'s
 * extension, or sniffed), `ETag` and `Last-Modified` when known, answers `If-Match`,
 * `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` with 412/304, and one `Range` with
 * 206 (or 416, whose `Content-Range` gives the size). Any method is served; HEAD gets the headers only.
 * Rejects with `ArgumentError` for a source that is neither, a reader without a size, or a bad option.
 *
 * ```ts
 * const logo = await readFile("logo.png");
 * await serve((req) => serveContent(req, logo, { name: "logo.png", etag: "v1", modtime: new Date(2024, 0, 1) }), { port: 0 });
 * ```
 */
export async function serveContent(
  req: Request,
  source: ContentSource,
  options: ServeContentOptions = {},
): Promise<Response> {
  let rep: Representation;
  if (source instanceof Uint8Array) {
    rep = bytesRepresentation(source);
  } else if (source !== null && typeof source === "object" && typeof source.read === "function") {
    const size = options.size ?? source.size;
    if (size === undefined) {
      throw new ArgumentError(
        "serveContent needs the size of a reader source: pass { size } or give the reader a size",
      );
    }
    rep = readerRepresentation(source, checkSize(size));
  } else {
    throw new ArgumentError(
      "serveContent's source must be a Uint8Array or an object with read(position, length)",
    );
  }
  const name = options.name ?? SERVE_CONTENT_DEFAULTS.name;
  const allowRanges = options.allowRanges ?? SERVE_CONTENT_DEFAULTS.allowRanges;
  if (typeof name !== "string") throw new ArgumentError("name must be a string");
  if (typeof allowRanges !== "boolean") throw new ArgumentError("allowRanges must be a boolean");
  if (options.contentType !== undefined && typeof options.contentType !== "string") {
    throw new ArgumentError("contentType must be a string");
  }
  const headers = new Headers(options.headers);
  const given = options.etag ?? headers.get("etag") ?? undefined;
  const meta: RepresentationMeta = {
    name,
    modified: modifiedMillis(options.modtime),
    contentType: options.contentType,
    etag: given === undefined ? undefined : normalizeEtag(given),
    headers,
    allowRanges,
  };
  return respond(req, rep, meta);
}
