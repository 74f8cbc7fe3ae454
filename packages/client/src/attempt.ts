// What one attempt of one request does the same way on HTTP/1.1 and HTTP/2: take the response body in
// one of three modes, answer the pipeline's waiters, settle exactly once, and run the per-phase timers.
// Only the transport underneath differs (undici's handler callbacks vs a node:http2 stream's events);
// each exchange reaches it through a few small hooks.
import type { Writable } from "node:stream";
import {
  CanceledError,
  Deadline,
  type Headers,
  type HTTPError,
  IdleTimer,
  type ResolvedTimeouts,
} from "@hyperwire/core";

/**
 * How the response body is taken: `buffer` collects it into one `Uint8Array`; `writable` writes it
 * to a `Writable` as it arrives and `pull` queues it for `read()`, both pausing the source under
 * back-pressure.
 */
export type BodyMode = "buffer" | "writable" | "pull";

/** The parts of a request an exchange sends. */
export interface ExchangeRequest {
  method: string;
  /** Origin-form target (`/path?query`). */
  path: string;
  /** Flat `[name, value, ...]`, already validated. */
  headers: string[];
  body: Uint8Array | AsyncIterable<Uint8Array> | null;
}

/** The head of a response, as it arrived. */
export interface ResponseHead {
  status: number;
  reason: string;
  headers: Headers;
  /** The HTTP version; absent means `"1.1"`. */
  version?: "2";
}

/**
 * One attempt of one request, as the pipeline (`request.ts`, `stream.ts`) sees it: an HTTP/1.1
 * `Exchange` or an HTTP/2 stream (`H2Exchange`).
 */
export interface Attempt {
  /** The wire protocol of this attempt. */
  readonly protocol: "h1" | "h2";
  /** The head, once it arrived. */
  readonly head: ResponseHead | undefined;
  readonly trailers: Headers | undefined;
  /** True once any byte of a final response head arrived. */
  readonly responded: boolean;
  /** The failure came from a reused HTTP/1.1 connection closing before any response: safe to retry once. */
  readonly stale: boolean;
  /** True when the attempt runs on a connection that served an exchange before. */
  readonly reused: boolean;
  /** True when the whole response arrived (its body may still sit unread in the pull queue). */
  readonly finished: boolean;
  /** Resolves with the buffered body (empty in Writable and Pull modes) once the response completed. */
  done(): Promise<Uint8Array>;
  /**
   * `done()` without a promise: calls `waiter.resolve` with the body or `waiter.reject` with the
   * failure, once, possibly at once. For a caller that does not also call `done()`.
   */
  whenDone(waiter: DoneWaiter): void;
  /** Resolves with the response head. */
  headReceived(): Promise<ResponseHead>;
  /** Pull mode: the next chunk, or `null` at the end. */
  read(): Promise<Uint8Array | null>;
  /** Aborts the attempt with `err` (timeouts, cancellation, an unread body). */
  fail(err: HTTPError): void;
}

const EMPTY = new Uint8Array(0);
/**
 * Pull mode: stop taking from the source once this much is queued and unread (on HTTP/2 this also
 * stops granting flow-control window).
 */
const PULL_HIGH_WATER = 256 * 1024;

type Resolver<T> = { resolve: (v: T) => void; reject: (e: unknown) => void };
/** What {@link Attempt.whenDone} calls (as methods: an object of the caller's, no closures needed). */
export type DoneWaiter = Resolver<Uint8Array>;

/**
 * The body-delivery state machine both exchanges share. A subclass feeds it (`acceptHead`, `onData`,
 * `complete` + `wakeAtEnd`, `settleError`) and implements the hooks that reach its transport: pause
 * and resume the source, abort the request, and give up the connection or stream after a failure.
 * Every outcome settles exactly once; every timer started here is stopped here.
 *
 * ```ts
 * class Exchange extends AttemptBase {
 *   protected pauseSource(): void {} // undici pauses when onData returns false
 *   protected resumeSource(): void { this.#resume?.(); }
 *   // ... abortRequest, abandon, abandonedNote, protocol, stale, reused
 * }
 * ```
 */
export abstract class AttemptBase implements Attempt {
  protected readonly timeouts: ResolvedTimeouts;
  readonly #mode: BodyMode;
  readonly #sink: Writable | undefined;
  readonly #onHead: ((head: ResponseHead) => void) | undefined;
  /** The failure this attempt settled with, if it did. */
  protected error: HTTPError | undefined;
  #finished = false;

  /** The head, once it arrived. */
  head: ResponseHead | undefined;
  trailers: Headers | undefined;
  /** True once any byte of a final response head arrived. */
  responded = false;

  // Buffer mode: the first chunk, and an array only when more come (most small bodies are one).
  #first: Uint8Array | undefined = undefined;
  #rest: Uint8Array[] | undefined = undefined;
  // Pull mode: chunks not read yet, made on first use.
  #chunks: Uint8Array[] | undefined = undefined;
  #size = 0;
  #paused = false;
  #watchingSink = false;
  #headWaiter: Resolver<ResponseHead> | undefined;
  #doneWaiter: Resolver<Uint8Array> | undefined;
  #donePromise: Promise<Uint8Array> | undefined;
  #readWaiter: Resolver<Uint8Array | null> | undefined;

  #headTimer: Deadline | undefined;
  protected readIdle: IdleTimer | undefined;
  protected writeIdle: IdleTimer | undefined;

  // Made only for a request with a responseStream: most requests have none.
  #onSinkDrain: (() => void) | undefined = undefined;
  #onSinkFailure: (() => void) | undefined = undefined;

  constructor(
    timeouts: ResolvedTimeouts,
    mode: BodyMode,
    sink: Writable | undefined,
    onHead: ((head: ResponseHead) => void) | undefined,
  ) {
    this.timeouts = timeouts;
    this.#mode = mode;
    this.#sink = sink;
    this.#onHead = onHead;
  }

  abstract readonly protocol: "h1" | "h2";
  abstract readonly stale: boolean;
  abstract readonly reused: boolean;

  // ---- the hooks each transport implements ----

  /** Stops the source delivering body chunks (back-pressure from the consumer). */
  protected abstract pauseSource(): void;
  /** Lets the source deliver body chunks again. */
  protected abstract resumeSource(): void;
  /** Aborts the request on the wire; must end in {@link settleError} (now or when the transport confirms). */
  protected abstract abortRequest(err: HTTPError): void;
  /** The attempt failed: give up its connection (closed) or stream (reset). Called once, from {@link settleError}. */
  protected abstract abandon(): void;
  /** What happened to the transport when the responseStream failed, for the error message. */
  protected abstract get abandonedNote(): string;

  // ---- what the pipeline uses ----

  /**
   * Resolves with the buffered body (empty in Writable and Pull modes) once the response completed.
   * Every call returns the same promise.
   */
  done(): Promise<Uint8Array> {
    if (this.#donePromise === undefined) {
      this.#donePromise = new Promise<Uint8Array>((resolve, reject) => {
        if (this.error) reject(this.error);
        else if (this.#finished) resolve(this.#takeBuffered());
        else this.#doneWaiter = { resolve, reject };
      });
    }
    return this.#donePromise;
  }

  whenDone(waiter: DoneWaiter): void {
    if (this.error) waiter.reject(this.error);
    else if (this.#finished) waiter.resolve(this.#takeBuffered());
    else this.#doneWaiter = waiter;
  }

  /** Resolves with the response head. */
  headReceived(): Promise<ResponseHead> {
    return new Promise<ResponseHead>((resolve, reject) => {
      if (this.head) resolve(this.head);
      else if (this.error) reject(this.error);
      else this.#headWaiter = { resolve, reject };
    });
  }

  /** Pull mode: the next chunk, or `null` at the end. */
  read(): Promise<Uint8Array | null> {
    const queued = this.#chunks;
    if (queued !== undefined && queued.length > 0) {
      const chunk = queued.shift()!;
      this.#size -= chunk.byteLength;
      if (this.#paused && this.#size < PULL_HIGH_WATER) this.#unpause();
      return Promise.resolve(chunk);
    }
    if (this.error) return Promise.reject(this.error);
    if (this.#finished) return Promise.resolve(null);
    this.readIdle?.touch();
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#readWaiter = { resolve, reject };
    });
  }

  /** True when the whole response arrived (its body may still sit unread in the pull queue). */
  get finished(): boolean {
    return this.#finished;
  }

  /** Aborts the attempt with `err` (timeouts, cancellation, an unread body). */
  fail(err: HTTPError): void {
    if (this.#finished || this.error) return;
    this.abortRequest(err);
  }

  /**
   * A chunk of the response body arrived. Returns false when the source should pause (undici's
   * handler contract; `pauseSource` has been called too).
   */
  onData(chunk: Buffer): boolean {
    this.readIdle?.touch();
    switch (this.#mode) {
      case "buffer":
        if (this.#first === undefined) this.#first = chunk;
        else if (this.#rest === undefined) this.#rest = [chunk];
        else this.#rest.push(chunk);
        this.#size += chunk.byteLength;
        return true;
      case "writable": {
        const sink = this.#sink!;
        if (sink.destroyed || sink.writableEnded) {
          this.#sinkGone();
          return false;
        }
        if (sink.write(chunk)) return true;
        this.#pause();
        if (!this.#watchingSink) {
          this.#watchingSink = true;
          this.#onSinkDrain ??= () => this.#unpause();
          sink.on("drain", this.#onSinkDrain);
        }
        return false;
      }
      default: {
        const w = this.#readWaiter;
        if (w) {
          this.#readWaiter = undefined;
          w.resolve(chunk);
          return true;
        }
        if (this.#chunks === undefined) this.#chunks = [chunk];
        else this.#chunks.push(chunk);
        this.#size += chunk.byteLength;
        if (this.#size < PULL_HIGH_WATER) return true;
        this.#pause();
        return false;
      }
    }
  }

  // ---- what the exchanges call ----

  /**
   * The caller's responseStream can fail or be destroyed under us: the attempt must fail, not wait
   * for a 'drain' that never comes.
   */
  protected watchSink(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    this.#onSinkFailure ??= () => this.#sinkGone();
    sink.on("error", this.#onSinkFailure);
    sink.on("close", this.#onSinkFailure);
  }

  /** Creates the write-idle timer, paused until the first chunk goes out, when `writeIdleTimeout` is set. */
  protected startWriteIdle(): IdleTimer | undefined {
    const t = this.timeouts.writeIdleTimeout;
    if (t === 0) return undefined;
    const idle = new IdleTimer(t, "writeIdle", (e) => this.fail(e));
    this.writeIdle = idle;
    idle.pause();
    return idle;
  }

  /** The request is out: the responseHeader deadline and the read-idle timer start. */
  protected startResponseTimers(): void {
    const t = this.timeouts;
    if (t.responseHeaderTimeout > 0) {
      this.#headTimer = new Deadline(t.responseHeaderTimeout, "responseHeader", (e) => this.fail(e));
    }
    if (t.readIdleTimeout > 0) {
      this.readIdle = new IdleTimer(t.readIdleTimeout, "readIdle", (e) => this.fail(e));
    }
  }

  /** A final response head arrived (the caller has set `responded`). */
  protected acceptHead(head: ResponseHead): void {
    this.#headTimer?.cancel();
    this.readIdle?.touch();
    this.head = head;
    this.#onHead?.(head);
    const w = this.#headWaiter;
    if (w) {
      this.#headWaiter = undefined;
      w.resolve(head);
    }
  }

  /**
   * The whole response arrived: marks the attempt finished and stops its timers, unless the
   * responseStream failed meanwhile (then the attempt settles with that and this returns false).
   * The caller frees its connection or stream, then calls {@link wakeAtEnd}.
   */
  protected complete(): boolean {
    const sink = this.#sink;
    if (sink !== undefined && (sink.errored || sink.destroyed)) {
      // The transport is done with this request: settle here, an abort would not come back.
      this.settleError(this.#sinkError());
      return false;
    }
    this.#finished = true;
    this.#unwatchSink();
    this.#stopTimers();
    return true;
  }

  /** After {@link complete}: the end of the body for a pending `read()`, the body for `done()`. */
  protected wakeAtEnd(): void {
    const r = this.#readWaiter;
    if (r) {
      this.#readWaiter = undefined;
      r.resolve(null);
    }
    const d = this.#doneWaiter;
    if (d) {
      this.#doneWaiter = undefined;
      d.resolve(this.#takeBuffered());
    }
  }

  /** Settles the attempt with `err` (once; nothing after a complete response): timers stop, waiters reject. */
  protected settleError(err: HTTPError): void {
    if (this.error || this.#finished) return;
    this.error = err;
    this.#unwatchSink();
    this.#stopTimers();
    this.abandon();
    this.#chunks = undefined;
    this.#first = undefined;
    this.#rest = undefined;
    const h = this.#headWaiter;
    const d = this.#doneWaiter;
    const r = this.#readWaiter;
    this.#headWaiter = this.#doneWaiter = this.#readWaiter = undefined;
    h?.reject(err);
    d?.reject(err);
    r?.reject(err);
  }

  // ---- internals ----

  #unwatchSink(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    if (this.#onSinkFailure !== undefined) {
      sink.removeListener("error", this.#onSinkFailure);
      sink.removeListener("close", this.#onSinkFailure);
    }
    if (this.#onSinkDrain !== undefined) sink.removeListener("drain", this.#onSinkDrain);
  }

  #sinkGone(): void {
    this.fail(this.#sinkError());
  }

  #sinkError(): CanceledError {
    const sink = this.#sink!;
    const why = sink.errored ? `: ${sink.errored.message}` : " (it was destroyed or ended)";
    return new CanceledError(
      `the responseStream failed${why}; the response was abandoned and ${this.abandonedNote}`,
      {
        cause: sink.errored ?? undefined,
      },
    );
  }

  #takeBuffered(): Uint8Array {
    if (this.#mode !== "buffer") return EMPTY;
    const first = this.#first;
    const rest = this.#rest;
    this.#first = undefined;
    this.#rest = undefined;
    if (first === undefined) return EMPTY;
    if (rest === undefined) return first;
    rest.unshift(first);
    return Buffer.concat(rest, this.#size);
  }

  #stopTimers(): void {
    this.#headTimer?.cancel();
    this.readIdle?.cancel();
    this.writeIdle?.cancel();
  }

  #pause(): void {
    this.#paused = true;
    // The consumer, not the peer, is slow: silence on the wire is not the server's fault.
    this.readIdle?.pause();
    this.pauseSource();
  }

  #unpause(): void {
    this.#paused = false;
    this.readIdle?.touch();
    this.resumeSource();
  }
}
