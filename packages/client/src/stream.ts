// open(): a streaming exchange. The caller writes the request body (each write waits until the
// engine took the chunk), then pulls the response body. Unread bodies never go back to the pool.
import {
  ArgumentError,
  CanceledError,
  type HTTPError,
  ProtocolError,
  type Response,
  StatusError,
} from "@hyperwire/core";
import type { Client } from "./client.js";
import type { CookieJar } from "./cookie-jar.js";
import { jarFor, storeCookies } from "./cookies.js";
import { codingOf, contentLengthOf, type DownloadProgress, PullDecoder } from "./decompress.js";
import type { Attempt as Exchange, ResponseHead } from "./exchange.js";
import { isFailingStatus, type RequestOptions, STALE_RETRY_METHODS } from "./options.js";
import { type Prepared, prepare } from "./prepare.js";
import { attemptProtocol, CallGuard, mayRetryStale, responseOf, startAttempt } from "./request.js";
import { emit } from "./trace.js";

/** The callback form of `open`: it gets the stream; `open` then resolves to the final response. */
export type ClientStreamHandler = (stream: ClientStream) => unknown;

const EMPTY = new Uint8Array(0);

type Pending = { chunk: Uint8Array; resolve: () => void; reject: (e: unknown) => void };

/** The request body of an `open()` exchange, fed by `write()` and pulled by the engine. */
class BodyPipe implements AsyncIterable<Uint8Array> {
  readonly #queue: Pending[] = [];
  /** The chunk the engine holds but has not asked past yet (its write is still pending). */
  #inFlight: Pending | undefined;
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;

  write(chunk: Uint8Array): Promise<void> {
    if (this.#ended) return Promise.reject(new ArgumentError("write after the request body was closed"));
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ chunk, resolve, reject });
      this.#wakeUp();
    });
  }

  end(): void {
    this.#ended = true;
    this.#wakeUp();
  }

  /** Fails pending and later writes. */
  fail(err: unknown): void {
    if (this.#error !== undefined) return;
    this.#error = err;
    const inFlight = this.#inFlight;
    this.#inFlight = undefined;
    inFlight?.reject(err);
    for (const p of this.#queue.splice(0)) p.reject(err);
    this.#wakeUp();
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const next = this.#queue.shift();
        if (next !== undefined) {
          this.#inFlight = next;
          yield next.chunk;
          // The engine asked for more: the chunk was handed to the socket.
          this.#inFlight = undefined;
          next.resolve();
          continue;
        }
        if (this.#error !== undefined) throw this.#error;
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      // The engine stopped pulling before the end (the connection failed, or the response ended the
      // exchange early): nothing more will be sent, so pending and later writes must not wait forever.
      if (this.#inFlight !== undefined || !this.#ended) {
        this.fail(
          new ProtocolError("the request body was not sent in full: the exchange ended; see startRead()", {
            code: "HW_CONNECTION_CLOSED",
          }),
        );
      }
    }
  }
}

/**
 * One streaming exchange. Write the request body with {@link write} (each promise resolves when the
 * chunk was taken, so awaiting it respects back-pressure), then read the response: {@link startRead}
 * for the head, `for await` or {@link read} for the body, {@link closeRead} for the final `Response`.
 *
 * ```ts
 * const stream = await open("POST", url);
 * await stream.write("part 1");
 * await stream.closeWrite();
 * const head = await stream.startRead();
 * for await (const chunk of stream) process(chunk);
 * ```
 */
export class ClientStream implements AsyncIterable<Uint8Array> {
  readonly #p: Prepared;
  readonly #guard: CallGuard | null;
  #pipe: BodyPipe | undefined;
  #started: Promise<Exchange> | undefined;
  #writeClosed = false;
  #response: Response<Uint8Array> | undefined;
  #closed = false;
  /** closeRead() is throwing away an unread body: the exchange's abort is not a failure to report. */
  #discarding = false;
  #traced = false;
  /** Reads the response body (set on the first read). */
  #reader: (() => Promise<Uint8Array | null>) | undefined;
  /** Decodes a compressed response body, when there is one. */
  #decoder: PullDecoder | undefined;
  readonly #progress: DownloadProgress | undefined;
  /** The jar the response's Set-Cookie fields go to (once, when the head is read), or `null`. */
  #jar: CookieJar | null;

  /** @internal Made by `open`. */
  constructor(p: Prepared, options: RequestOptions) {
    this.#p = p;
    this.#guard = CallGuard.for(p, options);
    if (options.downloadProgress !== undefined && typeof options.downloadProgress !== "function") {
      throw new ArgumentError("downloadProgress must be a function");
    }
    this.#progress = options.downloadProgress;
    this.#jar = jarFor(p.client, options);
  }

  /** The response head, once {@link startRead} resolved. */
  get response(): Response<Uint8Array> | undefined {
    return this.#response;
  }

  /** True when the status is one `statusException` rejects and the server closes the connection. */
  get isAborted(): boolean {
    const r = this.#response;
    return (
      r !== undefined && isFailingStatus(r.status) && r.headers.get("connection")?.toLowerCase() === "close"
    );
  }

  /** Writes a request-body chunk (sent chunked unless you set Content-Length). Resolves once the engine took it. */
  write(chunk: Uint8Array | string): Promise<void> {
    if (this.#writeClosed)
      return Promise.reject(new ArgumentError("write after closeWrite() or startRead()"));
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    if (!(bytes instanceof Uint8Array))
      return Promise.reject(new ArgumentError("write() takes a string or Uint8Array"));
    if (this.#pipe === undefined) {
      this.#pipe = new BodyPipe();
      this.#start(this.#pipe);
    }
    return this.#pipe.write(bytes);
  }

  /** Ends the request body. Idempotent. */
  async closeWrite(): Promise<void> {
    if (this.#writeClosed) return;
    this.#writeClosed = true;
    if (this.#pipe === undefined) this.#start(null);
    else this.#pipe.end();
  }

  /** Ends the request body (if still open) and resolves with the response head (its `body` is empty). */
  async startRead(): Promise<Response<Uint8Array>> {
    if (this.#response !== undefined) return this.#response;
    await this.closeWrite();
    const exchange = await this.#started!;
    const head = await exchange.headReceived();
    if (this.#jar !== null) {
      storeCookies(this.#jar, new URL(this.#p.url), head.headers);
      this.#jar = null;
    }
    if (this.#response === undefined) {
      this.#response = responseOf(this.#p, head, EMPTY);
    }
    return this.#response;
  }

  /** The next chunk of the response body, or `null` at its end. */
  async read(): Promise<Uint8Array | null> {
    const res = await this.startRead();
    const exchange = await this.#started!;
    let reader = this.#reader;
    if (reader === undefined) {
      reader = this.#readerFor(exchange, res);
      this.#reader = reader;
    }
    const chunk = await reader();
    if (chunk === null) this.#finish(exchange);
    return chunk;
  }

  /** How body chunks are read: straight from the exchange, counted for `downloadProgress`, decoded. */
  #readerFor(exchange: Exchange, res: Response<Uint8Array>): () => Promise<Uint8Array | null> {
    const p = this.#p;
    const progress = this.#progress;
    let wire = (): Promise<Uint8Array | null> => exchange.read();
    if (progress !== undefined) {
      const total = contentLengthOf(res.headers);
      let transferred = 0;
      wire = async () => {
        const chunk = await exchange.read();
        if (chunk !== null) {
          transferred += chunk.byteLength;
          try {
            progress(transferred, total);
          } catch (e) {
            // An observer must not change the outcome of the exchange it observes.
            process.emitWarning(
              `the downloadProgress callback threw: ${(e as Error)?.message ?? String(e)}`,
              {
                code: "HW_PROGRESS_CALLBACK",
              },
            );
          }
        }
        return chunk;
      };
    }
    const coding = p.decompress ? codingOf(res.status, p.method, res.headers) : null;
    if (coding === null) return wire;
    const decoder = new PullDecoder(coding, p.maxDecompressedSize, wire, (e) => exchange.fail(e));
    this.#decoder = decoder;
    return () => decoder.read();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /**
   * Stops reading and resolves with the final `Response` (empty body). A body not read to its end is
   * discarded with its connection, which is not reused.
   */
  async closeRead(): Promise<Response<Uint8Array>> {
    const res = await this.startRead();
    const exchange = await this.#started!;
    if (!exchange.finished) {
      this.#discarding = true;
      exchange.fail(
        new CanceledError("the response body was not read to its end; the connection was closed"),
      );
    }
    this.#finish(exchange);
    return res;
  }

  /** Aborts the exchange (if still running) and frees everything. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#writeClosed = true;
    const err = new CanceledError("the stream was closed");
    this.#pipe?.fail(err);
    if (this.#started === undefined) {
      this.#closed = true;
      this.#guard?.dispose();
      return;
    }
    try {
      const exchange = await this.#started;
      exchange.fail(err);
      this.#finish(exchange);
    } catch {
      // The exchange never started; its error went to whoever awaited it.
    }
    this.#closed = true;
    this.#guard?.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The `done` trace event, once: with the response, or with the error that ended the exchange. */
  #traceDone(error: unknown): void {
    const tracer = this.#p.tracer;
    if (tracer === null || this.#traced) return;
    this.#traced = true;
    emit(tracer, {
      type: "done",
      response: error === null ? (this.#response ?? null) : null,
      error,
      url: this.#p.url,
    });
  }

  #finish(exchange: Exchange): void {
    this.#decoder?.destroy();
    if (exchange.trailers !== undefined && this.#response !== undefined)
      this.#response.trailers = exchange.trailers;
    if (!this.#closed) {
      this.#closed = true;
      this.#guard?.dispose();
    }
  }

  #start(pipe: BodyPipe | null): void {
    const p: Prepared = { ...this.#p, body: pipe };
    this.#started = this.#run(p).then(
      (exchange) => {
        if (p.tracer !== null) {
          exchange.done().then(
            () => this.#traceDone(null),
            (e: unknown) => this.#traceDone(this.#discarding ? null : e),
          );
        }
        return exchange;
      },
      (e: unknown) => {
        pipe?.fail(e);
        this.#guard?.dispose();
        this.#traceDone(e);
        throw e;
      },
    );
    // Errors are delivered to the caller's next startRead/read/write; don't report them as unhandled meanwhile.
    this.#started.catch(() => {});
  }

  async #run(p: Prepared): Promise<Exchange> {
    for (let attempt = 1; ; attempt++) {
      let exchange: Exchange | undefined;
      try {
        const tracer = p.tracer;
        if (tracer !== null) {
          emit(tracer, {
            type: "request",
            request: p.request,
            url: p.url,
            attempt,
            redirectCount: 0,
            protocol: attemptProtocol(p),
          });
        }
        const onHead =
          tracer === null
            ? undefined
            : (head: ResponseHead) => {
                const response = responseOf(p, head, EMPTY);
                this.#response = response;
                emit(tracer, { type: "responseHead", response, url: p.url, attempt, redirectCount: 0 });
              };
        const attempting = startAttempt(p, this.#guard, "pull", undefined, attempt > 1, onHead);
        const started = attempting instanceof Promise ? await attempting : attempting;
        exchange = started.exchange;
        const unwatch = started.unwatch;
        const pipe = p.body instanceof BodyPipe ? p.body : undefined;
        void exchange.done().then(unwatch, (e: unknown) => {
          unwatch?.();
          // Writes still waiting get the exchange's error rather than hanging.
          pipe?.fail(e);
        });
        if (
          p.body === null &&
          (exchange.protocol === "h2" || (STALE_RETRY_METHODS.has(p.method) && exchange.reused))
        ) {
          // A stale keep-alive connection, or an HTTP/2 stream the server did not process (GOAWAY,
          // REFUSED_STREAM), fails here, before the caller sees anything: retry it.
          await exchange.headReceived();
        }
        return exchange;
      } catch (e) {
        if (mayRetryStale(p, exchange, this.#guard, e, attempt - 1)) continue;
        throw e as HTTPError;
      }
    }
  }
}

/**
 * Opens a streaming exchange. Without a handler it resolves to the {@link ClientStream}. With one,
 * it runs the handler, closes the write side, discards what the handler left unread, and resolves
 * to the final `Response`; `StatusError` is thrown after the handler when the status fails
 * (`statusException`), and the handler's own error after that.
 *
 * ```ts
 * const res = await open("GET", url, async (stream) => {
 *   for await (const chunk of stream) total += chunk.byteLength;
 * });
 * ```
 */
export async function open(
  client: Client,
  method: string,
  url: string | URL,
  handlerOrOptions?: ClientStreamHandler | Omit<RequestOptions, "client">,
  maybeOptions?: Omit<RequestOptions, "client">,
): Promise<ClientStream | Response<Uint8Array>> {
  const handler = typeof handlerOrOptions === "function" ? handlerOrOptions : undefined;
  const options = (typeof handlerOrOptions === "function" ? maybeOptions : handlerOrOptions) ?? {};
  if (options.body !== undefined || options.json !== undefined) {
    throw new ArgumentError("open() takes no body option: write the body to the stream");
  }
  if (options.responseStream !== undefined) throw new ArgumentError("open() takes no responseStream option");
  const prepared = prepare(client, method, url, options, false);
  const p = prepared instanceof Promise ? await prepared : prepared;
  const stream = new ClientStream(p, options);
  if (handler === undefined) return stream;

  let handlerError: unknown;
  let failed = false;
  try {
    await handler(stream);
  } catch (e) {
    handlerError = e;
    failed = true;
  }
  let res: Response<Uint8Array>;
  try {
    await stream.closeWrite();
    res = await stream.closeRead();
  } catch (e) {
    await stream.close();
    throw failed ? handlerError : e;
  }
  if (p.statusException && isFailingStatus(res.status)) {
    throw new StatusError(res, { method: p.method, url: p.url, ...(failed ? { cause: handlerError } : {}) });
  }
  if (failed) throw handlerError;
  return res;
}
