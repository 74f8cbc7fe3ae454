// Server-sent events responses. The body is an async iterable the server pulls chunk by chunk; the
// producer's writes are handed over one at a time, so a write resolves only when the server has taken
// the chunk, and the server takes the next one only after the socket drained. A client that stops
// reading therefore stops the producer, with nothing piling up in memory.
import {
  ArgumentError,
  ClosedError,
  formatEvent,
  Headers,
  type HeadersInit,
  Response,
  SSEEvent,
} from "@hyperwire/core";
import { reportHandlerError } from "./io.js";

/** What an {@link sseResponse} producer writes with. */
export interface SSEWriter {
  /**
   * Sends an event (a string is the data of an event without other fields). Resolves when the server
   * has taken it; rejects with `ClosedError` once the stream has ended (the client left, say).
   */
  write(event: SSEEvent | string): Promise<void>;
  /** Sends a comment line (`: text`), which clients ignore. Resolves and rejects like {@link write}. */
  comment(text: string): Promise<void>;
  /** Ends the stream once the events written so far are sent; later writes reject. */
  close(): void;
  /** Aborts when the stream ends: the client went away, {@link close} was called, or the producer returned. */
  readonly signal: AbortSignal;
}

/** Writes the events of one response; the stream ends when the returned promise settles. */
export type SSEProducer = (writer: SSEWriter) => void | Promise<void>;

/** Options of {@link sseResponse}. */
export interface SSEResponseOptions {
  /**
   * While no event is sent for this many milliseconds, a comment line is sent, so proxies keep the
   * connection open and a client that left is noticed. `0` turns it off. Default `15000`.
   */
  keepAlive?: number;
  /** More response headers. `Content-Type` and `Cache-Control` may be overridden; `Content-Length` may not be set. */
  headers?: HeadersInit;
  /** The response status. Default `200`. */
  status?: number;
  /**
   * Ends the stream when it aborts. Pass `req.signal` so the producer learns at once that the client
   * left; without it, that is noticed at the next write or keep-alive comment.
   */
  signal?: AbortSignal;
}

/** Defaults of {@link SSEResponseOptions}. */
export const SSE_DEFAULTS = Object.freeze({ keepAlive: 15_000, status: 200 });

const KEEP_ALIVE = Buffer.from(": keep-alive\n\n", "latin1");
const LINE_BREAK = /\r\n|\r|\n/;

/** A comment in the event-stream format: one `:` line per line of `text`, then a blank line. */
function formatComment(text: string): string {
  let out = "";
  for (const line of text.split(LINE_BREAK)) out += line === "" ? ":\n" : `: ${line}\n`;
  return `${out}\n`;
}

interface Pending {
  readonly chunk: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** No chunk asked for yet: the producer has not started. */
const IDLE = 0;
/** The producer is running. */
const RUNNING = 1;
/** The producer settled (or close() was called): what is queued is sent, then the body ends. */
const ENDING = 2;
/** The body ended; writes reject. */
const DONE = 3;

/** The body of an SSE response: an async iterator fed by the producer's writes. */
class EventStream implements AsyncIterableIterator<Uint8Array> {
  readonly #producer: SSEProducer;
  readonly #keepAlive: number;
  readonly #controller = new AbortController();
  readonly #linked: AbortSignal | undefined;
  readonly #queue: Pending[] = [];
  #state: number = IDLE;
  /** The server's pending `next()`, while it waits for a chunk. */
  #waiting: ((result: IteratorResult<Uint8Array>) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #writer: SSEWriter;

  constructor(producer: SSEProducer, keepAlive: number, signal: AbortSignal | undefined) {
    this.#producer = producer;
    this.#keepAlive = keepAlive;
    this.#linked = signal;
    const stream = this;
    this.#writer = {
      write(event: SSEEvent | string): Promise<void> {
        if (typeof event === "string") {
          return stream.#push(Buffer.from(formatEvent(new SSEEvent(event)), "utf8"));
        }
        if (!(event instanceof SSEEvent)) {
          return Promise.reject(new ArgumentError("write takes an SSEEvent or a string"));
        }
        return stream.#push(Buffer.from(formatEvent(event), "utf8"));
      },
      comment(text: string): Promise<void> {
        if (typeof text !== "string") return Promise.reject(new ArgumentError("comment takes a string"));
        return stream.#push(Buffer.from(formatComment(text), "utf8"));
      },
      close(): void {
        stream.#end();
      },
      get signal(): AbortSignal {
        return stream.#controller.signal;
      },
    };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#state === IDLE) this.#start();
    const pending = this.#queue.shift();
    if (pending !== undefined) {
      pending.resolve();
      this.#timer?.refresh();
      return Promise.resolve({ value: pending.chunk, done: false });
    }
    if (this.#state !== RUNNING) {
      this.#finish("the event stream ended");
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  /** The server stopped reading (the client left, or a HEAD request): end and tell the producer. */
  return(): Promise<IteratorResult<Uint8Array>> {
    this.#finish("the client went away");
    return Promise.resolve({ value: undefined, done: true });
  }

  #start(): void {
    this.#state = RUNNING;
    const linked = this.#linked;
    if (linked !== undefined) {
      if (linked.aborted) {
        this.#finish("the client went away");
        return;
      }
      linked.addEventListener("abort", this.#onLinkedAbort, { once: true });
    }
    if (this.#keepAlive > 0) {
      this.#timer = setTimeout(this.#onKeepAlive, this.#keepAlive);
      this.#timer.unref();
    }
    let result: void | Promise<void>;
    try {
      result = this.#producer(this.#writer);
    } catch (err) {
      this.#producerEnded(err, true);
      return;
    }
    Promise.resolve(result).then(
      () => this.#producerEnded(undefined, false),
      (err: unknown) => this.#producerEnded(err, true),
    );
  }

  readonly #onLinkedAbort = (): void => {
    this.#finish("the client went away");
  };

  readonly #onKeepAlive = (): void => {
    if (this.#state !== RUNNING) return;
    // Only an idle stream gets a comment; a busy one is writing already, or waiting for the client.
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting({ value: KEEP_ALIVE, done: false });
    }
    this.#timer?.refresh();
  };

  #push(chunk: Uint8Array): Promise<void> {
    if (this.#state === ENDING || this.#state === DONE) {
      return Promise.reject(new ClosedError("the event stream has ended; nothing more can be written"));
    }
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting({ value: chunk, done: false });
      this.#timer?.refresh();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ chunk, resolve, reject });
    });
  }

  #producerEnded(err: unknown, failed: boolean): void {
    // Once the stream is over, the producer's own ClosedError (a write that found it closed) or an
    // abort it caused through the signal is how it was told to stop, not a failure.
    if (failed && !(this.#controller.signal.aborted && isStopSignal(err))) reportHandlerError(err);
    this.#end();
  }

  /** No more writes; the body ends once the queue is sent. */
  #end(): void {
    if (this.#state !== RUNNING && this.#state !== IDLE) return;
    this.#state = ENDING;
    const waiting = this.#waiting;
    if (waiting !== undefined && this.#queue.length === 0) {
      this.#waiting = undefined;
      this.#finish("the event stream ended");
      waiting({ value: undefined, done: true });
    }
  }

  #finish(why: string): void {
    if (this.#state === DONE) return;
    this.#state = DONE;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#linked?.removeEventListener("abort", this.#onLinkedAbort);
    const error = new ClosedError(why);
    for (const pending of this.#queue.splice(0)) pending.reject(error);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
    this.#controller.abort(error);
  }
}

function isStopSignal(err: unknown): boolean {
  return err instanceof ClosedError || (err instanceof Error && err.name === "AbortError");
}

/**
 * A `text/event-stream` response (status 200, `Cache-Control: no-cache`, chunked) whose events come
 * from `producer(writer)`. The producer starts when the server starts sending the body, and the body
 * ends when the producer's promise settles (or it calls `writer.close()`); a producer that fails ends
 * the stream and is reported as a process warning. `await writer.write(event)` waits while the client
 * does not read, so a slow client slows the producer instead of filling memory. `writer.signal`
 * aborts when the client goes away (at once with the `signal` option, else at the next write or
 * keep-alive comment). A comment is sent after `keepAlive` ms without events.
 *
 * Bad options throw `ArgumentError`.
 *
 * ```ts
 * await serve((req) =>
 *   sseResponse(async (w) => {
 *     for (let i = 0; !w.signal.aborted && i < 10; i++) {
 *       await w.write(new SSEEvent(JSON.stringify({ i }), { event: "tick", id: String(i) }));
 *     }
 *   }, { signal: req.signal }),
 * { port: 0 });
 * ```
 */
export function sseResponse(producer: SSEProducer, options: SSEResponseOptions = {}): Response {
  if (typeof producer !== "function") throw new ArgumentError("sseResponse needs a producer function");
  const keepAlive = options.keepAlive ?? SSE_DEFAULTS.keepAlive;
  if (typeof keepAlive !== "number" || !Number.isFinite(keepAlive) || keepAlive < 0) {
    throw new ArgumentError(
      `sseResponse keepAlive must be a non-negative number of milliseconds, got ${keepAlive}`,
    );
  }
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ArgumentError("sseResponse signal must be an AbortSignal");
  }
  const headers = new Headers(options.headers);
  if (headers.has("content-length")) {
    throw new ArgumentError("an event stream has no length; do not set Content-Length on an SSE response");
  }
  if (!headers.has("content-type")) headers.set("Content-Type", "text/event-stream");
  if (!headers.has("cache-control")) headers.set("Cache-Control", "no-cache");
  return new Response(options.status ?? SSE_DEFAULTS.status, {
    headers,
    body: new EventStream(producer, keepAlive, signal),
  });
}
