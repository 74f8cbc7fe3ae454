// The request-handler path: buffer the body (when there is one), call the handler, write the response.
// This is the hot path of the benchmark: request Headers made only if the handler looks, no body
// reading when the request has none, one writeHead + end, and no per-request closures on the common
// path.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import {
  ClosedError,
  fromWebResponse,
  Headers,
  ProtocolError,
  Response,
  TimeoutError,
} from "@hyperwire/core";
import type { AccessLogEntry } from "./access-log.js";
import { type Handler, type RequestHandler, toRequestHandler } from "./handler.js";
import { type Conn, errorResponse, HAS_BODY, Http1Engine, headStatus, scanHead } from "./http1.js";
import { Http2Engine } from "./http2.js";
import { H2ServeRunner } from "./http2-serve.js";
import {
  abandon,
  guardFlush,
  logAccess,
  reportHandlerError,
  trailerNames,
  trailerPairs,
  waitDrain,
} from "./io.js";
import { type ResolvedServerOptions, resolveOptions, type ServerOptions } from "./options.js";
import { makeRequest, type ServerRequest } from "./request.js";
import { Server } from "./server.js";
import { runUpgrade } from "./upgrade.js";

const EMPTY = new Uint8Array(0);
/**
 * Bodies up to this size go to node:http as a latin1 string (byte for byte the same), which it
 * joins with the head into one write instead of a two-buffer writev: measurably cheaper per request.
 */
const SMALL_BODY = 4096;

function latin1(bytes: Uint8Array): string {
  return (
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  ).toString("latin1");
}
/** bufferBody outcomes that are not a body. */
export const TOO_LARGE = 413;
export const TIMED_OUT = 408;
export const ABORTED = 0;

/**
 * Reads a request body (node:http's IncomingMessage or an HTTP/2 stream) into one buffer, up to
 * `limit` bytes (`0` = no limit) within `timeout` ms.
 */
export function bufferBody(req: Readable, limit: number, timeout: number): Promise<Uint8Array | number> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (value: Uint8Array | number): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      if (timer !== undefined) clearTimeout(timer);
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (limit > 0 && size > limit) finish(TOO_LARGE);
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      finish(chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = (): void => finish(ABORTED);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    if (timeout > 0) timer = setTimeout(finish, timeout, TIMED_OUT).unref();
  });
}

/** What a handler returned instead of a Response, for the error message. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "an object";
  return typeof value;
}

/** Tells a streamed body that nobody will read it (its `return()`), reporting a failure to do so. */
export function closeUnread(body: AsyncIterable<Uint8Array>): void {
  try {
    Promise.resolve(body[Symbol.asyncIterator]().return?.()).catch(reportHandlerError);
  } catch (err) {
    reportHandlerError(err);
  }
}

/** Errors that are the peer's doing (it left, or was too slow): not reported as handler errors. */
export function isExpected(err: unknown): boolean {
  return err instanceof ClosedError || err instanceof TimeoutError;
}

/** The header a response adds when the server is shutting down. */
const CLOSE: readonly string[] = ["Connection", "close"];
/**
 * What `#send` adds to a response's headers, its length filled in just before `toFlat` copies it
 * (so that no list is made for it per response).
 */
const LENGTH = ["Content-Length", ""];
const LENGTH_CLOSE = ["Content-Length", "", "Connection", "close"];

/** Runs a request handler for each request the engine parses. */
export class ServeRunner {
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

  /** The request handler (upgrade requests call it outside the normal path). */
  get handler(): RequestHandler {
    return this.#handler;
  }

  readonly run = (req: IncomingMessage, res: ServerResponse, conn: Conn): void => {
    const flags = scanHead(req.rawHeaders);
    const refused = headStatus(req, flags);
    if (refused !== 0) {
      this.#refuse(req, res, refused);
      return;
    }
    const request = makeRequest(req, req.httpVersion === "1.0" ? "1.0" : "1.1", conn.socket);
    conn.engine.requestStarted(conn, request);
    const t0 = this.#log === undefined ? 0 : performance.now();
    if (flags & HAS_BODY) {
      void this.#withBody(request, req, res, conn, t0);
    } else {
      this.#invoke(request, req, res, conn, t0);
    }
  };

  /** `Expect: 100-continue`: refuse a declared body over the limit, else say 100 and go on. */
  readonly checkContinue = (req: IncomingMessage, res: ServerResponse, conn: Conn): void => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (this.#maxBody > 0 && declared > this.#maxBody) {
      this.#refuse(req, res, 413);
      return;
    }
    // A head that run() refuses gets its error status, not an invitation to send the body.
    if (headStatus(req, scanHead(req.rawHeaders)) === 0) res.writeContinue();
    this.run(req, res, conn);
  };

  /** Answers a request the handler never sees (refused head, declared body too large). */
  #refuse(req: IncomingMessage, res: ServerResponse, status: number): void {
    errorResponse(res, status);
    if (this.#log !== undefined) logAccess(this.#log, req, performance.now(), new Date(), status, 0);
  }

  async #withBody(request: ServerRequest, req: IncomingMessage, res: ServerResponse, conn: Conn, t0: number) {
    const declared = request.headers.get("content-length");
    let body: Uint8Array | number = TOO_LARGE;
    if (this.#maxBody === 0 || declared === null || Number(declared) <= this.#maxBody) {
      body = await bufferBody(req, this.#maxBody, this.#readTimeout);
    }
    if (typeof body === "number") {
      if (body !== ABORTED) errorResponse(res, body);
      this.#done(request, req, conn, body || 499, 0, t0);
      return;
    }
    request.body = body;
    if (req.rawTrailers.length > 0) request.trailers = Headers.fromTrusted(req.rawTrailers);
    this.#invoke(request, req, res, conn, t0);
  }

  #invoke(request: ServerRequest, req: IncomingMessage, res: ServerResponse, conn: Conn, t0: number): void {
    let result: unknown;
    try {
      result = this.#handler(request);
    } catch (err) {
      this.#fail(request, req, res, conn, err, t0);
      return;
    }
    if (result instanceof Response) this.#send(request, req, res, conn, result, t0);
    else void this.#settle(request, req, res, conn, result, t0);
  }

  async #settle(
    request: ServerRequest,
    req: IncomingMessage,
    res: ServerResponse,
    conn: Conn,
    pending: unknown,
    t0: number,
  ) {
    let result: unknown;
    try {
      result = await pending;
      if (result instanceof globalThis.Response) result = fromWebResponse(result);
    } catch (err) {
      this.#fail(request, req, res, conn, err, t0);
      return;
    }
    if (result instanceof Response) this.#send(request, req, res, conn, result, t0);
    else {
      const err = new ProtocolError(`the handler returned ${describe(result)}, not a Response`);
      this.#fail(request, req, res, conn, err, t0);
    }
  }

  #fail(
    request: ServerRequest,
    req: IncomingMessage,
    res: ServerResponse,
    conn: Conn,
    err: unknown,
    t0: number,
  ): void {
    reportHandlerError(err);
    if (res.headersSent) abandon(conn);
    else errorResponse(res, 500);
    this.#done(request, req, conn, 500, 0, t0);
  }

  #done(
    request: ServerRequest,
    req: IncomingMessage,
    conn: Conn,
    status: number,
    bytes: number,
    t0: number,
  ): void {
    conn.engine.requestDone(conn, request);
    if (this.#log !== undefined) logAccess(this.#log, req, t0, new Date(), status, bytes);
  }

  #send(
    request: ServerRequest,
    req: IncomingMessage,
    res: ServerResponse,
    conn: Conn,
    resp: Response,
    t0: number,
  ): void {
    const status = resp.status;
    if (status < 200) {
      // A 1xx is interim: sent as the answer, the peer would take the next response for this request's.
      const err = new ProtocolError(
        `the handler returned status ${status}; a response must be final (200–999)`,
      );
      this.#fail(request, req, res, conn, err, t0);
      return;
    }
    const text = resp.bodyText;
    const body = text === undefined ? resp.body : undefined;
    const closing = conn.engine.closing;
    const reason = resp.reason === "" ? undefined : resp.reason;
    const head = request.method === "HEAD";
    const noBody = head || status === 204 || status === 304;
    if (text === undefined && !(body instanceof Uint8Array)) {
      const flat = resp.headers.toFlat(closing ? CLOSE : undefined);
      void this.#stream(request, req, res, conn, resp, flat, reason, noBody, t0);
      return;
    }
    // A string body goes to node:http as it is (one UTF-8 encoding, joined with the head).
    const len = text === undefined ? (body as Uint8Array).byteLength : Buffer.byteLength(text, "utf8");
    let more: readonly string[] | undefined = closing ? CLOSE : undefined;
    if (!noBody || (head && len > 0)) {
      const declared = resp.headers.get("content-length");
      if (declared === null) {
        const added = closing ? LENGTH_CLOSE : LENGTH;
        added[1] = String(len);
        more = added;
      } else if (!noBody && declared !== String(len)) {
        const err = new ProtocolError(`Content-Length says ${declared} but the body has ${len} bytes`);
        this.#fail(request, req, res, conn, err, t0);
        return;
      }
    }
    // Made at its final size: pushing the added headers onto it would regrow it.
    const flat = resp.headers.toFlat(more);
    try {
      res.writeHead(status, reason, flat);
    } catch (err) {
      this.#fail(request, req, res, conn, err, t0);
      return;
    }
    if (noBody || len === 0) res.end();
    else if (text !== undefined) res.end(text, "utf8");
    else if (len <= SMALL_BODY) res.end(latin1(body as Uint8Array), "latin1");
    else res.end(body);
    if (this.#writeTimeout > 0) guardFlush(res, this.#writeTimeout);
    this.#done(request, req, conn, status, noBody ? 0 : len, t0);
  }

  async #stream(
    request: ServerRequest,
    req: IncomingMessage,
    res: ServerResponse,
    conn: Conn,
    resp: Response,
    flat: string[],
    reason: string | undefined,
    noBody: boolean,
    t0: number,
  ): Promise<void> {
    const body = resp.body as AsyncIterable<Uint8Array>;
    const declared = resp.headers.get("content-length");
    const fixed = declared === null ? -1 : Number(declared);
    const withTrailers = !noBody && fixed < 0 && resp.hasTrailers && request.version !== "1.0";
    if (withTrailers) flat.push("Trailer", trailerNames(resp.trailers));
    let sent = 0;
    // Until iteration starts, a failure (writeHead refusing a header, say) must close the body
    // itself: a body holding a file or a producer would otherwise never learn it is not wanted.
    let started = false;
    try {
      res.writeHead(resp.status, reason, flat);
      started = true;
      if (noBody) {
        await body[Symbol.asyncIterator]().return?.();
      } else {
        for await (const chunk of body) {
          sent += chunk.byteLength;
          if (fixed >= 0 && sent > fixed) {
            throw new ProtocolError(`the body is longer than its Content-Length (${fixed} bytes)`);
          }
          if (chunk.byteLength === 0) continue;
          if (res.destroyed) throw new ClosedError("the peer closed the connection");
          if (!res.write(chunk)) await waitDrain(res, this.#writeTimeout);
        }
        if (fixed >= 0 && sent !== fixed) {
          throw new ProtocolError(`the body ended after ${sent} of its ${fixed} Content-Length bytes`);
        }
        if (withTrailers) res.addTrailers(trailerPairs(resp.trailers));
      }
      res.end();
      if (this.#writeTimeout > 0) guardFlush(res, this.#writeTimeout);
    } catch (err) {
      if (!started) closeUnread(body);
      if (!isExpected(err)) reportHandlerError(err);
      if (res.headersSent) abandon(conn);
      else errorResponse(res, 500);
      this.#done(request, req, conn, 500, sent, t0);
      return;
    }
    this.#done(request, req, conn, resp.status, sent, t0);
  }
}

/**
 * Starts an HTTP/1.1 and HTTP/2 server (HTTPS with `tls`) that calls `handler` for every request, with the
 * request body buffered (up to `maxBodyBytes`). The handler may be a function, an object with
 * `handle(req)`, or an object with a WHATWG `fetch(request)`; it may return our `Response` or a
 * WHATWG one. A `Uint8Array` body is sent with `Content-Length`, an async iterable chunked (or with
 * the `Content-Length` the handler set, which is checked). Bind failures reject with
 * `AddressInUseError` or `ConnectError`.
 *
 * ```ts
 * const server = await serve((req) => new Response(200, { body: `hello ${req.target}` }), { port: 0 });
 * console.log(server.url);
 * await server.close();
 * ```
 */
export async function serve(handler: Handler, options?: ServerOptions): Promise<Server> {
  const opts = resolveOptions(options);
  const runner = new ServeRunner(toRequestHandler(handler, opts.tls ? "https" : "http"), opts);
  const requestHandler = runner.handler;
  const engine = new Http1Engine(opts, runner.run, runner.checkContinue, (req, socket, head, conn) => {
    void runUpgrade(requestHandler, req, socket, head, conn);
  });
  const h2 = opts.http2 ? new Http2Engine(opts, new H2ServeRunner(requestHandler, opts).run) : undefined;
  return new Server(opts, engine, h2).start();
}
