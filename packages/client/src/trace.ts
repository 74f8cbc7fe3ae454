// Client events: the `trace` callback, `verbose` lines and node:diagnostics_channel, fed from one place.
import diagnostics from "node:diagnostics_channel";
import { ArgumentError, type Request, type Response } from "@hyperwire/core";

/** The wire protocol an attempt used. */
export type WireProtocol = "h1" | "h2";

/** An attempt is about to be sent. */
export interface RequestEvent {
  type: "request";
  request: Request;
  url: string;
  /** 1-based. */
  attempt: number;
  redirectCount: number;
  protocol: WireProtocol;
}

/** The response head of an attempt arrived (the body may still be on its way). */
export interface ResponseHeadEvent {
  type: "responseHead";
  response: Response<Uint8Array>;
  url: string;
  attempt: number;
  redirectCount: number;
}

/** The request finished, with a response or an error. Always emitted, once per `request()` call. */
export interface DoneEvent {
  type: "done";
  response: Response<Uint8Array> | null;
  error: unknown;
  url: string;
}

/** An attempt failed (an error or a retryable status) and another follows after `delayMs`. */
export interface RetryEvent {
  type: "retry";
  request: Request;
  url: string;
  /** The attempt that failed, 1-based. */
  attempt: number;
  nextAttempt: number;
  redirectCount: number;
  /** The wait before the next attempt, in ms. */
  delayMs: number;
  /** Why: `"status 503"`, or the error's class and message. */
  reason: string;
  /** The failed attempt's response, or `null` when it failed with an error. */
  response: Response<Uint8Array> | null;
  error: unknown;
}

/** A redirect is followed. `redirectCount` counts it (1 for the first). */
export interface RedirectEvent {
  type: "redirect";
  request: Request;
  response: Response<Uint8Array>;
  /** The URL that answered with the 3xx (same as `fromUrl`). */
  url: string;
  /** The attempt of that hop that got the 3xx. */
  attempt: number;
  fromUrl: string;
  toUrl: string;
  redirectCount: number;
}

/** Every event a client emits. */
export type ClientEvent = RequestEvent | ResponseHeadEvent | RetryEvent | RedirectEvent | DoneEvent;

/** `0`/`false`: silent; `1`/`true`: one line per event; `2`: also the request and response heads. */
export type Verbosity = 0 | 1 | 2 | boolean;

const channels = {
  request: diagnostics.channel("hyperwire:client:request"),
  responseHead: diagnostics.channel("hyperwire:client:responseHead"),
  retry: diagnostics.channel("hyperwire:client:retry"),
  redirect: diagnostics.channel("hyperwire:client:redirect"),
  done: diagnostics.channel("hyperwire:client:done"),
} as const;

/** Where events of one call go. `null` when nobody listens, so the hot path skips building events. */
export interface Tracer {
  readonly level: 0 | 1 | 2;
  readonly trace: ((event: ClientEvent) => void) | undefined;
}

/** Validates `verbose` and builds the tracer of one call, or `null` when there is nothing to tell. */
export function tracerFor(
  verbose: Verbosity | undefined,
  trace: ((e: ClientEvent) => void) | undefined,
): Tracer | null {
  const level = verbosity(verbose);
  if (trace !== undefined && typeof trace !== "function") throw new ArgumentError("trace must be a function");
  if (
    level === 0 &&
    trace === undefined &&
    !channels.request.hasSubscribers &&
    !channels.responseHead.hasSubscribers &&
    !channels.retry.hasSubscribers &&
    !channels.redirect.hasSubscribers &&
    !channels.done.hasSubscribers
  ) {
    return null;
  }
  return { level, trace };
}

function verbosity(v: Verbosity | undefined): 0 | 1 | 2 {
  if (v === undefined || v === false || v === 0) return 0;
  if (v === true || v === 1) return 1;
  if (v === 2) return 2;
  throw new ArgumentError(`verbose must be 0, 1, 2 or a boolean, got ${String(v)}`);
}

/** Sends one event to the verbose log, then the `trace` callback, then its diagnostics channel. */
export function emit(tracer: Tracer, event: ClientEvent): void {
  if (tracer.level > 0) process.stderr.write(verboseLines(event, tracer.level));
  if (tracer.trace !== undefined) {
    try {
      tracer.trace(event);
    } catch (e) {
      // An observer must not change the outcome of the request it observes.
      process.emitWarning(
        `the trace callback threw on a ${event.type} event: ${(e as Error)?.message ?? String(e)}`,
        {
          code: "HW_TRACE_CALLBACK",
        },
      );
    }
  }
  const channel = channels[event.type];
  if (channel.hasSubscribers) channel.publish(event);
}

function verboseLines(event: ClientEvent, level: 0 | 1 | 2): string {
  switch (event.type) {
    case "request": {
      const r = event.request;
      let s = `[http] request attempt ${event.attempt} ${r.method} ${event.url} (${event.protocol})\n`;
      if (level === 2) for (const [k, v] of r.headers) s += `[http]   > ${k}: ${v}\n`;
      return s;
    }
    case "responseHead": {
      const r = event.response;
      let s = `[http] response attempt ${event.attempt} ${r.status} ${r.reason} ${event.url}\n`;
      if (level === 2) for (const [k, v] of r.headers) s += `[http]   < ${k}: ${v}\n`;
      return s;
    }
    case "retry":
      return `[http] retry attempt ${event.attempt} → ${event.nextAttempt} ${event.request.method} ${event.url} in ${Math.round(event.delayMs)} ms (${event.reason})\n`;
    case "redirect":
      return `[http] redirect ${event.redirectCount} ${event.response.status} ${event.fromUrl} → ${event.toUrl}\n`;
    case "done":
      return event.error
        ? `[http] done ${event.url} error ${(event.error as Error).name}: ${(event.error as Error).message}\n`
        : `[http] done ${event.url} ${event.response?.status} (${event.response?.body.byteLength ?? 0} bytes)\n`;
  }
}
