// Session-level policy of a server-side HTTP/2 connection, for hyperwire's server: the SETTINGS it
// starts with, the connection receive window, the Rapid-Reset guard, the wait for the first stream
// and between streams, and graceful or forced close. What happens on each stream is the server's
// business; this file only counts streams and decides about the session.
import http2, { type ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import { ENHANCE_YOUR_CALM } from "./errors.js";
import { DEFAULT_WINDOW_SIZE, type HTTP2Settings } from "./settings.js";

/**
 * Resets beyond `maxConcurrentStreams` a peer may send on one session before it is told to go away
 * (HTTP.jl's Rapid-Reset bound: `maxConcurrentStreams + 100`).
 */
export const RAPID_RESET_ALLOWANCE = 100;

/**
 * How long a closing session's socket waits for the peer to close its side once node has ended it
 * (after the last stream closed), in ms, before it is destroyed. A peer that never closes must not
 * hold a shutdown.
 */
export const SESSION_LINGER_MS = 5_000;

/**
 * How often the server checks that a session with no stream opening or closing is still alive, with
 * a PING, in ms. nghttp2 ends a session on its own for some protocol errors (DATA
 * after END_STREAM, say): it sends GOAWAY and stops reading, and node tells JavaScript nothing, so
 * without this check such a session and its socket would stay open for good.
 */
export const SESSION_LIVENESS_MS = 30_000;

/** How long the PING of a liveness check may wait for its ACK before the session is destroyed, in ms. */
export const PING_ACK_TIMEOUT_MS = 10_000;

/** What a {@link ServerSession} enforces. Durations in ms (`0` = off), sizes in bytes. */
export interface ServerSessionOptions {
  /** Receive windows: `initialWindowSize` is advertised in SETTINGS, the connection window raised after. */
  readonly settings: HTTP2Settings;
  /** SETTINGS_MAX_CONCURRENT_STREAMS; `0` advertises none (no limit). */
  readonly maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the largest request header block (decoded). */
  readonly maxHeaderListSize: number;
  /** How long a new session may go without its first stream before it is closed. `0`: no limit. */
  readonly firstStreamTimeout: number;
  /** How long a session may sit with no streams before it is closed (GOAWAY, then close). `0`: no limit. */
  readonly idleTimeout: number;
  /**
   * Every this many ms, a session on which no stream opened or closed since the last check gets a
   * PING; no ACK within {@link PING_ACK_TIMEOUT_MS} (or `pingAckTimeout`) destroys the session.
   * Default {@link SESSION_LIVENESS_MS}; `0`: no check.
   */
  readonly livenessInterval?: number;
  /** How long the liveness PING waits for its ACK, in ms. Default {@link PING_ACK_TIMEOUT_MS}. */
  readonly pingAckTimeout?: number;
  /**
   * How long a closing session's socket waits for the peer to close its side after node ended it,
   * in ms. Default {@link SESSION_LINGER_MS}.
   */
  readonly lingerTimeout?: number;
}

/**
 * The liveness tick of a session: when no stream opened or closed since the last tick, ask the peer
 * for a PING ACK, and destroy the session when none comes. A per-session interval rather than node's
 * session timeout, which node refreshes on every frame (about 5 % of a small response's CPU).
 */
function onLivenessTick(owner: ServerSession): void {
  const session = owner.session;
  if (session.destroyed) return;
  if (owner.streamEvents !== owner.streamEventsAtTick) {
    owner.streamEventsAtTick = owner.streamEvents;
    return;
  }
  if (owner.pingInFlight) return;
  const timer = setTimeout(destroyUnanswered, owner.pingAckTimeout, owner).unref();
  let sent = false;
  try {
    owner.pingInFlight = true;
    sent = session.ping((err) => {
      owner.pingInFlight = false;
      clearTimeout(timer);
      if (err) owner.destroy();
    });
  } catch {
    // A session node already considers closing refuses the PING: nothing left to wait for.
  }
  if (!sent) {
    clearTimeout(timer);
    owner.destroy();
  }
}

function destroyUnanswered(owner: ServerSession): void {
  owner.destroy();
}

function onIdle(session: ServerSession): void {
  session.idleTimer = undefined;
  if (session.active === 0) session.close();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

function lingerThenDestroy(socket: Socket, ms: number): void {
  setTimeout(destroySocket, ms, socket).unref();
}

function ignore(): void {}

/**
 * One server-side HTTP/2 session and its policy. For hyperwire's server: it runs node:http2's
 * session on an accepted socket (cleartext after the preface, or TLS after ALPN chose `h2`), and the
 * server tells it when each stream opens and closes.
 *
 * ```ts
 * const s = new ServerSession(socket, { settings: new HTTP2Settings(), maxConcurrentStreams: 100,
 *   maxHeaderListSize: 2 << 20, firstStreamTimeout: 0, idleTimeout: 0 });
 * s.session.on("stream", (stream) => { s.streamOpened(); stream.once("close", () => s.streamClosed(false)); });
 * ```
 */
export class ServerSession {
  /** node:http2's session (listen for `stream` on it). */
  readonly session: ServerHttp2Session;
  /** The accepted socket under the session (the TLS socket for `h2` over TLS). */
  readonly socket: Socket;
  /**
   * Streams open now, as the server counts them: it may count a stream off once its response has
   * ended with little left to send, before node closes it (see {@link streamClosed}).
   */
  active = 0;
  /** Streams the peer reset before their response ended. */
  peerResets = 0;
  /** @internal The idle (or first-stream) timer. */
  idleTimer: NodeJS.Timeout | undefined;
  /** @internal How long a liveness PING waits for its ACK. */
  readonly pingAckTimeout: number;
  /** @internal Streams opened plus closed so far, and that count at the last liveness tick. */
  streamEvents = 0;
  /** @internal */
  streamEventsAtTick = 0;
  /** @internal True while a liveness PING waits for its ACK. */
  pingInFlight = false;
  #liveness: NodeJS.Timeout | undefined;
  readonly #options: ServerSessionOptions;
  readonly #resetLimit: number;
  #closing = false;
  #finished = false;

  constructor(socket: Socket, options: ServerSessionOptions) {
    this.socket = socket;
    this.#options = options;
    this.#resetLimit = (options.maxConcurrentStreams || 100) + RAPID_RESET_ALLOWANCE;
    const settings: http2.Settings = {
      enablePush: false,
      // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): clients may open WebSockets (and other
      // tunnels) with an extended CONNECT; the server's handlers decide whether to accept them.
      enableConnectProtocol: true,
      initialWindowSize: options.settings.initialWindowSize,
      maxHeaderListSize: options.maxHeaderListSize,
    };
    if (options.maxConcurrentStreams > 0) settings.maxConcurrentStreams = options.maxConcurrentStreams;
    const session = http2.performServerHandshake(socket, { settings });
    // Session errors (a peer's protocol violation, a reset socket) end the session; node reports them
    // here and would crash the process without a listener.
    session.on("error", ignore);
    const window = options.settings.connectionWindowSize;
    if (window > DEFAULT_WINDOW_SIZE) session.setLocalWindowSize(window);
    this.session = session;
    this.pingAckTimeout = options.pingAckTimeout ?? PING_ACK_TIMEOUT_MS;
    const liveness = options.livenessInterval ?? SESSION_LIVENESS_MS;
    if (liveness > 0) {
      this.#liveness = setInterval(onLivenessTick, liveness, this).unref();
      session.once("close", () => clearInterval(this.#liveness));
    }
    this.#arm(options.firstStreamTimeout || options.idleTimeout);
  }

  #arm(ms: number): void {
    if (ms > 0) this.idleTimer = setTimeout(onIdle, ms, this).unref();
  }

  /** True once {@link close} (or the Rapid-Reset guard) said GOAWAY. */
  get closing(): boolean {
    return this.#closing;
  }

  /** A stream opened: the idle timer stops. */
  streamOpened(): void {
    this.active++;
    this.streamEvents++;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  /**
   * A stream closed, or its response ended and the server counts it off already (node then closes
   * the stream on its own once the last bytes are out; a graceful close waits for that). `peerReset`:
   * the peer reset it before its response ended; past
   * `maxConcurrentStreams + 100` of those the session says GOAWAY(ENHANCE_YOUR_CALM), takes no new
   * streams, and closes when the open ones are done.
   */
  streamClosed(peerReset: boolean): void {
    this.active--;
    this.streamEvents++;
    if (peerReset && ++this.peerResets > this.#resetLimit && !this.#closing) {
      this.#closing = true;
      if (!this.session.destroyed) this.session.goaway(ENHANCE_YOUR_CALM);
    }
    if (this.active !== 0) return;
    if (this.#closing) this.#finish();
    else this.#arm(this.#options.idleTimeout);
  }

  /**
   * Graceful close: GOAWAY(NO_ERROR, the last stream id processed) now; open streams finish, then
   * the session and its socket close. New streams are refused by node:http2 from now on.
   */
  close(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (!this.#closing) {
      this.#closing = true;
      if (!this.session.destroyed) this.session.goaway();
    }
    if (this.active === 0) this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (!this.session.destroyed) this.session.close();
    // node ends the socket once the last open stream has closed (a response may still be draining
    // to its reader), then waits for the peer to close its side: a peer that never does is dropped
    // SESSION_LINGER_MS after that.
    const socket = this.socket;
    const linger = this.#options.lingerTimeout ?? SESSION_LINGER_MS;
    if (socket.writableFinished || socket.destroyed) lingerThenDestroy(socket, linger);
    else socket.once("finish", () => lingerThenDestroy(socket, linger));
  }

  /** Force close: the session and its socket, now. */
  destroy(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (this.#liveness !== undefined) clearInterval(this.#liveness);
    this.idleTimer = undefined;
    this.#closing = true;
    this.session.destroy();
    this.socket.destroy();
  }
}
