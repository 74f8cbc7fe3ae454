// One attempt of one request on one HTTP/2 stream: the request head and body (with back-pressure and
// the per-phase timers), the response head, body and trailers, and cancellation with RST_STREAM
// CANCEL, which ends this stream only; the session and its other streams go on.
import http2 from "node:http2";
import type { Writable } from "node:stream";
import {
  CanceledError,
  Deadline,
  Headers,
  HTTPError,
  IdleTimer,
  ParseError,
  ProtocolError,
  type ResolvedTimeouts,
  statusText,
} from "@hyperwire/core";
import type { H2ClientSession } from "@hyperwire/h2";
import type { Attempt, BodyMode, ExchangeRequest, ResponseHead } from "./exchange.js";

const { NGHTTP2_CANCEL, NGHTTP2_PROTOCOL_ERROR } = http2.constants;
const EMPTY = new Uint8Array(0);
/** Pull mode: stop taking DATA (and so stop granting flow-control window) once this much is unread. */
const PULL_HIGH_WATER = 256 * 1024;

/** Request headers HTTP/2 forbids (RFC 9113 §8.2.2); `Host` becomes `:authority`. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

type Resolver<T> = { resolve: (v: T) => void; reject: (e: unknown) => void };

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
  this[kExchange].onData(chunk);
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
  this[kExchange].onStreamError(undefined);
}

/**
 * Drives one request on an HTTP/2 stream. Every outcome settles exactly once; every timer it started
 * is stopped; a failed or abandoned attempt resets its stream with CANCEL.
 */
export class H2Exchange implements Attempt {
  readonly session: H2ClientSession;
  readonly #timeouts: ResolvedTimeouts;
  readonly #mode: BodyMode;
  readonly #sink: Writable | undefined;
  readonly #onHead: ((head: ResponseHead) => void) | undefined;
  #stream: http2.ClientHttp2Stream | undefined;
  #error: HTTPError | undefined;
  #finished = false;
  /** The request body is fully handed to the stream (or there is none). */
  #uploaded = false;

  head: ResponseHead | undefined;
  trailers: Headers | undefined;
  responded = false;

  #chunks: Uint8Array[] = [];
  #size = 0;
  #received = 0;
  #paused = false;
  #headWaiter: Resolver<ResponseHead> | undefined;
  #doneWaiter: Resolver<Uint8Array> | undefined;
  #donePromise: Promise<Uint8Array> | undefined;
  #readWaiter: Resolver<Uint8Array | null> | undefined;

  #headTimer: Deadline | undefined;
  #readIdle: IdleTimer | undefined;
  #writeIdle: IdleTimer | undefined;
  #continueTimer: NodeJS.Timeout | undefined;
  #sendBody: (() => void) | undefined;

  constructor(
    session: H2ClientSession,
    timeouts: ResolvedTimeouts,
    mode: BodyMode,
    sink: Writable | undefined,
    onHead: ((head: ResponseHead) => void) | undefined,
  ) {
    this.session = session;
    this.#timeouts = timeouts;
    this.#mode = mode;
    this.#sink = sink;
    this.#onHead = onHead;
  }

  get protocol(): "h2" {
    return "h2";
  }

  /** Never: HTTP/2 failures before processing are told by `H2GoAwayError`/`H2StreamResetError`. */
  get stale(): boolean {
    return false;
  }

  /** Sessions are shared, not reused one exchange after another. */
  get reused(): boolean {
    return false;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Opens the stream and sends the request. `authority` and `scheme` become the pseudo-headers; with
   * `expectContinue` the body waits for `100 Continue` (or `expectContinueTimeout`).
   */
  start(req: ExchangeRequest, authority: string, scheme: "http" | "https", expectContinue: boolean): void {
    this.#watchSinkFailure();
    const body = req.body;
    const headers = h2Headers(req, authority, scheme);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.session.request(headers, body === null);
    } catch (e) {
      this.#settleError(e instanceof HTTPError ? e : this.session.streamError(undefined, e));
      return;
    }
    this.#stream = stream;
    (stream as OwnedStream)[kExchange] = this;
    stream.on("response", onResponse);
    stream.on("headers", onInformational);
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
    if (expectContinue) {
      const send = (): void => {
        if (this.#sendBody === undefined) return;
        this.#sendBody = undefined;
        if (this.#continueTimer !== undefined) clearTimeout(this.#continueTimer);
        if (!this.responded && this.#error === undefined) this.#writeBody(stream, body);
      };
      this.#sendBody = send;
      stream.once("continue", send);
      const wait = this.#timeouts.expectContinueTimeout;
      if (wait > 0) {
        this.#continueTimer = setTimeout(send, wait);
        this.#continueTimer.unref();
      } else setImmediate(send);
      return;
    }
    this.#writeBody(stream, body);
  }

  #writeBody(stream: http2.ClientHttp2Stream, body: Uint8Array | AsyncIterable<Uint8Array>): void {
    if (body instanceof Uint8Array) {
      this.#uploaded = true;
      if (this.#timeouts.responseHeaderTimeout > 0 || this.#timeouts.readIdleTimeout > 0) {
        stream.end(body, () => this.#requestSent());
      } else stream.end(body);
      return;
    }
    this.#pump(stream, body).then(
      () => {
        this.#uploaded = true;
        if (this.#error !== undefined || this.#finished) return;
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
    const t = this.#timeouts.writeIdleTimeout;
    const idle = t > 0 ? new IdleTimer(t, "writeIdle", (e) => this.fail(e)) : undefined;
    this.#writeIdle = idle;
    idle?.pause();
    try {
      for await (const chunk of body) {
        if (this.#error !== undefined || this.#finished || stream.destroyed) return;
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
    if (this.responded || this.#error !== undefined) return;
    const t = this.#timeouts;
    if (t.responseHeaderTimeout > 0) {
      this.#headTimer = new Deadline(t.responseHeaderTimeout, "responseHeader", (e) => this.fail(e));
    }
    if (t.readIdleTimeout > 0) {
      this.#readIdle = new IdleTimer(t.readIdleTimeout, "readIdle", (e) => this.fail(e));
    }
  }

  // ---- what the pipeline uses ----

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

  headReceived(): Promise<ResponseHead> {
    return new Promise<ResponseHead>((resolve, reject) => {
      if (this.head) resolve(this.head);
      else if (this.#error) reject(this.#error);
      else this.#headWaiter = { resolve, reject };
    });
  }

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

  /** Ends the attempt with `err`: the stream is reset with CANCEL; the session goes on. */
  fail(err: HTTPError): void {
    if (this.#finished || this.#error) return;
    this.#settleError(err);
  }

  // ---- stream events (called by the shared listeners above) ----

  /** @internal */
  onInformational(): void {
    this.#readIdle?.touch();
  }

  /** @internal */
  onResponse(raw: string[]): void {
    if (this.#error !== undefined) return;
    let status = 0;
    const flat: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.charCodeAt(0) === 58 /* ':' */) {
        if (name === ":status") status = Number(raw[i + 1]);
        continue;
      }
      flat.push(name, raw[i + 1]!);
    }
    this.responded = true;
    if (this.#sendBody !== undefined) {
      // A final response before 100 Continue: the body is not sent (RFC 9110 §10.1.1).
      this.#sendBody = undefined;
      if (this.#continueTimer !== undefined) clearTimeout(this.#continueTimer);
    }
    this.#headTimer?.cancel();
    this.#readIdle?.touch();
    const head: ResponseHead = {
      status,
      reason: statusText(status),
      headers: Headers.fromTrusted(flat),
      version: "2",
    };
    this.head = head;
    this.#onHead?.(head);
    const w = this.#headWaiter;
    if (w) {
      this.#headWaiter = undefined;
      w.resolve(head);
    }
  }

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.#error !== undefined) return;
    this.#readIdle?.touch();
    this.#received += chunk.byteLength;
    switch (this.#mode) {
      case "buffer":
        this.#chunks.push(chunk);
        this.#size += chunk.byteLength;
        return;
      case "writable": {
        const sink = this.#sink!;
        if (sink.destroyed || sink.writableEnded) {
          this.#sinkGone();
          return;
        }
        if (!sink.write(chunk) && !this.#paused) {
          this.#pause();
          sink.once("drain", this.#onSinkDrain);
        }
        return;
      }
      default: {
        const w = this.#readWaiter;
        if (w) {
          this.#readWaiter = undefined;
          w.resolve(chunk);
          return;
        }
        this.#chunks.push(chunk);
        this.#size += chunk.byteLength;
        if (this.#size >= PULL_HIGH_WATER) this.#pause();
      }
    }
  }

  /** @internal */
  onTrailers(raw: string[]): void {
    const flat: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i]!.charCodeAt(0) !== 58) flat.push(raw[i]!, raw[i + 1]!);
    }
    this.trailers = Headers.fromTrusted(flat);
  }

  /** @internal END_STREAM from the server: the response is complete. */
  onEnd(): void {
    if (this.#error !== undefined || this.#finished) return;
    // node ends the readable side of a reset stream too (CANCEL comes without an 'error'): a reset
    // is a failure unless the response visibly completed first (trailers, or the whole Content-Length).
    const rst = this.#stream?.rstCode;
    if (this.head === undefined || (rst !== undefined && rst !== 0 && !this.#visiblyComplete())) {
      this.onStreamError(undefined);
      return;
    }
    if (this.#sink !== undefined && (this.#sink.errored || this.#sink.destroyed)) {
      this.#settleError(this.#sinkError());
      return;
    }
    this.#finished = true;
    this.#unwatchSink();
    this.#stopTimers();
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

  #visiblyComplete(): boolean {
    if (this.trailers !== undefined) return true;
    const length = this.head?.headers.get("content-length");
    return length !== undefined && Number(length) === this.#received;
  }

  /** @internal The stream failed or closed; a close after the complete response is ignored. */
  onStreamError(err: Error | undefined): void {
    if (this.#error !== undefined || this.#finished) return;
    const stream = this.#stream;
    const length = this.head?.headers.get("content-length");
    if (
      stream !== undefined &&
      stream.rstCode === NGHTTP2_PROTOCOL_ERROR &&
      length !== undefined &&
      Number(length) !== this.#received
    ) {
      this.#settleError(
        new ParseError(
          `the response body does not match its Content-Length (${length} declared, at least ${this.#received} bytes received)`,
          { cause: err },
        ),
      );
      return;
    }
    this.#settleError(this.session.streamError(stream, err));
  }

  // ---- internals ----

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
      `the responseStream failed${why}; the response was abandoned and its stream reset`,
      {
        cause: sink.errored ?? undefined,
      },
    );
  }

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
    this.#sendBody = undefined;
    if (this.#continueTimer !== undefined) clearTimeout(this.#continueTimer);
    const stream = this.#stream;
    // CANCEL resets this stream only (RFC 9113 §8.7); the session and its other streams go on.
    if (stream !== undefined) {
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
      this.session.streamDone(stream);
    }
    this.#chunks = [];
    const h = this.#headWaiter;
    const d = this.#doneWaiter;
    const r = this.#readWaiter;
    this.#headWaiter = this.#doneWaiter = this.#readWaiter = undefined;
    h?.reject(err);
    d?.reject(err);
    r?.reject(err);
  }

  #stopTimers(): void {
    this.#headTimer?.cancel();
    this.#readIdle?.cancel();
    this.#writeIdle?.cancel();
  }

  #pause(): void {
    this.#paused = true;
    // The consumer, not the peer, is slow: silence on the stream is not the server's fault.
    this.#readIdle?.pause();
    this.#stream?.pause();
  }

  #unpause(): void {
    this.#paused = false;
    this.#readIdle?.touch();
    this.#stream?.resume();
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

/**
 * The request head as node:http2 takes it: pseudo-headers, names in lower case, repeated names as
 * arrays, connection-specific fields dropped, `Host` as `:authority`, and `content-length` for a
 * body of known size.
 */
function h2Headers(req: ExchangeRequest, authority: string, scheme: string): http2.OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {
    ":method": req.method,
    ":path": req.path,
    ":scheme": scheme,
    ":authority": authority,
  };
  const flat = req.headers;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    if (name === "host") {
      out[":authority"] = value;
      continue;
    }
    if (CONNECTION_SPECIFIC.has(name)) continue;
    // TE is allowed only as "trailers" (RFC 9113 §8.2.2).
    if (name === "te" && value.trim().toLowerCase() !== "trailers") continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  const body = req.body;
  if (body instanceof Uint8Array && out["content-length"] === undefined) {
    out["content-length"] = String(body.byteLength);
  }
  return out;
}
