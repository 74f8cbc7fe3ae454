// Client: a reusable bundle of a transport and request defaults, with the verb helpers as methods.
import {
  ArgumentError,
  Headers,
  type HeadersInit,
  ProxyConfig,
  type QueryInit,
  type ResolvedTimeouts,
  type Response,
  resolveTimeouts,
  type TimeoutOptions,
} from "@hyperwire/core";
import { HTTP2Settings, type HTTP2SettingsInit } from "@hyperwire/h2";
import { CookieJar } from "./cookie-jar.js";
import type { BasicAuth, RequestOptions } from "./options.js";
import { type Prepared, prepare } from "./prepare.js";
import { type CheckRedirect, checkRedirectLimit, REDIRECT_DEFAULTS } from "./redirect.js";
import { send } from "./request.js";
import { RetryBucket } from "./retry.js";
import { requestEvents } from "./sse.js";
import { type ClientStream, type ClientStreamHandler, open } from "./stream.js";
import { Transport } from "./transport.js";

/** Options of {@link Client}. Durations are ms; a timeout left unset uses the library default. */
export interface ClientOptions extends TimeoutOptions {
  /** The connection pool. Default: a new `Transport` (closed with the client) using the environment's proxies. */
  transport?: Transport;
  /** Headers added to every request that does not set them. */
  defaultHeaders?: HeadersInit;
  /** Query merged into every request's (the call's keys win). */
  defaultQuery?: QueryInit;
  /** Basic credentials for requests that give none. */
  defaultBasicAuth?: BasicAuth;
  /** Local address for the client's own transport (an `ArgumentError` together with `transport`). */
  localAddress?: string;
  /** Default of the `statusException` request option. Default true. */
  statusException?: boolean;
  /**
   * Offer HTTP/2 by ALPN on `https:` (and use it when the server picks it). Default true. `false`
   * makes this client's requests HTTP/1.1 even on a transport that prefers HTTP/2.
   */
  preferHttp2?: boolean;
  /**
   * Receive windows of the HTTP/2 connections made for this client. Default: the transport's (a
   * client that makes its own transport gives it these).
   */
  http2Settings?: HTTP2Settings | HTTP2SettingsInit;
  /** The cookie jar of this client's requests; `null`: no cookies. Default: a new, empty jar per client. */
  cookieJar?: CookieJar | null;
  /** Redirects a request follows unless it sets `redirectLimit`. Default 10; an integer ≥ 0. */
  maxRedirects?: number;
  /** `(response, request, location) => boolean`, asked before each redirect; `false` returns the 3xx. Default: none. */
  checkRedirect?: CheckRedirect;
  /** The retry budget of this client's requests; `null`: none. Default: the transport's `retryBucket`. */
  retryBucket?: RetryBucket | null;
}

/** What prepared requests read from their client. */
export interface ClientDefaults {
  /** Every timeout resolved against the client's values: what a call that sets none runs with. */
  readonly resolvedTimeouts: ResolvedTimeouts;
  readonly defaultHeaders: Headers | undefined;
  readonly defaultQuery: QueryInit | undefined;
  readonly defaultBasicAuth: BasicAuth | undefined;
  readonly timeouts: TimeoutOptions;
  readonly statusException: boolean;
  /** The client's cookie jar, or `null` when it was made with `cookieJar: null`. */
  readonly cookieJar: CookieJar | null;
  readonly maxRedirects: number;
  readonly checkRedirect: CheckRedirect | undefined;
  readonly retryBucket: RetryBucket | null;
}

/** The `cookieJar` client option: a new jar when unset, `null` for none. */
function clientJar(jar: CookieJar | null | undefined): CookieJar | null {
  if (jar === undefined) return new CookieJar();
  if (jar === null || jar instanceof CookieJar) return jar;
  throw new ArgumentError("cookieJar must be a CookieJar or null");
}

/** The `retryBucket` client option: the transport's when unset. */
function clientBucket(bucket: RetryBucket | null | undefined, transport: Transport): RetryBucket | null {
  if (bucket === undefined) return transport.retryBucket;
  if (bucket === null || bucket instanceof RetryBucket) return bucket;
  throw new ArgumentError("retryBucket must be a RetryBucket or null");
}

function checkFunction(f: CheckRedirect | undefined): CheckRedirect | undefined {
  if (f !== undefined && typeof f !== "function") throw new ArgumentError("checkRedirect must be a function");
  return f;
}

type VerbOptions = Omit<RequestOptions, "client">;
type NoBodyOptions = Omit<VerbOptions, "body" | "json">;

/**
 * A reusable client: its transport (connection pool) and defaults. `close()` closes its own
 * transport and makes later calls fail with `ClosedError`.
 *
 * ```ts
 * await using client = new Client({ readIdleTimeout: 10_000, defaultHeaders: { Accept: "application/json" } });
 * const res = await client.get("https://example.com/items");
 * ```
 */
export class Client {
  readonly transport: Transport;
  /** False when this client's requests never offer HTTP/2 (`preferHttp2: false`). */
  readonly preferHttp2: boolean;
  /** This client's own HTTP/2 settings; `undefined` when it uses its transport's. */
  readonly http2Settings: HTTP2Settings | undefined;
  readonly defaults: ClientDefaults;
  readonly #ownsTransport: boolean;
  #open = true;

  constructor(options: ClientOptions = {}) {
    if (options.transport !== undefined && options.localAddress !== undefined) {
      throw new ArgumentError(
        "give localAddress to the Transport, not to a Client that is given a transport",
      );
    }
    this.#ownsTransport = options.transport === undefined;
    // A client's own transport takes its proxies from the environment (read once, here); a Transport
    // made by hand is direct unless given a proxy.
    this.transport =
      options.transport ??
      new Transport({
        proxy: ProxyConfig.fromEnv(),
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        ...(options.preferHttp2 !== undefined ? { preferHttp2: options.preferHttp2 } : {}),
        ...(options.http2Settings !== undefined ? { http2Settings: options.http2Settings } : {}),
      });
    if (options.preferHttp2 !== undefined && typeof options.preferHttp2 !== "boolean") {
      throw new ArgumentError("preferHttp2 must be a boolean");
    }
    this.preferHttp2 = options.preferHttp2 ?? true;
    // A transport made here already has these settings; one given keeps its own unless the client brings some.
    this.http2Settings =
      options.http2Settings === undefined || this.#ownsTransport
        ? undefined
        : HTTP2Settings.from(options.http2Settings);
    const timeouts: TimeoutOptions = {};
    resolveTimeouts(options); // validates
    for (const k of [
      "connectTimeout",
      "requestTimeout",
      "responseHeaderTimeout",
      "readIdleTimeout",
      "writeIdleTimeout",
      "expectContinueTimeout",
    ] as const) {
      if (options[k] !== undefined) timeouts[k] = options[k];
    }
    this.defaults = Object.freeze({
      resolvedTimeouts: resolveTimeouts(undefined, timeouts),
      defaultHeaders: options.defaultHeaders === undefined ? undefined : new Headers(options.defaultHeaders),
      defaultQuery: options.defaultQuery,
      defaultBasicAuth: options.defaultBasicAuth,
      timeouts,
      statusException: options.statusException ?? true,
      cookieJar: clientJar(options.cookieJar),
      maxRedirects:
        options.maxRedirects === undefined
          ? REDIRECT_DEFAULTS.maxRedirects
          : checkRedirectLimit("maxRedirects", options.maxRedirects),
      checkRedirect: checkFunction(options.checkRedirect),
      retryBucket: clientBucket(options.retryBucket, this.transport),
    });
  }

  /** False once {@link close} was called. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Sends a request and reads the whole response body. */
  request(method: string, url: string | URL, options: VerbOptions = {}): Promise<Response<Uint8Array>> {
    // Not an async function: the pipeline's promise is returned as it is, without another one
    // around it. Errors thrown before it starts become a rejection all the same.
    try {
      if (options.onEvent !== undefined) return requestEvents(this, method, url, options);
      const prepared = prepare(this, method, url, options, true);
      const sink = options.responseStream;
      const mode = sink === undefined ? "buffer" : "writable";
      return prepared instanceof Promise
        ? sendWhenPrepared(prepared, options, mode, sink)
        : send(prepared, options, mode, sink);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  get(url: string | URL, options?: NoBodyOptions): Promise<Response<Uint8Array>> {
    return this.request("GET", url, options);
  }
  head(url: string | URL, options?: NoBodyOptions): Promise<Response<Uint8Array>> {
    return this.request("HEAD", url, options);
  }
  options(url: string | URL, options?: NoBodyOptions): Promise<Response<Uint8Array>> {
    return this.request("OPTIONS", url, options);
  }
  post(url: string | URL, options?: VerbOptions): Promise<Response<Uint8Array>> {
    return this.request("POST", url, options);
  }
  put(url: string | URL, options?: VerbOptions): Promise<Response<Uint8Array>> {
    return this.request("PUT", url, options);
  }
  patch(url: string | URL, options?: VerbOptions): Promise<Response<Uint8Array>> {
    return this.request("PATCH", url, options);
  }
  delete(url: string | URL, options?: VerbOptions): Promise<Response<Uint8Array>> {
    return this.request("DELETE", url, options);
  }
  /** The QUERY method (a safe, idempotent request with a body). */
  query(url: string | URL, options?: VerbOptions): Promise<Response<Uint8Array>> {
    return this.request("QUERY", url, options);
  }

  /** A streaming exchange; see the top-level `open`. */
  open(method: string, url: string | URL, options?: VerbOptions): Promise<ClientStream>;
  open(
    method: string,
    url: string | URL,
    handler: ClientStreamHandler,
    options?: VerbOptions,
  ): Promise<Response<Uint8Array>>;
  open(
    method: string,
    url: string | URL,
    handlerOrOptions?: ClientStreamHandler | VerbOptions,
    options?: VerbOptions,
  ): Promise<ClientStream | Response<Uint8Array>> {
    return open(this, method, url, handlerOrOptions, options);
  }

  /** Closes the idle connections of this client's transport. */
  closeIdleConnections(): void {
    this.transport.closeIdleConnections();
  }

  /** Makes later calls fail with `ClosedError` and closes the client's own transport. Idempotent. */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    if (this.#ownsTransport) await this.transport.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * `send` once the request is prepared (a body still being read). Apart from `Client.request`, whose
 * variables a closure there would put in a heap context on every call.
 */
function sendWhenPrepared(
  prepared: Promise<Prepared>,
  options: VerbOptions,
  mode: "buffer" | "writable",
  sink: VerbOptions["responseStream"],
): Promise<Response<Uint8Array>> {
  return prepared.then((p) => send(p, options, mode, sink));
}
