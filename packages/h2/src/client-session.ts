// The client side of HTTP/2: sessions on sockets the client dialed, pooled per origin key, with
// stream capacity (the peer's SETTINGS_MAX_CONCURRENT_STREAMS), idle eviction, GOAWAY bookkeeping and
// the mapping of node:http2's errors to hyperwire's classes. Dialing (TCP, TLS, ALPN, proxies) is
// the client's; this module starts where a connected socket exists.
import http2 from "node:http2";
import type net from "node:net";
import { ClosedError, HTTPError, ProtocolError, TimeoutError } from "@hyperwire/core";
import { H2GoAwayError, H2NegotiationError, H2StreamResetError, h2ErrorCodeName } from "./errors.js";
import { DEFAULT_WINDOW_SIZE, HTTP2Settings } from "./settings.js";

/** The limits every client session is made with, in one place. Sizes are bytes. */
export const H2_CLIENT_DEFAULTS = Object.freeze({
  /** SETTINGS_MAX_HEADER_LIST_SIZE we advertise: the largest response head we accept (10 MiB). */
  maxHeaderListSize: 10 * 1024 * 1024,
  /**
   * Header fields per response head node:http2 accepts (its own default is 128, which real servers
   * with many cookies or CSP headers exceed).
   */
  maxHeaderListPairs: 4096,
});

const { NGHTTP2_REFUSED_STREAM } = http2.constants;
/** On each stream: its session, and whether its slot was given back (at the end of the exchange or at 'close'). */
const kSession = Symbol("hyperwire.session");
const kSlotFreed = Symbol("hyperwire.slotFreed");
type CountedStream = http2.ClientHttp2Stream & { [kSession]: H2ClientSession; [kSlotFreed]?: boolean };

// One listener for every stream (no closure per stream).
function onCountedClose(this: CountedStream): void {
  this[kSession].streamDone(this);
}

/** Options of {@link connectH2Session}. */
export interface H2ConnectOptions {
  /** `"https://host:port"` or `"http://host:port"` (h2c with prior knowledge). */
  authority: string;
  /** A connected socket (TLS that negotiated `h2`, or plain TCP for h2c). Owned by the session from now on. */
  socket: net.Socket;
  /** Receive windows. Default: `new HTTP2Settings()`. */
  settings?: HTTP2Settings;
  /** Time for the preface and the peer's first SETTINGS, in ms; `0` waits without limit. */
  timeoutMs: number;
  /** Aborts the setup; the reason is the rejection. */
  signal?: AbortSignal | undefined;
}

/** Methods node:http2 sends with END_STREAM on the HEADERS frame when no options say otherwise. */
const NO_PAYLOAD_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "DELETE"]);
// node copies request options, so one frozen object each serves every request.
const END_STREAM = Object.freeze({ endStream: true });
const KEEP_OPEN = Object.freeze({ endStream: false });

/**
 * One client HTTP/2 connection: the node:http2 session, the streams in flight on it and what the
 * peer allowed. For hyperwire's client, not for applications.
 *
 * ```ts
 * const session = await connectH2Session({ authority: "https://example.com:443", socket, timeoutMs: 30_000 });
 * session.reserve();
 * const stream = session.request({ ":method": "GET", ":path": "/" }, true);
 * ```
 */
export class H2ClientSession {
  /** The node:http2 session. */
  readonly session: http2.ClientHttp2Session;
  /** The pool key this session serves (set by the pool). */
  key = "";
  /** Streams opened and not yet closed. */
  active = 0;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says otherwise). */
  maxStreams = 2 ** 32 - 1;
  /** The GOAWAY the peer sent, if any: no new streams go on this session. */
  goAway: { readonly errorCode: number; readonly lastStreamId: number } | undefined;
  /** The session-level failure, once the session failed. */
  failure: HTTPError | undefined;
  /** Called when a stream closes with no stream left, and when the session is gone. */
  onIdle: ((session: H2ClientSession) => void) | undefined;
  onGone: ((session: H2ClientSession) => void) | undefined;
  #gone = false;
  #referenced = true;

  #slotFreed(): void {
    this.active--;
    if (this.active === 0) {
      this.#unref();
      this.onIdle?.(this);
    }
  }

  /** @internal Made by {@link connectH2Session}. */
  constructor(session: http2.ClientHttp2Session, socket: net.Socket) {
    this.session = session;
    // A session node closes gracefully only ends its side of the socket (and it is unref'ed while
    // idle); the socket itself must go when the session does, or the peer keeps it open.
    session.once("close", () => socket.destroy());
    session.on("remoteSettings", (s: http2.Settings) => {
      if (s.maxConcurrentStreams !== undefined) this.maxStreams = s.maxConcurrentStreams;
    });
    session.on("goaway", (errorCode: number, lastStreamId: number) => {
      this.goAway = { errorCode, lastStreamId };
      if (errorCode !== 0) {
        this.failure = new ProtocolError(
          `the server ended the HTTP/2 connection with GOAWAY ${h2ErrorCodeName(errorCode)}`,
          { code: "HW_H2_GOAWAY" },
        );
      }
      // Node closes the session itself (gracefully for NO_ERROR); it just must not get new streams.
      this.onGone?.(this);
    });
    session.on("error", (err: Error) => {
      this.failure ??= sessionError(err);
    });
    session.on("close", () => this.#markGone());
    session.on("frameError", noop);
  }

  /** True while new streams may go on this session. */
  get usable(): boolean {
    return (
      !this.#gone &&
      this.goAway === undefined &&
      !this.session.closed &&
      !this.session.destroyed &&
      this.active < this.maxStreams
    );
  }

  /** True when open and no stream is in flight. */
  get idle(): boolean {
    return this.active === 0 && !this.#gone && !this.session.closed && !this.session.destroyed;
  }

  /**
   * Takes one stream slot now, so that requests resuming in the same tick do not all see room that
   * only one of them gets. Followed by {@link request}, or by {@link release} when no stream is opened.
   */
  reserve(): void {
    this.active++;
    if (!this.#referenced) {
      this.#referenced = true;
      this.session.ref();
    }
  }

  /** Gives back a slot taken by {@link reserve} that no stream used. */
  release(): void {
    this.#slotFreed();
  }

  /**
   * Gives back the slot of a stream whose exchange is over (both sides ended, or reset); node's
   * 'close' comes a little later and then changes nothing. Idempotent.
   */
  streamDone(stream: http2.ClientHttp2Stream): void {
    const s = stream as CountedStream;
    if (s[kSlotFreed] === true) return;
    s[kSlotFreed] = true;
    this.#slotFreed();
  }

  /**
   * Opens a stream on a slot taken by {@link reserve}. `endStream`: the request has no body. Throws a
   * hyperwire error (never node's) when the session can no longer take streams; the slot is then
   * given back. The slot is freed when the stream closes; with `callerReportsClose` the caller's own
   * 'close' listener calls {@link streamDone} instead (one listener per stream, not two).
   */
  request(
    headers: http2.OutgoingHttpHeaders,
    endStream: boolean,
    callerReportsClose = false,
  ): http2.ClientHttp2Stream {
    let stream: http2.ClientHttp2Stream;
    try {
      // node:http2 ends GET, HEAD and DELETE requests by itself, and an options object costs a
      // validation pass per request (about a tenth of a bodiless request's CPU): pass none then.
      stream =
        endStream && NO_PAYLOAD_METHODS.has(headers[":method"] as string)
          ? this.session.request(headers)
          : this.session.request(headers, endStream ? END_STREAM : KEEP_OPEN);
    } catch (e) {
      this.#slotFreed();
      throw this.streamError(undefined, e);
    }
    // Both slots set now, so every stream takes one shape; 'close' comes once, so `on` (no wrapper).
    (stream as CountedStream)[kSession] = this;
    (stream as CountedStream)[kSlotFreed] = false;
    if (!callerReportsClose) stream.on("close", onCountedClose);
    return stream;
  }

  /**
   * The hyperwire error for a stream that ended without a complete response: `H2GoAwayError` when
   * a GOAWAY left it unprocessed, `H2StreamResetError` for a reset, `ProtocolError` otherwise.
   */
  streamError(stream: http2.ClientHttp2Stream | undefined, err: unknown): HTTPError {
    const goAway = this.goAway;
    const id = stream?.id;
    if (goAway !== undefined && (id === undefined || id > goAway.lastStreamId)) {
      return new H2GoAwayError(goAway.errorCode, goAway.lastStreamId, { cause: err });
    }
    if (err instanceof HTTPError) return err;
    const code = (err as { code?: string } | undefined)?.code;
    const rst = stream?.rstCode;
    if (rst !== undefined && rst !== 0 && code !== "ERR_HTTP2_SESSION_ERROR") {
      return new H2StreamResetError(rst, { cause: err });
    }
    if (this.failure !== undefined)
      return new ProtocolError(this.failure.message, { cause: err ?? this.failure });
    if (code === "ERR_HTTP2_INVALID_SESSION" || code === "ERR_HTTP2_GOAWAY_SESSION") {
      return new ProtocolError("the HTTP/2 connection closed before the request was sent", {
        code: "HW_CONNECTION_CLOSED",
        cause: err,
      });
    }
    if (code?.startsWith("ERR_HTTP2_")) {
      return new ProtocolError(`HTTP/2 error: ${(err as Error).message}`, { cause: err });
    }
    return new ProtocolError(
      `the HTTP/2 connection closed before the response was complete${err instanceof Error ? ` (${err.message})` : ""}`,
      { code: "HW_CONNECTION_CLOSED", cause: err },
    );
  }

  /** Stops new streams and closes once the streams in flight are done. */
  close(): void {
    this.#markGone();
    if (!this.session.closed && !this.session.destroyed) this.session.close();
  }

  /** Closes now; streams in flight fail. */
  destroy(): void {
    this.#markGone();
    if (!this.session.destroyed) this.session.destroy();
  }

  #unref(): void {
    if (this.#referenced) {
      this.#referenced = false;
      this.session.unref();
    }
  }

  #markGone(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.onGone?.(this);
  }

  /** @internal The setup finished: an idle session never holds the process open. */
  ready(): void {
    if (this.active === 0) this.#unref();
  }
}

/** True for the errors that mean the server did not process the request (any method may be retried). */
export function isUnprocessedStreamError(err: unknown): boolean {
  return (
    err instanceof H2GoAwayError ||
    (err instanceof H2StreamResetError && err.errorCode === NGHTTP2_REFUSED_STREAM)
  );
}

/**
 * Starts HTTP/2 on a connected socket and resolves once the peer's first SETTINGS arrived. Rejects
 * with `H2NegotiationError` when the peer does not speak HTTP/2, `TimeoutError` (`connect`) when
 * `timeoutMs` passes, or the signal's reason; the socket is closed then. For hyperwire's client.
 *
 * ```ts
 * const session = await connectH2Session({ authority: "http://127.0.0.1:8080", socket, timeoutMs: 5_000 });
 * ```
 */
export function connectH2Session(options: H2ConnectOptions): Promise<H2ClientSession> {
  const settings = options.settings ?? HTTP2Settings.from(undefined);
  const socket = options.socket;
  const started = performance.now();
  return new Promise<H2ClientSession>((resolve, reject) => {
    const session = http2.connect(options.authority, {
      createConnection: () => socket,
      settings: {
        enablePush: false,
        initialWindowSize: settings.initialWindowSize,
        maxHeaderListSize: H2_CLIENT_DEFAULTS.maxHeaderListSize,
      },
      maxHeaderListPairs: H2_CLIENT_DEFAULTS.maxHeaderListPairs,
    });
    const h2 = new H2ClientSession(session, socket);
    let timer: NodeJS.Timeout | undefined;
    const signal = options.signal;
    const cleanup = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      session.removeListener("remoteSettings", onSettings);
      session.removeListener("error", onError);
      session.removeListener("close", onClose);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (err: HTTPError): void => {
      cleanup();
      session.destroy();
      socket.destroy();
      reject(err);
    };
    const onSettings = (): void => {
      cleanup();
      h2.ready();
      resolve(h2);
    };
    const onError = (err: Error): void => fail(prefaceError(options.authority, err));
    const onClose = (): void => fail(prefaceError(options.authority, undefined));
    const onAbort = (): void => {
      const reason = signal?.reason;
      fail(
        reason instanceof HTTPError
          ? reason
          : new ClosedError("the HTTP/2 setup was aborted", { cause: reason }),
      );
    };
    session.once("remoteSettings", onSettings);
    session.on("error", onError);
    session.once("close", onClose);
    if (signal !== undefined) {
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
    }
    if (options.timeoutMs > 0) {
      timer = setTimeout(
        () => fail(new TimeoutError("connect", options.timeoutMs, performance.now() - started)),
        options.timeoutMs,
      );
      timer.unref();
    }
    if (settings.connectionWindowSize > DEFAULT_WINDOW_SIZE) {
      // Raised with a WINDOW_UPDATE right after the preface (the SETTINGS frame cannot carry it).
      const raise = (): void => {
        if (!session.destroyed) session.setLocalWindowSize(settings.connectionWindowSize);
      };
      if (session.connecting) session.once("connect", raise);
      else raise();
    }
  });
}

/**
 * A pool of client sessions per key (an origin, or an origin with non-default settings). It never
 * dials: the client hands it connected sockets. Idle sessions close after `idleTimeout` and are
 * unref'd meanwhile. For hyperwire's client, not for applications.
 *
 * ```ts
 * const pool = new H2SessionPool({ idleTimeout: 90_000 });
 * const session = pool.available(key) ?? (await pool.connect(key, { authority, socket, timeoutMs: 30_000 }));
 * ```
 */
export class H2SessionPool {
  /** Idle sessions close after this many ms; `0` keeps them until the peer or `close()` ends them. */
  readonly idleTimeout: number;
  readonly #sessions = new Map<string, H2ClientSession[]>();
  readonly #idleSince = new WeakMap<H2ClientSession, number>();
  readonly #timers = new WeakMap<H2ClientSession, NodeJS.Timeout>();
  #closed = false;

  readonly #onIdle = (s: H2ClientSession): void => this.#startIdle(s);
  readonly #onGone = (s: H2ClientSession): void => this.#remove(s);

  constructor(options: { idleTimeout: number }) {
    this.idleTimeout = options.idleTimeout;
  }

  /** A session for `key` with room for one more stream, if there is one. */
  available(key: string): H2ClientSession | undefined {
    const list = this.#sessions.get(key);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.usable) return s;
    }
    return undefined;
  }

  /** Connects a session on `options.socket` and adds it to the pool under `key`. */
  async connect(key: string, options: H2ConnectOptions): Promise<H2ClientSession> {
    const session = await connectH2Session(options);
    if (this.#closed || session.session.destroyed) {
      session.close();
      throw new ClosedError("the connection pool was closed while the HTTP/2 connection was set up");
    }
    session.key = key;
    session.onIdle = this.#onIdle;
    session.onGone = this.#onGone;
    let list = this.#sessions.get(key);
    if (list === undefined) {
      list = [];
      this.#sessions.set(key, list);
    }
    list.push(session);
    this.#startIdle(session);
    return session;
  }

  /** Idle sessions (open, no stream in flight), in all or for one key. */
  idleCount(key?: string): number {
    let n = 0;
    const count = (list: H2ClientSession[]): void => {
      for (const s of list) if (s.idle) n++;
    };
    if (key !== undefined) {
      const list = this.#sessions.get(key);
      if (list !== undefined) count(list);
    } else for (const list of this.#sessions.values()) count(list);
    return n;
  }

  /** Sessions open (idle or busy), for tests and diagnostics. */
  sessionCount(key?: string): number {
    if (key !== undefined) return this.#sessions.get(key)?.length ?? 0;
    let n = 0;
    for (const list of this.#sessions.values()) n += list.length;
    return n;
  }

  /** Closes every idle session now. */
  closeIdle(): void {
    for (const list of [...this.#sessions.values()]) {
      for (const s of [...list]) if (s.idle) s.close();
    }
  }

  /** Closes every session gracefully: no new streams, streams in flight finish. */
  close(): void {
    this.#closed = true;
    for (const list of [...this.#sessions.values()]) for (const s of [...list]) s.close();
  }

  #startIdle(s: H2ClientSession): void {
    if (this.idleTimeout === 0 || !s.idle) return;
    this.#idleSince.set(s, performance.now());
    if (this.#timers.has(s)) return;
    this.#armIdle(s, this.idleTimeout);
  }

  // One timer per idle period, not per stream: when it fires on a session that got busy meanwhile it
  // stops, and the next idle moment starts a new one.
  #armIdle(s: H2ClientSession, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(s);
      if (!s.idle) return;
      const left = this.idleTimeout - (performance.now() - (this.#idleSince.get(s) ?? 0));
      if (left > 1) this.#armIdle(s, left);
      else s.close();
    }, ms);
    timer.unref();
    this.#timers.set(s, timer);
  }

  #remove(s: H2ClientSession): void {
    const timer = this.#timers.get(s);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#timers.delete(s);
    }
    const list = this.#sessions.get(s.key);
    if (list === undefined) return;
    const i = list.indexOf(s);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#sessions.delete(s.key);
  }
}

function sessionError(err: Error): HTTPError {
  if (err instanceof HTTPError) return err;
  const code = (err as { code?: string }).code ?? "";
  if (code === "ERR_HTTP2_SESSION_ERROR") {
    return new ProtocolError(`the HTTP/2 connection failed: ${err.message}`, { cause: err });
  }
  return new ProtocolError(`the HTTP/2 connection failed (${err.message})`, {
    code: "HW_CONNECTION_CLOSED",
    cause: err,
  });
}

function prefaceError(authority: string, err: Error | undefined): HTTPError {
  if (err instanceof HTTPError) return err;
  return new H2NegotiationError(
    `${authority} did not answer the HTTP/2 connection preface with SETTINGS${err ? ` (${err.message})` : ""}; it may not speak HTTP/2${authority.startsWith("http:") ? " with prior knowledge (h2c)" : ""}`,
    "",
    { cause: err },
  );
}

function noop(): void {}
