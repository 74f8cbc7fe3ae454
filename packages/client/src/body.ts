// Request bodies: every accepted shape becomes bytes (replayable, with a length) or a stream of
// chunks (sent chunked, once).
import { Readable } from "node:stream";
import { ArgumentError, Form } from "@hyperwire/core";

/** What a request body may be. A plain object is sent as `application/x-www-form-urlencoded`. */
export type RequestBody =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | URLSearchParams
  | Form
  | Readable
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array | string>
  | Record<string, unknown>;

/** A body ready to send. */
export interface PreparedBody {
  /** Bytes (replayable) or a chunk stream (sent once). `null`: no body. */
  readonly data: Uint8Array | AsyncIterable<Uint8Array> | null;
  /** The Content-Type the body implies, when the caller did not set one. */
  readonly contentType: string | undefined;
  /** The size of a streamed body when known (a `Form` of sized parts): sent as Content-Length. */
  readonly contentLength?: number;
}

/** The `uploadProgress` callback: bytes handed to the connection so far, and the total when known. */
export type UploadProgress = (transferred: number, total: number | undefined) => void;

const NONE: PreparedBody = Object.freeze({ data: null, contentType: undefined });
const FORM = "application/x-www-form-urlencoded";

/**
 * Turns the `body`/`json` options into bytes or a stream; with `uploadProgress`, the body is sent
 * through {@link withProgress}.
 */
export function prepareBody(
  body: RequestBody | null | undefined,
  json: unknown,
  uploadProgress?: UploadProgress,
): PreparedBody | Promise<PreparedBody> {
  if (uploadProgress === undefined) return bodyOf(body, json);
  if (typeof uploadProgress !== "function") throw new ArgumentError("uploadProgress must be a function");
  const prepared = bodyOf(body, json);
  return prepared instanceof Promise
    ? prepared.then((b) => withProgress(b, uploadProgress))
    : withProgress(prepared, uploadProgress);
}

function bodyOf(body: RequestBody | null | undefined, json: unknown): PreparedBody | Promise<PreparedBody> {
  if (json !== undefined) {
    if (body !== undefined && body !== null) throw new ArgumentError("give either body or json, not both");
    const text = JSON.stringify(json);
    if (text === undefined) throw new ArgumentError("json must be a JSON-serialisable value");
    return { data: Buffer.from(text, "utf8"), contentType: "application/json" };
  }
  if (body === undefined || body === null) return NONE;
  if (typeof body === "string") return { data: Buffer.from(body, "utf8"), contentType: undefined };
  if (body instanceof Uint8Array) return { data: body, contentType: undefined };
  if (body instanceof ArrayBuffer) return { data: new Uint8Array(body), contentType: undefined };
  if (body instanceof Form) {
    const length = body.length;
    return length === undefined
      ? { data: body, contentType: body.contentType }
      : { data: body, contentType: body.contentType, contentLength: length };
  }
  if (body instanceof URLSearchParams)
    return { data: Buffer.from(body.toString(), "utf8"), contentType: FORM };
  if (typeof Blob !== "undefined" && body instanceof Blob) {
    const type = body.type || undefined;
    return body.arrayBuffer().then((buf) => ({ data: new Uint8Array(buf), contentType: type }));
  }
  if (body instanceof Readable) return { data: chunksOf(body), contentType: undefined };
  if (isAsyncIterable(body) || isIterable(body)) return { data: chunksOf(body), contentType: undefined };
  if (isPlainObject(body)) return { data: Buffer.from(formEncode(body), "utf8"), contentType: FORM };
  throw new ArgumentError(
    `unsupported request body ${Object.prototype.toString.call(body)}; give a string, bytes, a Blob, URLSearchParams, a Readable, an (async) iterable of chunks or a plain object`,
  );
}

/**
 * The body, reporting progress as the engine takes each chunk: the code after a `yield` runs when
 * the engine asks for the next chunk, that is, once it handed this one to the connection. A byte
 * body becomes one sized chunk (its Content-Length is kept), reported once when sent. Each iteration
 * starts again, so a body that could be sent twice still can.
 */
function withProgress(b: PreparedBody, progress: UploadProgress): PreparedBody {
  const data = b.data;
  if (data === null) return b;
  const total = data instanceof Uint8Array ? data.byteLength : b.contentLength;
  const reporting: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      if (data instanceof Uint8Array) {
        if (data.byteLength > 0) yield data;
        progress(data.byteLength, data.byteLength);
        return;
      }
      let sent = 0;
      for await (const chunk of data) {
        yield chunk;
        sent += chunk.byteLength;
        progress(sent, total);
      }
    },
  };
  return total === undefined
    ? { data: reporting, contentType: b.contentType }
    : { data: reporting, contentType: b.contentType, contentLength: total };
}

/** A streamed body as `Uint8Array` chunks (strings are UTF-8 encoded). */
async function* chunksOf(source: AsyncIterable<unknown> | Iterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source as AsyncIterable<unknown>) {
    if (chunk instanceof Uint8Array) {
      if (chunk.byteLength > 0) yield chunk;
    } else if (typeof chunk === "string") {
      if (chunk.length > 0) yield Buffer.from(chunk, "utf8");
    } else {
      throw new ArgumentError(
        `a streamed request body yielded ${Object.prototype.toString.call(chunk)}; chunks must be strings or Uint8Arrays`,
      );
    }
  }
}

/**
 * `application/x-www-form-urlencoded` as HTTP.jl writes it: space becomes `+`, `A-Za-z0-9-._~`
 * stay, everything else is `%XX` (upper case). Array values repeat the key; `null`/`undefined` are left out.
 */
export function formEncode(fields: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) parts.push(`${formEscape(key)}=${formEscape(String(v))}`);
  }
  return parts.join("&");
}

function formEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof (v as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === "function";
}

function isIterable(v: unknown): v is Iterable<unknown> {
  return (
    typeof v === "object" && v !== null && typeof (v as Iterable<unknown>)[Symbol.iterator] === "function"
  );
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
