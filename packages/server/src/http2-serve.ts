// The request-handler path over HTTP/2: buffer the body (when there is one), call the handler, write
// the response with `stream.respond` and the body. The same handler contract, limits and error
// mapping as HTTP/1.1 (serve.ts); only the writing differs.
import type { IncomingHttpHeaders } from "node:http2";
import { ClosedError, fromWebResponse, Headers, ProtocolError, Response } from "@hyperwire/core";
import type { AccessLogEntry } from "./access-log.js";
import type { RequestHandler } from "./handler.js";
import {
  type H2Exchange,
  RESET,
  resetStalled,
  resetUnflushed,
  responseHeaders,
  trailerHeaders,
} from "./http2.js";
import { logAccess, reportHandlerError, waitDrain } from "./io.js";
import type { ResolvedServerOptions } from "./options.js";
import { makeRequest } from "./request.js";
import { ABORTED, bufferBody, closeUnread, describe, isExpected, TOO_LARGE } from "./serve.js";
import { offerConnect } from "./upgrade.js";

// node copies respond() options, so one frozen object each serves every response.
const END_STREAM = Object.freeze({ endStream: true });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });

/**
 * Answers `status` with an empty body when the head has not been sent, else resets the stream
 * (INTERNAL_ERROR): a response cut short must not look complete.
 */
export function respondError(ex: H2Exchange, status: number): void {
  const stream = ex.stream;
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    ex.reset(RESET.internalError);
    return;
  }
  try {
    stream.respond({ ":status": status, "content-length": 0 }, { endStream: true });
  } catch {
    ex.reset(RESET.internalError);
  }
}

/** Resets a stream whose finished response has not been flushed within `writeTimeout` ms. */
export function guardFlush(ex: H2Exchange, writeTimeout: number): void {
  const stream = ex.stream;
  if (writeTimeout <= 0 || stream.closed) return;
  const timer = setTimeout(resetUnflushed, writeTimeout, stream).unref();
  stream.once("close", () => clearTimeout(timer));
}

function requestTrailers(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.charCodeAt(0) === 58 /* ":" */ || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else out.append(name, String(value));
  }
  return out;
}

/** Runs a request handler for each HTTP/2 request stream. */
export class H2ServeRunner {
  readonly #handler: RequestHandler;
  readonly #maxBody: number;
  readonly #readTimeout: number;
  readonly #writeTimeout: number;
  readonly #log: true | ((entry: AccessLogEntry) => void) | undefined;

  constructor(handler: RequestHandler, options: ResolvedServerOptions) {
    this.#handler = handler;
    this.#maxBody = options.maxBodyBytes;
    this.#readTimeout = options.readTimeout;
    this.#writeTimeout = options.writeTimeout;
    this.#log = options.accessLog === false ? undefined : options.accessLog;
  }

  readonly run = (ex: H2Exchange): void => {
    ex.request = makeRequest(ex, "2", ex);
    if (this.#log !== undefined) ex.t0 = performance.now();
    if (ex.stream.endAfterHeaders) this.#invoke(ex);
    else if (ex.protocol !== undefined) {
      // An extended CONNECT (RFC 8441): the stream is a tunnel for `takeConnect`, not a body to read.
      offerConnect(ex.request, ex);
      this.#invoke(ex);
    } else void this.#withBody(ex);
  };

  async #withBody(ex: H2Exchange): Promise<void> {
    const declared = ex.headers["content-length"];
    let body: Uint8Array | number = TOO_LARGE;
    let trailers: IncomingHttpHeaders | undefined;
    const onTrailers = (headers: IncomingHttpHeaders): void => {
      trailers = headers;
    };
    if (this.#maxBody === 0 || declared === undefined || Number(declared) <= this.#maxBody) {
      ex.stream.once("trailers", onTrailers);
      body = await bufferBody(ex.stream, this.#maxBody, this.#readTimeout);
      ex.stream.off("trailers", onTrailers);
      // A reset stream ends its readable side too: that is not a complete body.
      if (ex.stream.closed) body = ABORTED;
    }
    if (typeof body === "number") {
      if (body !== ABORTED) respondError(ex, body);
      this.#done(ex, body || 499, 0);
      return;
    }
    const request = ex.request!;
    request.body = body;
    if (trailers !== undefined) request.trailers = requestTrailers(trailers);
    this.#invoke(ex);
  }

  #invoke(ex: H2Exchange): void {
    let result: unknown;
    try {
      result = this.#handler(ex.request!);
    } catch (err) {
      this.#fail(ex, err);
      return;
    }
    if (result instanceof Response) this.#send(ex, result);
    else void this.#settle(ex, result);
  }

  async #settle(ex: H2Exchange, pending: unknown): Promise<void> {
    let result: unknown;
    try {
      result = await pending;
      if (result instanceof globalThis.Response) result = fromWebResponse(result);
    } catch (err) {
      this.#fail(ex, err);
      return;
    }
    if (result instanceof Response) this.#send(ex, result);
    else this.#fail(ex, new ProtocolError(`the handler returned ${describe(result)}, not a Response`));
  }

  #fail(ex: H2Exchange, err: unknown): void {
    reportHandlerError(err);
    if (ex.taken) return;
    respondError(ex, 500);
    this.#done(ex, 500, 0);
  }

  #done(ex: H2Exchange, status: number, bytes: number): void {
    ex.finish();
    if (this.#log !== undefined) logAccess(this.#log, ex, ex.t0, new Date(), status, bytes);
  }

  #send(ex: H2Exchange, resp: Response): void {
    // A stream taken over by `takeConnect` is the tunnel's: the handler's Response is not sent.
    if (ex.taken) return;
    const status = resp.status;
    if (status < 200) {
      this.#fail(
        ex,
        new ProtocolError(`the handler returned status ${status}; a response must be final (200–999)`),
      );
      return;
    }
    const stream = ex.stream;
    if (stream.destroyed || stream.closed) {
      // The peer reset the stream while the handler ran: nothing to send.
      if (!(resp.body instanceof Uint8Array)) closeUnread(resp.body);
      this.#done(ex, 499, 0);
      return;
    }
    const text = resp.bodyText;
    const body = text === undefined ? resp.body : undefined;
    const noBody = ex.method === "HEAD" || status === 204 || status === 304;
    const headers = responseHeaders(resp.headers, status);
    if (text === undefined && !(body instanceof Uint8Array)) {
      void this.#stream(ex, resp, headers, noBody);
      return;
    }
    const len = text === undefined ? (body as Uint8Array).byteLength : Buffer.byteLength(text, "utf8");
    if (!noBody || (ex.method === "HEAD" && len > 0)) {
      const declared = resp.headers.get("content-length");
      if (declared === null) headers["content-length"] = len;
      else if (!noBody && declared !== String(len)) {
        this.#fail(ex, new ProtocolError(`Content-Length says ${declared} but the body has ${len} bytes`));
        return;
      }
    }
    const withTrailers = !noBody && resp.hasTrailers;
    const empty = noBody || len === 0;
    try {
      // node validates a respond() options object on every call (a tenth of a small response's CPU):
      // the common case, a body and no trailers, passes none.
      if (withTrailers) stream.respond(headers, WAIT_FOR_TRAILERS);
      else if (empty) stream.respond(headers, END_STREAM);
      else stream.respond(headers);
    } catch (err) {
      this.#fail(ex, err);
      return;
    }
    if (withTrailers) sendTrailersWhenAsked(ex, resp.trailers);
    if (!empty) stream.end(text ?? body);
    else if (withTrailers) stream.end();
    if (this.#writeTimeout > 0) guardFlush(ex, this.#writeTimeout);
    this.#done(ex, status, noBody ? 0 : len);
  }

  async #stream(
    ex: H2Exchange,
    resp: Response,
    headers: ReturnType<typeof responseHeaders>,
    noBody: boolean,
  ): Promise<void> {
    const stream = ex.stream;
    const body = resp.body as AsyncIterable<Uint8Array>;
    const declared = resp.headers.get("content-length");
    const fixed = declared === null ? -1 : Number(declared);
    const withTrailers = !noBody && resp.hasTrailers;
    let sent = 0;
    let started = false;
    try {
      stream.respond(headers, noBody ? END_STREAM : withTrailers ? WAIT_FOR_TRAILERS : undefined);
      started = true;
      if (noBody) {
        await body[Symbol.asyncIterator]().return?.();
      } else {
        if (withTrailers) sendTrailersWhenAsked(ex, resp.trailers);
        for await (const chunk of body) {
          sent += chunk.byteLength;
          if (fixed >= 0 && sent > fixed) {
            throw new ProtocolError(`the body is longer than its Content-Length (${fixed} bytes)`);
          }
          if (chunk.byteLength === 0) continue;
          if (stream.destroyed || stream.closed) throw new ClosedError("the peer reset the HTTP/2 stream");
          if (!stream.write(chunk)) await waitDrain(stream, this.#writeTimeout, () => resetStalled(ex));
        }
        if (fixed >= 0 && sent !== fixed) {
          throw new ProtocolError(`the body ended after ${sent} of its ${fixed} Content-Length bytes`);
        }
        stream.end();
        if (this.#writeTimeout > 0) guardFlush(ex, this.#writeTimeout);
      }
    } catch (err) {
      if (!started) closeUnread(body);
      if (!isExpected(err)) reportHandlerError(err);
      respondError(ex, 500);
      this.#done(ex, 500, sent);
      return;
    }
    this.#done(ex, resp.status, sent);
  }
}

/** Sends `trailers` when node:http2 asks for them (after the last DATA frame was queued). */
export function sendTrailersWhenAsked(ex: H2Exchange, trailers: Headers): void {
  ex.stream.once("wantTrailers", () => {
    try {
      ex.stream.sendTrailers(trailerHeaders(trailers));
    } catch (err) {
      reportHandlerError(err);
      ex.reset(RESET.internalError);
    }
  });
}
