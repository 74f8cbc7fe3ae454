// Middleware: functions that take a request handler and return one that wraps it. This file has the
// type, composition, handlerTimeout, and the small helpers the other middleware-*.ts files share.
import {
  ArgumentError,
  CanceledError,
  fromWebResponse,
  type Request,
  Response,
  validateHeader,
} from "@hyperwire/core";
import type { HandlerResult, RequestHandler } from "./handler.js";
import { reportHandlerError } from "./io.js";
import type { StreamHandler } from "./listen.js";

/**
 * A middleware wraps a request handler in another one: it may change the request, answer by itself,
 * or change the response the inner handler gave.
 *
 * ```ts
 * const poweredBy: Middleware = (next) => async (req) => {
 *   const res = await next(req);
 *   if (res instanceof Response) res.headers.set("X-Powered-By", "hyperwire");
 *   return res;
 * };
 * ```
 */
export type Middleware<H extends RequestHandler | StreamHandler = RequestHandler> = (handler: H) => H;

/**
 * One middleware made of several. The first listed is the outermost: it sees the request first and
 * the response last. With none, the handler is returned unchanged.
 *
 * ```ts
 * const app = compose(cors({ origins: "https://example.com" }), compression(), handlerTimeout(5_000));
 * await serve(app(handler), { port: 0 });
 * ```
 */
export function compose(...middlewares: Middleware[]): Middleware {
  for (let i = 0; i < middlewares.length; i++) {
    if (typeof middlewares[i] !== "function") {
      throw new ArgumentError(
        `compose: argument ${i + 1} is ${typeof middlewares[i]}, not a middleware function`,
      );
    }
  }
  return (handler) => {
    let h = handler;
    for (let i = middlewares.length - 1; i >= 0; i--) h = middlewares[i]!(h);
    return h;
  };
}

/**
 * The handler's answer as our `Response` (a WHATWG one converted), or `undefined` when it is not a
 * response at all; a middleware then passes it on unchanged and the server reports the handler.
 */
export function asResponse(result: unknown): Response | undefined {
  if (result instanceof Response) return result;
  if (result instanceof globalThis.Response) return fromWebResponse(result);
  return undefined;
}

/** Adds `token` to the response's `Vary` list unless it (or `*`) is already there. */
export function addVary(res: Response, token: string): void {
  const current = res.headers.getAll("vary");
  const wanted = token.toLowerCase();
  for (const value of current) {
    for (const part of value.split(",")) {
      const name = part.trim().toLowerCase();
      if (name === "*" || name === wanted) return;
    }
  }
  if (current.length === 0) res.headers.set("Vary", token);
  else res.headers.append("Vary", token);
}

/** Options of {@link handlerTimeout}. */
export interface HandlerTimeoutOptions {
  /** The status of the response sent when the handler is too slow. Default `503`. */
  status?: number;
  /** Its body. Default `"handler timed out"`. */
  body?: string | Uint8Array;
  /** Its `Content-Type`. Default `"text/plain; charset=utf-8"`. */
  contentType?: string;
}

/** Defaults of {@link HandlerTimeoutOptions}. */
export const HANDLER_TIMEOUT_DEFAULTS: Readonly<Required<HandlerTimeoutOptions>> = Object.freeze({
  status: 503,
  body: "handler timed out",
  contentType: "text/plain; charset=utf-8",
});

/** The message the request's context is cancelled with when the handler runs out of time. */
const TIMED_OUT = "handler timed out";

/** Drops the result of a handler that answered after its timeout, freeing a streamed body. */
function dropLate(result: unknown): void {
  const res = result instanceof Response ? result : undefined;
  if (res === undefined || res.bodyText !== undefined) return;
  const body = res.body;
  if (body instanceof Uint8Array) return;
  try {
    const it = body[Symbol.asyncIterator]();
    void Promise.resolve(it.return?.()).catch(reportHandlerError);
  } catch (err) {
    reportHandlerError(err);
  }
}

/** A failure after the timeout reaches nobody; cancellation is the expected one and stays quiet. */
function reportLate(err: unknown): void {
  if (err instanceof CanceledError) return;
  if (err instanceof Error && err.name === "AbortError") return;
  reportHandlerError(err);
}

/**
 * Middleware that answers for the handler when it has not answered within `ms` milliseconds: the
 * request's context is cancelled (`req.signal` aborts with `CanceledError("handler timed out")`) and
 * the client gets `status` (503) with `body`. The handler is not stopped; it should watch
 * `req.signal`. What it returns later is dropped (a streamed body is closed), and a later failure is
 * reported as a process warning, never as an unhandled rejection. Errors before the timeout propagate
 * (the server answers 500). The request's deadline is set to the sooner of `ms` and any deadline it
 * already had, so `req.context.remaining()` tells the handler how long it has.
 *
 * `ms` must be a positive number and `status` an integer from 200 to 999 (`ArgumentError`).
 *
 * ```ts
 * const slowSafe = handlerTimeout(2_000)(async (req) => {
 *   const data = await fetch("https://upstream.example/", { signal: req.signal });
 *   return new Response(200, { body: await data.text() });
 * });
 * ```
 */
export function handlerTimeout(ms: number, options: HandlerTimeoutOptions = {}): Middleware {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) {
    throw new ArgumentError(`handlerTimeout needs a positive number of milliseconds, got ${ms}`);
  }
  const status = options.status ?? HANDLER_TIMEOUT_DEFAULTS.status;
  if (!Number.isInteger(status) || status < 200 || status > 999) {
    throw new ArgumentError(`handlerTimeout status must be an integer from 200 to 999, got ${status}`);
  }
  const body = options.body ?? HANDLER_TIMEOUT_DEFAULTS.body;
  if (typeof body !== "string" && !(body instanceof Uint8Array)) {
    throw new ArgumentError("handlerTimeout body must be a string or a Uint8Array");
  }
  let contentType: string;
  try {
    contentType = validateHeader("Content-Type", options.contentType ?? HANDLER_TIMEOUT_DEFAULTS.contentType);
  } catch (err) {
    throw new ArgumentError(`handlerTimeout contentType is not a valid header value`, { cause: err });
  }
  return (handler) => (req) => runWithTimeout(handler, req, ms, status, body, contentType);
}

function runWithTimeout(
  handler: RequestHandler,
  req: Request,
  ms: number,
  status: number,
  body: string | Uint8Array,
  contentType: string,
): Promise<HandlerResult> {
  const ctx = req.context;
  const left = ctx.remaining();
  if (left === undefined || left > ms) ctx.setDeadline(ms);
  return new Promise<HandlerResult>((resolve, reject) => {
    let settled = false;
    const onTimeout = (): void => {
      settled = true;
      ctx.cancel(TIMED_OUT);
      // A Uint8Array body is shared by every timed-out response; the server only reads it.
      resolve(new Response(status, { headers: [["Content-Type", contentType]], body }));
    };
    const timer = setTimeout(onTimeout, ms);
    timer.unref();
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = handler(req);
    } catch (err) {
      clearTimeout(timer);
      reject(err);
      return;
    }
    Promise.resolve(result).then(
      (value) => {
        if (settled) {
          dropLate(value);
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) {
          reportLate(err);
          return;
        }
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
