// The request pipeline of `request()` and the verb helpers: cancellation and the overall deadline,
// attempts (with the one silent retry of a stale keep-alive connection), the response, status
// exceptions and trace events.
import type { Writable } from "node:stream";
import { type HTTPError, Response, StatusError, TimeoutError } from "@hyperwire/core";
import { canceled } from "./dial.js";
import { type BodyMode, Exchange, type ResponseHead } from "./exchange.js";
import { isFailingStatus, type RequestOptions, STALE_RETRY_METHODS } from "./options.js";
import type { Prepared } from "./prepare.js";
import { emit } from "./trace.js";

/**
 * The cancellation of one call: the caller's signal, the context's signal and deadline, and
 * `requestTimeout`, folded into one signal. `null` when none of them is set (the common case), so
 * nothing is allocated for it.
 */
export class CallGuard {
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  readonly #cleanups: (() => void)[] = [];

  static for(prepared: Prepared, options: RequestOptions): CallGuard | null {
    const ctx = options.context;
    const timeout = prepared.timeouts.requestTimeout;
    const ctxLeft = ctx?.remaining();
    if (options.signal === undefined && ctx === undefined && timeout === 0) return null;
    const guard = new CallGuard();
    if (options.signal !== undefined) guard.#follow(options.signal);
    if (ctx !== undefined) guard.#follow(ctx.signal);
    const limit = ctxLeft === undefined ? timeout : timeout === 0 ? ctxLeft : Math.min(timeout, ctxLeft);
    if (limit > 0 || ctxLeft === 0) guard.#deadline(Math.max(limit, 0));
    return guard;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  #follow(signal: AbortSignal): void {
    if (signal.aborted) {
      this.#controller.abort(canceled(signal.reason));
      return;
    }
    const onAbort = (): void => this.#controller.abort(canceled(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    this.#cleanups.push(() => signal.removeEventListener("abort", onAbort));
  }

  #deadline(ms: number): void {
    const start = performance.now();
    this.#timer = setTimeout(() => {
      this.#controller.abort(new TimeoutError("request", ms, performance.now() - start));
    }, ms);
    this.#timer.unref();
  }

  /** Forwards an abort to the running exchange. */
  watch(exchange: Exchange): () => void {
    const signal = this.#controller.signal;
    const onAbort = (): void => exchange.fail(signal.reason as HTTPError);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    return () => signal.removeEventListener("abort", onAbort);
  }

  /** Stops the deadline and detaches from the caller's signals. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const f of this.#cleanups) f();
  }
}

/** Starts one attempt: a connection (idle or new), then the exchange on it. */
export async function startAttempt(
  p: Prepared,
  guard: CallGuard | null,
  mode: BodyMode,
  sink: Writable | undefined,
  fresh: boolean,
  onHead: ((head: ResponseHead) => void) | undefined,
): Promise<{ exchange: Exchange; unwatch: (() => void) | undefined }> {
  const transport = p.client.transport;
  const how = {
    connectTimeout: p.timeouts.connectTimeout,
    signal: guard?.signal,
    fresh: fresh || p.expectContinue,
  };
  let acquired = transport.acquire(p.origin, how);
  let conn = acquired instanceof Promise ? await acquired : acquired;
  while (!conn.alive || conn.socket.destroyed) {
    // Handed over by a release whose socket the engine closed right after (an HTTP/1.0 or
    // `Connection: close, ...` response), or dialed as the transport closed: give it back, take another.
    transport.release(conn, false);
    acquired = transport.acquire(p.origin, { ...how, fresh: true });
    conn = acquired instanceof Promise ? await acquired : acquired;
  }
  const exchange = new Exchange(transport, conn, p.timeouts, mode, sink, onHead);
  const unwatch = guard?.watch(exchange);
  const req = { method: p.method, path: p.path, headers: p.flatHeaders, body: p.body };
  if (p.expectContinue) exchange.startExpectContinue(req, p.authority);
  else exchange.start(req);
  return { exchange, unwatch };
}

/** True when a failed attempt may be repeated on a fresh connection, once. */
export function mayRetryStale(p: Prepared, exchange: Exchange | undefined, guard: CallGuard | null): boolean {
  return (
    exchange?.stale === true &&
    STALE_RETRY_METHODS.has(p.method) &&
    (p.body === null || p.body instanceof Uint8Array) &&
    !(guard?.signal.aborted ?? false)
  );
}

/** The client-side `Response` of a head: url, request and version filled in. */
export function responseOf(p: Prepared, head: ResponseHead, body: Uint8Array): Response<Uint8Array> {
  const res = new Response<Uint8Array>(head.status, { headers: head.headers, reason: head.reason, body });
  res.url = p.url;
  res.request = p.request;
  return res;
}

/** Runs a prepared request to its buffered (or streamed-out) response. */
export async function send(
  p: Prepared,
  options: RequestOptions,
  mode: BodyMode,
  sink: Writable | undefined,
): Promise<Response<Uint8Array>> {
  const guard = CallGuard.for(p, options);
  const tracer = p.tracer;
  let response: Response<Uint8Array> | null = null;
  let error: unknown = null;
  try {
    for (let attempt = 1; ; attempt++) {
      let exchange: Exchange | undefined;
      let unwatch: (() => void) | undefined;
      let traced: Response<Uint8Array> | undefined;
      try {
        if (tracer !== null) {
          emit(tracer, {
            type: "request",
            request: p.request,
            url: p.url,
            attempt,
            redirectCount: 0,
            protocol: "h1",
          });
        }
        const onHead =
          tracer === null
            ? undefined
            : (head: ResponseHead) => {
                traced = responseOf(p, head, new Uint8Array(0));
                emit(tracer, {
                  type: "responseHead",
                  response: traced,
                  url: p.url,
                  attempt,
                  redirectCount: 0,
                });
              };
        ({ exchange, unwatch } = await startAttempt(p, guard, mode, sink, attempt > 1, onHead));
        const body = await exchange.done();
        const head = exchange.head!;
        if (traced !== undefined) {
          traced.body = body;
          response = traced;
        } else response = responseOf(p, head, body);
        if (exchange.trailers !== undefined) response.trailers = exchange.trailers;
        break;
      } catch (e) {
        if (attempt === 1 && mayRetryStale(p, exchange, guard)) continue;
        throw e;
      } finally {
        unwatch?.();
      }
    }
    if (p.statusException && isFailingStatus(response.status)) {
      throw new StatusError(response, { method: p.method, url: p.url });
    }
    return response;
  } catch (e) {
    error = e;
    throw e;
  } finally {
    guard?.dispose();
    if (tracer !== null) emit(tracer, { type: "done", response, error, url: p.url });
  }
}
