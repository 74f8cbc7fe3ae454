// One attempt of one request on one HTTP/2 stream: the request head and body (with back-pressure and
// the per-phase timers), the response head, body and trailers, and cancellation with RST_STREAM
// CANCEL, which ends this stream only; the session and its other streams go on.
import http2 from "node:http2";
import type { Writable } from "node:stream";
import {
  Headers,
  HTTPError,
  ParseError,
  ProtocolError,
  type ResolvedTimeouts,
  statusText,
} from "@hyperwire/core";
import type { H2ClientSession } from "@hyperwire/h2";
import { AttemptBase, type BodyMode, type ResponseHead } from "./attempt.js";

const { NGHTTP2_CANCEL, NGHTTP2_PROTOCOL_ERROR } = http2.constants;

/** Request headers HTTP/2 forbids (RFC 9113 §8.2.2); `Host` becomes `:authority`. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/** The exchange a stream's events go to (one shared set of listeners instead of closures per stream). */
const kExchange = Symbol("hyperwire.h2exchange");
type OwnedStream = http2.ClientHttp2Stream & { [kExchange]: H2Exchange };

function onResponse(this: OwnedStream, _h: http2.IncomingHttpHeaders, _f: number, raw: string[]): void {
  this[kExchange].onResponse(raw);
}
function onInformational(this: OwnedStream): void {
  this[kExchange].onInformational();
}
function onData(this: OwnedStream, chunk: Buffer): void {
  this[kExchange].onStreamData(chunk);
}
function onTrailers(this: OwnedStream, _h: http2.IncomingHttpHeaders, _f: number, raw: string[]): void {
  this[kExchange].onTrailers(raw);
}
function onEnd(this: OwnedStream): void {
  this[kExchange].onEnd();
}
function onError(this: OwnedStream, err: Error): void {
  this[kExchange].onStreamError(err);
}
function onClose(this: OwnedStream): void {
  const ex = this[kExchange];
  ex.onStreamError(undefined);
  // The session's slot for this stream (the session lets this listener report it).
  ex.session.streamDone(this);
}

/**
 * Drives one request on an HTTP/2 stream. Every outcome settles exactly once; every timer it started
 * is stopped; a failed or abandoned attempt resets its stream with CANCEL. Taking the body, the
 * waiters and the per-phase timers are the shared `AttemptBase`.
 *
 * ```ts
 * const exchange = new H2Exchange(session, timeouts, "buffer", undefined, undefined);
 * exchange.start({ method: "GET", path: "/", headers: new Headers(), body: null }, "example.com", "https", false);
 * const body = await exchange.done();
 * ```
 */
export class H2Exchange extends AttemptBase {
  readonly session: H2ClientSession;
  #stream: http2.ClientHttp2Stream | undefined;
  /** The request body is fully handed to the stream (or there is none). */
  #uploaded = false;
  /** Response body bytes received, to tell a short body from a complete one. */
  #received = 0;
  #continueTimer: NodeJS.Timeout | undefined;
  #sendBody: (() => void) | undefined;

  constructor(
    session: H2ClientSession,
    timeouts: ResolvedTimeouts,
    mode: BodyMode,
    sink: Writable | undefined,
    onHead: ((head: ResponseHead) => void) | undefined,
  ) {
    super(timeouts, mode, sink, onHead);
    this.session = session;
  }

  override get protocol(): "h2" {
    return "h2";
  }

  /** Never: HTTP/2 failures before processing are told by `H2GoAwayError`/`H2StreamResetError`. */
  override get stale(): boolean {
    return false;
  }

  /** Sessions are shared, not reused one exchange after another. */
  override get reused(): boolean {
    return false;
  }

  /**
   * Opens the stream and sends the request. `authority` and `scheme` become the pseudo-headers; with
   * `expectContinue` the body waits for `100 Continue` (or `expectContinueTimeout`).
   */
  start(req: H2Request, authority: string, scheme: "http" | "https", expectContinue: boolean): void {
    this.watchSink();
    const body = req.body;
    const headers = h2Headers(req, authority, scheme);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.session.request(headers, body === null, true);
    } catch (e) {
      this.settleError(e instanceof HTTPError ? e : this.session.streamError(undefined, e));
      return;
    }
    this.#stream = stream;
    (stream as OwnedStream)[kExchange] = this;
    stream.on("response", onResponse);
    // A 1xx only matters to the read-idle timer.
    if (this.timeouts.readIdleTimeout > 0) stream.on("headers", onInformational);
    stream.on("data", onData);
    stream.on("trailers", onTrailers);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
    if (body === null) {
      this.#uploaded = true;
      this.#requestSent();
      return;
    }
    if (expectContinue) this.#bodyAfterContinue(stream, body);
    else this.#writeBody(stream, body);
  }

  /**
   * `Expect: 100-continue`: the body goes on `100 Continue` or after `expectContinueTimeout`, and
   * not at all after a final response. (Apart from `start`, whose variables this closure would
   * otherwise put in a heap context on every request.)
   */
  #bodyAfterContinue(stream: http2.ClientHttp2Stream, body: Uint8Array | AsyncIterable<Uint8Array>): void {
    const send = (): void => {
      if (this.#sendBody === undefined) return;
      this.#sendBody = undefined;
      if (this.#continueTimer !== undefined) clearTimeout(this.#continueTimer);
      if (!this.responded && this.error === undefined) this.#writeBody(stream, body);
    };
    this.#sendBody = send;
    stream.once("continue", send);
    const wait = this.timeouts.expectContinueTimeout;
    if (wait > 0) {
      this.#continueTimer = setTimeout(send, wait);
      this.#continueTimer.unref();
    } else setImmediate(send);
  }

  #writeBody(stream: http2.ClientHttp2Stream, body: Uint8Array | AsyncIterable<Uint8Array>): void {
    if (body instanceof Uint8Array) {
      this.#uploaded = true;
      if (this.timeouts.responseHeaderTimeout > 0 || this.timeouts.readIdleTimeout > 0) {
        stream.end(body, () => this.#requestSent());
      } else stream.end(body);
      return;
    }
    this.#pump(stream, body).then(
      () => {
        this.#uploaded = true;
        if (this.error !== undefined || this.finished) return;
        stream.end(() => this.#requestSent());
      },
      (e: unknown) => {
        this.fail(
          e instanceof HTTPError
            ? e
            : new ProtocolError(`sending the request body failed: ${(e as Error)?.message ?? String(e)}`, {
                cause: e,
              }),
        );
      },
    );
  }

  /** Writes a streamed body with back-pressure; stops early when the exchange ended (a complete early response). */
  async #pump(stream: http2.ClientHttp2Stream, body: AsyncIterable<Uint8Array>): Promise<void> {
    const idle = this.startWriteIdle();
    try {
      for await (const chunk of body) {
        if (this.error !== undefined || this.finished || stream.destroyed) return;
        idle?.touch();
        if (!stream.write(chunk)) await drainOrClose(stream);
        idle?.pause();
      }
    } finally {
      idle?.cancel();
    }
  }

  /** The request is out: the response timers start. */
  #requestSent(): void {
    if (this.responded || this.error !== undefined) return;
    this.startResponseTimers();
  }

  // ---- stream events (called by the shared listeners above) ----

  /** @internal */
  onInformational(): void {
    this.readIdle?.touch();
  }

  /** @internal */
  onResponse(raw: string[]): void {
    if (this.error !== undefined) return;
    let status = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i] === ":status") {
        status = Number(raw[i + 1]);
        break;
      }
    }
    this.responded = true;
    if (this.#sendBody !== undefined) {
      // A final response before 100 Continue: the body is not sent (RFC 9110 §10.1.1).
      this.#sendBody = undefined;
      if (this.#continueTimer !== undefined) clearTimeout(this.#continueTimer);
    }
    this.acceptHead({
      status,
      reason: statusText(status),
      headers: Headers.fromTrusted(raw, true),
      version: "2",
    });
  }

  /** @internal A DATA chunk; one that arrives after the attempt failed (the reset is on its way) is dropped. */
  onStreamData(chunk: Buffer): void {
    if (this.error !== undefined) return;
    this.#received += chunk.byteLength;
    this.onData(chunk);
  }

  /** @internal */
  onTrailers(raw: string[]): void {
    this.trailers = Headers.fromTrusted(raw, true);
  }

  /** @internal END_STREAM from the server: the response is complete. */
  onEnd(): void {
    if (this.error !== undefined || this.finished) return;
    // node ends the readable side of a reset stream too (CANCEL comes without an 'error'): a reset
    // is a failure unless the response visibly completed first (trailers, or the whole Content-Length).
    const rst = this.#stream?.rstCode;
    if (this.head === undefined || (rst !== undefined && rst !== 0 && !this.#visiblyComplete())) {
      this.onStreamError(undefined);
      return;
    }
    if (!this.complete()) return;
    if (!this.#uploaded) {
      // The response is complete while the upload still runs: the server does not want the rest
      // (RFC 9113 §8.1). Stop sending; a reset now does not touch the response we have.
      this.#uploaded = true;
      this.#sendBody = undefined;
      if (this.#continueTimer !== undefined) clearTimeout(this.#continueTimer);
      const stream = this.#stream;
      if (stream !== undefined && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
    }
    // Both sides ended: the slot is free now (node's 'close' comes a tick later), so a caller that
    // counts idle connections right after the response sees this session idle.
    const stream = this.#stream;
    if (stream !== undefined && (stream.destroyed || stream.writableFinished))
      this.session.streamDone(stream);
    this.wakeAtEnd();
  }

  #visiblyComplete(): boolean {
    if (this.trailers !== undefined) return true;
    const length = this.head?.headers.get("content-length");
    return length !== undefined && Number(length) === this.#received;
  }

  /** @internal The stream failed or closed; a close after the complete response is ignored. */
  onStreamError(err: Error | undefined): void {
    if (this.error !== undefined || this.finished) return;
    const stream = this.#stream;
    const length = this.head?.headers.get("content-length");
    if (
      stream !== undefined &&
      stream.rstCode === NGHTTP2_PROTOCOL_ERROR &&
      length !== undefined &&
      Number(length) !== this.#received
    ) {
      this.settleError(
        new ParseError(
          `the response body does not match its Content-Length (${length} declared, at least ${this.#received} bytes received)`,
          { cause: err },
        ),
      );
      return;
    }
    this.settleError(this.session.streamError(stream, err));
  }

  // ---- AttemptBase's hooks ----

  protected override pauseSource(): void {
    // Unread DATA is not consumed, so node stops granting this stream flow-control window.
    this.#stream?.pause();
  }

  protected override resumeSource(): void {
    this.#stream?.resume();
  }

  /** Ends the attempt with `err` now: the stream is reset with CANCEL; the session goes on. */
  protected override abortRequest(err: HTTPError): void {
    this.settleError(err);
  }

  protected override abandon(): void {
    this.#sendBody = undefined;
    if (this.#continueTimer !== undefined) clearTimeout(this.#continueTimer);
    const stream = this.#stream;
    // CANCEL resets this stream only (RFC 9113 §8.7); the session and its other streams go on.
    if (stream !== undefined) {
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
      this.session.streamDone(stream);
    }
  }

  protected override get abandonedNote(): string {
    return "its stream reset";
  }
}

/** Resolves on 'drain', or when the stream closed (the writer then sees the exchange ended). */
function drainOrClose(stream: http2.ClientHttp2Stream): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.removeListener("drain", done);
      stream.removeListener("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/** What an HTTP/2 attempt sends: the request line's parts, the validated header list, the body. */
export interface H2Request {
  method: string;
  /** Origin-form target (`/path?query`). */
  path: string;
  headers: Headers;
  body: Uint8Array | AsyncIterable<Uint8Array> | null;
}

/** Left out of the header object as `addTo` writes it: the fields below handle `host` and `te`. */
function notForwarded(key: string): boolean {
  return CONNECTION_SPECIFIC.has(key) || key === "host" || key === "te";
}

/**
 * The request head as node:http2 takes it: pseudo-headers, names in lower case, repeated names as
 * arrays, connection-specific fields dropped, `Host` as `:authority`, `TE` only as `trailers`, and
 * `content-length` for a body of known size. Written straight from the header list (no flat copy,
 * no lower-casing: the list holds the lower-case names).
 */
function h2Headers(req: H2Request, authority: string, scheme: string): http2.OutgoingHttpHeaders {
  const headers = req.headers;
  const out: http2.OutgoingHttpHeaders = {
    ":method": req.method,
    ":path": req.path,
    ":scheme": scheme,
    ":authority": headers.get("host") ?? authority,
  };
  headers.addTo(out, notForwarded);
  // TE is allowed only as "trailers" (RFC 9113 §8.2.2).
  if (headers.has("te")) {
    for (const te of headers.getAll("te")) {
      if (te.trim().toLowerCase() === "trailers") out.te = "trailers";
    }
  }
  const body = req.body;
  if (body instanceof Uint8Array && out["content-length"] === undefined) {
    out["content-length"] = String(body.byteLength);
  }
  return out;
}
