// Requests that ask to switch protocols (`Connection: upgrade`): node:http hands their socket over.
// The request handler sees an ordinary Request; `takeUpgrade(req)` gives the connection to whoever
// speaks the new protocol (a WebSocket library), after which the server writes nothing more on it.
// On shutdown the taker is asked to finish (`onClose(false)` from `close()`, `onClose(true)` from
// `forceClose()`, which then destroys the socket); a connection taken without `onClose` is destroyed.
// A handler that answers normally instead gets its Response written and the connection closed.
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { fromWebResponse, type Request, Response, statusText } from "@hyperwire/core";
import type { RequestHandler } from "./handler.js";
import { type Conn, headStatus, rawError, scanHead } from "./http1.js";
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
 * the Response the handler returns is ignored.
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
    // Taken while the server shuts down: finish at once.
    if (options.onClose !== undefined) options.onClose(false);
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
  head += `Date: ${new Date().toUTCString()}\r\nConnection: close\r\nContent-Length: ${body.byteLength}\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
}

function noop(): void {}
