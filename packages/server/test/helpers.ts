// Test helpers: raw-socket exchanges, a tiny node:http client without keep-alive, and server tracking
// so every test ends with no connection left open.
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { expect } from "vitest";
import type { Server } from "../src/index.js";

/** What a raw exchange got back. */
export interface RawReply {
  /** Everything received, as latin1 text. */
  text: string;
  /** True when the server closed the connection; false when the wait timed out. */
  closed: boolean;
  /** Milliseconds from connect to close (or timeout). */
  elapsed: number;
}

/**
 * Connects to `port`, writes `data` (each array item a separate write), and collects the reply until
 * the server closes the connection, `until` matches what arrived, or `timeoutMs` passes. The socket
 * is always destroyed before returning.
 */
export function raw(
  port: number,
  data: string | Buffer | (string | Buffer)[],
  opts: { timeoutMs?: number; until?: (text: string) => boolean; host?: string } = {},
): Promise<RawReply> {
  const timeoutMs = opts.timeoutMs ?? 3_000;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(port, opts.host ?? "127.0.0.1");
    let text = "";
    let settled = false;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, elapsed: performance.now() - started });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (opts.until?.(text)) done(false);
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
    socket.on("connect", () => {
      for (const part of Array.isArray(data) ? data : [data]) socket.write(part);
    });
  });
}

/** The status codes of every response head in a raw reply, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}

/** The body of the single response in `text` (after the head). */
export function bodyOf(text: string): string {
  const i = text.indexOf("\r\n\r\n");
  return i < 0 ? "" : text.slice(i + 4);
}

/** The head of the first final response in `text`, lower-cased. */
export function headOf(text: string): string {
  const i = text.indexOf("\r\n\r\n");
  return (i < 0 ? text : text.slice(0, i)).toLowerCase();
}

/** A reply from {@link get}. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: Buffer;
}

/** One request on a fresh connection (no keep-alive), the whole body read. */
export function get(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith("https:") ? https : http;
    const options: http.RequestOptions & { ca?: string } = {
      method: init.method ?? "GET",
      headers: init.headers,
      agent: false,
    };
    if (init.ca) options.ca = init.ca;
    const req = mod.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          trailers: res.trailers,
          body: Buffer.concat(chunks),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

/** Resolves once `cond()` holds; fails the test after `timeoutMs`. Checks after every macrotask. */
export async function waitFor(cond: () => boolean, timeoutMs = 3_000, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Servers started by a test; `closeAll` checks none kept a connection, then closes them. */
export class Servers {
  readonly #servers: Server[] = [];

  add<T extends Server>(server: T): T {
    this.#servers.push(server);
    return server;
  }

  async closeAll(): Promise<void> {
    const servers = this.#servers.splice(0);
    try {
      for (const s of servers) {
        if (!s.isOpen) continue;
        await waitFor(() => s.connections === 0, 3_000, `no open connections on ${s.address}`);
        expect(s.activeRequests).toBe(0);
      }
    } finally {
      await Promise.all(servers.map((s) => s.forceClose()));
    }
  }
}

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
