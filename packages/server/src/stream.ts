// The stream-handler side of one exchange: the request head, a pull-based body and an incremental
// response writer with checked framing.
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  ArgumentError,
  ClosedError,
  Headers,
  ProtocolError,
  type Request,
  type TimeoutError,
} from "@hyperwire/core";
import type { AccessLogEntry } from "./access-log.js";
import type { Conn } from "./http1.js";
import { abandon, logAccess, trailerNames, trailerPairs, waitDrain } from "./io.js";

/** The peer of a connection. */
export interface PeerAddr {
  /** The IP address, e.g. `"127.0.0.1"` or `"::1"`. */
  readonly address: string;
  readonly port: number;
  /** `"IPv4"` or `"IPv6"`. */
  readonly family: string;
}

/** @internal What the stream runner tells a stream it made. */
export interface StreamSetup {
  readonly expectContinue: boolean;
  readonly hasBody: boolean;
  readonly writeTimeout: number;
  readonly log: true | ((entry: AccessLogEntry) => void) | undefined;
}

/** @internal How a response body is framed: none, a checked `Content-Length`, or chunked (HTTP/2: DATA). */
export type Framing = "none" | "fixed" | "chunked";

/**
 * One request/response exchange as a stream handler sees it (HTTP.jl's server-side `Stream`).
 * `request` is the head (its `body` is empty): read the body with `read()` or `for await`. Build the
 * response with `setStatus`/`setHeader`, then `write` (which starts it) and `closeWrite`.
 *
 * ```ts
 * await listen(async (stream) => {
 *   let n = 0;
 *   for await (const chunk of stream) n += chunk.byteLength;
 *   stream.setHeader("Content-Type", "text/plain");
 *   await stream.write(`got ${n} bytes`);
 *   await stream.closeWrite();
 * }, { port: 0 });
 * ```
 */
export abstract class ServerStream implements AsyncIterable<Uint8Array> {
  /** The request head (method, target, headers, context); its body is empty. */
  readonly request: Request;
  /** @internal The response status (default 200). */
  protected status = 200;
  /** @internal The response headers, until the head is sent. */
  protected readonly responseHeaders = new Headers();
  /** @internal The trailers, sent at `closeWrite`. */
  protected readonly responseTrailers = new Headers();
  /** @internal Set when the head is sent: how the body is framed. */
  protected framing: Framing | undefined;
  /** @internal The declared `Content-Length` when the framing is `"fixed"`. */
  protected fixedLength = -1;
  /** @internal True once the request body was read to its end, failed, or was given up. */
  protected readDone = false;
  /** @internal Set when `readTimeout` passed: what reads (and writes) reject with from then on. */
  protected readError: TimeoutError | undefined;
  #continued = false;
  #iterator: AsyncIterator<Buffer> | undefined;

  /** @internal Made by the server for each request (HTTP/1.1 or HTTP/2). */
  protected constructor(request: Request) {
    this.request = request;
  }

  /** Aborts when the peer goes away (or the request is otherwise cancelled). */
  get signal(): AbortSignal {
    return this.request.context.signal;
  }

  /** True while the response has not ended and the connection (HTTP/2: the stream) is up. */
  abstract get isOpen(): boolean;

  /** True once the response head was sent. */
  get headersSent(): boolean {
    return this.framing !== undefined;
  }

  /** The peer's address, or `null` when the socket no longer knows it. */
  abstract peerAddr(): PeerAddr | null;

  /**
   * The next chunk of the request body, or `null` at its end. The first read answers
   * `Expect: 100-continue`. Rejects with `ClosedError` when the peer goes away mid-body.
   */
  async read(): Promise<Uint8Array | null> {
    if (this.readDone) return null;
    if (!this.#continued && this.framing === undefined) {
      this.#continued = true;
      this.sendContinue();
    }
    this.#iterator ??= this.bodySource()[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let step: IteratorResult<Buffer>;
    try {
      step = await this.#iterator.next();
    } catch (err) {
      this.readDone = true;
      throw this.readError ?? new ClosedError(this.bodyFailedMessage, { cause: err });
    }
    if (step.done) {
      this.readDone = true;
      if (!this.bodyComplete()) throw this.readError ?? new ClosedError(this.bodyCutMessage);
      return null;
    }
    return step.value;
  }

  /** @internal Where the request body arrives (node:http's request, or the HTTP/2 stream). */
  protected abstract bodySource(): AsyncIterable<Buffer>;
  /** @internal Sends `100 Continue` if the request asked for it (before the first body read). */
  protected abstract sendContinue(): void;
  /** @internal True when the body arrived whole (its end was not a peer going away). */
  protected abstract bodyComplete(): boolean;
  /** @internal The `ClosedError` message when reading the body fails. */
  protected abstract readonly bodyFailedMessage: string;
  /** @internal The `ClosedError` message when the body ends before it is complete. */
  protected abstract readonly bodyCutMessage: string;

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /**
   * Stops reading the request. A body that was not read to its end cannot be skipped safely, so the
   * connection closes after this response (HTTP/2: the stream is reset after it).
   */
  abstract closeRead(): void;

  #beforeHead(what: string): void {
    if (this.framing !== undefined) {
      throw new ArgumentError(`${what} must come before the response starts (startWrite or the first write)`);
    }
  }

  /** Sets the response status (default 200). `ArgumentError` once the response started. */
  setStatus(status: number): void {
    this.#beforeHead("setStatus");
    if (!Number.isInteger(status) || status < 200 || status > 999) {
      throw new ArgumentError(`response status must be an integer from 200 to 999, got ${status}`);
    }
    this.status = status;
  }

  /** Sets (replaces) a response header. `ArgumentError` once the response started. */
  setHeader(name: string, value: string): void {
    this.#beforeHead("setHeader");
    this.responseHeaders.set(name, value);
  }

  /** Adds a response header value (e.g. a second `Set-Cookie`). `ArgumentError` once the response started. */
  appendHeader(name: string, value: string): void {
    this.#beforeHead("appendHeader");
    this.responseHeaders.append(name, value);
  }

  /**
   * Adds a trailer, sent after the body. Trailers need chunked framing (HTTP/2: a body without a
   * `Content-Length`): added before the response starts they are declared in a `Trailer:` header;
   * with a `Content-Length` they are an `ArgumentError`.
   */
  addTrailer(name: string, value: string): void {
    if (
      this.framing === "fixed" ||
      (this.framing === undefined && this.responseHeaders.has("content-length"))
    ) {
      throw new ArgumentError("trailers need chunked framing; remove the Content-Length header");
    }
    this.responseTrailers.append(name, value);
  }

  /**
   * @internal The framing of the head about to be sent: none for HEAD, 204 and 304; fixed with a
   * `Content-Length` (stored in `fixedLength`); otherwise chunked.
   */
  protected chooseFraming(): Framing {
    const status = this.status;
    if (this.request.method === "HEAD" || status === 204 || status === 304) return "none";
    const declared = this.responseHeaders.get("content-length");
    if (declared === null) return "chunked";
    const n = Number(declared);
    if (!Number.isSafeInteger(n) || n < 0) throw new ArgumentError(`invalid Content-Length ${declared}`);
    this.fixedLength = n;
    return "fixed";
  }

  /**
   * Sends the response head. Framing: no body for HEAD, 204 and 304 (writes are ignored); a
   * `Content-Length` header means a fixed length, checked; otherwise chunked (identity + close for
   * HTTP/1.0; over HTTP/2, DATA frames). Called by the first `write` when not called before.
   */
  abstract startWrite(): void;

  /**
   * Writes a body chunk (a string is sent as UTF-8), starting the response if needed. Resolves when
   * the peer may take more (back-pressure). Writing past a fixed length is a `ProtocolError`.
   */
  abstract write(chunk: Uint8Array | string): Promise<void>;

  /**
   * Ends the response (sending the head first if needed, and trailers when chunked). A fixed-length
   * response that is short is a `ProtocolError` and the connection (HTTP/2: the stream) is closed instead.
   */
  abstract closeWrite(): Promise<void>;

  /** @internal The handler failed: answer `status` (500) if nothing was sent yet, else abandon the response. */
  abstract fail(status?: number): void;

  /** @internal `readTimeout` passed before the body arrived: 408, or an abandoned response. */
  abstract timeOutRead(error: TimeoutError): void;
}

/** The HTTP/1.1 stream: node:http's request and response on one connection. */
export class Http1Stream extends ServerStream {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #conn: Conn;
  readonly #setup: StreamSetup;
  #sent = 0;
  #closeConnection = false;
  #ended = false;
  #logged = false;
  readonly #t0: number;

  /** @internal Made by the server for each request. */
  constructor(request: Request, req: IncomingMessage, res: ServerResponse, conn: Conn, setup: StreamSetup) {
    super(request);
    this.#req = req;
    this.#res = res;
    this.#conn = conn;
    this.#setup = setup;
    this.readDone = !setup.hasBody;
    this.#t0 = setup.log === undefined ? 0 : performance.now();
  }

  /** True while the response has not ended and the connection is up. */
  get isOpen(): boolean {
    return !this.#ended && !this.#conn.socket.destroyed;
  }

  /** The peer's address, or `null` when the socket no longer knows it. */
  peerAddr(): PeerAddr | null {
    const s = this.#conn.socket;
    if (s.remoteAddress === undefined || s.remotePort === undefined) return null;
    return { address: s.remoteAddress, port: s.remotePort, family: s.remoteFamily ?? "" };
  }

  protected bodySource(): AsyncIterable<Buffer> {
    return this.#req;
  }

  protected sendContinue(): void {
    if (this.#setup.expectContinue) this.#res.writeContinue();
  }

  protected bodyComplete(): boolean {
    return this.#req.complete;
  }

  protected get bodyFailedMessage(): string {
    return "the peer closed the connection while sending the request body";
  }

  protected get bodyCutMessage(): string {
    return "the request body ended early: the peer went away";
  }

  /**
   * Stops reading the request. A body that was not read to its end cannot be skipped safely, so the
   * connection closes after this response.
   */
  closeRead(): void {
    if (this.readDone || this.#req.complete) {
      this.readDone = true;
      return;
    }
    this.readDone = true;
    this.#closeConnection = true;
    if (this.#ended) this.#conn.socket.destroySoon();
  }

  /**
   * Sends the response head. Framing: no body for HEAD, 204 and 304 (writes are ignored); a
   * `Content-Length` header means a fixed length, checked; otherwise chunked (identity + close for
   * HTTP/1.0). Called by the first `write` when not called before.
   */
  startWrite(): void {
    if (this.framing !== undefined) return;
    if (this.#conn.socket.destroyed) throw new ClosedError("the peer closed the connection");
    const status = this.status;
    const framing = this.chooseFraming();
    const flat = this.responseHeaders.toFlat();
    if (framing === "chunked" && this.responseTrailers.size > 0 && this.request.version !== "1.0") {
      flat.push("Trailer", trailerNames(this.responseTrailers));
    }
    if (this.#closeConnection || this.#conn.engine.closing) flat.push("Connection", "close");
    this.#res.writeHead(status, undefined, flat);
    this.framing = framing;
  }

  /**
   * Writes a body chunk (a string is sent as UTF-8), starting the response if needed. Resolves when
   * the bytes may be followed by more (back-pressure: it waits for `drain`). Writing past a fixed
   * `Content-Length` is a `ProtocolError` and closes the connection.
   */
  async write(chunk: Uint8Array | string): Promise<void> {
    if (this.#ended) throw this.readError ?? new ArgumentError("write after closeWrite");
    this.startWrite();
    if (this.framing === "none") return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    if (bytes.byteLength === 0) return;
    if (this.framing === "fixed" && this.#sent + bytes.byteLength > this.fixedLength) {
      abandon(this.#conn);
      throw new ProtocolError(
        `writing ${bytes.byteLength} more bytes would pass the Content-Length of ${this.fixedLength} (${this.#sent} sent); the connection was closed`,
      );
    }
    if (this.#res.destroyed) throw new ClosedError("the peer closed the connection");
    this.#sent += bytes.byteLength;
    if (!this.#res.write(bytes)) await waitDrain(this.#res, this.#setup.writeTimeout);
  }

  /**
   * Ends the response (sending the head first if needed, and trailers when chunked). A fixed-length
   * response that is short is a `ProtocolError` and the connection is closed instead.
   */
  async closeWrite(): Promise<void> {
    if (this.#ended) return;
    this.startWrite();
    this.#ended = true;
    if (this.framing === "fixed" && this.#sent !== this.fixedLength) {
      abandon(this.#conn);
      throw new ProtocolError(
        `the response ended after ${this.#sent} of its ${this.fixedLength} Content-Length bytes; the connection was closed`,
      );
    }
    if (this.framing === "chunked" && this.responseTrailers.size > 0)
      this.#res.addTrailers(trailerPairs(this.responseTrailers));
    this.#res.end();
    if (this.#closeConnection) this.#conn.socket.destroySoon();
    this.#logOnce(this.status);
  }

  #logOnce(status: number): void {
    if (this.#setup.log === undefined || this.#logged) return;
    this.#logged = true;
    logAccess(this.#setup.log, this.#req, this.#t0, new Date(), status, this.#sent);
  }

  /**
   * @internal The handler failed: answer `status` (500) if nothing was sent yet, else close the
   * connection. The access log says `status`, the status already sent, or 499 when the peer left
   * before anything was sent.
   */
  fail(status = 500): void {
    if (this.framing === undefined && !this.#res.headersSent && !this.#conn.socket.destroyed) {
      this.framing = "none";
      this.#ended = true;
      this.#res.writeHead(status, { Connection: "close", "Content-Length": "0" });
      this.#res.end();
      this.#logOnce(status);
      return;
    }
    if (!this.#ended || !this.#res.writableEnded) {
      this.#ended = true;
      abandon(this.#conn);
    }
    this.#logOnce(this.framing === undefined ? 499 : this.status);
  }

  /**
   * @internal `readTimeout` passed before the body arrived: the peer gets 408 (or, once the response
   * started, a closed connection), and the handler's pending and later reads and writes reject with
   * `error`.
   */
  timeOutRead(error: TimeoutError): void {
    this.readError = error;
    this.fail(408);
  }
}
