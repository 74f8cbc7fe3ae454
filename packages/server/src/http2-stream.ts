// The stream-handler side of one HTTP/2 exchange (listen over h2): the same ServerStream surface as
// HTTP/1.1, on a node:http2 stream. Reads pull from the stream, so a slow handler leaves the request
// body in nghttp2's flow-control window (node returns WINDOW_UPDATEs only as we consume); writes wait
// for 'drain'; a failure mid-response resets the stream, never the session.
import { ArgumentError, ClosedError, ProtocolError, type Request, type TimeoutError } from "@hyperwire/core";
import type { AccessLogEntry } from "./access-log.js";
import { type H2Exchange, RESET, resetStalled, responseHeaders, trailerHeaders } from "./http2.js";
import { guardFlush } from "./http2-serve.js";
import { logAccess, reportHandlerError, waitDrain } from "./io.js";
import { type PeerAddr, ServerStream } from "./stream.js";

/** @internal What the HTTP/2 stream runner tells a stream it made. */
export interface H2StreamSetup {
  readonly writeTimeout: number;
  readonly log: true | ((entry: AccessLogEntry) => void) | undefined;
}

/**
 * A {@link ServerStream} on an HTTP/2 stream. The framing rules are HTTP/1.1's: no body for HEAD,
 * 204 and 304; a `Content-Length` is checked (writing past it or ending short resets the stream
 * with INTERNAL_ERROR and is a `ProtocolError`); otherwise DATA frames, then trailers.
 *
 * ```ts
 * await listen(async (stream) => {
 *   stream.request.version; // "2"
 *   await stream.write("hello");
 * }, { port: 0 });
 * ```
 */
export class Http2ServerStream extends ServerStream {
  readonly #ex: H2Exchange;
  readonly #setup: H2StreamSetup;
  #sent = 0;
  #ended = false;
  #logged = false;

  /** @internal Made by the server for each HTTP/2 request stream. */
  constructor(request: Request, ex: H2Exchange, setup: H2StreamSetup) {
    super(request);
    this.#ex = ex;
    this.#setup = setup;
    this.readDone = ex.stream.endAfterHeaders;
  }

  get isOpen(): boolean {
    return !this.#ended && !this.#ex.stream.destroyed;
  }

  peerAddr(): PeerAddr | null {
    const s = this.#ex.session.socket;
    if (s.remoteAddress === undefined || s.remotePort === undefined) return null;
    return { address: s.remoteAddress, port: s.remotePort, family: s.remoteFamily ?? "" };
  }

  protected bodySource(): AsyncIterable<Buffer> {
    return this.#ex.stream;
  }

  protected sendContinue(): void {
    const stream = this.#ex.stream;
    if (this.#ex.headers.expect === "100-continue" && !stream.destroyed && !stream.headersSent) {
      stream.additionalHeaders({ ":status": 100 });
    }
  }

  protected bodyComplete(): boolean {
    const stream = this.#ex.stream;
    return !stream.aborted && stream.readableEnded;
  }

  protected get bodyFailedMessage(): string {
    return "the peer reset the HTTP/2 stream while sending the request body";
  }

  protected get bodyCutMessage(): string {
    return "the request body ended early: the peer reset the stream";
  }

  closeRead(): void {
    // What is left unread is refused with RST_STREAM(NO_ERROR) once the response is out (H2Exchange.finish).
    this.readDone = true;
  }

  startWrite(): void {
    if (this.framing !== undefined) return;
    const stream = this.#ex.stream;
    if (stream.destroyed || stream.closed) throw new ClosedError("the peer reset the HTTP/2 stream");
    const framing = this.chooseFraming();
    const chunked = framing === "chunked";
    stream.respond(responseHeaders(this.responseHeaders, this.status), {
      endStream: framing === "none",
      // Trailers may still be added while the body is written; node sends an empty DATA frame with
      // END_STREAM when there are none.
      waitForTrailers: chunked,
    });
    if (chunked) stream.once("wantTrailers", () => this.#sendTrailers());
    this.framing = framing;
  }

  #sendTrailers(): void {
    try {
      this.#ex.stream.sendTrailers(trailerHeaders(this.responseTrailers));
    } catch (err) {
      reportHandlerError(err);
      this.#ex.reset(RESET.internalError);
    }
  }

  async write(chunk: Uint8Array | string): Promise<void> {
    if (this.#ended) throw this.readError ?? new ArgumentError("write after closeWrite");
    this.startWrite();
    if (this.framing === "none") return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    if (bytes.byteLength === 0) return;
    if (this.framing === "fixed" && this.#sent + bytes.byteLength > this.fixedLength) {
      this.#ex.reset(RESET.internalError);
      throw new ProtocolError(
        `writing ${bytes.byteLength} more bytes would pass the Content-Length of ${this.fixedLength} (${this.#sent} sent); the stream was reset`,
      );
    }
    const stream = this.#ex.stream;
    if (stream.destroyed || stream.closed) throw new ClosedError("the peer reset the HTTP/2 stream");
    this.#sent += bytes.byteLength;
    if (!stream.write(bytes)) await waitDrain(stream, this.#setup.writeTimeout, () => resetStalled(this.#ex));
  }

  async closeWrite(): Promise<void> {
    if (this.#ended) return;
    this.startWrite();
    this.#ended = true;
    if (this.framing === "fixed" && this.#sent !== this.fixedLength) {
      this.#ex.reset(RESET.internalError);
      throw new ProtocolError(
        `the response ended after ${this.#sent} of its ${this.fixedLength} Content-Length bytes; the stream was reset`,
      );
    }
    const stream = this.#ex.stream;
    if (this.framing !== "none" && !stream.writableEnded) stream.end();
    if (this.#setup.writeTimeout > 0) guardFlush(this.#ex, this.#setup.writeTimeout);
    this.#logOnce(this.status);
  }

  #logOnce(status: number): void {
    if (this.#setup.log === undefined || this.#logged) return;
    this.#logged = true;
    logAccess(this.#setup.log, this.#ex, this.#ex.t0, new Date(), status, this.#sent);
  }

  fail(status = 500): void {
    const stream = this.#ex.stream;
    if (this.framing === undefined && !stream.headersSent && !stream.destroyed && !stream.closed) {
      this.framing = "none";
      this.#ended = true;
      try {
        stream.respond({ ":status": status, "content-length": 0 }, { endStream: true });
      } catch {
        this.#ex.reset(RESET.internalError);
      }
      this.#logOnce(status);
      return;
    }
    if (!this.#ended || !stream.writableEnded) {
      this.#ended = true;
      this.#ex.reset(RESET.internalError);
    }
    this.#logOnce(this.framing === undefined ? 499 : this.status);
  }

  timeOutRead(error: TimeoutError): void {
    this.readError = error;
    this.fail(408);
    // Stops the upload (RST_STREAM after the 408 is out), which also ends a read still waiting.
    this.#ex.finish();
  }
}
