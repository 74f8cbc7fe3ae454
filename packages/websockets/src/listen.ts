// The server side: a WebSocket-only listener (HTTP.jl's `WebSockets.listen!`), the handshake checks
// (method, headers, version, key, origin) with their 400/403 answers, sessions that close with the
// handler's outcome, and forceClose/close/wait.
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import net from "node:net";
import type tls from "node:tls";
import { AddressInUseError, ArgumentError, ConnectError, ProtocolError, Request } from "@hyperwire/core";
import { connectProtocol } from "@hyperwire/server";
import { WebSocketServer as WsServer } from "ws";
import { fragmentLimit, type SessionOptions, WebSocket } from "./websocket.js";

/** Decides whether a browser page from `origin` may connect (`origin` is `null` without the header). */
export type OriginCheck = (req: IncomingMessage, origin: string | null) => boolean;

/** What the server side of a handshake accepts. Shared by {@link listen} and `upgrade`. */
export interface AcceptOptions extends SessionOptions {
  /** Subprotocols the server speaks; the first one of these the client offered is chosen. */
  subprotocols?: readonly string[];
  /** Who may connect. Default: no Origin header, or one whose scheme, host and port are the server's. */
  checkOrigin?: OriginCheck;
  /** Largest message accepted (larger: closed with 1009). Default 16 MiB. */
  maxFrameSize?: number;
  /** Accept permessage-deflate when the client offers it. Default false. */
  compress?: boolean;
}

/** Options of {@link listen}. */
export interface ListenOptions extends AcceptOptions {
  /** Default `"127.0.0.1"`. */
  host?: string;
  /** Default 8080; `0` picks a free port. */
  port?: number;
  /** TLS key/cert (`wss:`). */
  tls?: tls.SecureContextOptions & tls.TlsOptions;
  /** Try the next ports when the asked one is busy. Default false. */
  listenAny?: boolean;
}

/** The defaults of {@link ListenOptions}, in one place. */
export const LISTEN_DEFAULTS = Object.freeze({
  host: "127.0.0.1",
  port: 8080,
  maxFrameSize: 16 * 1024 * 1024,
});

/** A session handler: gets the connection; the close code reflects how it ended (1000, or 1011 if it threw). */
export type SessionHandler = (ws: WebSocket) => unknown;

/**
 * Checks a client handshake; returns the status and text of the refusal, or `null` when acceptable.
 */
export function refusal(
  req: IncomingMessage,
  secure: boolean,
  checkOrigin: OriginCheck | undefined,
): [number, string] | null {
  if (req.method === "CONNECT") {
    // HTTP/2 (RFC 8441): `:protocol: websocket` instead of Upgrade/Connection, and no key (the
    // stream replaces what Sec-WebSocket-Key/Accept guarded).
    const protocol = req.headers[":protocol"];
    if (
      typeof protocol !== "string" ||
      protocol.toLowerCase() !== "websocket" ||
      req.headers["sec-websocket-version"] !== "13"
    ) {
      return [400, "websocket upgrade required"];
    }
  } else {
    if (req.method !== "GET" || !isUpgradeRequest(req) || req.headers["sec-websocket-version"] !== "13") {
      return [400, "websocket upgrade required"];
    }
    const key = req.headers["sec-websocket-key"];
    if (key === undefined) return [400, "missing websocket key"];
    if (!/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) return [400, "invalid websocket key"];
  }
  const origin = req.headers.origin ?? null;
  const allowed = checkOrigin !== undefined ? checkOrigin(req, origin) : sameOrigin(req, origin, secure);
  if (typeof allowed !== "boolean") throw new ArgumentError("checkOrigin must return a boolean");
  if (!allowed) return [403, "websocket origin rejected"];
  return null;
}

/**
 * True when a request asks for a WebSocket: over HTTP/1.1 `Upgrade: websocket` with
 * `Connection: upgrade`; over HTTP/2 an extended CONNECT (RFC 8441) with `:protocol: websocket` and
 * `Sec-WebSocket-Version: 13`. Takes a server `Request`, or node's header record (`IncomingMessage`).
 *
 * ```ts
 * serve((req) => (isUpgrade(req) ? upgrade(req, echo) : new Response(200, { body: "hello" })));
 * ```
 */
export function isUpgradeRequest(
  req: Request | { headers: Record<string, string | string[] | undefined> },
): boolean {
  if (req instanceof Request) {
    const headers = req.headers;
    if (req.method === "CONNECT") {
      return (
        connectProtocol(req)?.toLowerCase() === "websocket" && headers.get("sec-websocket-version") === "13"
      );
    }
    return upgradeTokens(headers.get("upgrade") ?? undefined, headers.getAll("connection").join(","));
  }
  return upgradeTokens(req.headers.upgrade, req.headers.connection);
}

function upgradeTokens(upgrade: unknown, connection: unknown): boolean {
  return (
    typeof upgrade === "string" &&
    upgrade.toLowerCase() === "websocket" &&
    typeof connection === "string" &&
    connection
      .toLowerCase()
      .split(",")
      .some((t) => t.trim() === "upgrade")
  );
}

function sameOrigin(req: IncomingMessage, origin: string | null, secure: boolean): boolean {
  if (origin === null) return true;
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return false;
  }
  const scheme = secure ? ["https:", "wss:"] : ["http:", "ws:"];
  if (!scheme.includes(o.protocol)) return false;
  const host = req.headers.host;
  if (host === undefined) return false;
  let h: URL;
  try {
    h = new URL(`${secure ? "https" : "http"}://${host}`);
  } catch {
    return false;
  }
  const port = (u: URL) => u.port || (u.protocol === "https:" || u.protocol === "wss:" ? "443" : "80");
  return o.hostname.toLowerCase() === h.hostname.toLowerCase() && port(o) === port(h);
}

/** Writes a plain refusal on a socket that asked to upgrade, then closes it. */
export function refuse(socket: net.Socket, status: number, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** ws's server side, configured from our options (no HTTP server of its own). */
export function wsServerFor(options: AcceptOptions): WsServer {
  const offered = options.subprotocols ?? [];
  return new WsServer({
    noServer: true,
    maxPayload: options.maxFrameSize ?? LISTEN_DEFAULTS.maxFrameSize,
    maxFragments: fragmentLimit(options.maxFragmentation),
    perMessageDeflate: options.compress === true,
    clientTracking: false,
    handleProtocols: (protocols) => {
      for (const p of offered) if (protocols.has(p)) return p;
      return false;
    },
  });
}

/**
 * How the sessions of one server end, after their handler returned or threw: two functions called
 * with the session's WebSocket as `this` (see {@link runSession}).
 */
export type SessionEnds = readonly [
  returned: (this: WebSocket) => Promise<void>,
  threw: (this: WebSocket) => Promise<void>,
];

/** The {@link SessionEnds} of sessions that call `onEnd(ws)` once closed (made once per server). */
export function sessionEnds(onEnd?: (ws: WebSocket) => void): SessionEnds {
  return [
    function (this: WebSocket) {
      return endSession(this, true, onEnd);
    },
    function (this: WebSocket) {
      return endSession(this, false, onEnd);
    },
  ];
}

/** The ends of sessions that nothing else waits for (`upgrade`'s). */
const PLAIN_ENDS: SessionEnds = sessionEnds();

/**
 * Runs one session: the handler, then the close that says how it went (1000, or 1011 when the
 * handler threw), then the `onEnd` of `ends`. Never rejects. (Promise callbacks rather than an async
 * function: a suspended async function holds a generator and its registers for the whole session.
 * The callbacks are the server's two functions bound to the connection, 48 bytes each, rather than
 * two closures over it and their context.)
 */
export function runSession(
  ws: WebSocket,
  handler: SessionHandler,
  ends: SessionEnds = PLAIN_ENDS,
): Promise<void> {
  let result: unknown;
  try {
    result = handler(ws);
  } catch {
    return ends[1].call(ws);
  }
  return Promise.resolve(result).then(ends[0].bind(ws), ends[1].bind(ws));
}

async function endSession(ws: WebSocket, ok: boolean, onEnd: ((ws: WebSocket) => void) | undefined) {
  if (!ws.isClosed) {
    if (ok) await ws.close(1000).catch(() => {});
    else await ws.close(1011, "unexpected server websocket error").catch(() => {});
  }
  onEnd?.(ws);
}

/** A connection's server, so that one 'close' listener serves every connection. */
const kTracker = Symbol("hyperwire.websocket-server.sockets");
type TrackedSocket = net.Socket & { [kTracker]: Set<net.Socket> };

function untrack(this: TrackedSocket): void {
  this[kTracker].delete(this);
}

/**
 * A WebSocket server. `serverAddr()` gives `host:port` of the real bound address; `forceClose()`
 * sends 1001 to every session and drops every socket; `close()` is `forceClose()` and `wait()`.
 */
export class WebSocketServer {
  readonly #http: http.Server;
  /** Sessions whose handler is still running. */
  readonly #sessions = new Set<WebSocket>();
  readonly #sockets = new Set<net.Socket>();
  readonly #secure: boolean;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The listener and every socket are closed: {@link wait} resolves with the last session. */
  #shutDownDone = false;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;
  /** How a session ends (one pair of functions for every session): it leaves #sessions. */
  readonly #sessionEnds = sessionEnds((ws) => {
    this.#sessions.delete(ws);
    if (this.#shutDownDone && this.#sessions.size === 0) this.#resolveDone();
  });

  /** @internal Made by {@link listen}. */
  constructor(httpServer: http.Server, secure: boolean) {
    this.#http = httpServer;
    this.#secure = secure;
    this.#done = new Promise<void>((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** The bound port. */
  get port(): number {
    return (this.#http.address() as net.AddressInfo).port;
  }

  /** `host:port` of the bound address, IPv6 in brackets. */
  get address(): string {
    const a = this.#http.address() as net.AddressInfo | null;
    if (a === null) throw new ProtocolError("the WebSocket server is not listening");
    return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** `ws://host:port` (or `wss:`). */
  get url(): string {
    return `${this.#secure ? "wss" : "ws"}://${this.address}`;
  }

  /** False once closing began. */
  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Sessions running now. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * @internal A socket in its handshake (node:http no longer tracks it after the upgrade event), until
   * it is refused and closes or becomes a session.
   */
  track(socket: net.Socket): void {
    this.#sockets.add(socket);
    (socket as TrackedSocket)[kTracker] = this.#sockets;
    socket.on("close", untrack);
  }

  /** @internal The socket became a session: the session closes it from now on. */
  untrack(socket: net.Socket): void {
    this.#sockets.delete(socket);
    socket.removeListener("close", untrack);
  }

  /** @internal */
  start(ws: WebSocket, handler: SessionHandler): void {
    if (this.#closed) {
      ws.terminate();
      return;
    }
    this.#sessions.add(ws);
    void runSession(ws, handler, this.#sessionEnds);
  }

  /**
   * Stops accepting, sends 1001 "server shutting down" to every session, then drops every socket.
   * Handlers still running afterwards are not waited for: that is {@link wait} (or {@link close}).
   */
  async forceClose(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = this.#shutDown();
    }
    await this.#closing;
  }

  async #shutDown(): Promise<void> {
    const listening = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    await Promise.all([...this.#sessions].map((ws) => closeQuickly(ws)));
    for (const socket of this.#sockets) socket.destroy();
    this.#http.closeAllConnections();
    await listening;
    this.#shutDownDone = true;
    if (this.#sessions.size === 0) this.#resolveDone();
  }

  /** `forceClose()` and `wait()`. */
  async close(): Promise<void> {
    await this.forceClose();
    await this.#done;
  }

  /** Resolves when the server closed and every session ended. */
  wait(): Promise<void> {
    return this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A 1001 close with a short wait: a shutting-down server does not wait 5 s per peer. */
async function closeQuickly(ws: WebSocket): Promise<void> {
  if (ws.isClosed) return;
  const timer = setTimeout(() => ws.terminate(), 1_000);
  timer.unref();
  await ws.close(1001, "server shutting down").catch(() => {});
  clearTimeout(timer);
}

/**
 * Starts a WebSocket server. Each connection runs `handler(ws)`; when it returns, the session is
 * closed with 1000 (1011 if it threw). Non-WebSocket requests get 400, a rejected Origin 403.
 *
 * ```ts
 * const server = await listen(async (ws) => {
 *   for await (const msg of ws) await ws.send(msg);
 * }, { host: "127.0.0.1", port: 0 });
 * ```
 */
export async function listen(handler: SessionHandler, options: ListenOptions = {}): Promise<WebSocketServer> {
  if (typeof handler !== "function") throw new ArgumentError("listen() takes a session handler function");
  const host = options.host ?? LISTEN_DEFAULTS.host;
  let port = options.port ?? LISTEN_DEFAULTS.port;
  const secure = options.tls !== undefined;
  const wss = wsServerFor(options);
  for (let tries = 0; ; tries++) {
    const httpServer = secure ? https.createServer(options.tls!) : http.createServer();
    const server = new WebSocketServer(httpServer, secure);
    httpServer.on("request", (_req, res) => {
      res.writeHead(400, { "Content-Type": "text/plain", Connection: "close" });
      res.end("websocket upgrade required\n");
    });
    httpServer.on("upgrade", (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
      socket.on("error", noop);
      server.track(socket);
      let refused: [number, string] | null;
      try {
        refused = refusal(req, secure, options.checkOrigin);
      } catch {
        refused = [500, "origin check failed"];
      }
      if (refused !== null) {
        refuse(socket, refused[0], refused[1]);
        return;
      }
      wss.handleUpgrade(req, socket, head, (raw) => {
        // ws listens for the socket's errors and close from here on.
        socket.removeListener("error", noop);
        server.untrack(socket);
        server.start(new WebSocket(raw, req.url ?? "/", options), handler);
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(port, host, () => {
          httpServer.removeListener("error", reject);
          resolve();
        });
      });
      return server;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" && options.listenAny && tries < 100 && port !== 0) {
        port++;
        continue;
      }
      const address = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
      if (code === "EADDRINUSE") throw new AddressInUseError(address, { cause: e });
      throw new ConnectError(address, {
        cause: e,
        message: `could not listen on ${address}: ${(e as Error).message}`,
      });
    }
  }
}

function noop(): void {}
