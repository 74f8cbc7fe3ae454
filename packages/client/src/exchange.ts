// One attempt of one request on one pooled connection: the undici dispatch handler, the per-phase
// timers, cancellation, and the three ways a response body is taken (buffered, into a Writable, pulled).
import { once } from "node:events";
import http from "node:http";
import type { Writable } from "node:stream";
import {
  ArgumentError,
  CanceledError,
  ClosedError,
  Deadline,
  Headers,
  HTTPError,
  IdleTimer,
  ParseError,
  ProtocolError,
  type ResolvedTimeouts,
  TimeoutError,
} from "@hyperwire/core";
import type { Connection, Transport } from "./transport.js";

/**
 * How the response body is taken: `buffer` collects it into one `Uint8Array`; `writable` writes it
 * to a `Writable` as it arrives and `pull` queues it for `read()`, both pausing the socket under
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
 * {@link Exchange} or an HTTP/2 stream (`H2Exchange`).
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
  /** Resolves with the response head. */
  headReceived(): Promise<ResponseHead>;
  /** Pull mode: the next chunk, or `null` at the end. */
  read(): Promise<Uint8Array | null>;
  /** Aborts the attempt with `err` (timeouts, cancellation, an unread body). */
  fail(err: HTTPError): void;
}

const EMPTY = new Uint8Array(0);
/** Pull mode: stop reading from the socket once this much is queued and unread. */
const PULL_HIGH_WATER = 256 * 1024;

type Resolver<T> = { resolve: (v: T) => void; reject: (e: unknown) => void };

/**
 * Drives one exchange through undici's (legacy, unwrapped) dispatch handler interface. Every
 * outcome settles exactly once; every timer it started is stopped; the connection is released
 * exactly once (reusable only after a complete response).
 */
export class Exchange implements Attempt {
  readonly conn: Connection;
  readonly #transport: Transport;
  readonly #timeouts: ResolvedTimeouts;
  readonly #mode: BodyMode;
  readonly #sink: Writable | undefined;
  #abort: ((err: Error) => void) | undefined;
  #error: HTTPError | undefined;
  #released = false;
  #oneShot = false;
  #finished = false;

  /** The head, once it arrived. */
  head: ResponseHead | undefined;
  trailers: Headers | undefined;
  /** True once any byte of a final response head arrived. */
  responded = false;
  /** The failure came from a reused connection closing before any response: safe to retry once. */
  stale = false;

  #chunks: Uint8Array[] = [];
  #size = 0;
  #resume: (() => void) | undefined;
  #paused = false;
  #headWaiter: Resolver<ResponseHead> | undefined;
  #doneWaiter: Resolver<Uint8Array> | undefined;
  #donePromise: Promise<Uint8Array> | undefined;
  #readWaiter: Resolver<Uint8Array | null> | undefined;
  #onHead: ((head: ResponseHead) => void) | undefined;

  #headTimer: Deadline | undefined;
  #readIdle: IdleTimer | undefined;
  #writeIdle: IdleTimer | undefined;

  constructor(
    transport: Transport,
    conn: Connection,
    timeouts: ResolvedTimeouts,
    mode: BodyMode,
    sink: Writable | undefined,
    onHead: ((head: ResponseHead) => void) | undefined,
  ) {
    this.#transport = transport;
    this.conn = conn;
    this.#timeouts = timeouts;
    this.#mode = mode;
    this.#sink = sink;
    this.#onHead = onHead;
  }

  /** Sends the request. The outcome arrives through {@link done} / {@link headReceived}. */
  start(req: ExchangeRequest): void {
    this.#watchSinkFailure();
    let body = req.body;
    if (body !== null && !(body instanceof Uint8Array) && this.#watchWrites()) {
      body = watchWrites(body, this.#writeIdle!);
    }
    this.conn.engine.dispatch(
      // undici streams any async iterable; its type lists only Readable.
      {
        path: req.path,
        method: req.method,
        headers: req.headers,
        body: body as Uint8Array | null,
        reset: false,
      },
      // biome-ignore lint/suspicious/noExplicitAny: undici's handler type lists the new interface only; the legacy one is the unwrapped fast path.
      this as any,
    );
  }

  // The caller's responseStream can fail or be destroyed under us: the exchange must fail, not wait
  // for a 'drain' that never comes.
  #watchingSink = false;
  readonly #onSinkDrain = (): void => this.#unpause();
  readonly #onSinkFailure = (): void => this.#sinkGone();

  #watchSinkFailure(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    sink.on("error", this.#onSinkFailure);
    sink.on("close", this.#onSinkFailure);
  }

  #unwatchSink(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    sink.removeListener("error", this.#onSinkFailure);
    sink.removeListener("close", this.#onSinkFailure);
    sink.removeListener("drain", this.#onSinkDrain);
  }

  #sinkGone(): void {
    this.fail(this.#sinkError());
  }

  #sinkError(): CanceledError {
    const sink = this.#sink!;
    const why = sink.errored ? `: ${sink.errored.message}` : " (it was destroyed or ended)";
    return new CanceledError(
      `the responseStream failed${why}; the response was abandoned and its connection closed`,
      {
        cause: sink.errored ?? undefined,
      },
    );
  }

  /** Starts the (paused) write-idle timer when `writeIdleTimeout` is set. */
  #watchWrites(): boolean {
    if (this.#timeouts.writeIdleTimeout === 0) return false;
    this.#writeIdle = new IdleTimer(this.#timeouts.writeIdleTimeout, "writeIdle", (e) => this.fail(e));
    this.#writeIdle.pause();
    return true;
  }

  /**
   * Resolves with the buffered body (empty in Writable and Pull modes) once the response completed.
   * Every call returns the same promise.
   */
  done(): Promise<Uint8Array> {
    if (this.#donePromise === undefined) {
      this.#donePromise = new Promise<Uint8Array>((resolve, reject) => {
        if (this.#error) reject(this.#error);
        else if (this.#finished) resolve(this.#takeBuffered());
        else this.#doneWaiter = { resolve, reject };
      });
    }
    return this.#donePromise;
  }

  /** Resolves with the response head. */
  headReceived(): Promise<ResponseHead> {
    return new Promise<ResponseHead>((resolve, reject) => {
      if (this.head) resolve(this.head);
      else if (this.#error) reject(this.#error);
      else this.#headWaiter = { resolve, reject };
    });
  }

  /** Pull mode: the next chunk, or `null` at the end. */
  read(): Promise<Uint8Array | null> {
    if (this.#chunks.length > 0) {
      const chunk = this.#chunks.shift()!;
      this.#size -= chunk.byteLength;
      if (this.#paused && this.#size < PULL_HIGH_WATER) this.#unpause();
      return Promise.resolve(chunk);
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#finished) return Promise.resolve(null);
    this.#readIdle?.touch();
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#readWaiter = { resolve, reject };
    });
  }

  /** True when the whole response arrived (its body may still sit unread in the pull queue). */
  get finished(): boolean {
    return this.#finished;
  }

  /** Always `"h1"` (a prototype getter: no per-exchange field). */
  get protocol(): "h1" {
    return "h1";
  }

  /** True on a keep-alive connection that served an exchange before. */
  get reused(): boolean {
    return this.conn.served > 0;
  }

  /** Aborts the exchange with `err` (timeouts, cancellation, an unread body). The socket is closed. */
  fail(err: HTTPError): void {
    if (this.#finished || this.#error) return;
    if (this.#abort) this.#abort(err);
    else this.#settleError(err);
  }

  // ---- undici's dispatch handler (legacy interface) ----

  onConnect(abort: (err: Error) => void): void {
    this.#abort = abort;
    // Failed while the request sat in the engine's queue: stop it before it is written.
    if (this.#error) abort(this.#error);
  }

  onRequestSent(): void {
    this.#writeIdle?.cancel();
    if (this.responded) return;
    const t = this.#timeouts;
    if (t.responseHeaderTimeout > 0) {
      this.#headTimer = new Deadline(t.responseHeaderTimeout, "responseHeader", (e) => this.fail(e));
    }
    if (t.readIdleTimeout > 0) {
      this.#readIdle = new IdleTimer(t.readIdleTimeout, "readIdle", (e) => this.fail(e));
    }
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) {
      this.#readIdle?.touch();
      return true;
    }
    const flat: string[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) flat[i] = raw[i]!.toString("latin1");
    this.#acceptHead(status, flat, statusText, resume);
    return true;
  }

  #acceptHead(status: number, flat: string[], reason: string, resume: () => void): void {
    this.responded = true;
    this.#resume = resume;
    this.#headTimer?.cancel();
    this.#readIdle?.touch();
    const head: ResponseHead = { status, reason, headers: Headers.fromTrusted(flat) };
    this.head = head;
    this.#onHead?.(head);
    const w = this.#headWaiter;
    if (w) {
      this.#headWaiter = undefined;
      w.resolve(head);
    }
  }

  /**
   * Sends a request whose caller set `Expect: 100-continue`, which undici refuses: node:http drives
   * this one exchange on our socket. The body goes after `100 Continue` or after
   * `expectContinueTimeout`, and not at all when a final response comes first. The connection is not
   * reused afterwards.
   */
  startExpectContinue(req: ExchangeRequest, host: string): void {
    this.#oneShot = true;
    this.#watchSinkFailure();
    this.#watchWrites();
    const pairs: [string, string][] = [];
    let hasHost = false;
    let hasLength = false;
    for (let i = 0; i < req.headers.length; i += 2) {
      const name = req.headers[i]!;
      const lower = name.toLowerCase();
      if (lower === "host") hasHost = true;
      else if (lower === "content-length") hasLength = true;
      pairs.push([name, req.headers[i + 1]!]);
    }
    if (!hasHost) pairs.push(["Host", host]);
    const body = req.body;
    if (body instanceof Uint8Array && !hasLength) pairs.push(["Content-Length", String(body.byteLength)]);
    const socket = this.conn.socket;
    const out = http.request({
      method: req.method,
      path: req.path,
      // node:http takes [name, value] pairs (kept in order, repeats allowed); its type lists objects only.
      headers: pairs as unknown as http.OutgoingHttpHeaders,
      createConnection: () => socket,
      setHost: false,
    });
    const onFailure = (err: Error): void => this.onError(err);
    out.on("error", onFailure);
    this.#abort = (err) => {
      out.destroy(err);
      socket.destroy();
      this.onError(err);
    };
    let bodySent = false;
    let continueTimer: NodeJS.Timeout | undefined;
    const sendBody = (): void => {
      if (bodySent || this.responded || this.#error) return;
      bodySent = true;
      if (continueTimer !== undefined) clearTimeout(continueTimer);
      writeAll(out, body, this.#writeIdle).then(
        () => this.onRequestSent(),
        (e: unknown) =>
          this.fail(
            e instanceof HTTPError
              ? e
              : new ProtocolError(`sending the request body failed: ${(e as Error).message}`, { cause: e }),
          ),
      );
    };
    out.on("continue", sendBody);
    const wait = this.#timeouts.expectContinueTimeout;
    if (wait > 0) {
      continueTimer = setTimeout(sendBody, wait);
      continueTimer.unref();
    } else setImmediate(sendBody);
    out.on("response", (res: http.IncomingMessage) => {
      if (continueTimer !== undefined) clearTimeout(continueTimer);
      res.on("error", onFailure);
      this.#acceptHead(res.statusCode ?? 0, res.rawHeaders, res.statusMessage ?? "", () => res.resume());
      res.on("data", (chunk: Buffer) => {
        if (!this.onData(chunk)) res.pause();
      });
      res.on("end", () => {
        this.onComplete(null);
        socket.destroy();
      });
      res.on("aborted", () => this.onError(new ClosedError("the server closed the connection mid-response")));
    });
    // The head goes out now; the response timers start once the body was sent.
    out.flushHeaders();
  }

  onData(chunk: Buffer): boolean {
    this.#readIdle?.touch();
    switch (this.#mode) {
      case "buffer":
        this.#chunks.push(chunk);
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
        this.#chunks.push(chunk);
        this.#size += chunk.byteLength;
        if (this.#size < PULL_HIGH_WATER) return true;
        this.#pause();
        return false;
      }
    }
  }

  onComplete(rawTrailers: Buffer[] | null): void {
    if (this.#error) return;
    if (this.#sink !== undefined && (this.#sink.errored || this.#sink.destroyed)) {
      // The engine is done with this request: settle here, an abort would not reach onError.
      this.#settleError(this.#sinkError());
      return;
    }
    this.#finished = true;
    this.#unwatchSink();
    this.#stopTimers();
    if (rawTrailers && rawTrailers.length > 0) {
      const flat = rawTrailers.map((b) => b.toString("latin1"));
      this.trailers = Headers.fromTrusted(flat);
    }
    const closing = this.head !== undefined && this.head.headers.get("connection")?.toLowerCase() === "close";
    this.#release(!closing && !this.#oneShot);
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

  onError(err: Error): void {
    this.#settleError(this.#mapError(err));
  }

  onBodySent(): void {}

  onUpgrade(): void {
    this.#settleError(new ProtocolError("the server switched protocols on a plain request"));
  }

  // ---- internals ----

  #takeBuffered(): Uint8Array {
    if (this.#mode !== "buffer") return EMPTY;
    const chunks = this.#chunks;
    this.#chunks = [];
    if (chunks.length === 0) return EMPTY;
    if (chunks.length === 1) return chunks[0]!;
    return Buffer.concat(chunks, this.#size);
  }

  #settleError(err: HTTPError): void {
    if (this.#error || this.#finished) return;
    this.#error = err;
    this.#unwatchSink();
    this.#stopTimers();
    this.#release(false);
    this.#chunks = [];
    const h = this.#headWaiter;
    const d = this.#doneWaiter;
    const r = this.#readWaiter;
    this.#headWaiter = this.#doneWaiter = this.#readWaiter = undefined;
    h?.reject(err);
    d?.reject(err);
    r?.reject(err);
  }

  #release(reusable: boolean): void {
    if (this.#released) return;
    this.#released = true;
    this.#transport.release(this.conn, reusable);
  }

  #stopTimers(): void {
    this.#headTimer?.cancel();
    this.#readIdle?.cancel();
    this.#writeIdle?.cancel();
  }

  #pause(): void {
    this.#paused = true;
    // The consumer, not the peer, is slow: silence on the socket is not the server's fault.
    this.#readIdle?.pause();
  }

  #unpause(): void {
    this.#paused = false;
    this.#readIdle?.touch();
    this.#resume?.();
  }

  #mapError(err: Error): HTTPError {
    if (err instanceof HTTPError && !(err instanceof ClosedError)) return err;
    const code = (err as { code?: string }).code ?? "";
    const closed =
      err instanceof ClosedError || code === "UND_ERR_SOCKET" || code === "ECONNRESET" || code === "EPIPE";
    if (closed) {
      if (!this.responded) {
        this.stale = this.conn.served > 0;
        return new ProtocolError(
          `the server closed the connection before sending a response (${err.message})`,
          { code: "HW_CONNECTION_CLOSED", cause: err },
        );
      }
      return new ParseError(
        `the response body was truncated: the server closed the connection before the end (${err.message})`,
        { cause: err },
      );
    }
    if (code === "UND_ERR_HEADERS_OVERFLOW") {
      return new ParseError(
        `the response head is larger than maxResponseHeaderBytes (${this.#transport.maxResponseHeaderBytes} bytes)`,
        { cause: err },
      );
    }
    if (code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH") {
      return new ParseError(`the response body does not match its Content-Length (${err.message})`, {
        cause: err,
      });
    }
    if (code.startsWith("HPE_") || err.name === "HTTPParserError") {
      return new ParseError(`malformed response from the server: ${err.message}`, { cause: err });
    }
    if (code === "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH") {
      return new ArgumentError(`the request body does not match its Content-Length header (${err.message})`, {
        cause: err,
      });
    }
    if (code === "UND_ERR_INVALID_ARG" || code === "UND_ERR_NOT_SUPPORTED") {
      return new ArgumentError(`invalid request: ${err.message}`, { cause: err });
    }
    if (err instanceof TimeoutError) return err;
    return new ProtocolError(`the exchange failed: ${err.message}`, { cause: err });
  }
}

/** Writes a body to a node:http request with back-pressure, then ends it. */
async function writeAll(
  out: http.ClientRequest,
  body: Uint8Array | AsyncIterable<Uint8Array> | null,
  idle: IdleTimer | undefined,
): Promise<void> {
  if (body !== null) {
    const chunks = body instanceof Uint8Array ? [body] : body;
    for await (const chunk of chunks) {
      idle?.touch();
      if (!out.write(chunk)) await once(out, "drain");
      idle?.pause();
    }
  }
  await new Promise<void>((resolve) => out.end(resolve));
}

/** Re-arms the write-idle timer around each chunk handed to the socket; the wait on the source is not counted. */
async function* watchWrites(body: AsyncIterable<Uint8Array>, timer: IdleTimer): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    timer.touch();
    yield chunk;
    timer.pause();
  }
  timer.touch();
}
