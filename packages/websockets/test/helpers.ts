// Test helpers: servers closed after each test, bounded waits, raw-socket handshakes and frames, and
// the unhandled-rejection check every file runs.
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { WebSocket as WsSocket } from "ws";
import { type ListenOptions, listen, type SessionHandler, type WebSocketServer } from "../src/index.js";

/** Fails the file when a promise rejection went unhandled while its tests ran. */
export function checkUnhandledRejections(): void {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    seen.push(reason);
  };
  beforeAll(() => {
    process.on("unhandledRejection", onUnhandled);
  });
  afterAll(async () => {
    // Rejections are reported after a macrotask turn.
    await new Promise((r) => setImmediate(r));
    process.off("unhandledRejection", onUnhandled);
    expect(seen.map(String)).toEqual([]);
  });
}

/**
 * Everything a test opened, closed in `afterEach`: WebSocket servers (`listen` on 127.0.0.1:0) and any
 * other cleanup registered with `defer`.
 */
export class Resources {
  readonly #cleanups: (() => unknown)[] = [];

  constructor() {
    afterEach(() => this.closeAll());
  }

  /** `listen(handler)` on 127.0.0.1, port 0, force-closed after the test. */
  async listen(handler: SessionHandler, options: ListenOptions = {}): Promise<WebSocketServer> {
    const server = await listen(handler, { host: "127.0.0.1", port: 0, ...options });
    this.defer(() => server.forceClose());
    return server;
  }

  /** A raw `ws` client (the reference peer), connected, terminated after the test. */
  async rawClient(url: string, options: ConstructorParameters<typeof WsSocket>[2] = {}): Promise<WsSocket> {
    const ws = new WsSocket(url, options);
    ws.on("error", () => {});
    this.defer(() => ws.terminate());
    await within(
      new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      }),
      3_000,
      "a raw ws client to connect",
    );
    return ws;
  }

  /**
   * Listens with `server` on 127.0.0.1, port 0. After the test it destroys what `live` holds by then
   * (the server's sockets or sessions) and closes the server. Returns the port.
   */
  async listenRaw(server: net.Server, live: Iterable<{ destroy(): void }>): Promise<number> {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    this.defer(
      () =>
        new Promise<void>((resolve) => {
          for (const s of live) s.destroy();
          server.close(() => resolve());
        }),
    );
    return (server.address() as net.AddressInfo).port;
  }

  /** Runs `f` after the test (last registered runs first). */
  defer(f: () => unknown): void {
    this.#cleanups.push(f);
  }

  async closeAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const f of this.#cleanups.splice(0).reverse()) {
      try {
        await within(f(), 10_000, "a cleanup");
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** `promise`, or a rejection naming `what` once `ms` pass. */
/** Resolves with [code, reason] when a raw ws socket closes. */
export function rawClosed(ws: WsSocket): Promise<[number, string]> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve([code, reason.toString()])));
}

export function within<T>(promise: T | Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

/** Polls `predicate` until it holds; rejects after `ms`. */
export async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A promise with its resolve/reject. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What a promise settled to, for asserting on errors without try/catch noise. */
export async function settle<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await p };
  } catch (error) {
    return { error };
  }
}

/** A port nothing listens on (bound then released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A fresh `Sec-WebSocket-Key`. */
export function wsKey(): string {
  return randomBytes(16).toString("base64");
}

/** A raw handshake request with the usual headers, overridable (a `null` value drops a header). */
export function handshakeRequest(
  port: number,
  overrides: Record<string, string | null> = {},
  method = "GET",
  target = "/",
): string {
  const headers: Record<string, string | null> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": wsKey(),
    ...overrides,
  };
  let text = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

/** What a raw exchange got back. */
export interface RawReply {
  text: string;
  status: number;
  closed: boolean;
}

/** Writes `data` on a fresh connection and reads until the server closes it or the head is in (101). */
export function rawExchange(
  port: number,
  data: string | Buffer,
  opts: { timeoutMs?: number; connect?: (port: number) => net.Socket } = {},
): Promise<RawReply> {
  const timeoutMs = opts.timeoutMs ?? 3_000;
  return new Promise((resolve, reject) => {
    const socket = opts.connect ? opts.connect(port) : net.connect(port, "127.0.0.1");
    let text = "";
    let settled = false;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : 0, closed });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      // A 101 keeps the connection open: the head is all there is to read.
      if (text.startsWith("HTTP/1.1 101") && text.includes("\r\n\r\n")) done(false);
    });
    socket.on("close", () => done(true));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") done(true);
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.once(opts.connect ? "secureConnect" : "connect", () => socket.write(data));
  });
}

/** One WebSocket frame. `mask` true masks it as a client must. */
export function frame(
  opcode: number,
  payload: Uint8Array | string,
  opts: { fin?: boolean; mask?: boolean; rsv1?: boolean; declaredLength?: number } = {},
): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
  const mask = opts.mask ?? true;
  const length = opts.declaredLength ?? data.length;
  const first = ((opts.fin ?? true) ? 0x80 : 0) | (opts.rsv1 ? 0x40 : 0) | opcode;
  let head: Buffer;
  if (length < 126) {
    head = Buffer.from([first, (mask ? 0x80 : 0) | length]);
  } else if (length < 65_536) {
    head = Buffer.alloc(4);
    head[0] = first;
    head[1] = (mask ? 0x80 : 0) | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!mask) return Buffer.concat([head, data]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = (data[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([head, key, masked]);
}

/** A frame read off the wire (server frames are unmasked). */
export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Parses whole frames from `buf`; returns them and the bytes left over. */
export function parseFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const b0 = buf[at] as number;
    const b1 = buf[at + 1] as number;
    let len = b1 & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      off = at + 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      off = at + 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const keyLen = masked ? 4 : 0;
    if (buf.length - off < keyLen + len) break;
    let payload = buf.subarray(off + keyLen, off + keyLen + len);
    if (masked) {
      const key = buf.subarray(off, off + 4);
      payload = Buffer.from(payload.map((x, i) => x ^ (key[i % 4] as number)));
    }
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
    at = off + keyLen + len;
  }
  return { frames, rest: buf.subarray(at) };
}

/** A raw connection that completed a valid handshake: write frames, read the server's frames. */
export class RawClient {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;
  readonly #changed = new Set<() => void>();

  private constructor(socket: net.Socket, rest: Buffer) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => this.#take(chunk));
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", () => {});
    this.#take(rest);
  }

  /** Connects and completes the handshake (throws unless the answer is 101). */
  static connect(port: number, headers: Record<string, string | null> = {}): Promise<RawClient> {
    return within(
      new Promise<RawClient>((resolve, reject) => {
        const socket = net.connect(port, "127.0.0.1");
        let head = Buffer.alloc(0);
        const onData = (chunk: Buffer): void => {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf("\r\n\r\n");
          if (end < 0) return;
          socket.off("data", onData);
          const text = head.subarray(0, end).toString("latin1");
          if (!text.startsWith("HTTP/1.1 101")) {
            socket.destroy();
            reject(new Error(`handshake refused: ${text}`));
            return;
          }
          resolve(new RawClient(socket, head.subarray(end + 4)));
        };
        socket.on("data", onData);
        socket.once("error", reject);
        socket.once("connect", () => socket.write(handshakeRequest(port, headers)));
      }),
      3_000,
      "a raw handshake",
    );
  }

  /** True once the server closed the TCP connection. */
  get ended(): boolean {
    return this.#ended;
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  #take(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    const { frames, rest } = parseFrames(this.#buf);
    this.#buf = rest;
    this.frames.push(...frames);
    if (frames.length > 0) this.#notify();
  }

  #notify(): void {
    for (const f of [...this.#changed]) f();
  }

  /** Resolves when `predicate` holds (checked on every frame and on close); rejects after `ms`. */
  until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    if (predicate()) return Promise.resolve();
    const d = deferred();
    const check = (): void => {
      if (predicate()) d.resolve();
    };
    this.#changed.add(check);
    return within(d.promise, ms, what).finally(() => this.#changed.delete(check));
  }

  /** The close code of the server's close frame; waits for it (1005 for an empty close frame). */
  async closeCode(ms = 3_000): Promise<number> {
    await this.until(() => this.frames.some((f) => f.opcode === 8), ms, "a close frame from the server");
    const close = this.frames.find((f) => f.opcode === 8) as Frame;
    return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
  }

  /** Waits for the server to drop the TCP connection. */
  closed(ms = 3_000): Promise<void> {
    return this.until(() => this.#ended, ms, "the server to close the connection");
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A tiny HTTP CONNECT proxy, closed by `res`; records the targets it was asked for. */
export async function connectProxy(res: Resources): Promise<{ url: string; targets: string[] }> {
  const targets: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("error", () => {});
    client.on("close", () => sockets.delete(client));
    let head = "";
    const onData = (chunk: Buffer): void => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const m = /^CONNECT (\S+):(\d+) HTTP\/1\.1/.exec(head);
      if (!m) {
        client.end("HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
      }
      targets.push(`${m[1]}:${m[2]}`);
      const upstream = net.connect(Number(m[2]), m[1] as string, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        const rest = Buffer.from(head.slice(end + 4), "latin1");
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      sockets.add(upstream);
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => {
        sockets.delete(upstream);
        client.destroy();
      });
    };
    client.on("data", onData);
  });
  return { url: `http://127.0.0.1:${await res.listenRaw(server, sockets)}`, targets };
}

/**
 * A raw TCP server that completes the WebSocket handshake by hand and then hands the socket to
 * `onOpen`, for sending our client frames no real server would. Closed by `res`.
 */
export async function handRolledServer(
  res: Resources,
  onOpen: (socket: net.Socket) => void,
): Promise<{ url: string; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    let head = "";
    const onData = (chunk: Buffer): void => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? "";
      const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      );
      socket.resume();
      onOpen(socket);
    };
    socket.on("data", onData);
  });
  return { url: `ws://127.0.0.1:${await res.listenRaw(server, sockets)}/`, sockets };
}
