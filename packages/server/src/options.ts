import type { SecureContextOptions, TlsOptions } from "node:tls";
import { ArgumentError } from "@hyperwire/core";
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
   * Default: none (cleartext). ALPN offers `http/1.1`.
   */
  tls?: TlsOptions & SecureContextOptions;
  /**
   * How long the request head may take to arrive, counted from the connection (first request) or
   * from its first byte (later requests on a keep-alive connection); the peer then gets `408` and
   * the connection is closed. Default `0`, which falls back to `readTimeout`.
   */
  readHeaderTimeout?: number;
  /**
   * How long the request body may take to arrive after the head (`408`, or a closed connection when
   * the response has started). Default `0` (off).
   */
  readTimeout?: number;
  /**
   * How long each response write may wait for the peer to take the bytes; a client that stops
   * reading has its connection destroyed. Default `0` (off).
   */
  writeTimeout?: number;
  /**
   * How long a keep-alive connection may sit idle between requests before it is closed. Default
   * `0`, which falls back to `readTimeout` (so both `0`: idle connections stay open).
   */
  idleTimeout?: number;
  /** The largest request head in bytes (request line + headers); larger gets `431`. Default 1 MiB. */
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
  });
}
