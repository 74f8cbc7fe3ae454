// Test helpers: real servers on 127.0.0.1 port 0 (hyperwire's own, node:http ones that count
// connections, raw TCP ones that write bytes by hand), bounded waits, and one place that closes
// every server and client a test made.
import http from "node:http";
import net from "node:net";
import type { Request as CoreRequest } from "@hyperwire/core";
import { Response } from "@hyperwire/core";
import { type Server, serve } from "@hyperwire/server";
import { Client, type ClientOptions } from "../src/index.js";

/** Resolves once `cond()` holds; rejects after `timeoutMs`. Polls every few ms (a bounded wait, not a sleep). */
export async function waitFor(cond: () => boolean, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Rejects when `p` does not settle within `ms` (so a hanging client fails the test instead of the run). */
export function within<T>(p: Promise<T>, ms: number, what = "promise"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** The settled error of `p` (fails when `p` resolves). */
export async function rejectionOf(p: Promise<unknown>, ms = 10_000): Promise<unknown> {
  try {
    await within(p, ms, "request");
  } catch (e) {
    return e;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

/** One connection of a {@link RawServer}: its socket and everything it received so far. */
export class RawConn {
  readonly socket: net.Socket;
  readonly index: number;
  /** Everything received, latin1. */
  received = "";
  closed = false;
  readonly #waiters = new Set<() => void>();

  constructor(socket: net.Socket, index: number) {
    this.socket = socket;
    this.index = index;
    socket.on("data", (chunk: Buffer) => {
      this.received += chunk.toString("latin1");
      this.#wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    // A client that resets is part of several tests; never let it crash the run.
    socket.on("error", () => {});
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves when what arrived satisfies `pred` (or rejects after `timeoutMs`, or when the socket closed first). */
  until(pred: (text: string) => boolean, timeoutMs = 5_000): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const check = (): void => {
        if (pred(this.received)) {
          cleanup();
          resolve(this.received);
        } else if (this.closed) {
          cleanup();
          reject(
            new Error(
              `connection closed before the expected bytes arrived: ${JSON.stringify(this.received)}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for bytes; got ${JSON.stringify(this.received.slice(0, 300))}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves with the `n`-th (1-based) complete request head on this connection. */
  head(n = 1, timeoutMs = 5_000): Promise<string> {
    return this.until((t) => t.split("\r\n\r\n").length > n, timeoutMs).then(
      (t) => t.split("\r\n\r\n")[n - 1]!,
    );
  }

  /**
   * Calls `fn` once the `n`-th request head arrived (for handlers that answer); a connection that
   * closes first is simply not answered.
   */
  onHead(n: number, fn: (head: string) => void): void {
    this.head(n, 60_000).then(fn, () => {});
  }

  /** Resolves once the peer closed the connection. */
  closedPromise(timeoutMs = 5_000): Promise<void> {
    return waitFor(() => this.closed, timeoutMs, `connection ${this.index} to close`);
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }
}

/**
 * A TCP server on 127.0.0.1, port 0, that hands each connection to `onConnection` to speak bytes by
 * hand. Counts connections ever accepted and the ones still open.
 */
export class RawServer {
  readonly server: net.Server;
  readonly conns: RawConn[] = [];

  private constructor(onConnection: (conn: RawConn) => void) {
    this.server = net.createServer((socket) => {
      const conn = new RawConn(socket, this.conns.length + 1);
      this.conns.push(conn);
      onConnection(conn);
    });
  }

  static async start(onConnection: (conn: RawConn) => void = () => {}): Promise<RawServer> {
    const s = new RawServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(0, "127.0.0.1", () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections ever accepted. */
  get accepted(): number {
    return this.conns.length;
  }

  /** Connections still open. */
  get open(): number {
    return this.conns.filter((c) => !c.closed).length;
  }

  /** The `n`-th connection (1-based), waiting for it. */
  async connection(n: number, timeoutMs = 5_000): Promise<RawConn> {
    await waitFor(() => this.conns.length >= n, timeoutMs, `connection ${n}`);
    return this.conns[n - 1]!;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A node:http server that counts connections: accepted, open, and the most open at once. */
export class CountingServer {
  readonly server: http.Server;
  accepted = 0;
  maxOpen = 0;
  readonly sockets = new Set<net.Socket>();
  /** Requests received, in order (`METHOD target`). */
  readonly requests: string[] = [];

  private constructor(handler: http.RequestListener) {
    this.server = http.createServer((req, res) => {
      this.requests.push(`${req.method} ${req.url}`);
      handler(req, res);
    });
    this.server.keepAliveTimeout = 60_000;
    this.server.on("connection", (socket: net.Socket) => {
      this.accepted++;
      this.sockets.add(socket);
      this.maxOpen = Math.max(this.maxOpen, this.sockets.size);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(
    handler: http.RequestListener = (_req, res) => {
      res.end("ok");
    },
  ): Promise<CountingServer> {
    const s = new CountingServer(handler);
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(0, "127.0.0.1", () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections open now. */
  get open(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** What {@link echo} replies: the request as the server saw it. */
export interface Echoed {
  method: string;
  target: string;
  headers: [string, string][];
  /** The body, base64. */
  body: string;
}

/** A handler that answers with the request as JSON. */
export function echo(req: CoreRequest): Response {
  const body = req.body instanceof Uint8Array ? Buffer.from(req.body) : Buffer.alloc(0);
  const echoed: Echoed = {
    method: req.method,
    target: req.target,
    headers: [...req.headers],
    body: body.toString("base64"),
  };
  return new Response(200, { headers: { "Content-Type": "application/json" }, body: JSON.stringify(echoed) });
}

/** Header values of an echoed request, by case-insensitive name. */
export function headerValues(e: Echoed, name: string): string[] {
  const lower = name.toLowerCase();
  return e.headers.filter(([k]) => k.toLowerCase() === lower).map(([, v]) => v);
}

/** The echoed body as bytes. */
export function bodyBytes(e: Echoed): Buffer {
  return Buffer.from(e.body, "base64");
}

/** Everything a test started; `closeAll()` in `afterEach` closes clients first, then servers. */
export class Resources {
  readonly #clients: Client[] = [];
  readonly #servers: { close(): Promise<void> }[] = [];

  client(options?: ClientOptions): Client {
    const c = new Client(options);
    this.#clients.push(c);
    return c;
  }

  /** Registers anything with `close()` (a Transport, a Client made elsewhere). */
  add<T extends { close(): Promise<void> }>(thing: T): T {
    this.#servers.push(thing);
    return thing;
  }

  async serve(handler: (req: CoreRequest) => Response | Promise<Response>): Promise<Server> {
    const s = await serve(handler, { host: "127.0.0.1", port: 0 });
    this.#servers.push({ close: () => s.forceClose() });
    return s;
  }

  async raw(onConnection?: (conn: RawConn) => void): Promise<RawServer> {
    return this.add(await RawServer.start(onConnection));
  }

  async counting(handler?: http.RequestListener): Promise<CountingServer> {
    return this.add(await CountingServer.start(handler));
  }

  async closeAll(): Promise<void> {
    const clients = this.#clients.splice(0);
    const servers = this.#servers.splice(0);
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.close()));
  }
}

/** A canned HTTP/1.1 response with a Content-Length body. */
export function reply(body = "ok", extra = ""): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

/** Counts complete request heads in raw bytes. */
export function requestCount(text: string): number {
  return (text.match(/ HTTP\/1\.1\r\n/g) ?? []).length;
}
