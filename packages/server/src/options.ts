import type { SecureContextOptions, TlsOptions } from "node:tls";
import { ArgumentError } from "@hyperwire/core";
import { HTTP2Settings, type HTTP2SettingsInit } from "@hyperwire/h2";
import type { AccessLogEntry } from "./access-log.js";

/**
 * Options of {@link serve} and {@link listen}. Durations are milliseconds; `0` turns a timeout off.
 *
 * ```ts
 * await serve(handler, { port: 0, readHeaderTimeout: 10_000, maxBodyBytes: 1 << 20 });
 * ```
 */
export interface ServerOptions {
  /** The address to bind. Default `'127.0.0.1'`; `'::'` or `'0.0.0.0'` for every interface. */
  host?: string;
  /** The TCP port. Default `8080`; `0` lets the system pick a free port (read it from `server.port`). */
  port?: number;
  /**
   * When the port is taken, try `port + 1`, `port + 2`, … up to {@link LISTEN_ANY_ATTEMPTS} ports in
   * all, then fall back to port `0` (any free port). Default `false` (a taken port is an
   * `AddressInUseError`).
   */
  listenAny?: boolean;
  /**
   * HTTP.jl's `reuseaddr`. Default `true`, which is what Node always does: libuv sets `SO_REUSEADDR`
   * on every listening TCP socket (so a port in `TIME_WAIT` can be bound again), and Node has no
   * switch to turn it off. `false` cannot be honoured and is an `ArgumentError`.
   */
  reuseAddr?: boolean;
  /** The listen backlog (pending connections the kernel queues). Default `128`. */
  backlog?: number;
  /**
   * Serve HTTPS with these Node TLS options (`key`, `cert`, `ca`, `passphrase`, `pfx`, …).
   * Default: none (cleartext). ALPN offers `h2` and `http/1.1` (only `http/1.1` when `http2` is false).
   */
  tls?: TlsOptions & SecureContextOptions;
  /**
   * Serve HTTP/2 as well: on a cleartext listener, connections that open with the HTTP/2 preface
   * (prior knowledge, `h2c`); over TLS, connections whose ALPN chose `h2`. Default `true`. `false`
   * serves HTTP/1.1 only (an HTTP/2 preface then gets HTTP/1.1's `400`).
   */
  http2?: boolean;
  /**
   * HTTP/2 receive windows (bytes): `initialWindowSize` per stream (advertised in SETTINGS) and
   * `connectionWindowSize` per connection. Default `new HTTP2Settings()` (65 535 each).
   */
  http2Settings?: HTTP2Settings | HTTP2SettingsInit;
  /**
   * The most HTTP/2 streams a peer may have open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS);
   * more are refused with RST_STREAM(REFUSED_STREAM). It also sets the Rapid-Reset bound: a peer that
   * resets more than `maxConcurrentStreams + 100` streams gets GOAWAY(ENHANCE_YOUR_CALM). Default
   * `100`; `0` advertises no limit (and the bound counts as for 100).
   */
  maxConcurrentStreams?: number;
  /**
   * How long the request head may take to arrive, counted from the connection (first request) or
   * from its first byte (later requests on a keep-alive connection); the peer then gets `408` and
   * the connection is closed. Default `0`, which falls back to `readTimeout`. On a new connection it
   * also bounds the wait for the HTTP/2 preface and the first HEADERS (then the session is closed).
   */
  readHeaderTimeout?: number;
  /**
   * How long the request body may take to arrive after the head (`408`, or a closed connection when
   * the response has started). Default `0` (off). Over HTTP/2 it is per stream (the stream is reset,
   * not the connection).
   */
  readTimeout?: number;
  /**
   * How long each response write may wait for the peer to take the bytes; a client that stops
   * reading has its connection destroyed (over HTTP/2: its stream reset). Default `0` (off).
   */
  writeTimeout?: number;
  /**
   * How long a keep-alive connection may sit idle between requests before it is closed. Default
   * `0`, which falls back to `readTimeout` (so both `0`: idle connections stay open). An HTTP/2
   * session with no streams for this long is sent GOAWAY and closed.
   */
  idleTimeout?: number;
  /**
   * The largest request head in bytes (request line + headers); larger gets `431`. Default 1 MiB.
   * HTTP/2 advertises twice this as SETTINGS_MAX_HEADER_LIST_SIZE (HTTP.jl's header-block cap).
   */
  maxHeaderBytes?: number;
  /**
   * The largest request body `serve` buffers, in bytes; larger gets `413` before the handler runs
   * (before reading, when `Content-Length` says so). `0` means unlimited. Default 64 MiB. `listen`
   * does not buffer and ignores it; `streamHandler` has its own.
   */
  maxBodyBytes?: number;
  /**
   * `true` prints one line per request in the combined log format to stdout; a function receives a
   * structured {@link AccessLogEntry} instead. Default `false`.
   */
  accessLog?: boolean | ((entry: AccessLogEntry) => void);
  /**
   * Callbacks run once when the server shuts down (`close()` or `forceClose()`), after the last
   * connection closed; a throwing callback is reported as a process warning. Default none.
   */
  onShutdown?: ReadonlyArray<() => void | Promise<void>> | (() => void | Promise<void>);
}

/** How many consecutive ports `listenAny` tries before it falls back to port `0`. */
export const LISTEN_ANY_ATTEMPTS = 10;

/** Every option with its value, after validation. */
export interface ResolvedServerOptions {
  readonly host: string;
  readonly port: number;
  readonly listenAny: boolean;
  readonly reuseAddr: boolean;
  readonly backlog: number;
  readonly tls: (TlsOptions & SecureContextOptions) | undefined;
  readonly http2: boolean;
  readonly http2Settings: HTTP2Settings;
  readonly maxConcurrentStreams: number;
  readonly readHeaderTimeout: number;
  readonly readTimeout: number;
  readonly writeTimeout: number;
  readonly idleTimeout: number;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  readonly accessLog: boolean | ((entry: AccessLogEntry) => void);
  readonly onShutdown: ReadonlyArray<() => void | Promise<void>>;
}

/** The defaults of {@link ServerOptions}, in one place. */
export const DEFAULTS: ResolvedServerOptions = Object.freeze({
  host: "127.0.0.1",
  port: 8080,
  listenAny: false,
  reuseAddr: true,
  backlog: 128,
  tls: undefined,
  http2: true,
  http2Settings: new HTTP2Settings(),
  maxConcurrentStreams: 100,
  readHeaderTimeout: 0,
  readTimeout: 0,
  writeTimeout: 0,
  idleTimeout: 0,
  maxHeaderBytes: 1 << 20,
  maxBodyBytes: 64 << 20,
  accessLog: false,
  onShutdown: Object.freeze([]),
});

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ArgumentError(`${name} must be a finite number ≥ 0 (milliseconds or bytes), got ${value}`);
  }
  return value;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new ArgumentError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * Validates options and fills in defaults. Negative timeouts, a non-positive `maxHeaderBytes` or
 * `backlog`, a port outside 0–65535 and `reuseAddr: false` are an `ArgumentError`.
 */
export function resolveOptions(options: ServerOptions = {}): ResolvedServerOptions {
  const o = { ...DEFAULTS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (o as Record<string, unknown>)[key] = value;
  }
  if (typeof o.host !== "string" || o.host === "") throw new ArgumentError("host must be a non-empty string");
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new ArgumentError(`port must be an integer from 0 to 65535, got ${o.port}`);
  }
  if (o.reuseAddr !== true) {
    throw new ArgumentError(
      "reuseAddr: false is not supported: Node (libuv) always sets SO_REUSEADDR on listening sockets",
    );
  }
  positiveInt("backlog", o.backlog);
  positiveInt("maxHeaderBytes", o.maxHeaderBytes);
  nonNegative("maxBodyBytes", o.maxBodyBytes);
  nonNegative("readTimeout", o.readTimeout);
  nonNegative("readHeaderTimeout", o.readHeaderTimeout);
  nonNegative("writeTimeout", o.writeTimeout);
  nonNegative("idleTimeout", o.idleTimeout);
  if (typeof o.http2 !== "boolean") throw new ArgumentError("http2 must be a boolean");
  if (!Number.isInteger(o.maxConcurrentStreams) || o.maxConcurrentStreams < 0) {
    throw new ArgumentError(`maxConcurrentStreams must be an integer ≥ 0, got ${o.maxConcurrentStreams}`);
  }
  const shutdown = options.onShutdown;
  const onShutdown =
    shutdown === undefined ? [] : typeof shutdown === "function" ? [shutdown] : [...shutdown];
  for (const fn of onShutdown) {
    if (typeof fn !== "function")
      throw new ArgumentError("onShutdown must be a function or an array of functions");
  }
  const accessLog = o.accessLog;
  if (typeof accessLog !== "boolean" && typeof accessLog !== "function") {
    throw new ArgumentError("accessLog must be a boolean or a function");
  }
  return Object.freeze({
    ...o,
    // HTTP.jl: the head timeout and the idle timeout fall back to readTimeout.
    readHeaderTimeout: o.readHeaderTimeout || o.readTimeout,
    idleTimeout: o.idleTimeout || o.readTimeout,
    onShutdown: Object.freeze(onShutdown),
    http2Settings: HTTP2Settings.from(o.http2Settings),
  });
}
