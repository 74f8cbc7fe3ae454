// The HTTP/1.1 engine: a node:http parser/serializer that is never bound to a port. The Server owns
// the listening socket and hands each accepted connection to `accept`, so another engine (HTTP/2)
// can take connections from the same listener later without touching the per-request path.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { httpDate } from "./http-date.js";
import type { ResolvedServerOptions } from "./options.js";
import { cancelRequest, finishRequest, type ServerRequest } from "./request.js";

/** Where a connection's bookkeeping hangs off its socket (one property per connection, not per request). */
export const kConn = Symbol("hyperwire.conn");

/** One HTTP/1 connection's bookkeeping. */
export interface Conn {
  readonly socket: Socket;
  readonly engine: Http1Engine;
  /** Requests whose response has not ended yet. */
  active: number;
  /**
   * Those requests (their contexts are cancelled when the socket closes under them): the first in
   * `current`, any pipelined after it in `more` (made only then). No array churn per request on
   * the common keep-alive connection with one request at a time.
   */
  current: ServerRequest | undefined;
  more: ServerRequest[] | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

type ConnSocket = Socket & { [kConn]?: Conn };

/** What runs a request once the engine parsed its head. */
export type RequestRunner = (req: IncomingMessage, res: ServerResponse, conn: Conn) => void;

/** What runs a request that asked to switch protocols (node:http gives up the socket for those). */
export type UpgradeRunner = (req: IncomingMessage, socket: Socket, head: Buffer, conn: Conn) => void;

/** The connection of a request (set by {@link Http1Engine.accept}). */
export function connOf(req: IncomingMessage): Conn {
  return (req.socket as ConnSocket)[kConn]!;
}

/** {@link scanHead} flag: the request has a body (`Content-Length` or `Transfer-Encoding`). */
export const HAS_BODY = 1;
/** {@link scanHead} flag: more than one `Host` header (RFC 9112 §3.2 says 400). */
export const DUPLICATE_HOST = 2;

/** Whether `name` is `lower` in any case (`lower` being a lower-case name of letters and `-`). */
function isName(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(l >= 0x61 && l <= 0x7a && c === l - 0x20)) return false;
  }
  return true;
}

/**
 * One pass over node's raw header list for what the server itself needs. Only names of the right
 * length are compared, character by character in place (lower-casing would make a string for each),
 * so the common head costs a few integer compares.
 */
export function scanHead(raw: string[]): number {
  let flags = 0;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const n = name.length;
    if (n === 4) {
      if (isName(name, "host") && ++hosts > 1) flags |= DUPLICATE_HOST;
    } else if (
      (n === 14 && isName(name, "content-length")) ||
      (n === 17 && isName(name, "transfer-encoding"))
    ) {
      flags |= HAS_BODY;
    }
  }
  return flags;
}

/** The longest request line accepted (HTTP.jl's cap; RFC 9112 §3 asks for at least 8000 octets). */
export const MAX_REQUEST_LINE = 8192;

/**
 * The error status a parsed head must get before any handler sees it, or `0`. These are the checks
 * node:http's parser leaves to us: a second `Host` (400), a version other than HTTP/1.x (HTTP/0.9
 * and `HTTP/2.0` request lines: 400, as llhttp already answers `HTTP/9.9`) and a request line over
 * {@link MAX_REQUEST_LINE} (431).
 */
export function headStatus(req: IncomingMessage, flags: number): number {
  if (flags & DUPLICATE_HOST || req.httpVersionMajor !== 1) return 400;
  // method SP target SP "HTTP/1.1"
  if (req.method!.length + req.url!.length + 10 > MAX_REQUEST_LINE) return 431;
  return 0;
}

const LINGER_MS = 5_000;

function noop(): void {}

function destroyLater(socket: Socket): void {
  setTimeout(destroyNow, LINGER_MS, socket).unref();
}

function destroyNow(socket: Socket): void {
  socket.destroy();
}

/**
 * Sends a bare error response on a socket that has no response in progress and closes it. The peer
 * gets a moment to read it (what it still sends is discarded) before the socket is destroyed.
 */
export function rawError(socket: Socket, status: number): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const reason = http.STATUS_CODES[status] ?? "Error";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nDate: ${httpDate()}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
  );
  socket.resume();
  destroyLater(socket);
}

/** Sends an error response through `res` (head not sent yet) and closes the connection after it. */
export function errorResponse(res: ServerResponse, status: number): void {
  if (res.headersSent) {
    res.socket?.destroy();
    return;
  }
  // The reason is given: a refused writeHead (a handler's reason with a control character) leaves
  // its reason on `res`, and node:http would reuse it here and throw again.
  res.writeHead(status, http.STATUS_CODES[status] ?? "Error", { Connection: "close", "Content-Length": "0" });
  res.end();
}

function statusForClientError(code: string | undefined): number {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return 431;
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return 413;
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return 408;
    default:
      return 400;
  }
}

/** The HTTP/2 client connection preface (RFC 9113 §3.4): what a prior-knowledge h2c peer sends first. */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** What node:http's parser reports when it has read the whole preface (llhttp stops there). */
type PrefaceError = Error & { code?: string; bytesParsed?: number; rawPacket?: Buffer };

/** node:http's per-connection parser, as much of it as {@link takeBack} uses. */
interface NodeParser {
  _consumed?: boolean;
  unconsume(): void;
  remove(): void;
  close(): void;
}

type NodeHttpSocket = ConnSocket & { parser?: NodeParser | null };

/**
 * The socket listeners node:http adds per connection, by name: the first four are bound to that
 * connection's state, so there is no other handle on them.
 */
const NODE_LISTENERS = new Set([
  "bound socketOnData",
  "bound socketOnEnd",
  "bound socketOnClose",
  "bound socketOnDrain",
  "socketOnTimeout",
  "onSocketResume",
  "onSocketPause",
]);
const NODE_EVENTS = ["data", "end", "close", "drain", "timeout", "resume", "pause"] as const;

function closeParser(parser: NodeParser): void {
  parser.close();
}

/**
 * Takes a connection back from node:http when its first bytes were the HTTP/2 preface, as node:http
 * itself lets go of an upgraded one: its parser stops reading the socket and leaves the header-timeout
 * list, its listeners come off, and the preface and whatever followed it are put back to be read
 * again. False (the connection stays with node:http, which answers 400) when the preface came after
 * other bytes, or when this Node's http module no longer looks the way this expects.
 */
function takeBack(socket: NodeHttpSocket, err: PrefaceError): boolean {
  const parser = socket.parser;
  const raw = err.rawPacket;
  const parsed = err.bytesParsed;
  if (parser == null || raw === undefined || parsed === undefined) return false;
  // The preface must be the connection's first bytes: everything read up to its end is the preface.
  const rest = raw.subarray(parsed);
  if (socket.bytesRead - rest.length !== PREFACE.length) return false;
  // Only node:http reads the socket (its one 'data' listener), or it is left as it is.
  const readers = socket.listeners("data");
  if (readers.length === 0 || !readers.every((fn) => NODE_LISTENERS.has(fn.name))) return false;
  for (const event of NODE_EVENTS) {
    for (const fn of socket.listeners(event)) {
      if (NODE_LISTENERS.has(fn.name)) socket.removeListener(event, fn as (...args: unknown[]) => void);
    }
  }
  if (parser._consumed) parser.unconsume();
  parser._consumed = false;
  parser.remove();
  socket.parser = null;
  // The parser is still on the stack (this runs inside its callback): close it once that unwound.
  setImmediate(closeParser, parser);
  // node:http's wrappers of `on`, `addListener`, `prependListener` and `setEncoding`.
  const own = socket as unknown as Record<string, unknown>;
  delete own.on;
  delete own.addListener;
  delete own.prependListener;
  delete own.setEncoding;
  // As node:http leaves an upgraded socket: neither flowing nor paused, what arrives is kept.
  (socket as { readableFlowing: boolean | null }).readableFlowing = null;
  socket.unshift(rest.length === 0 ? PREFACE : Buffer.concat([PREFACE, rest]));
  return true;
}

function onClientError(err: Error & { code?: string }, socket: Socket): void {
  // The peer left (reset, or closed in the middle of a message): nobody to answer.
  if (err.code === "ECONNRESET" || err.code === "EPIPE" || err.code === "HPE_INVALID_EOF_STATE") {
    socket.destroy();
    return;
  }
  const conn = (socket as ConnSocket)[kConn];
  if (err.code === "HPE_PAUSED_H2_UPGRADE" && conn?.engine.onPreface !== undefined) {
    if (takeBack(socket, err)) {
      conn.engine.release(conn);
      conn.engine.onPreface(socket);
      return;
    }
  }
  const status = statusForClientError(err.code);
  if (conn === undefined || conn.active === 0) {
    rawError(socket, status);
    return;
  }
  // A parse error inside a request already handed out (a bad chunk, say): answer through its response
  // if that has not started (node:http keeps it on the socket as `_httpMessage`), else just close.
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current && !current.headersSent && socket.writable && socket.readable) errorResponse(current, status);
  else socket.destroy();
}

function onExpectation(_req: IncomingMessage, res: ServerResponse): void {
  errorResponse(res, 417);
}

function onIdleTimeout(conn: Conn): void {
  conn.idleTimer = undefined;
  if (conn.active === 0) conn.socket.destroy();
}

function onSocketClose(this: ConnSocket): void {
  const conn = this[kConn];
  if (conn === undefined) return;
  if (conn.idleTimer !== undefined) clearTimeout(conn.idleTimer);
  const { current, more } = conn;
  conn.current = undefined;
  conn.more = undefined;
  if (current !== undefined) cancelRequest(current, "the peer closed the connection");
  if (more !== undefined) for (const req of more) cancelRequest(req, "the peer closed the connection");
  conn.active = 0;
  conn.engine.conns.delete(conn);
}

/**
 * The HTTP/1.1 engine of a {@link Server}: parses requests on the connections it is given and calls
 * the runner, tracks what is in flight per connection, and closes idle connections on shutdown.
 */
export class Http1Engine {
  readonly http: http.Server;
  readonly conns = new Set<Conn>();
  readonly options: ResolvedServerOptions;
  /** Set by {@link beginClose}: responses that start now say `Connection: close`. */
  closing = false;
  /** Connections taken over by another protocol, with what to call when the server shuts down. */
  readonly hijacked = new Map<Socket, ((force: boolean) => void) | undefined>();
  /**
   * Where a connection goes whose first bytes are the HTTP/2 preface (the HTTP/2 engine's `accept`);
   * unset, the preface gets 400 like any request line HTTP/1.1 does not know.
   */
  onPreface: ((socket: Socket) => void) | undefined = undefined;

  constructor(
    options: ResolvedServerOptions,
    run: RequestRunner,
    checkContinue: RequestRunner,
    upgrade?: UpgradeRunner,
  ) {
    this.options = options;
    const headTimeout = options.readHeaderTimeout;
    const server = http.createServer({
      maxHeaderSize: options.maxHeaderBytes,
      requireHostHeader: true,
      noDelay: true,
      // node:http times the head natively (from the connection, then from each request's first byte)
      // and checks every connectionsCheckingInterval; a quarter of the timeout keeps the slack small.
      headersTimeout: headTimeout,
      requestTimeout: 0,
      connectionsCheckingInterval:
        headTimeout > 0 ? Math.max(10, Math.min(1_000, Math.floor(headTimeout / 4))) : 30_000,
    });
    // node:http would wait keepAliveTimeout + 1 s; our own idle timer (requestDone) is exact.
    server.keepAliveTimeout = 0;
    server.timeout = 0;
    server.on("request", (req: IncomingMessage, res: ServerResponse) => run(req, res, connOf(req)));
    server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) =>
      checkContinue(req, res, connOf(req)),
    );
    server.on("checkExpectation", onExpectation);
    // Without a runner, node:http answers nothing and drops the socket of an upgrade request.
    if (upgrade !== undefined) {
      server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) =>
        upgrade(req, socket, head, connOf(req)),
      );
    }
    server.on("clientError", onClientError);
    this.http = server;
    // The connection tracking behind headersTimeout starts on 'listening'; this server never listens
    // itself (the Server hands it connections), so start it by hand, before any connection arrives.
    if (headTimeout > 0) server.emit("listening");
  }

  #stopTracking(): void {
    if (this.options.readHeaderTimeout > 0) this.http.close(noop);
  }

  /** Takes a connection (cleartext, or TLS after its handshake) and starts serving HTTP/1.1 on it. */
  accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn: Conn = {
      socket,
      engine: this,
      active: 0,
      current: undefined,
      more: undefined,
      idleTimer: undefined,
    };
    (socket as ConnSocket)[kConn] = conn;
    this.conns.add(conn);
    socket.on("close", onSocketClose);
    this.http.emit("connection", socket);
  }

  /** Lets go of a connection that has no request in flight, handed to another engine. */
  release(conn: Conn): void {
    this.conns.delete(conn);
    conn.socket.removeListener("close", onSocketClose);
    (conn.socket as ConnSocket)[kConn] = undefined;
  }

  /** A request on `conn` started: it is in flight until {@link requestDone}. */
  requestStarted(conn: Conn, req: ServerRequest): void {
    conn.active++;
    if (conn.current === undefined) conn.current = req;
    else if (conn.more === undefined) conn.more = [req];
    else conn.more.push(req);
    if (conn.idleTimer !== undefined) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = undefined;
    }
  }

  /** The response of a request on `conn` ended (or was abandoned). */
  requestDone(conn: Conn, req: ServerRequest): void {
    if (conn.current === req) {
      // The next pipelined request, if any, becomes the first.
      conn.current = conn.more?.shift();
    } else {
      const i = conn.more?.indexOf(req) ?? -1;
      if (i < 0) return;
      conn.more!.splice(i, 1);
    }
    finishRequest(req);
    conn.active--;
    if (conn.active !== 0) return;
    if (this.closing) conn.socket.destroySoon();
    else if (this.options.idleTimeout > 0) {
      // The keep-alive wait between requests (0: idle connections stay open, HTTP.jl's default).
      conn.idleTimer = setTimeout(onIdleTimeout, this.options.idleTimeout, conn).unref();
    }
  }

  /** Requests in flight on every connection. */
  get activeRequests(): number {
    let n = 0;
    for (const conn of this.conns) n += conn.active;
    return n;
  }

  /** Graceful shutdown: idle connections close now, busy ones after their last response. */
  beginClose(): void {
    this.closing = true;
    this.#stopTracking();
    // Taken-over connections are asked to finish (a WebSocket says 1001); those that gave no way to
    // ask are closed, so that the listener's close does not wait on them forever.
    for (const [socket, onClose] of this.hijacked) {
      if (onClose !== undefined) onClose(false);
      else socket.destroy();
    }
    for (const conn of this.conns) {
      if (conn.active === 0) conn.socket.destroy();
    }
  }

  /** Every connection, now. */
  destroyAll(): void {
    this.closing = true;
    this.#stopTracking();
    for (const [socket, onClose] of this.hijacked) {
      onClose?.(true);
      socket.destroy();
    }
    for (const conn of this.conns) conn.socket.destroy();
  }
}
