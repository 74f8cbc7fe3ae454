// The WebSocket a user holds: ws's framing underneath, with messages as an async iterable, sends
// that resolve once the connection has taken them (back-pressure past SEND_HIGH_WATER), a bounded
// close handshake, read-idle and ping/pong liveness. Per connection it adds one object, two arrays
// and module-level listeners to ws's socket: 10,000 idle connections should cost little more than ws's.

import type { Duplex } from "node:stream";
import { ArgumentError, IdleTimer, WebSocketError } from "@hyperwire/core";
import type { WebSocket as WsSocket } from "ws";

/** A message: `string` for text, `Uint8Array` for binary. */
export type Message = string | Uint8Array;

/** What `send` takes: one message, or an iterable of chunks sent as one fragmented message. */
export type SendData =
  | string
  | Uint8Array
  | ArrayBuffer
  | Iterable<string | Uint8Array>
  | AsyncIterable<string | Uint8Array>;

/** Liveness and limits shared by both sides. Durations in ms; `0` disables. */
export interface SessionOptions {
  /** Silence (no message, ping or pong) this long closes the connection with 1006. Default 0. */
  readIdleTimeout?: number;
  /** Send a ping every this many ms. Default 0. */
  pingInterval?: number;
  /** Close with 1006 when a ping's pong does not come back within this. Default 0 (needs `pingInterval`). */
  pongTimeout?: number;
  /** Close with 1006 when a send is not taken by the socket within this (the peer stopped reading). Default 0. */
  writeIdleTimeout?: number;
  /**
   * The most frames one incoming message may arrive in (HTTP.jl's `maxfragmentation`); one more
   * closes the connection with 1008 (ws's code for it). Default 1024; `0`: no limit. Without a
   * bound, a peer could send a large message as millions of 1-byte fragments, each held as its own
   * buffer until the message ends.
   */
  maxFragmentation?: number;
}

/** The default of {@link SessionOptions.maxFragmentation}. */
export const MAX_FRAGMENTATION = 1024;

/**
 * The `maxFragmentation` option checked (an integer ≥ 0, else `ArgumentError`) and defaulted, as
 * ws's `maxFragments` takes it.
 */
export function fragmentLimit(value: number | undefined): number {
  if (value === undefined) return MAX_FRAGMENTATION;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new ArgumentError(`maxFragmentation must be an integer ≥ 0 (0: no limit), got ${String(value)}`);
  }
  return value;
}

/** Close codes after which iteration ends quietly. */
const OK_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1001, 1005]);
/** How long `close()` waits for the peer's close frame. */
export const CLOSE_WAIT_MS = 5_000;
/** Stop reading from the socket when this many messages wait unread. */
const QUEUE_HIGH_WATER = 256;
/**
 * A send resolves at once while less than this is waiting to be written (ws's queue and the
 * socket's); past it, the send resolves once its frame is written. Like a stream's highWaterMark:
 * awaiting every send keeps at most about this much (plus one message) in memory.
 */
export const SEND_HIGH_WATER = 64 * 1024;

/** ws's send options, made once (ws copies them). */
const FRAME_OPTIONS = [
  [
    { binary: false, fin: false },
    { binary: false, fin: true },
  ],
  [
    { binary: true, fin: false },
    { binary: true, fin: true },
  ],
] as const;

/**
 * Settled promises of small sizes, shared: a send taken at once resolves with one of these instead
 * of a new promise (a settled promise can be awaited by any number of callers).
 */
const RESOLVED_SIZES: Promise<number>[] = [];
const RESOLVED_SIZES_MAX = 4096;

function resolvedSize(size: number): Promise<number> {
  if (size > RESOLVED_SIZES_MAX) return Promise.resolve(size);
  let p = RESOLVED_SIZES[size];
  if (p === undefined) {
    p = Promise.resolve(size);
    RESOLVED_SIZES[size] = p;
  }
  return p;
}

/** ws's connection underneath: a TCP or TLS socket, or an HTTP/2 stream (RFC 8441). */
type WsTransport = Duplex;

/** The connection under a ws socket (`null` before its handshake completes). */
function socketOf(ws: WsSocket): WsTransport | null {
  return (ws as unknown as { _socket: WsTransport | null })._socket;
}

/**
 * Holds the frames sent in this tick in the socket's buffer and writes them together at its end, as
 * node:http does for a response's writes: a loop of small sends becomes one write system call
 * instead of one per frame. A long burst goes out SEND_HIGH_WATER at a time rather than all at the
 * end of the tick, so that the peer starts receiving and the held bytes stay bounded.
 */
function coalesce(socket: WsTransport | null): void {
  if (socket == null) return;
  if (socket.writableCorked === 0) {
    socket.cork();
    process.nextTick(uncork, socket);
  } else if (socket.writableLength >= SEND_HIGH_WATER) {
    socket.uncork();
    socket.cork();
  }
}

function uncork(socket: WsTransport): void {
  socket.uncork();
}

/** Writes now what {@link coalesce} holds (before the socket is destroyed). */
function flush(socket: WsTransport | null): void {
  while (socket != null && socket.writableCorked > 0) socket.uncork();
}

/** How a waiting reader wants its message: as an iterator result (`for await`) or bare (`receive`). */
const ITERATE = 0;
const RECEIVE = 1;
type Waiter = {
  resolve: (value: IteratorResult<Message> | Message) => void;
  reject: (e: unknown) => void;
  mode: typeof ITERATE | typeof RECEIVE;
};

const DONE: IteratorResult<Message> = Object.freeze({ done: true, value: undefined });

/** The timers and limits of a connection with liveness options (see {@link SessionOptions}). */
type Liveness = {
  readIdle: IdleTimer | undefined;
  pinger: NodeJS.Timeout | undefined;
  pongTimer: NodeJS.Timeout | undefined;
  pongTimeout: number;
  writeIdle: number;
};

/** ws's socket with its owner, so that one set of listener functions serves every connection. */
const kOwner = Symbol("hyperwire.websocket");
type OwnedWs = WsSocket & { [kOwner]: WebSocket };

/** True for a close code a peer may send (RFC 6455 §7.4, and the 3000–4999 range). */
export function isValidCloseCode(code: number): boolean {
  return (
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
      (code >= 3000 && code <= 4999))
  );
}

// ws's events, for every connection (set in WebSocket's static block: they reach its private parts).
let onWsError: (this: WsSocket, err: Error) => void;
let onWsMessage: (this: WsSocket, data: Buffer, isBinary: boolean) => void;
let onWsClose: (this: WsSocket, code: number, reason: Buffer) => void;
let onWsHeard: (this: WsSocket) => void;
let onWsPong: (this: WsSocket) => void;
let take: (ws: WebSocket, mode: typeof ITERATE) => Promise<IteratorResult<Message>>;

/** What `for await (const m of ws)` iterates with. */
class MessageIterator implements AsyncIterator<Message> {
  readonly #ws: WebSocket;
  constructor(ws: WebSocket) {
    this.#ws = ws;
  }
  next(): Promise<IteratorResult<Message>> {
    return take(this.#ws, ITERATE);
  }
  return(): Promise<IteratorResult<Message>> {
    return Promise.resolve(DONE);
  }
}

/**
 * One WebSocket connection, client or server side.
 *
 * ```ts
 * for await (const msg of ws) await ws.send(typeof msg === "string" ? msg.toUpperCase() : msg);
 * ```
 */
export class WebSocket implements AsyncIterable<Message> {
  /** The subprotocol both sides agreed on, or `null`. */
  readonly subprotocol: string | null;
  /** The request path and query of the handshake (server side: what the client asked for). */
  readonly target: string;
  readonly #ws: WsSocket;
  /** Messages received and not yet read (made with the first one that waits). */
  #queue: Message[] | undefined;
  /** The first receiver waiting for a message (most connections have one at most)... */
  #waiter: Waiter | undefined;
  /** ...and any more after it, first come first served. */
  #waiters: Waiter[] | undefined;
  /** Settles when the fragmented message being sent is done; whole messages wait for it. */
  #fragmenting: Promise<void> | undefined;
  #paused = false;
  #closed = false;
  #closeCode = 1005;
  #closeReason = "";
  #closing: Promise<void> | undefined;
  /** Made when someone waits for the close (most connections never do until they close). */
  #whenClosed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  /** Timers and limits of the liveness options; `undefined` when none is set (the common case). */
  readonly #live: Liveness | undefined;
  #violation: [number | undefined, string] | undefined;

  static {
    // ws throws oversize compressed messages as an 'error' event: without a listener the process
    // dies. Its errors are protocol violations by the peer; ws sends the close frame and drops the
    // connection, so the code it sent is kept here (ws itself would report 1006).
    onWsError = function (this: WsSocket, err: Error): void {
      (this as OwnedWs)[kOwner].#violation ??= [violationCloseCode(err), err.message];
    };
    onWsMessage = function (this: WsSocket, data: Buffer, isBinary: boolean): void {
      (this as OwnedWs)[kOwner].#onMessage(data, isBinary);
    };
    onWsClose = function (this: WsSocket, code: number, reason: Buffer): void {
      (this as OwnedWs)[kOwner].#onClose(code, reason.toString("utf8"));
    };
    onWsHeard = function (this: WsSocket): void {
      (this as OwnedWs)[kOwner].#heard();
    };
    onWsPong = function (this: WsSocket): void {
      const owner = (this as OwnedWs)[kOwner];
      const live = owner.#live;
      if (live?.pongTimer !== undefined) {
        clearTimeout(live.pongTimer);
        live.pongTimer = undefined;
      }
    };
    take = (ws, mode) => ws.#take(mode) as Promise<IteratorResult<Message>>;
  }

  /** @internal Made by `open`, `listen` and `upgrade`. */
  constructor(ws: WsSocket, target: string, options: SessionOptions = {}, subprotocol?: string | null) {
    this.#ws = ws;
    this.target = target;
    this.subprotocol = subprotocol !== undefined ? subprotocol : ws.protocol === "" ? null : ws.protocol;
    ws.binaryType = "nodebuffer";
    (ws as OwnedWs)[kOwner] = this;
    ws.on("error", onWsError);
    ws.on("message", onWsMessage);
    ws.on("close", onWsClose);
    const idle = options.readIdleTimeout ?? 0;
    const interval = options.pingInterval ?? 0;
    const pongTimeout = options.pongTimeout ?? 0;
    const writeIdle = options.writeIdleTimeout ?? 0;
    if (idle > 0 || interval > 0 || writeIdle > 0) {
      const live: Liveness = {
        readIdle: undefined,
        pinger: undefined,
        pongTimer: undefined,
        pongTimeout,
        writeIdle,
      };
      this.#live = live;
      if (idle > 0) {
        live.readIdle = new IdleTimer(idle, "readIdle", () =>
          this.#abort(1006, "websocket read idle timeout"),
        );
        ws.on("ping", onWsHeard);
        ws.on("pong", onWsHeard);
      }
      if (interval > 0) {
        live.pinger = setInterval(() => this.#ping(), interval);
        live.pinger.unref();
        ws.on("pong", onWsPong);
      }
    }
  }

  /** True once the connection is closed (or closing). */
  get isClosed(): boolean {
    return this.#closed || this.#ws.readyState >= 2;
  }

  /** The close code, once closed (1005 when the peer gave none, 1006 when the connection just dropped). */
  get closeCode(): number | undefined {
    return this.#closed ? this.#closeCode : undefined;
  }

  /** The close reason, once closed. */
  get closeReason(): string | undefined {
    return this.#closed ? this.#closeReason : undefined;
  }

  /** True when {@link receive} would not wait. */
  get isReady(): boolean {
    return (this.#queue !== undefined && this.#queue.length > 0) || this.#closed;
  }

  /** Messages received but not yet read. */
  get bufferedMessages(): number {
    return this.#queue?.length ?? 0;
  }

  /**
   * Sends a message: a string as text, bytes as binary, an (async) iterable as one fragmented message
   * (its first chunk decides text or binary). Resolves with the payload size once the connection has
   * taken the message: at once while less than 64 KiB waits to be written, otherwise when this
   * message is written. Awaiting each send therefore respects back-pressure. Frames sent in one tick
   * are written together at the end of the tick (one system call for a loop of small sends). After close:
   * `WebSocketError(1006)`.
   */
  send(data: SendData): Promise<number> {
    if (this.#fragmenting === undefined) {
      if (typeof data === "string") return this.#sendFrame(data, 0, 1);
      if (data instanceof Uint8Array) return this.#sendFrame(data, 1, 1);
    }
    return this.#sendOther(data);
  }

  async #sendOther(data: SendData): Promise<number> {
    // A frame sent while a fragmented message is in flight would become one of its fragments.
    while (this.#fragmenting !== undefined) await this.#fragmenting;
    if (typeof data === "string") return this.#sendFrame(data, 0, 1);
    if (data instanceof Uint8Array) return this.#sendFrame(data, 1, 1);
    if (data instanceof ArrayBuffer) return this.#sendFrame(new Uint8Array(data), 1, 1);
    if (data === null || typeof data !== "object") {
      throw new ArgumentError("send() takes a string, bytes, or an (async) iterable of chunks");
    }
    let done!: () => void;
    this.#fragmenting = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      return await this.#sendFragments(data);
    } finally {
      this.#fragmenting = undefined;
      done();
    }
  }

  async #sendFragments(
    data: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
  ): Promise<number> {
    let pending: string | Uint8Array | undefined;
    let binary: 0 | 1 = 0;
    let total = 0;
    let started = false;
    try {
      for await (const chunk of data as AsyncIterable<string | Uint8Array>) {
        if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) {
          throw new ArgumentError("a fragmented message's chunks must be strings or Uint8Arrays");
        }
        if (pending === undefined) binary = typeof chunk === "string" ? 0 : 1;
        else {
          started = true;
          total += await this.#sendFrame(pending, binary, 0);
        }
        pending = chunk;
      }
    } catch (e) {
      // A message cut off halfway cannot be taken back: the next frame would continue it.
      if (started && !this.isClosed) {
        this.close(1011, "a fragmented message could not be completed").catch(noop);
      }
      throw e;
    }
    total += await this.#sendFrame(pending ?? (binary ? new Uint8Array(0) : ""), binary, 1);
    return total;
  }

  #sendFrame(data: string | Uint8Array, binary: 0 | 1, fin: 0 | 1): Promise<number> {
    if (this.isClosed) return Promise.reject(this.#closedError());
    const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
    const ws = this.#ws;
    coalesce(socketOf(ws));
    if (ws.bufferedAmount < SEND_HIGH_WATER) {
      // Taken: a write error later closes the connection, and the next send reports it. A whole
      // message goes without options (ws takes a string as text and bytes as binary; copying an
      // options object per send is measurable on small messages).
      if (fin === 1) ws.send(data);
      else ws.send(data, FRAME_OPTIONS[binary][fin]);
      return resolvedSize(size);
    }
    return new Promise<number>((resolve, reject) => {
      // A write the socket does not take within writeIdleTimeout means a peer that stopped reading.
      const writeIdle = this.#live?.writeIdle ?? 0;
      const stall =
        writeIdle > 0
          ? setTimeout(() => this.#abort(1006, "websocket write idle timeout"), writeIdle)
          : undefined;
      stall?.unref();
      ws.send(data, FRAME_OPTIONS[binary][fin], (err) => {
        if (stall !== undefined) clearTimeout(stall);
        if (err) reject(this.#closedError(err));
        else resolve(size);
      });
    });
  }

  /**
   * The next message. Messages that arrived before the close are returned first; after that it
   * throws `WebSocketError` with the close code.
   */
  receive(): Promise<Message> {
    return this.#take(RECEIVE) as Promise<Message>;
  }

  /** Sends a ping (pings from the peer are answered for you). */
  ping(data: Uint8Array | string = new Uint8Array(0)): Promise<void> {
    return this.#control("ping", data);
  }

  /** Sends an unsolicited pong. */
  pong(data: Uint8Array | string = new Uint8Array(0)): Promise<void> {
    return this.#control("pong", data);
  }

  #control(kind: "ping" | "pong", data: Uint8Array | string): Promise<void> {
    if ((typeof data === "string" ? Buffer.byteLength(data) : data.byteLength) > 125) {
      return Promise.reject(new ArgumentError(`a ${kind} payload is at most 125 bytes`));
    }
    if (this.isClosed) return Promise.reject(this.#closedError());
    return new Promise<void>((resolve, reject) => {
      this.#ws[kind](data, undefined, (err) => (err ? reject(this.#closedError(err)) : resolve()));
    });
  }

  /**
   * Starts the close handshake (code 1000 by default), waits up to 5 s for the peer's close frame,
   * then drops the connection. Idempotent. Codes outside RFC 6455's set and reasons over 123 bytes
   * are an `ArgumentError`.
   */
  close(code = 1000, reason = ""): Promise<void> {
    if (!isValidCloseCode(code)) return Promise.reject(new ArgumentError(`invalid close code ${code}`));
    if (Buffer.byteLength(reason) > 123) {
      return Promise.reject(new ArgumentError("a close reason is at most 123 bytes of UTF-8"));
    }
    if (this.#closing === undefined) {
      this.#closing = this.#closeNow(code, reason);
    }
    return this.#closing;
  }

  async #closeNow(code: number, reason: string): Promise<void> {
    if (this.#ws.readyState < 2) this.#ws.close(code, reason);
    const timer = setTimeout(() => this.#ws.terminate(), CLOSE_WAIT_MS);
    timer.unref();
    await this.closed();
    clearTimeout(timer);
  }

  /** Drops the connection without a close handshake; the close code becomes 1006. */
  terminate(): void {
    this.#abort(1006, "");
  }

  /** Resolves once the connection is closed. */
  closed(): Promise<void> {
    if (this.#whenClosed === undefined) {
      // ws's 'close' has come when the code is set (not by a local #abort, which only asks ws).
      this.#whenClosed =
        this.#ws.readyState === 3
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              this.#resolveClosed = resolve;
            });
    }
    return this.#whenClosed;
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return new MessageIterator(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#closed) await this.close();
  }

  /** The next message for a reader: as an iterator result or bare (see {@link Waiter}). */
  #take(mode: typeof ITERATE | typeof RECEIVE): Promise<IteratorResult<Message> | Message> {
    const queue = this.#queue;
    const message = queue?.shift();
    if (message !== undefined) {
      if (this.#paused && queue!.length < QUEUE_HIGH_WATER / 2) {
        this.#paused = false;
        this.#ws.resume();
        this.#live?.readIdle?.touch();
      }
      return Promise.resolve(mode === ITERATE ? { done: false, value: message } : message);
    }
    if (this.#closed) return this.#ended(mode);
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, mode };
      if (this.#waiter === undefined) this.#waiter = w;
      else if (this.#waiters === undefined) this.#waiters = [w];
      else this.#waiters.push(w);
    });
  }

  /** What a read gets after the close: the end of iteration (after a normal close) or the close error. */
  #ended(mode: typeof ITERATE | typeof RECEIVE): Promise<IteratorResult<Message>> {
    if (mode === ITERATE && OK_CLOSE_CODES.has(this.#closeCode)) return Promise.resolve(DONE);
    return Promise.reject(new WebSocketError(this.#closeCode, this.#closeReason));
  }

  /** The peer said something: restart the read-idle wait (unless we stopped reading). */
  #heard(): void {
    if (!this.#paused) this.#live?.readIdle?.touch();
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#live !== undefined) this.#heard();
    const message: Message = isBinary ? data : data.toString("utf8");
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = this.#waiters?.shift();
      w.resolve(w.mode === ITERATE ? { done: false, value: message } : message);
      return;
    }
    let queue = this.#queue;
    if (queue === undefined) {
      queue = [];
      this.#queue = queue;
    }
    queue.push(message);
    if (!this.#paused && queue.length >= QUEUE_HIGH_WATER) {
      this.#paused = true;
      this.#ws.pause();
      // We stopped reading: silence from here on is ours, not the peer's.
      this.#live?.readIdle?.pause();
    }
  }

  #onClose(code: number, reason: string): void {
    if (code === 1006 && this.#violation?.[0] !== undefined) {
      [code, reason] = this.#violation as [number, string];
    }
    if (!this.#closed) {
      this.#closed = true;
      this.#closeCode = code;
      this.#closeReason = reason;
    }
    const live = this.#live;
    if (live !== undefined) {
      live.readIdle?.cancel();
      if (live.pinger !== undefined) clearInterval(live.pinger);
      if (live.pongTimer !== undefined) clearTimeout(live.pongTimer);
    }
    const waiting = this.#waiter === undefined ? [] : [this.#waiter, ...(this.#waiters ?? [])];
    this.#waiter = undefined;
    this.#waiters = undefined;
    for (const w of waiting) {
      if (w.mode === ITERATE && OK_CLOSE_CODES.has(this.#closeCode)) w.resolve(DONE);
      else w.reject(new WebSocketError(this.#closeCode, this.#closeReason));
    }
    if (this.#resolveClosed !== undefined) this.#resolveClosed();
    else this.#whenClosed ??= Promise.resolve();
  }

  /** Ends the connection now with a local close code (1006 for timeouts and lost peers). */
  #abort(code: number, reason: string): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#closeCode = code;
      this.#closeReason = reason;
    }
    // Frames sent earlier in this tick still go out first, as they would without the corking.
    flush(socketOf(this.#ws));
    this.#ws.terminate();
  }

  #ping(): void {
    if (this.isClosed) return;
    this.#ws.ping();
    const live = this.#live!;
    if (live.pongTimeout > 0 && live.pongTimer === undefined) {
      live.pongTimer = setTimeout(() => this.#abort(1006, "websocket pong timeout"), live.pongTimeout);
      live.pongTimer.unref();
    }
  }

  #closedError(cause?: unknown): WebSocketError {
    return new WebSocketError(this.#closed ? this.#closeCode : 1006, "websocket is closed", { cause });
  }
}

/** The close code ws sends for one of its errors (RFC 6455 §7.4.1), or `undefined` for others. */
function violationCloseCode(err: Error): number | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code !== "string") return undefined;
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" || code === "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH") {
    return 1009;
  }
  // Too many fragments in one message (maxFragmentation): ws closes with 1008.
  if (code === "WS_ERR_TOO_MANY_BUFFERED_PARTS") return 1008;
  // zlib errors (a broken deflate stream) are 1007 in ws, as invalid UTF-8 is.
  if (code === "WS_ERR_INVALID_UTF8" || code.startsWith("Z_")) return 1007;
  if (code.startsWith("WS_ERR_")) return 1002;
  return undefined;
}

function noop(): void {}
