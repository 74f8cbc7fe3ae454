// One attempt of one request on one pooled connection: the undici dispatch handler, the HTTP/1.1
// `Expect: 100-continue` path, and how undici's errors map to ours. Taking the body, the waiters and
// the per-phase timers are the shared `AttemptBase`.
import { once } from "node:events";
import http from "node:http";
import type { Writable } from "node:stream";
import {
  ArgumentError,
  ClosedError,
  Headers,
  HTTPError,
  type IdleTimer,
  ParseError,
  ProtocolError,
  type ResolvedTimeouts,
  TimeoutError,
} from "@hyperwire/core";
import { AttemptBase, type BodyMode, type ExchangeRequest, type ResponseHead } from "./attempt.js";
import type { Connection, Transport } from "./transport.js";

export type { Attempt, BodyMode, ExchangeRequest, ResponseHead } from "./attempt.js";

/**
 * Drives one exchange through undici's (legacy, unwrapped) dispatch handler interface. Every
 * outcome settles exactly once; every timer it started is stopped; the connection is released
 * exactly once (reusable only after a complete response).
 *
 * ```ts
 * const exchange = new Exchange(transport, conn, timeouts, "buffer", undefined, undefined);
 * exchange.start({ method: "GET", path: "/", headers: ["Host", "example.com"], body: null });
 * const body = await exchange.done();
 * ```
 */
export class Exchange extends AttemptBase {
  readonly conn: Connection;
  readonly #transport: Transport;
  #abort: ((err: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #released = false;
  #oneShot = false;
  /** The failure came from a reused connection closing before any response: safe to retry once. */
  override stale = false;

  constructor(
    transport: Transport,
    conn: Connection,
    timeouts: ResolvedTimeouts,
    mode: BodyMode,
    sink: Writable | undefined,
    onHead: ((head: ResponseHead) => void) | undefined,
  ) {
    super(timeouts, mode, sink, onHead);
    this.#transport = transport;
    this.conn = conn;
  }

  /** Sends the request. The outcome arrives through {@link done} / {@link headReceived}. */
  start(req: ExchangeRequest): void {
    this.watchSink();
    let body = req.body;
    if (body !== null && !(body instanceof Uint8Array)) {
      const idle = this.startWriteIdle();
      if (idle !== undefined) body = watchWrites(body, idle);
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

  /** Always `"h1"` (a prototype getter: no per-exchange field). */
  override get protocol(): "h1" {
    return "h1";
  }

  /** True on a keep-alive connection that served an exchange before. */
  override get reused(): boolean {
    return this.conn.served > 0;
  }

  // ---- undici's dispatch handler (legacy interface); onData is AttemptBase's ----

  onConnect(abort: (err: Error) => void): void {
    this.#abort = abort;
    // Failed while the request sat in the engine's queue: stop it before it is written.
    if (this.error) abort(this.error);
  }

  onRequestSent(): void {
    this.writeIdle?.cancel();
    if (this.responded) return;
    this.startResponseTimers();
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) {
      this.readIdle?.touch();
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
    this.acceptHead({ status, reason, headers: Headers.fromTrusted(flat) });
  }

  /**
   * Sends a request whose caller set `Expect: 100-continue`, which undici refuses: node:http drives
   * this one exchange on our socket. The body goes after `100 Continue` or after
   * `expectContinueTimeout`, and not at all when a final response comes first. The connection is not
   * reused afterwards.
   */
  startExpectContinue(req: ExchangeRequest, host: string): void {
    this.#oneShot = true;
    this.watchSink();
    this.startWriteIdle();
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
      if (bodySent || this.responded || this.error) return;
      bodySent = true;
      if (continueTimer !== undefined) clearTimeout(continueTimer);
      writeAll(out, body, this.writeIdle).then(
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
    const wait = this.timeouts.expectContinueTimeout;
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

  onComplete(rawTrailers: Buffer[] | null): void {
    if (this.error) return;
    if (!this.complete()) return;
    if (rawTrailers && rawTrailers.length > 0) {
      const flat = rawTrailers.map((b) => b.toString("latin1"));
      this.trailers = Headers.fromTrusted(flat);
    }
    const closing = this.head !== undefined && this.head.headers.get("connection")?.toLowerCase() === "close";
    this.#release(!closing && !this.#oneShot);
    this.wakeAtEnd();
  }

  onError(err: Error): void {
    this.settleError(this.#mapError(err));
  }

  onBodySent(): void {}

  onUpgrade(): void {
    this.settleError(new ProtocolError("the server switched protocols on a plain request"));
  }

  // ---- AttemptBase's hooks ----

  /** Nothing to do: undici pauses the socket itself when `onData` returns false. */
  protected override pauseSource(): void {}

  protected override resumeSource(): void {
    this.#resume?.();
  }

  /** Through undici once it took the request (it calls `onError` back); before that, settle here. */
  protected override abortRequest(err: HTTPError): void {
    if (this.#abort) this.#abort(err);
    else this.settleError(err);
  }

  protected override abandon(): void {
    this.#release(false);
  }

  protected override get abandonedNote(): string {
    return "its connection closed";
  }

  // ---- internals ----

  #release(reusable: boolean): void {
    if (this.#released) return;
    this.#released = true;
    this.#transport.release(this.conn, reusable);
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
