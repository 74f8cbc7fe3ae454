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
import type { BasicAuth, RequestOptions } from "./options.js";
import { prepare } from "./prepare.js";
import { send } from "./request.js";
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
      });
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
    });
  }

  /** False once {@link close} was called. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Sends a request and reads the whole response body. */
  async request(method: string, url: string | URL, options: VerbOptions = {}): Promise<Response<Uint8Array>> {
    const prepared = prepare(this, method, url, options, true);
    const p = prepared instanceof Promise ? await prepared : prepared;
    const sink = options.responseStream;
    return send(p, options, sink === undefined ? "buffer" : "writable", sink);
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
