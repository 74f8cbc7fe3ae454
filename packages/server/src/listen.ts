// The stream-handler path (listen) and the bridge from request handlers (streamHandler).
import type { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  ArgumentError,
  ClosedError,
  fromWebResponse,
  ProtocolError,
  Response,
  TimeoutError,
} from "@hyperwire/core";
import type { AccessLogEntry } from "./access-log.js";
import { type Handler, toRequestHandler } from "./handler.js";
import { type Conn, errorResponse, HAS_BODY, Http1Engine, headStatus, scanHead } from "./http1.js";
import { type H2Exchange, Http2Engine } from "./http2.js";
import { type H2StreamSetup, Http2ServerStream } from "./http2-stream.js";
import { logAccess, reportHandlerError } from "./io.js";
import { DEFAULTS, type ResolvedServerOptions, resolveOptions, type ServerOptions } from "./options.js";
import { makeRequest, type ServerRequest } from "./request.js";
import { Server } from "./server.js";
import { Http1Stream, type ServerStream, type StreamSetup } from "./stream.js";

/**
 * A stream handler: reads the request and writes the response through a {@link ServerStream}.
 * When it returns, the server ends the response (`closeWrite`) and stops reading (`closeRead`).
 *
 * ```ts
 * const echo: StreamHandler = async (stream) => { for await (const c of stream) await stream.write(c); };
 * ```
 */
export type StreamHandler = (stream: ServerStream) => void | Promise<void>;

function isExpected(err: unknown): boolean {
  return err instanceof ClosedError || err instanceof TimeoutError;
}

/**
 * Gives the body `ms` to arrive in full (`source.complete`, watched through `body`'s events); then
 * the stream answers 408 (or closes) and reads reject.
 */
function armReadTimeout(
  body: EventEmitter,
  source: { readonly complete: boolean },
  stream: ServerStream,
  ms: number,
): void {
  const started = performance.now();
  const timer = setTimeout(() => {
    if (!source.complete) stream.timeOutRead(new TimeoutError("readIdle", ms, performance.now() - started));
  }, ms).unref();
  body.once("end", () => clearTimeout(timer));
  body.once("close", () => clearTimeout(timer));
}

class StreamRunner {
  readonly #handler: StreamHandler;
  readonly #readTimeout: number;
  readonly #writeTimeout: number;
  readonly #log: true | ((entry: AccessLogEntry) => void) | undefined;

  constructor(handler: StreamHandler, options: ResolvedServerOptions) {
    this.#handler = handler;
    this.#readTimeout = options.readTimeout;
    this.#writeTimeout = options.writeTimeout;
    this.#log = options.accessLog === false ? undefined : options.accessLog;
  }

  readonly run = (req: IncomingMessage, res: ServerResponse, conn: Conn): void => {
    this.#start(req, res, conn, false);
  };

  readonly checkContinue = (req: IncomingMessage, res: ServerResponse, conn: Conn): void => {
    this.#start(req, res, conn, true);
  };

  #start(req: IncomingMessage, res: ServerResponse, conn: Conn, expectContinue: boolean): void {
    const flags = scanHead(req.rawHeaders);
    const refused = headStatus(req, flags);
    if (refused !== 0) {
      errorResponse(res, refused);
      if (this.#log !== undefined) logAccess(this.#log, req, performance.now(), new Date(), refused, 0);
      return;
    }
    const request = makeRequest(req, req.httpVersion === "1.0" ? "1.0" : "1.1", conn.socket);
    conn.engine.requestStarted(conn, request);
    const hasBody = (flags & HAS_BODY) !== 0;
    const setup: StreamSetup = { expectContinue, hasBody, writeTimeout: this.#writeTimeout, log: this.#log };
    const stream = new Http1Stream(request, req, res, conn, setup);
    if (hasBody && this.#readTimeout > 0) armReadTimeout(req, req, stream, this.#readTimeout);
    void this.#drive(stream, conn, request);
  }

  /** An HTTP/2 request stream (the engine validated its head). */
  readonly runH2 = (ex: H2Exchange): void => {
    const request = makeRequest(ex, "2", ex);
    ex.request = request;
    if (this.#log !== undefined) ex.t0 = performance.now();
    const setup: H2StreamSetup = { writeTimeout: this.#writeTimeout, log: this.#log };
    const stream = new Http2ServerStream(request, ex, setup);
    if (!ex.stream.endAfterHeaders && this.#readTimeout > 0) {
      armReadTimeout(ex.stream, ex, stream, this.#readTimeout);
    }
    void this.#driveH2(stream, ex);
  };

  async #driveH2(stream: ServerStream, ex: H2Exchange): Promise<void> {
    try {
      await this.#handler(stream);
      stream.closeRead();
      await stream.closeWrite();
    } catch (err) {
      if (!isExpected(err)) reportHandlerError(err);
      stream.fail();
    } finally {
      ex.finish();
    }
  }

  async #drive(stream: ServerStream, conn: Conn, request: ServerRequest): Promise<void> {
    try {
      await this.#handler(stream);
      // closeRead first: an unread body makes the response say Connection: close if it has not started.
      stream.closeRead();
      await stream.closeWrite();
    } catch (err) {
      if (!isExpected(err)) reportHandlerError(err);
      stream.fail();
    } finally {
      conn.engine.requestDone(conn, request);
    }
  }
}

/**
 * An object that handles streams (a `Router` of stream handlers, say).
 *
 * ```ts
 * const app: StreamHandlerObject = { handleStream: (stream) => stream.write("hi") };
 * ```
 */
export interface StreamHandlerObject {
  handleStream(stream: ServerStream): void | Promise<void>;
}

function toStreamHandler(handler: StreamHandler | StreamHandlerObject): StreamHandler {
  if (typeof handler === "function") return handler;
  if (handler !== null && typeof handler === "object" && typeof handler.handleStream === "function") {
    return (stream) => handler.handleStream(stream);
  }
  throw new ArgumentError("listen needs a stream handler function or an object with handleStream(stream)");
}

/**
 * Starts an HTTP/1.1 and HTTP/2 server (HTTPS with `tls`) that calls a stream handler for every request: the
 * body is not buffered (so `maxBodyBytes` does not apply), the handler reads and writes it.
 * `handler` may also be an object with `handleStream(stream)`, such as a `Router`.
 * Bind failures reject with `AddressInUseError` or `ConnectError`.
 *
 * ```ts
 * const server = await listen(async (stream) => {
 *   stream.setHeader("Content-Type", "text/plain");
 *   await stream.write("hello");
 * }, { port: 0 });
 * ```
 */
export async function listen(
  handler: StreamHandler | StreamHandlerObject,
  options?: ServerOptions,
): Promise<Server> {
  const perStream = toStreamHandler(handler);
  const opts = resolveOptions(options);
  const runner = new StreamRunner(perStream, opts);
  const engine = new Http1Engine(opts, runner.run, runner.checkContinue);
  const h2 = opts.http2 ? new Http2Engine(opts, runner.runH2) : undefined;
  return new Server(opts, engine, h2).start();
}

/** Options of {@link streamHandler}. */
export interface StreamHandlerOptions {
  /**
   * The largest request body the bridge buffers, in bytes; larger gets `413` (before reading when
   * `Content-Length` says so). `0` means unlimited. Default 64 MiB (as `serve`).
   */
  maxBodyBytes?: number;
}

async function respond(stream: ServerStream, resp: Response): Promise<void> {
  stream.setStatus(resp.status);
  const flat = resp.headers.toFlat();
  for (let i = 0; i + 1 < flat.length; i += 2) stream.appendHeader(flat[i]!, flat[i + 1]!);
  const body = resp.body;
  if (body instanceof Uint8Array) {
    if (!resp.headers.has("content-length")) stream.setHeader("Content-Length", String(body.byteLength));
    for (const [name, value] of resp.trailers) stream.addTrailer(name, value);
    await stream.write(body);
  } else {
    for (const [name, value] of resp.trailers) stream.addTrailer(name, value);
    for await (const chunk of body) await stream.write(chunk);
  }
  await stream.closeWrite();
}

/**
 * Turns a request handler into a stream handler: buffers the body (up to `maxBodyBytes`, else
 * `413`), calls the handler and writes its response. A result that is not a `Response` is a
 * `ProtocolError` (the peer gets 500).
 *
 * ```ts
 * await listen(streamHandler((req) => new Response(200, { body: req.body })), { port: 0 });
 * ```
 */
export function streamHandler(handler: Handler, options: StreamHandlerOptions = {}): StreamHandler {
  const call = toRequestHandler(handler, "http");
  const limit = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes;
  return async (stream) => {
    const req = stream.request;
    const declared = req.headers.get("content-length");
    if (limit > 0 && declared !== null && Number(declared) > limit) {
      stream.closeRead();
      stream.setStatus(413);
      stream.setHeader("Content-Length", "0");
      return;
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += chunk.byteLength;
      if (limit > 0 && size > limit) {
        stream.closeRead();
        stream.setStatus(413);
        stream.setHeader("Content-Length", "0");
        return;
      }
      chunks.push(chunk);
    }
    if (size > 0) req.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
    let result: unknown = await call(req);
    if (result instanceof globalThis.Response) result = fromWebResponse(result);
    if (!(result instanceof Response)) {
      throw new ProtocolError("the handler did not return a Response");
    }
    await respond(stream, result);
  };
}
