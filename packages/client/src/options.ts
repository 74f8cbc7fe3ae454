// The options a request takes, and their defaults in one place.

import type { Writable } from "node:stream";
import type tls from "node:tls";
import type { HeadersInit, ProxyInit, QueryInit, RequestContext, TimeoutOptions } from "@hyperwire/core";
import type { RequestBody } from "./body.js";
import type { Client } from "./client.js";
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
}

/** Statuses `statusException` lets through (the redirects). */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** True when `statusException` turns this status into a `StatusError`. */
export function isFailingStatus(status: number): boolean {
  return status >= 300 && !REDIRECT_STATUSES.has(status);
}

/** Methods retried once, silently, when a reused keep-alive connection was found closed. */
export const STALE_RETRY_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "QUERY"]);
