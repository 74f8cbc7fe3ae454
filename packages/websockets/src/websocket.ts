// The WebSocket a user holds: ws's framing underneath, with messages as an async iterable, sends
// that resolve once the connection has taken them (back-pressure past SEND_HIGH_WATER), a bounded
// close handshake, read-idle and ping/pong liveness. An idle connection adds to ws's socket one
// 96-byte object (a waiting reader's functions in its fields) and listeners shared by every
// connection; what few connections need before they close (more readers, the close, a fragmented
// send, liveness timers) is in one more object, made when first needed. 10,000 idle connections
// should cost little more than ws's.

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

// The bits of WebSocket's #flags.
/** Closed, by ws's 'close' or by a local #abort (the close code is in the Rare state). */
const CLOSED = 1;
/** We stopped reading: too many messages wait unread. */
const PAUSED = 2;
/** The first waiting reader came from `receive` (see {@link Mode}). */
const RECEIVING = 4;
/** A fragmented message is being sent (whole messages wait for it). */
const FRAGMENTING = 8;

/**
 * How a waiting reader wants its message: as an iterator result (`for await`) or bare (`receive`).
 * The values are the RECEIVING bit, so that the first reader's mode is kept in #flags.
 */
const ITERATE = 0;
const RECEIVE = RECEIVING;
type Mode = typeof ITERATE | typeof RECEIVE;
type Resolve = (value: IteratorResult<Message> | Message | PromiseLike<never>) => void;
/** A reader waiting behind the first one (the first one is in fields of its WebSocket). */
type Waiter = { resolve: Resolve; mode: Mode };

const DONE: IteratorResult<Message> = Object.freeze({ done: true, value: undefined });

// A waiting read's resolve function, taken by one function for every read instead of a closure (and
// its context) made per read. Read and cleared at once by #take. Its reject function is not kept (a
// failed read is resolved with a rejecting thenable, see endRead): 56 bytes less for every idle
// connection, whose handler always waits for its next message.
let takenResolve: Resolve | undefined;
function takeResolve(resolve: Resolve): void {
  takenResolve = resolve;
}

/**
 * What a connection needs only once something uncommon happens: a second waiting reader, a
 * fragmented send, ws's report of a protocol violation, the close, someone waiting for it; and the
 * timers and limits of the liveness options (made with the connection when one is set, see
 * {@link SessionOptions}). Idle connections without liveness options have none.
 */
class Rare {
  /** Readers waiting after the first one, first come first served. */
  waiters: Waiter[] | undefined = undefined;
  /** Settles when the fragmented message being sent is done; whole messages wait for it. */
  fragmenting: Promise<void> | undefined = undefined;
  closeCode = 1005;
  closeReason = "";
  closing: Promise<void> | undefined = undefined;
  /** Made when someone waits for the close. */
  whenClosed: Promise<void> | undefined = undefined;
  resolveClosed: (() => void) | undefined = undefined;
  violation: [number | undefined, string] | undefined = undefined;
  readIdle: IdleTimer | undefined = undefined;
  pinger: NodeJS.Timeout | undefined = undefined;
  pongTimer: NodeJS.Timeout | undefined = undefined;
  pongTimeout = 0;
  writeIdle = 0;
}

/**
 * The previous connection's target. Clients of a server mostly ask for the same path: a connection
 * keeps that string instead of its own copy of it (24 bytes or more each).
 */
let lastTarget = "/";

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
  /** CLOSED, PAUSED, RECEIVING, FRAGMENTING. */
  #flags = 0;
  /** Messages received and not yet read (made with the first one that waits). */
  #queue: Message[] | undefined = undefined;
  // The first reader waiting for a message (most connections have one at most), in fields rather
  // than a Waiter object: its mode is the RECEIVING bit of #flags; the others are in Rare.
  #resolve: Resolve | undefined = undefined;
  /** `undefined` until needed (see {@link Rare}). */
  #rare: Rare | undefined = undefined;

  static {
    // ws throws oversize compressed messages as an 'error' event: without a listener the process
    // dies. Its errors are protocol violations by the peer; ws sends the close frame and drops the
    // connection, so the code it sent is kept here (ws itself would report 1006).
    onWsError = function (this: WsSocket, err: Error): void {
      (this as OwnedWs)[kOwner].#state().violation ??= [violationCloseCode(err), err.message];
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
      const rare = (this as OwnedWs)[kOwner].#rare;
      if (rare?.pongTimer !== undefined) {
        clearTimeout(rare.pongTimer);
        rare.pongTimer = undefined;
      }
    };
    take = (ws, mode) => ws.#take(mode) as Promise<IteratorResult<Message>>;
  }

  /** @internal Made by `open`, `listen` and `upgrade`. */
  constructor(ws: WsSocket, target: string, options: SessionOptions = {}, subprotocol?: string | null) {
    this.#ws = ws;
    if (target === lastTarget) target = lastTarget;
    else lastTarget = target;
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
      const live = this.#state();
      live.pongTimeout = pongTimeout;
      live.writeIdle = writeIdle;
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
    return (this.#flags & CLOSED) !== 0 || this.#ws.readyState >= 2;
  }

  /** The close code, once closed (1005 when the peer gave none, 1006 when the connection just dropped). */
  get closeCode(): number | undefined {
    return (this.#flags & CLOSED) !== 0 ? this.#rare!.closeCode : undefined;
  }

  /** The close reason, once closed. */
  get closeReason(): string | undefined {
    return (this.#flags & CLOSED) !== 0 ? this.#rare!.closeReason : undefined;
  }

  /** True when {@link receive} would not wait. */
  get isReady(): boolean {
    return (this.#queue !== undefined && this.#queue.length > 0) || (this.#flags & CLOSED) !== 0;
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
    if ((this.#flags & FRAGMENTING) === 0) {
      if (typeof data === "string") return this.#sendFrame(data, 0, 1);
      if (data instanceof Uint8Array) return this.#sendFrame(data, 1, 1);
    }
    return this.#sendOther(data);
  }

  async #sendOther(data: SendData): Promise<number> {
    // A frame sent while a fragmented message is in flight would become one of its fragments.
    while ((this.#flags & FRAGMENTING) !== 0) await this.#rare!.fragmenting;
    if (typeof data === "string") return this.#sendFrame(data, 0, 1);
    if (data instanceof Uint8Array) return this.#sendFrame(data, 1, 1);
    if (data instanceof ArrayBuffer) return this.#sendFrame(new Uint8Array(data), 1, 1);
    if (data === null || typeof data !== "object") {
      throw new ArgumentError("send() takes a string, bytes, or an (async) iterable of chunks");
    }
    let done!: () => void;
    const rare = this.#state();
    rare.fragmenting = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.#flags |= FRAGMENTING;
    try {
      return await this.#sendFragments(data);
    } finally {
      this.#flags &= ~FRAGMENTING;
      rare.fragmenting = undefined;
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
      const writeIdle = this.#rare?.writeIdle ?? 0;
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
    const rare = this.#state();
    if (rare.closing === undefined) {
      rare.closing = this.#closeNow(code, reason);
    }
    return rare.closing;
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
    const rare = this.#state();
    if (rare.whenClosed === undefined) {
      // ws's 'close' has come when the code is set (not by a local #abort, which only asks ws).
      rare.whenClosed =
        this.#ws.readyState === 3
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              rare.resolveClosed = resolve;
            });
    }
    return rare.whenClosed;
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return new MessageIterator(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if ((this.#flags & CLOSED) === 0) await this.close();
  }

  /** The state of {@link Rare}, made on first use. */
  #state(): Rare {
    let rare = this.#rare;
    if (rare === undefined) {
      rare = new Rare();
      this.#rare = rare;
    }
    return rare;
  }

  /** The next message for a reader: as an iterator result or bare (see {@link Mode}). */
  #take(mode: Mode): Promise<IteratorResult<Message> | Message> {
    const queue = this.#queue;
    const message = queue?.shift();
    if (message !== undefined) {
      if ((this.#flags & PAUSED) !== 0 && queue!.length < QUEUE_HIGH_WATER / 2) {
        this.#flags &= ~PAUSED;
        this.#ws.resume();
        this.#rare?.readIdle?.touch();
      }
      return Promise.resolve(mode === ITERATE ? { done: false, value: message } : message);
    }
    if ((this.#flags & CLOSED) !== 0) return this.#ended(mode);
    const promise = new Promise<IteratorResult<Message> | Message>(takeResolve);
    const resolve = takenResolve!;
    takenResolve = undefined;
    if (this.#resolve === undefined) {
      this.#resolve = resolve;
      this.#flags = (this.#flags & ~RECEIVING) | mode;
    } else {
      const rare = this.#state();
      if (rare.waiters === undefined) rare.waiters = [{ resolve, mode }];
      else rare.waiters.push({ resolve, mode });
    }
    return promise;
  }

  /** What a read gets after the close: the end of iteration (after a normal close) or the close error. */
  #ended(mode: Mode): Promise<IteratorResult<Message>> {
    const rare = this.#rare!;
    if (mode === ITERATE && OK_CLOSE_CODES.has(rare.closeCode)) return Promise.resolve(DONE);
    return Promise.reject(new WebSocketError(rare.closeCode, rare.closeReason));
  }

  /** The peer said something: restart the read-idle wait (unless we stopped reading). */
  #heard(): void {
    if ((this.#flags & PAUSED) === 0) this.#rare?.readIdle?.touch();
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#rare !== undefined) this.#heard();
    const message: Message = isBinary ? data : data.toString("utf8");
    const resolve = this.#resolve;
    if (resolve !== undefined) {
      const mode = this.#flags & RECEIVING;
      const next = this.#rare?.waiters?.shift();
      if (next === undefined) this.#resolve = undefined;
      else {
        this.#resolve = next.resolve;
        this.#flags = (this.#flags & ~RECEIVING) | next.mode;
      }
      resolve(mode === ITERATE ? { done: false, value: message } : message);
      return;
    }
    let queue = this.#queue;
    if (queue === undefined) {
      queue = [];
      this.#queue = queue;
    }
    queue.push(message);
    if ((this.#flags & PAUSED) === 0 && queue.length >= QUEUE_HIGH_WATER) {
      this.#flags |= PAUSED;
      this.#ws.pause();
      // We stopped reading: silence from here on is ours, not the peer's.
      this.#rare?.readIdle?.pause();
    }
  }

  #onClose(code: number, reason: string): void {
    const rare = this.#state();
    if (code === 1006 && rare.violation?.[0] !== undefined) {
      [code, reason] = rare.violation as [number, string];
    }
    if ((this.#flags & CLOSED) === 0) {
      this.#flags |= CLOSED;
      rare.closeCode = code;
      rare.closeReason = reason;
    }
    rare.readIdle?.cancel();
    if (rare.pinger !== undefined) clearInterval(rare.pinger);
    if (rare.pongTimer !== undefined) clearTimeout(rare.pongTimer);
    const resolve = this.#resolve;
    if (resolve !== undefined) {
      const waiters = rare.waiters;
      this.#resolve = undefined;
      rare.waiters = undefined;
      endRead(resolve, this.#flags & RECEIVING, rare);
      if (waiters !== undefined) for (const w of waiters) endRead(w.resolve, w.mode, rare);
    }
    if (rare.resolveClosed !== undefined) rare.resolveClosed();
    else rare.whenClosed ??= Promise.resolve();
  }

  /** Ends the connection now with a local close code (1006 for timeouts and lost peers). */
  #abort(code: number, reason: string): void {
    if ((this.#flags & CLOSED) === 0) {
      this.#flags |= CLOSED;
      const rare = this.#state();
      rare.closeCode = code;
      rare.closeReason = reason;
    }
    // Frames sent earlier in this tick still go out first, as they would without the corking.
    flush(socketOf(this.#ws));
    this.#ws.terminate();
  }

  #ping(): void {
    if (this.isClosed) return;
    this.#ws.ping();
    const live = this.#rare!;
    if (live.pongTimeout > 0 && live.pongTimer === undefined) {
      live.pongTimer = setTimeout(() => this.#abort(1006, "websocket pong timeout"), live.pongTimeout);
      live.pongTimer.unref();
    }
  }

  #closedError(cause?: unknown): WebSocketError {
    const closed = (this.#flags & CLOSED) !== 0;
    return new WebSocketError(closed ? this.#rare!.closeCode : 1006, "websocket is closed", { cause });
  }
}

/** Settles a read that waited when the connection closed: the end of iteration (normal close) or the error. */
function endRead(resolve: Resolve, mode: number, closed: Rare): void {
  if (mode === ITERATE && OK_CLOSE_CODES.has(closed.closeCode)) resolve(DONE);
  else resolve(rejecting(new WebSocketError(closed.closeCode, closed.closeReason)));
}

/** A thenable that rejects with `err`: resolving a read with it rejects the read (two ticks later). */
function rejecting(err: Error): PromiseLike<never> {
  return {
    // biome-ignore lint/suspicious/noThenProperty: a thenable is the point: resolving with it rejects.
    then: (_onFulfilled, onRejected) => onRejected?.(err) as never,
  };
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
