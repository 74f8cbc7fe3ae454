// The connection pool. One undici `Client` (one socket, no pipelining) per connection we dialed, so
// that idle limits, per-host caps with waiters, idle counts and closing idle connections are ours,
// while undici does the HTTP/1.1 framing.

import { createRequire } from "node:module";
import type net from "node:net";
import type tls from "node:tls";
import {
  ArgumentError,
  ClosedError,
  type HTTPError,
  ProtocolError,
  ProxyConfig,
  type ProxyInit,
  TLSHandshakeError,
} from "@hyperwire/core";
import {
  type H2ClientSession,
  H2NegotiationError,
  H2SessionPool,
  HTTP2Settings,
  type HTTP2SettingsInit,
} from "@hyperwire/h2";
import type { Client as UndiciClient } from "undici";
import { canceled, type Dialed, dial } from "./dial.js";
import { RetryBucket } from "./retry.js";

/**
 * undici's HTTP/1.1 `Client`, the only part of undici we use, loaded when the first HTTP/1.1
 * connection is made. Loaded from its own module: undici's index loads every dispatcher, fetch, the
 * cache and mocks besides (about 4 MB more heap and 40 ms more start-up). Even that module is 2.8 MB
 * of heap, which a program that only serves (through the `@hyperwire/http` umbrella, say) would
 * carry from its start; bench/README.md (server-h1, session 9) shows what an early heap can do to
 * V8's young generation and so to a server's speed. A heap that big from the start also changes
 * V8's garbage collection of large buffers (incremental marking starts sooner), which showed as a
 * 2× slower 1 MiB WebSocket receive. If a future undici moves the file, the index is used instead.
 */
let engineClientClass: typeof UndiciClient | undefined;

function engineClient(): typeof UndiciClient {
  if (engineClientClass !== undefined) return engineClientClass;
  const require = createRequire(import.meta.url);
  try {
    const direct = require("undici/lib/dispatcher/client.js") as typeof UndiciClient;
    if (typeof direct === "function") engineClientClass = direct;
  } catch {
    // Not there in this undici version: the index has it.
  }
  engineClientClass ??= (require("undici") as typeof import("undici")).Client;
  return engineClientClass;
}
type EngineClient = UndiciClient;

/** Options of {@link Transport}. */
export interface TransportOptions {
  /** Node TLS options for `https:` (`ca`, `rejectUnauthorized`, `cert`, `key`, ...). */
  tls?: tls.ConnectionOptions;
  /** Idle keep-alive connections kept per origin. Default 2; must be > 0. */
  maxIdlePerHost?: number;
  /** Idle keep-alive connections kept in all. Default 64; must be > 0. */
  maxIdleTotal?: number;
  /**
   * Connections per origin, counting idle, busy and dialing ones; `0` means no limit (the default).
   * Requests over the limit wait for a connection, bounded by their deadline and signal.
   */
  maxConnsPerHost?: number;
  /** An idle connection is closed after this many ms. Default 90 000; `0` keeps it until the peer closes. */
  idleTimeout?: number;
  /** Local address to bind outgoing connections to. */
  localAddress?: string;
  /** Largest response head accepted, in bytes. Default 64 KiB (a larger head is a `ParseError`). */
  maxResponseHeaderBytes?: number;
  /**
   * The proxy: a URL, a `ProxyConfig`, or `null` for direct (the default: a Transport does not read
   * the environment; a `Client` made without a transport does).
   */
  proxy?: ProxyInit;
  /**
   * Offer HTTP/2 by ALPN (`h2, http/1.1`) on `https:` and use it when the server picks it; requests
   * to one origin then share one connection. Default true. Plain `http:` is HTTP/1.1 unless a
   * request sets `protocol: 'h2'`.
   */
  preferHttp2?: boolean;
  /** Receive windows of the HTTP/2 connections this transport makes. Default: `new HTTP2Settings()` (65 535 bytes each). */
  http2Settings?: HTTP2Settings | HTTP2SettingsInit;
  /** The retry budget of requests through this transport; `null` disables it. Default: a new `RetryBucket()`. */
  retryBucket?: RetryBucket | null;
}

/** The defaults of {@link TransportOptions}, in one place. */
export const TRANSPORT_DEFAULTS = Object.freeze({
  maxIdlePerHost: 2,
  maxIdleTotal: 64,
  maxConnsPerHost: 0,
  idleTimeout: 90_000,
  maxResponseHeaderBytes: 64 * 1024,
  preferHttp2: true,
});

/** Where a request goes: one pool per origin key (`"https://host:443"`). */
export interface Origin {
  readonly key: string;
  /** Host name or IP literal, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  /** TLS options of this origin's pool, replacing the transport's (a per-call `tls` option). */
  readonly tls?: tls.ConnectionOptions | undefined;
  /** A proxy that tunnels to the origin (CONNECT or SOCKS5). */
  readonly tunnel?: URL | undefined;
  /** How errors name this peer when it is a forward proxy rather than the origin. */
  readonly label?: string | undefined;
  /** A forward proxy (absolute-form targets): never HTTP/2. */
  readonly forward?: boolean | undefined;
}

/** ALPN offers: HTTP/2 preferred, or HTTP/2 required (`protocol: 'h2'`). */
const ALPN_H2_OR_H1: readonly string[] = Object.freeze(["h2", "http/1.1"]);
const ALPN_H2_ONLY: readonly string[] = Object.freeze(["h2"]);
/** Rounds an HTTP/2 acquire may wait for a new session before giving up (each round is one connection). */
const MAX_H2_ROUNDS = 8;

/** How an acquire may wait: the connect timeout of this request and the signal that ends it. */
export interface AcquireOptions {
  connectTimeout: number;
  signal?: AbortSignal | undefined;
  /** Dial a new connection even when an idle one exists (the retry after a stale connection). */
  fresh?: boolean;
}

// keepAliveTimeout must be > 0 for undici; "never" is a day (the peer closes long before).
const NO_IDLE_LIMIT_MS = 24 * 60 * 60 * 1000;

/** One pooled connection: our socket, driven by an undici `Client`. */
export class Connection {
  readonly origin: Origin;
  readonly engine: EngineClient;
  readonly socket: net.Socket;
  /** ALPN's choice (`"http/1.1"` for plain TCP). */
  readonly protocol: string;
  /** Exchanges completed on this socket; `> 0` means it is a reused keep-alive connection. */
  served = 0;
  /** False once the socket closed or the connection was discarded. */
  alive = true;

  constructor(
    origin: Origin,
    dialed: Dialed,
    idleTimeout: number,
    maxHeaderSize: number,
    onGone: () => void,
  ) {
    this.origin = origin;
    this.socket = dialed.socket;
    this.protocol = dialed.protocol;
    let handed: net.Socket | undefined = dialed.socket;
    const keepAlive = idleTimeout > 0 ? idleTimeout : NO_IDLE_LIMIT_MS;
    this.engine = new (engineClient())(
      `${origin.secure ? "https" : "http"}://${hostForUrl(origin.host)}:${origin.port}`,
      {
        // undici needs the callback called asynchronously (see FACTS.md). The socket is handed once:
        // if undici asks again, the connection died under it and the exchange fails as stale.
        connect: (_opts, callback) => {
          const socket = handed;
          handed = undefined;
          if (socket && !socket.destroyed) setImmediate(callback, null, socket);
          else setImmediate(callback, new ClosedError("the pooled connection was closed by the peer"), null);
        },
        pipelining: 1,
        keepAliveTimeout: keepAlive,
        keepAliveMaxTimeout: keepAlive,
        headersTimeout: 0,
        bodyTimeout: 0,
        maxHeaderSize,
        strictContentLength: true,
      },
    );
    this.engine.on("disconnect", () => {
      if (!this.alive) return;
      this.alive = false;
      onGone();
    });
    // Errors surface through the exchange handler; the engine's own error events must not crash.
    this.engine.on("connectionError", noop);
  }

  /** Closes the socket now (an in-flight exchange fails). */
  destroy(): void {
    this.engine.destroy().catch(noop);
    // The engine only owns the socket once it took it; close it either way.
    this.socket.destroy();
  }
}

interface Waiter {
  resolve: (conn: Connection) => void;
  reject: (err: HTTPError) => void;
  options: AcquireOptions;
  onAbort: (() => void) | undefined;
}

/** The connections of one origin. */
class HostPool {
  readonly origin: Origin;
  /** Idle connections, most recently used last. */
  readonly idle: Connection[] = [];
  /** Idle, busy and dialing connections. */
  total = 0;
  readonly waiters: Waiter[] = [];

  constructor(origin: Origin) {
    this.origin = origin;
  }
}

/**
 * Pools connections per origin and dials new ones. Shared by every request of the clients that use
 * it; `close()` ends it.
 *
 * ```ts
 * const transport = new Transport({ maxConnsPerHost: 8, idleTimeout: 30_000 });
 * const client = new Client({ transport });
 * ```
 */
export class Transport {
  readonly maxIdlePerHost: number;
  readonly maxIdleTotal: number;
  readonly maxConnsPerHost: number;
  readonly idleTimeout: number;
  readonly localAddress: string | undefined;
  readonly tls: tls.ConnectionOptions | undefined;
  readonly maxResponseHeaderBytes: number;
  /** Where requests go through; `null` for direct. */
  readonly proxy: ProxyConfig | null;
  /** The retry budget of requests through this transport, or `null` for none. */
  readonly retryBucket: RetryBucket | null;
  /** Offer HTTP/2 by ALPN on `https:`. */
  readonly preferHttp2: boolean;
  /** Receive windows of the HTTP/2 connections this transport makes. */
  readonly http2Settings: HTTP2Settings;
  readonly #pools = new Map<string, HostPool>();
  #idleTotal = 0;
  #closed = false;
  /** HTTP/2 sessions, per origin key (plus a settings suffix for a client's own settings). */
  readonly #h2: H2SessionPool;
  /** Origins that answered an `h2, http/1.1` offer with HTTP/1.1 (until closeIdleConnections). */
  readonly #h1Only = new Set<string>();
  /** HTTP/2 dials in flight: concurrent first requests to an origin wait for one, not dial each. */
  readonly #h2Dials = new Map<string, PendingDial>();

  constructor(options: TransportOptions = {}) {
    const o = { ...TRANSPORT_DEFAULTS, ...definedOnly(options) };
    this.maxIdlePerHost = positiveInt("maxIdlePerHost", o.maxIdlePerHost);
    this.maxIdleTotal = positiveInt("maxIdleTotal", o.maxIdleTotal);
    this.maxConnsPerHost = nonNegativeInt("maxConnsPerHost", o.maxConnsPerHost);
    this.idleTimeout = nonNegativeInt("idleTimeout", o.idleTimeout);
    this.maxResponseHeaderBytes = positiveInt("maxResponseHeaderBytes", o.maxResponseHeaderBytes);
    this.localAddress = options.localAddress;
    this.tls = options.tls;
    this.proxy = toProxyConfig(options.proxy);
    if (typeof o.preferHttp2 !== "boolean") throw new ArgumentError("preferHttp2 must be a boolean");
    this.preferHttp2 = o.preferHttp2;
    this.http2Settings = HTTP2Settings.from(options.http2Settings);
    this.#h2 = new H2SessionPool({ idleTimeout: this.idleTimeout });
    if (
      options.retryBucket !== undefined &&
      options.retryBucket !== null &&
      !(options.retryBucket instanceof RetryBucket)
    ) {
      throw new ArgumentError("retryBucket must be a RetryBucket or null");
    }
    this.retryBucket = options.retryBucket === undefined ? new RetryBucket() : options.retryBucket;
  }

  /** False once {@link close} was called. */
  get isOpen(): boolean {
    return !this.#closed;
  }

  /**
   * A connection to `origin`: an idle one when there is one, else a new one, else (at
   * `maxConnsPerHost`) the next one released. Synchronous when an idle connection is at hand.
   * @internal The request pipeline's; applications send requests instead.
   */
  acquire(origin: Origin, options: AcquireOptions): Connection | Promise<Connection> {
    if (this.#closed) return Promise.reject(closedError());
    let pool = this.#pools.get(origin.key);
    if (pool === undefined) {
      pool = new HostPool(origin);
      this.#pools.set(origin.key, pool);
    }
    if (!options.fresh) {
      const idle = pool.idle;
      while (idle.length > 0) {
        const conn = idle.pop()!;
        this.#idleTotal--;
        if (conn.alive && !conn.socket.destroyed) return conn;
        // Closed before its 'disconnect' arrived: #gone will not find it in `idle` any more, so
        // free its slot here (else maxConnsPerHost loses a connection for good).
        conn.alive = false;
        pool.total--;
        conn.destroy();
      }
    }
    if (this.maxConnsPerHost === 0 || pool.total < this.maxConnsPerHost) return this.#dial(pool, options);
    if (options.fresh && pool.idle.length > 0) {
      // A fresh connection is wanted at the cap: give up an idle one to make room.
      this.#discardIdle(pool, pool.idle[0]!);
      return this.#dial(pool, options);
    }
    return this.#wait(pool, options);
  }

  /**
   * Gives a connection back after an exchange. A connection that cannot be reused (it failed, the
   * body was not read to the end, the peer said `Connection: close`) is closed.
   * @internal The request pipeline's.
   */
  release(conn: Connection, reusable: boolean): void {
    const pool = this.#pools.get(conn.origin.key);
    if (pool === undefined) {
      conn.alive = false;
      conn.destroy();
      return;
    }
    conn.served++;
    if (!reusable || !conn.alive || conn.socket.destroyed || this.#closed) {
      this.#drop(pool, conn);
      return;
    }
    const waiter = pool.waiters.shift();
    if (waiter !== undefined) {
      settleWaiter(waiter);
      waiter.resolve(conn);
      return;
    }
    if (pool.idle.length >= this.maxIdlePerHost || this.#idleTotal >= this.maxIdleTotal) {
      this.#drop(pool, conn);
      return;
    }
    pool.idle.push(conn);
    this.#idleTotal++;
  }

  /**
   * Closes every idle connection (HTTP/1.1 connections and HTTP/2 sessions with no stream in flight)
   * now, and forgets which origins answered HTTP/1.1 to an HTTP/2 offer. Busy connections finish
   * their exchanges first.
   */
  closeIdleConnections(): void {
    this.#h1Only.clear();
    this.#h2.closeIdle();
    for (const pool of this.#pools.values()) {
      for (const conn of pool.idle.splice(0)) {
        this.#idleTotal--;
        conn.alive = false;
        pool.total--;
        conn.destroy();
      }
      this.#pump(pool);
    }
  }

  /**
   * Idle connections (HTTP/1.1 ones and HTTP/2 sessions with no stream in flight) in all, or for one
   * origin key such as `"https://example.com:443"`.
   */
  idleConnectionCount(key?: string): number {
    if (key === undefined) return this.#idleTotal + this.#h2.idleCount();
    return (this.#pools.get(key)?.idle.length ?? 0) + this.#h2.idleCount(key);
  }

  /** HTTP/2 sessions open (idle or busy), in all or for one origin key. For tests and diagnostics. */
  http2SessionCount(key?: string): number {
    return this.#h2.sessionCount(key);
  }

  /** @internal True when `key` answered an `h2, http/1.1` offer with HTTP/1.1 (until closeIdleConnections). */
  isH1Only(key: string): boolean {
    return this.#h1Only.has(key);
  }

  /**
   * @internal A session for `origin` with one stream slot taken for the caller: an open one with
   * room, or a new one. `mode: 'auto'` (https only) offers `h2, http/1.1`; when the server picks
   * HTTP/1.1 the result is `null`, the connection waits in the HTTP/1.1 pool and the origin is
   * remembered as HTTP/1.1-only. `mode: 'h2'` requires HTTP/2 (`H2NegotiationError` otherwise; on
   * `http:` it is h2c with prior knowledge). `fresh` skips the open sessions (a retry).
   */
  acquireH2(
    origin: Origin,
    options: AcquireOptions,
    mode: "auto" | "h2",
    settings: HTTP2Settings | undefined,
  ): H2ClientSession | Promise<H2ClientSession | null> {
    if (this.#closed) return Promise.reject(closedError());
    const s = settings ?? this.http2Settings;
    const key = s === this.http2Settings ? origin.key : `${origin.key}#h2s${settingsId(s)}`;
    if (!options.fresh) {
      const session = this.#h2.available(key);
      if (session !== undefined) {
        session.reserve();
        return session;
      }
    }
    return this.#acquireH2Slow(origin, key, options, mode, s);
  }

  async #acquireH2Slow(
    origin: Origin,
    key: string,
    options: AcquireOptions,
    mode: "auto" | "h2",
    settings: HTTP2Settings,
  ): Promise<H2ClientSession | null> {
    const dialKey = `${mode} ${key}`;
    for (let round = 0; round < MAX_H2_ROUNDS; round++) {
      let pending = this.#h2Dials.get(dialKey);
      // A dial every waiter gave up on is being aborted: not one to join.
      if (pending === undefined || pending.controller.signal.aborted) {
        const controller = new AbortController();
        const started: PendingDial = {
          promise: this.#h2Dial(origin, key, options.connectTimeout, mode, settings, controller.signal),
          waiters: 0,
          controller,
        };
        pending = started;
        this.#h2Dials.set(dialKey, started);
        const forget = (): void => {
          if (this.#h2Dials.get(dialKey) === started) this.#h2Dials.delete(dialKey);
        };
        started.promise.then(forget, forget);
      }
      const session = await waitForDial(pending, options.signal);
      if (this.#closed) throw closedError();
      if (session === null) return null;
      // The new session may already be full (the peer allows fewer streams than wait here): take any
      // session with room, else the next round dials one more.
      const room = session.usable ? session : this.#h2.available(key);
      if (room !== undefined) {
        room.reserve();
        return room;
      }
    }
    throw new ProtocolError(
      `could not get an HTTP/2 stream to ${origin.key}: ${MAX_H2_ROUNDS} new connections in a row were full or closed at once`,
    );
  }

  /** Dials for HTTP/2: TLS with ALPN (or TCP for h2c), then the preface; `null` when ALPN chose HTTP/1.1. */
  async #h2Dial(
    origin: Origin,
    key: string,
    connectTimeout: number,
    mode: "auto" | "h2",
    settings: HTTP2Settings,
    signal: AbortSignal,
  ): Promise<H2ClientSession | null> {
    const started = performance.now();
    const { host, port, secure } = origin;
    let dialed: Dialed;
    try {
      dialed = await dial({
        host,
        port,
        secure,
        tls: origin.tls ?? this.tls,
        proxy: origin.tunnel,
        label: origin.label,
        localAddress: this.localAddress,
        connectTimeout,
        signal,
        alpn: mode === "h2" ? ALPN_H2_ONLY : ALPN_H2_OR_H1,
      });
    } catch (e) {
      if (mode === "h2" && e instanceof TLSHandshakeError && /no.?application.?protocol/i.test(e.message)) {
        throw new H2NegotiationError(
          `${hostForUrl(host)}:${port} does not offer HTTP/2 (its TLS handshake refused ALPN "h2"); protocol: 'h2' requires it`,
          "",
          { cause: e },
        );
      }
      throw e;
    }
    if (secure && dialed.protocol !== "h2") {
      if (mode === "h2") {
        dialed.socket.destroy();
        throw new H2NegotiationError(
          `${hostForUrl(host)}:${port} chose ${dialed.protocol} by ALPN, not h2; protocol: 'h2' requires HTTP/2 (use 'auto' to fall back)`,
          dialed.protocol,
        );
      }
      this.#h1Only.add(origin.key);
      this.#adoptH1(origin, dialed);
      return null;
    }
    const left = connectTimeout > 0 ? Math.max(1, connectTimeout - (performance.now() - started)) : 0;
    return this.#h2.connect(key, {
      authority: `${secure ? "https" : "http"}://${hostForUrl(host)}:${port}`,
      socket: dialed.socket,
      settings,
      timeoutMs: left,
      signal,
    });
  }

  /**
   * An ALPN dial that came back HTTP/1.1 is not wasted: it becomes a connection of the origin's
   * HTTP/1.1 pool (handed to a waiter, or idle for the request that dialed it to take next).
   */
  #adoptH1(origin: Origin, dialed: Dialed): void {
    if (this.#closed) {
      dialed.socket.destroy();
      return;
    }
    let pool = this.#pools.get(origin.key);
    if (pool === undefined) {
      pool = new HostPool(origin);
      this.#pools.set(origin.key, pool);
    }
    const owner = pool;
    owner.total++;
    const conn: Connection = new Connection(
      origin,
      dialed,
      this.idleTimeout,
      this.maxResponseHeaderBytes,
      () => this.#gone(owner, conn),
    );
    const waiter = owner.waiters.shift();
    if (waiter !== undefined) {
      settleWaiter(waiter);
      waiter.resolve(conn);
      return;
    }
    owner.idle.push(conn);
    this.#idleTotal++;
  }

  /**
   * Closes idle connections and refuses new requests; requests in flight finish. Requests waiting
   * for a connection get a `ClosedError`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const pending of this.#h2Dials.values()) pending.controller.abort(closedError());
    this.#h2.close();
    this.closeIdleConnections();
    for (const pool of this.#pools.values()) {
      for (const waiter of pool.waiters.splice(0)) {
        settleWaiter(waiter);
        waiter.reject(closedError());
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #dial(pool: HostPool, options: AcquireOptions): Promise<Connection> {
    pool.total++;
    const { origin } = pool;
    return dial({
      host: origin.host,
      port: origin.port,
      secure: origin.secure,
      tls: origin.tls ?? this.tls,
      proxy: origin.tunnel,
      label: origin.label,
      localAddress: this.localAddress,
      connectTimeout: options.connectTimeout,
      signal: options.signal,
    }).then(
      (dialed) => {
        const conn: Connection = new Connection(
          origin,
          dialed,
          this.idleTimeout,
          this.maxResponseHeaderBytes,
          () => this.#gone(pool, conn),
        );
        if (this.#closed) conn.destroy();
        return conn;
      },
      (err: unknown) => {
        pool.total--;
        this.#pump(pool);
        throw err;
      },
    );
  }

  #wait(pool: HostPool, options: AcquireOptions): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, options, onAbort: undefined };
      const signal = options.signal;
      if (signal) {
        if (signal.aborted) {
          reject(canceled(signal.reason));
          return;
        }
        waiter.onAbort = () => {
          const i = pool.waiters.indexOf(waiter);
          if (i >= 0) pool.waiters.splice(i, 1);
          reject(canceled(signal.reason));
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      pool.waiters.push(waiter);
    });
  }

  /** A connection went away (closed by the peer or by its idle timeout). */
  #gone(pool: HostPool, conn: Connection): void {
    const i = pool.idle.indexOf(conn);
    if (i >= 0) {
      pool.idle.splice(i, 1);
      this.#idleTotal--;
      pool.total--;
      conn.destroy();
      this.#pump(pool);
      this.#forgetIfEmpty(pool);
    }
    // A busy connection is dropped by release() when its exchange ends.
  }

  #drop(pool: HostPool, conn: Connection): void {
    conn.alive = false;
    pool.total--;
    conn.destroy();
    this.#pump(pool);
    this.#forgetIfEmpty(pool);
  }

  /** A pool with no connections and no waiters is forgotten (per-call TLS pools would pile up otherwise). */
  #forgetIfEmpty(pool: HostPool): void {
    if (pool.total === 0 && pool.waiters.length === 0 && this.#pools.get(pool.origin.key) === pool) {
      this.#pools.delete(pool.origin.key);
    }
  }

  #discardIdle(pool: HostPool, conn: Connection): void {
    pool.idle.splice(pool.idle.indexOf(conn), 1);
    this.#idleTotal--;
    this.#drop(pool, conn);
  }

  /** There is room for one more connection: dial it for the first waiter. */
  #pump(pool: HostPool): void {
    if (pool.waiters.length === 0 || this.#closed) return;
    if (this.maxConnsPerHost !== 0 && pool.total >= this.maxConnsPerHost) return;
    const waiter = pool.waiters.shift()!;
    settleWaiter(waiter);
    this.#dial(pool, waiter.options).then(waiter.resolve, waiter.reject);
  }
}

// One pool key suffix per distinct settings object a client brings (its own http2Settings).
const settingsIds = new WeakMap<HTTP2Settings, number>();
let nextSettingsId = 1;

function settingsId(settings: HTTP2Settings): number {
  let id = settingsIds.get(settings);
  if (id === undefined) {
    id = nextSettingsId++;
    settingsIds.set(settings, id);
  }
  return id;
}

/** An HTTP/2 dial several requests may wait for; it is aborted when the last of them gives up. */
interface PendingDial {
  readonly promise: Promise<H2ClientSession | null>;
  waiters: number;
  readonly controller: AbortController;
}

/**
 * The dial's outcome, or the signal's reason as a `CanceledError` when it aborts first. The dial
 * goes on for the other requests waiting for it, and stops (closing its socket) when none is left.
 */
function waitForDial(pending: PendingDial, signal: AbortSignal | undefined): Promise<H2ClientSession | null> {
  if (signal === undefined) {
    pending.waiters++;
    return pending.promise;
  }
  if (signal.aborted) return Promise.reject(canceled(signal.reason));
  pending.waiters++;
  return new Promise<H2ClientSession | null>((resolve, reject) => {
    const onAbort = (): void => {
      if (--pending.waiters === 0) pending.controller.abort(canceled(signal.reason));
      reject(canceled(signal.reason));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pending.promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function settleWaiter(waiter: Waiter): void {
  if (waiter.onAbort) waiter.options.signal?.removeEventListener("abort", waiter.onAbort);
}

function closedError(): ClosedError {
  return new ClosedError("the transport is closed; create a new Transport (or Client) to send more requests");
}

/** A proxy option as a `ProxyConfig` (`null`: direct). */
export function toProxyConfig(init: ProxyInit | undefined): ProxyConfig | null {
  if (init === undefined || init === null) return null;
  if (init instanceof ProxyConfig) return init.isDirect ? null : init;
  return ProxyConfig.fromUrl(init);
}

/** The host as it appears in a URL (IPv6 in brackets). */
export function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ArgumentError(`${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function nonNegativeInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ArgumentError(`${name} must be an integer ≥ 0 (0: no limit), got ${String(v)}`);
  }
  return v;
}

function noop(): void {}
