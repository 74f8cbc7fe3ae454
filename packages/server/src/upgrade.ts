// Requests that ask to switch protocols (`Connection: upgrade`): node:http hands their socket over.
// Over HTTP/2 the same role is played by an extended CONNECT (RFC 8441, a `:protocol` pseudo-header):
// `takeConnect(req)` gives that request's stream to the new protocol, the session and its other
// streams carry on.
// The request handler sees an ordinary Request; `takeUpgrade(req)` gives the connection to whoever
// speaks the new protocol (a WebSocket library), after which the server writes nothing more on it.
// On shutdown the taker is asked to finish (`onClose(false)` from `close()`, `onClose(true)` from
// `forceClose()`, which then destroys the socket); a connection taken without `onClose` is destroyed.
// A handler that answers normally instead gets its Response written and the connection closed.
import type { IncomingMessage } from "node:http";
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { fromWebResponse, type Request, Response, statusText } from "@hyperwire/core";
import type { RequestHandler } from "./handler.js";
import { httpDate } from "./http-date.js";
import { type Conn, headStatus, rawError, scanHead } from "./http1.js";
import type { H2Exchange } from "./http2.js";
import { reportHandlerError } from "./io.js";
import { makeRequest } from "./request.js";

/** A connection taken over from the server. */
export interface UpgradeConnection {
  /** node:http's parsed request (method, url, headers) of the upgrade. */
  readonly incoming: IncomingMessage;
  /** The socket, now yours. */
  readonly socket: Socket;
  /** Bytes that arrived after the request head; the new protocol's first bytes. */
  readonly head: Buffer;
}

interface Handle extends UpgradeConnection {
  readonly conn: Conn;
  taken: boolean;
}

const handles = new WeakMap<Request, Handle>();

/** Options of {@link takeUpgrade}. */
export interface TakeUpgradeOptions {
  /**
   * Called when the server shuts down: `force` is false for a graceful `close()` (finish and close
   * the connection soon; the server waits for it), true for `forceClose()` (the socket is destroyed
   * right after).
   */
  onClose?: (force: boolean) => void;
}

/**
 * Takes over the connection of an upgrade request (one with `Connection: upgrade`). Returns `null`
 * for other requests, and for one already taken. The server then writes nothing on the socket;
 * the Response the handler returns is ignored. A connection taken while the server is already
 * shutting down is asked to finish (`onClose(false)`) right after this call returns.
 *
 * ```ts
 * serve((req) => {
 *   const conn = takeUpgrade(req);
 *   if (conn === null) return new Response(426);
 *   speakMyProtocol(conn.socket, conn.head);
 *   return new Response(101);
 * });
 * ```
 */
export function takeUpgrade(req: Request, options: TakeUpgradeOptions = {}): UpgradeConnection | null {
  const handle = handles.get(req);
  if (handle === undefined || handle.taken) return null;
  handle.taken = true;
  // Out of HTTP's bookkeeping (idle timers, keep-alive), into the list shutdown asks to finish.
  const engine = handle.conn.engine;
  engine.conns.delete(handle.conn);
  engine.hijacked.set(handle.socket, options.onClose);
  handle.socket.once("close", () => engine.hijacked.delete(handle.socket));
  if (engine.closing) {
    // Taken while the server shuts down: finish at once, but after this call returned, so that the
    // caller has set up what `onClose` uses (a session made from the connection returned here).
    const onClose = options.onClose;
    if (onClose !== undefined) queueMicrotask(() => onClose(false));
    else handle.socket.destroy();
  }
  return handle;
}

/** True when `req` arrived as an upgrade request that nobody took over yet. */
export function isUpgradeable(req: Request): boolean {
  const handle = handles.get(req);
  return handle !== undefined && !handle.taken;
}

/** Runs the request handler for an upgrade request and answers for it unless it took the connection. */
export async function runUpgrade(
  handler: RequestHandler,
  incoming: IncomingMessage,
  socket: Socket,
  head: Buffer,
  conn: Conn,
): Promise<void> {
  socket.on("error", noop);
  const refused = headStatus(incoming, scanHead(incoming.rawHeaders));
  if (refused !== 0) {
    rawError(socket, refused);
    return;
  }
  const request = makeRequest(incoming, incoming.httpVersion === "1.0" ? "1.0" : "1.1", socket);
  const handle: Handle = { incoming, socket, head, conn, taken: false };
  handles.set(request, handle);
  let response: unknown;
  try {
    response = await handler(request);
    if (response instanceof globalThis.Response) response = fromWebResponse(response);
  } catch (err) {
    reportHandlerError(err);
    if (!handle.taken) rawError(socket, 500);
    return;
  }
  if (handle.taken) return;
  if (!(response instanceof Response)) {
    rawError(socket, 500);
    return;
  }
  await writeRaw(socket, response);
}

/** A complete response on a socket node:http no longer serves, then the end of the connection. */
async function writeRaw(socket: Socket, res: Response): Promise<void> {
  const chunks: Uint8Array[] = [];
  if (res.body instanceof Uint8Array) chunks.push(res.body);
  else for await (const chunk of res.body) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  let head = `HTTP/1.1 ${res.status} ${res.reason || statusText(res.status)}\r\n`;
  for (const [name, value] of res.headers) {
    const lower = name.toLowerCase();
    if (lower === "content-length" || lower === "connection" || lower === "transfer-encoding") continue;
    head += `${name}: ${value}\r\n`;
  }
  head += `Date: ${httpDate()}\r\nConnection: close\r\nContent-Length: ${body.byteLength}\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
}

function noop(): void {}

/** HTTP/2 extended CONNECT requests (RFC 8441) whose handler runs now, with their stream's exchange. */
const connects = new WeakMap<Request, H2Exchange>();

/** @internal The HTTP/2 runner offers an extended CONNECT request's stream before its handler runs. */
export function offerConnect(req: Request, ex: H2Exchange): void {
  connects.set(req, ex);
}

/**
 * The `:protocol` of an HTTP/2 extended CONNECT request (RFC 8441), e.g. `"websocket"`; `null` for
 * any other request (a plain CONNECT included). Pseudo-headers are not in `req.headers`.
 *
 * ```ts
 * serve((req) => connectProtocol(req) === "websocket" ? acceptWebSocket(req) : new Response(404));
 * ```
 */
export function connectProtocol(req: Request): string | null {
  return connects.get(req)?.protocol ?? null;
}

/** The HTTP/2 stream of an extended CONNECT, taken over from the server. */
export interface ConnectStream {
  /**
   * The stream, now yours: send the response head with `stream.respond({ ":status": 200 })` (or a
   * refusal), then speak the protocol on it. Ending it sends END_STREAM; `close(code)` resets it.
   */
  readonly stream: ServerHttp2Stream;
  /** The `:protocol` pseudo-header (`"websocket"` for RFC 8441 WebSockets). */
  readonly protocol: string;
  /** node:http2's request header object (lower-case names, pseudo-headers included). */
  readonly headers: IncomingHttpHeaders;
  /** True when the session runs over TLS. */
  readonly secure: boolean;
}

/**
 * Takes over the stream of an HTTP/2 extended CONNECT request (RFC 8441). Returns `null` for other
 * requests and for one already taken. The server then writes nothing on the stream (the Response
 * the handler returns is ignored); the session and its other streams go on. On shutdown `onClose` is
 * asked to finish (`false` from `close()`, which waits for the stream; `true` from `forceClose()`,
 * which then destroys the session); a stream taken without `onClose` is reset (CANCEL) then. A
 * stream taken while the server is already shutting down is asked right after this call returns.
 *
 * ```ts
 * serve((req) => {
 *   const conn = takeConnect(req);
 *   if (conn === null) return new Response(400);
 *   conn.stream.respond({ ":status": 200 });
 *   speakMyProtocol(conn.stream);
 *   return new Response(200);
 * });
 * ```
 */
export function takeConnect(req: Request, options: TakeUpgradeOptions = {}): ConnectStream | null {
  const ex = connects.get(req);
  if (ex === undefined || ex.taken || ex.engine === undefined) return null;
  if (ex.stream.closed || ex.stream.destroyed) return null;
  ex.taken = true;
  // The runner's response is over: the stream's end, a reset by the peer included, is the tunnel's.
  ex.ended = true;
  const engine = ex.engine;
  const stream = ex.stream;
  const onClose =
    options.onClose ??
    ((): void => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
    });
  engine.tunnels.set(ex, onClose);
  stream.once("close", () => engine.tunnels.delete(ex));
  const taken: ConnectStream = {
    stream,
    protocol: ex.protocol!,
    headers: ex.headers,
    secure: (ex.socket as TLSSocket).encrypted === true,
  };
  // Taken while the server shuts down: finish at once, but after the caller has set up what
  // `onClose` refers to (a session made from the stream this call returns).
  if (engine.closing) queueMicrotask(() => onClose(false));
  return taken;
}
