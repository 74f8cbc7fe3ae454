// Small I/O helpers shared by the request-handler and stream-handler paths.
import type { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { ClosedError, type Headers, TimeoutError } from "@hyperwire/core";
import type { AccessLogEntry } from "./access-log.js";
import { formatCombinedLog } from "./access-log.js";
import type { Conn } from "./http1.js";

/** What {@link waitDrain} waits on: a response (HTTP/1.1) or a stream (HTTP/2). */
export type DrainTarget = EventEmitter & { readonly socket?: { destroy(): void } | null };

function destroySocketOf(res: DrainTarget): void {
  res.socket?.destroy();
}

/**
 * Waits until `res` may take more bytes (`drain`). Rejects with `ClosedError` when the connection
 * closes first, and with `TimeoutError` (phase `writeIdle`) when `writeTimeout` (ms, `0` = none)
 * passes first, in which case `expire(res)` runs (by default the connection is destroyed; an HTTP/2
 * stream is reset instead).
 */
export function waitDrain(
  res: DrainTarget,
  writeTimeout: number,
  expire: (res: DrainTarget) => void = destroySocketOf,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      if (timer !== undefined) clearTimeout(timer);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(new ClosedError("the connection closed while the response was being written"));
    };
    res.on("drain", onDrain);
    res.on("close", onClose);
    if (writeTimeout > 0) {
      timer = setTimeout(() => {
        cleanup();
        expire(res);
        reject(new TimeoutError("writeIdle", writeTimeout, performance.now() - started));
      }, writeTimeout).unref();
    }
  });
}

/** Destroys the connection when a finished `res` has not flushed within `writeTimeout` ms. */
export function guardFlush(res: ServerResponse, writeTimeout: number): void {
  if (writeTimeout <= 0 || res.writableFinished) return;
  const socket = res.socket;
  const timer = setTimeout(() => socket?.destroy(), writeTimeout).unref();
  res.once("close", () => clearTimeout(timer));
  res.once("finish", () => clearTimeout(timer));
}

/** Trailer pairs for `res.addTrailers`. */
export function trailerPairs(trailers: Headers): [string, string][] {
  const flat = trailers.toFlat();
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** The `Trailer:` header value declaring `trailers`' names. */
export function trailerNames(trailers: Headers): string {
  const flat = trailers.toFlat();
  const names: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const n = flat[i]!;
    if (!names.some((x) => x.toLowerCase() === n.toLowerCase())) names.push(n);
  }
  return names.join(", ");
}

/** What {@link logAccess} reads of a request: node:http's `IncomingMessage`, or an HTTP/2 exchange. */
export interface AccessSource {
  readonly socket: { readonly remoteAddress?: string | undefined } | null;
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersion: string;
  readonly headers: { readonly referer?: string | undefined; readonly "user-agent"?: string | undefined };
}

/** Emits an access-log entry (or prints the combined-log line) for one finished request. */
export function logAccess(
  sink: true | ((entry: AccessLogEntry) => void),
  req: AccessSource,
  start: number,
  time: Date,
  status: number,
  bytes: number,
): void {
  const h = req.headers;
  const entry: AccessLogEntry = {
    remoteAddress: req.socket?.remoteAddress ?? "",
    time,
    method: req.method ?? "",
    target: req.url ?? "",
    version: req.httpVersion,
    status,
    bytes,
    referer: String(h.referer ?? ""),
    userAgent: String(h["user-agent"] ?? ""),
    durationMs: performance.now() - start,
  };
  if (sink === true) process.stdout.write(`${formatCombinedLog(entry)}\n`);
  else sink(entry);
}

/** Reports an error that cannot reach anyone else (a handler failed) as a process warning. */
export function reportHandlerError(err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  process.emitWarning(e, {
    type: "HyperwireHandlerError",
    code: "HW_HANDLER_ERROR",
  } as NodeJS.EmitWarningOptions);
}

/** Destroys the connection after a failure mid-response (never send a corrupt message). */
export function abandon(conn: Conn): void {
  conn.socket.destroy();
}
