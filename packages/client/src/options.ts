// The options a request takes, and their defaults in one place.

import type { Writable } from "node:stream";
import type tls from "node:tls";
import type {
  HeadersInit,
  ProxyInit,
  QueryInit,
  RequestContext,
  SSEEvent,
  TimeoutOptions,
} from "@hyperwire/core";
import type { RequestBody } from "./body.js";
import type { Client } from "./client.js";
import type { CookieJar } from "./cookie-jar.js";
import type { DownloadProgress } from "./decompress.js";
import type { RetryBucket, RetryIf } from "./retry.js";
import type { SSEControl } from "./sse.js";
import type { ClientEvent, Verbosity } from "./trace.js";

/** User name and password for `Authorization: Basic`. */
export type BasicAuth = readonly [user: string, password: string];

/** Options of `request`, the verb helpers and `open`. Durations are ms; `undefined` inherits the client's. */
export interface RequestOptions extends TimeoutOptions {
  /** Request headers; they win over the client's `defaultHeaders`, which fill missing names. */
  headers?: HeadersInit;
  /**
   * The body: a string, bytes, `ArrayBuffer`, `Blob`, `URLSearchParams`, a Node `Readable`, an (async)
   * iterable of chunks (streamed chunked, not replayable) or a plain object (sent as
   * `application/x-www-form-urlencoded`).
   */
  body?: RequestBody | null;
  /** A value sent as JSON with `Content-Type: application/json` (unless one is set). */
  json?: unknown;
  /**
   * Added to the URL's query. A string is appended verbatim; an object is sorted by key; pairs keep
   * their order. Merged with the client's `defaultQuery` (the call's keys win).
   */
  query?: QueryInit;
  /** `Authorization: Basic` credentials. An explicit non-empty `Authorization` header wins. */
  basicAuth?: BasicAuth;
  /** The client to send with. Default: a process-wide client created on first use. */
  client?: Client;
  /**
   * The proxy for this call: a URL, a `ProxyConfig`, or `null` for direct. Only without an explicit
   * `client` (a client's proxy is its Transport's); an `ArgumentError` otherwise.
   */
  proxy?: ProxyInit;
  /** Throw `StatusError` for status ≥ 300 except 301, 302, 303, 307, 308. Default true. */
  statusException?: boolean;
  /** Write the response body here as it arrives (the returned `body` is then empty). Not ended for you. */
  responseStream?: Writable;
  /** Aborts the request with a `CanceledError`. */
  signal?: AbortSignal;
  /** Cancellation and an absolute deadline (see `RequestContext`). */
  context?: RequestContext;
  /** `1`: a line per event on stderr; `2`: also the heads. Default 0. */
  verbose?: Verbosity;
  /** Called with every client event of this call. */
  trace?: (event: ClientEvent) => void;
  /** TLS options for this call (`ca`, `rejectUnauthorized`, ...); they replace the transport's. */
  tls?: tls.ConnectionOptions;
  /**
   * The wire protocol. `'auto'` (default): HTTP/2 by ALPN on `https:` when the client prefers it,
   * HTTP/1.1 otherwise. `'h1'`: HTTP/1.1 only. `'h2'`: HTTP/2 required (`H2NegotiationError` when an
   * `https:` server does not pick it; on `http:`, h2c with prior knowledge).
   */
  protocol?: "auto" | "h1" | "h2";
  /** Retry failed attempts by the built-in policy (see `retries`). Default true. */
  retry?: boolean;
  /** Retries after the first attempt (4: up to 5 attempts). Default 4; an integer ≥ 0. */
  retries?: number;
  /**
   * Decides a retry: `(attempt, err, request, response)`, `attempt` 1-based; `err` is a
   * `RequestRetryError` for a failed attempt (`response` null), `null` for a response. `true` forces a
   * retry (still needs a replayable body, retries left and bucket room), `false` suppresses it,
   * `undefined`/`null` leaves it to the built-in rules. Default: none.
   */
  retryIf?: RetryIf;
  /** Let the built-in rules retry non-idempotent methods (POST, PATCH, ...). Default false. */
  retryNonIdempotent?: boolean;
  /** Wait as a 429/503's `Retry-After` says (capped at the bucket's `maxBackoff`). Default true. */
  respectRetryAfter?: boolean;
  /** `true`: the client's bucket (default); `false`: no retry budget; or a `RetryBucket` to use. */
  retryBucket?: boolean | RetryBucket;
  /** Follow redirects (301, 302, 303, 307, 308). Default true; `false` returns the 3xx. */
  redirect?: boolean;
  /** Redirects followed at most (`TooManyRedirectsError` beyond). Default: the client's `maxRedirects` (10). */
  redirectLimit?: number;
  /** The method after a 301/302: `'same'`, or GET/POST/PUT/DELETE/HEAD/OPTIONS/PATCH/QUERY. Default: POST becomes GET, others stay. */
  redirectMethod?: string;
  /** Send this request's headers on redirected hops (minus credentials across origins). Default true. */
  forwardHeaders?: boolean;
  /** Decode gzip, deflate and br response bodies and send `Accept-Encoding`. Default true. */
  decompress?: boolean;
  /** The largest decoded body, in bytes (`DecompressionLimitError` beyond); `0`: no limit. Default 64 MiB. */
  maxDecompressedSize?: number;
  /**
   * Called as response-body bytes arrive, with the wire bytes so far and Content-Length (`undefined`
   * when absent); at most once per chunk, not for redirects that are followed. Default: none.
   */
  downloadProgress?: DownloadProgress;
  /**
   * `true` (default): send and store the jar's cookies. `false`: neither (a `Cookie` header you set is
   * sent verbatim). A record: extra cookies for this call, merged with the jar's and your `Cookie`
   * header, de-duplicated by name (the record wins).
   */
  cookies?: boolean | Record<string, string>;
  /** The jar for this call; `null`: none. Default: the client's `cookieJar`. */
  cookieJar?: CookieJar | null;
  /**
   * Called as request-body bytes are handed to the connection, with the bytes sent so far and the
   * body's total size (`undefined` when unknown, a stream say). Once for a body given as bytes.
   */
  uploadProgress?: (transferred: number, total: number | undefined) => void;
  /**
   * Reads the response as server-sent events: called with each event (awaited, so a slow callback
   * slows the reading); `control.close()` stops early. The resolved response's body is then empty.
   * Failing statuses throw `StatusError` as usual; a body that is not `text/event-stream` is a `ProtocolError`.
   */
  onEvent?: (event: SSEEvent, control: SSEControl) => void | Promise<void>;
  /** The longest event-stream line accepted, in bytes (`ParseError` beyond). `0`: no limit. Default 1 MiB. */
  maxSseLineBytes?: number;
  /** The largest event (its data) accepted, in bytes (`ParseError` beyond). `0`: no limit. Default 16 MiB. */
  maxSseEventBytes?: number;
}

/** Statuses `statusException` lets through (the redirects). */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** True when `statusException` turns this status into a `StatusError`. */
export function isFailingStatus(status: number): boolean {
  return status >= 300 && !REDIRECT_STATUSES.has(status);
}

/** Methods retried once, silently, when a reused keep-alive connection was found closed. */
export const STALE_RETRY_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "QUERY"]);
