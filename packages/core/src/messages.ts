import { RequestContext } from "./context.js";
import { ArgumentError, ParseError } from "./errors.js";
import { Headers, type HeadersInit } from "./headers.js";

/** The HTTP version a message was exchanged with. */
export type HTTPVersion = "1.0" | "1.1" | "2";

/**
 * A message body: bytes (buffered, replayable) or an async iterable of chunks (streamed once).
 * A string given to a constructor is stored as UTF-8 bytes.
 */
export type Body = Uint8Array | AsyncIterable<Uint8Array>;

/** What a constructor accepts as a body. */
export type BodyInit = Body | string | ArrayBuffer | null | undefined;

const EMPTY = new Uint8Array(0);

type InspectFn = (value: unknown, options: object) => string;

/** Turns a {@link BodyInit} into a {@link Body}: strings become UTF-8 bytes, nothing becomes empty bytes. */
export function toBody(body: BodyInit): Body {
  if (body === undefined || body === null) return EMPTY;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") return body;
  throw new ArgumentError(`unsupported body type ${Object.prototype.toString.call(body)}`);
}

function bytesOf(body: Body, what: string): Uint8Array {
  if (body instanceof Uint8Array) return body;
  throw new ArgumentError(
    `${what} body is a stream; read it (for await) or buffer it before calling text()/json()`,
  );
}

const decoder = new TextDecoder("utf-8");

function decodeText(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

function parseJson(bytes: Uint8Array): unknown {
  const text = decodeText(bytes);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ParseError(`body is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** Options of {@link Request}. */
export interface RequestInit {
  headers?: HeadersInit;
  body?: BodyInit;
  trailers?: HeadersInit;
  /** Cancellation, deadline and metadata; a new one is made when absent. */
  context?: RequestContext;
  /** Default `'1.1'`. */
  version?: HTTPVersion;
  /** The absolute URL, when known (the client sets it; the server derives it from Host). */
  url?: string;
}

/**
 * An HTTP request: method, target, headers, body and trailers.
 *
 * ```ts
 * const req = new Request("POST", "/items", { headers: { "Content-Type": "application/json" }, body: '{"a":1}' });
 * req.json(); // { a: 1 }
 * ```
 */
export class Request {
  readonly method: string;
  /** The request target as sent: origin form (`/path?q`), absolute form, authority or `*`. */
  target: string;
  headers: Headers;
  body: Body;
  // Made on first use: most requests have no trailers, and a client makes a Request per call.
  #trailers: Headers | undefined;
  #context: RequestContext | undefined;
  version: HTTPVersion;
  /** The absolute URL, when known. */
  url: string | undefined;

  constructor(method: string, target: string, init: RequestInit = {}) {
    if (!method) throw new ArgumentError("request method must not be empty");
    if (!target) throw new ArgumentError("request target must not be empty");
    this.method = method.toUpperCase();
    this.target = target;
    this.headers = init.headers instanceof Headers ? init.headers : new Headers(init.headers);
    this.body = toBody(init.body);
    const trailers = init.trailers;
    this.#trailers = trailers === undefined || trailers instanceof Headers ? trailers : new Headers(trailers);
    this.#context = init.context;
    this.version = init.version ?? "1.1";
    this.url = init.url;
  }

  /** The body decoded as UTF-8. Throws `ArgumentError` for a streamed body. */
  text(): string {
    return decodeText(bytesOf(this.body, "request"));
  }

  /** The body parsed as JSON. Throws `ParseError` for invalid JSON. */
  json<T = unknown>(): T {
    return parseJson(bytesOf(this.body, "request")) as T;
  }

  /** Trailing headers (sent after a chunked body; on HTTP/2 in a trailing HEADERS frame). */
  get trailers(): Headers {
    let t = this.#trailers;
    if (t === undefined) {
      t = new Headers();
      this.#trailers = t;
    }
    return t;
  }

  set trailers(value: Headers) {
    this.#trailers = value;
  }

  /** Cancellation, deadline and metadata; made on first use when none was given. */
  get context(): RequestContext {
    if (this.#context === undefined) this.#context = new RequestContext();
    return this.#context;
  }

  set context(context: RequestContext) {
    this.#context = context;
  }

  /** The signal that aborts when the request is cancelled (the peer left, a timeout fired). */
  get signal(): AbortSignal {
    return this.context.signal;
  }
}

/** Options of {@link Response}. */
export interface ResponseInit {
  headers?: HeadersInit;
  body?: BodyInit;
  /** The reason phrase; empty means the standard one is sent. */
  reason?: string;
  trailers?: HeadersInit;
  version?: HTTPVersion;
}

/**
 * An HTTP response. On the client `body` is the buffered bytes; a server handler may also give an
 * async iterable, which is streamed.
 *
 * ```ts
 * return new Response(200, { headers: { "Content-Type": "text/plain" }, body: "hello" });
 * ```
 */
export class Response<B extends Body = Body> {
  readonly status: number;
  reason: string;
  headers: Headers;
  version: HTTPVersion;
  // A string body is kept as given and encoded on first use of `body`: a server writes the string
  // straight to the socket, without encoding it to UTF-8 and back.
  #body: B | undefined;
  #text: string | undefined;
  #trailers: Headers | undefined;
  /** On the client: the absolute URL of the final request. */
  url: string | undefined;
  /** On the client: the request that produced this response (after redirects). */
  request: Request | undefined;
  /** On the client: the redirect response before this one. */
  previous: Response | undefined;
  /** On the client: how many redirects were followed to get here. */
  redirectCount = 0;

  constructor(status: number, init: ResponseInit = {}) {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new ArgumentError(`response status must be an integer from 100 to 999, got ${status}`);
    }
    this.status = status;
    const reason = init.reason ?? "";
    // The reason phrase goes on the status line: HTAB, SP, VCHAR and obs-text only (RFC 9112 §4).
    if (reason !== "" && /[^\t\x20-\x7e\x80-\xff]/.test(reason)) {
      throw new ArgumentError("a reason phrase may not contain control characters (CR, LF, NUL...)");
    }
    this.reason = reason;
    this.headers = init.headers instanceof Headers ? init.headers : new Headers(init.headers);
    this.version = init.version ?? "1.1";
    const body = init.body;
    if (typeof body === "string") {
      this.#body = undefined;
      this.#text = body;
    } else {
      this.#body = toBody(body) as B;
      this.#text = undefined;
    }
    const trailers = init.trailers;
    this.#trailers = trailers === undefined || trailers instanceof Headers ? trailers : new Headers(trailers);
    this.url = undefined;
    this.request = undefined;
    this.previous = undefined;
  }

  /** The body: bytes (a string given to the constructor is UTF-8 encoded) or an async iterable. */
  get body(): B {
    let body = this.#body;
    if (body === undefined) {
      body = Buffer.from(this.#text!, "utf8") as Uint8Array as B;
      this.#body = body;
    }
    return body;
  }

  set body(value: B) {
    this.#body = value;
    this.#text = undefined;
  }

  /** Trailing headers (sent after a chunked body; on HTTP/2 in a trailing HEADERS frame). */
  get trailers(): Headers {
    let t = this.#trailers;
    if (t === undefined) {
      t = new Headers();
      this.#trailers = t;
    }
    return t;
  }

  set trailers(value: Headers) {
    this.#trailers = value;
  }

  /**
   * True when the response has at least one trailer. Unlike `trailers.size`, it does not make an
   * empty `Headers` for a response that has none (servers ask this of every response).
   *
   * ```ts
   * if (res.hasTrailers) for (const [k, v] of res.trailers) console.log(k, v);
   * ```
   */
  get hasTrailers(): boolean {
    return this.#trailers !== undefined && this.#trailers.size > 0;
  }

  /**
   * The string the body was given as, while `body` has not been read or replaced since; otherwise
   * `undefined`. Lets a server write a string body without encoding it twice.
   */
  get bodyText(): string | undefined {
    return this.#body === undefined ? this.#text : undefined;
  }

  /** Shows the body (bytes) like a plain field in `console.log` and `util.inspect`. */
  [Symbol.for("nodejs.util.inspect.custom")](depth: number, options: object, inspect: InspectFn): string {
    const shown = {
      status: this.status,
      reason: this.reason,
      headers: this.headers,
      body: this.body,
      trailers: this.trailers,
      version: this.version,
      url: this.url,
      redirectCount: this.redirectCount,
    };
    return `Response ${inspect(shown, { ...options, depth: depth < 0 ? null : depth })}`;
  }

  /** True for 2xx. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The body decoded as UTF-8. Throws `ArgumentError` for a streamed body. */
  text(): string {
    const given = this.bodyText;
    // The same string decoding the UTF-8 bytes would give: lone surrogates become U+FFFD and a
    // leading byte-order mark is dropped (TextDecoder's default).
    if (given !== undefined && given.charCodeAt(0) !== 0xfeff) {
      return (given as string & { toWellFormed(): string }).toWellFormed();
    }
    return decodeText(bytesOf(this.body, "response"));
  }

  /** The body parsed as JSON. Throws `ParseError` for invalid JSON. */
  json<T = unknown>(): T {
    return parseJson(bytesOf(this.body, "response")) as T;
  }
}

/** Reads a body to the end into one `Uint8Array` (bytes are returned as they are). */
export async function readBody(body: Body, limit = 0): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (limit > 0 && size > limit) throw new ArgumentError(`body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks, size);
}

function webBody(body: Body): Uint8Array | ReadableStream<Uint8Array> | null {
  if (body instanceof Uint8Array) return body.byteLength === 0 ? null : body;
  const it = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await it.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

const NO_BODY_METHODS = new Set(["GET", "HEAD"]);

/** A WHATWG `Request` for `req` (its `url` or `base` resolves a relative target). */
export function toWebRequest(req: Request, base?: string): globalThis.Request {
  const url = req.url ?? new URL(req.target, base ?? "http://localhost").href;
  const body = NO_BODY_METHODS.has(req.method) ? null : webBody(req.body);
  const init: globalThis.RequestInit & { duplex?: "half" } = {
    method: req.method,
    headers: req.headers.toWeb(),
    body,
    signal: req.signal,
  };
  if (body instanceof ReadableStream) init.duplex = "half";
  return new globalThis.Request(url, init);
}

/** Our `Request` from a WHATWG one; the body is streamed, not buffered. */
export function fromWebRequest(req: globalThis.Request): Request {
  const url = new URL(req.url);
  return new Request(req.method, url.pathname + url.search, {
    headers: new Headers(req.headers),
    body: req.body ? (req.body as unknown as AsyncIterable<Uint8Array>) : undefined,
    context: new RequestContext({ signal: req.signal }),
    url: req.url,
  });
}

/** A WHATWG `Response` for `res`. */
export function toWebResponse(res: Response): globalThis.Response {
  if (res.status > 599) {
    throw new ArgumentError(`a WHATWG Response cannot carry status ${res.status} (200–599 only)`);
  }
  const noBody = res.status === 204 || res.status === 304 || res.status < 200;
  return new globalThis.Response(noBody ? null : webBody(res.body), {
    status: Math.max(res.status, 200),
    statusText: res.reason,
    headers: res.headers.toWeb(),
  });
}

/** Our `Response` from a WHATWG one; the body is streamed, not buffered. */
export function fromWebResponse(res: globalThis.Response): Response {
  const headers = new Headers();
  res.headers.forEach((value, name) => {
    if (name === "set-cookie") return;
    headers.append(name, value);
  });
  for (const cookie of res.headers.getSetCookie()) headers.append("Set-Cookie", cookie);
  const out = new Response(res.status, {
    headers,
    reason: res.statusText,
    body: res.body ? (res.body as unknown as AsyncIterable<Uint8Array>) : undefined,
  });
  if (res.url) out.url = res.url;
  return out;
}
