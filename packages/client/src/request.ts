// The request pipeline of `request()` and the verb helpers: cancellation and the overall deadline,
// redirect hops × retried attempts (plus the one silent retry of a stale keep-alive connection),
// cookies per hop, the response and its decoding, status exceptions and trace events.
import type { Writable } from "node:stream";
import {
  ArgumentError,
  Headers,
  type HTTPError,
  Response,
  StatusError,
  TimeoutError,
  TooManyRedirectsError,
} from "@hyperwire/core";
import { type H2ClientSession, isUnprocessedStreamError } from "@hyperwire/h2";
import type { ExchangeRequest } from "./attempt.js";
import type { ClientDefaults } from "./client.js";
import type { CookieJar } from "./cookie-jar.js";
import { cookieHeader, jarFor, storeCookies } from "./cookies.js";
import {
  ACCEPT_ENCODING,
  codingOf,
  type DownloadProgress,
  decodeBuffered,
  ResponseSink,
} from "./decompress.js";
import { canceled } from "./dial.js";
import { type Attempt, type BodyMode, Exchange, type ResponseHead } from "./exchange.js";
import { H2Exchange } from "./h2-exchange.js";
import { isFailingStatus, type RequestOptions, STALE_RETRY_METHODS } from "./options.js";
import { type Prepared, prepareHop, USER_AGENT } from "./prepare.js";
import {
  allowedByCheck,
  crossOrigin,
  FOLLOWED_STATUSES,
  locationOf,
  nextHeaders,
  nextMethod,
  type RedirectPolicy,
  redirectPolicy,
} from "./redirect.js";
import {
  backoffSleep,
  RETRYABLE_STATUSES,
  type RetryPolicy,
  type RetryToken,
  recordRetryAttempts,
  retryCost,
  retryDelay,
  retryPolicy,
  shouldRetry,
} from "./retry.js";
import { emit, type WireProtocol } from "./trace.js";

const EMPTY = new Uint8Array(0);

/**
 * The cancellation of one call: the caller's signal, the context's signal and deadline, and
 * `requestTimeout`, folded into one signal. `null` when none of them is set (the common case), so
 * nothing is allocated for it.
 */
export class CallGuard {
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #deadlineAt: number | undefined;
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
    this.#deadlineAt = start + ms;
    this.#timer = setTimeout(() => {
      this.#controller.abort(new TimeoutError("request", ms, performance.now() - start));
    }, ms);
    this.#timer.unref();
  }

  /** Milliseconds left before the call's deadline, or `undefined` when it has none. */
  remaining(): number | undefined {
    return this.#deadlineAt === undefined ? undefined : Math.max(0, this.#deadlineAt - performance.now());
  }

  /** Forwards an abort to the running exchange. */
  watch(exchange: Attempt): () => void {
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

/** An attempt under way: its exchange, and how to stop forwarding the call's cancellation to it. */
export interface StartedAttempt {
  exchange: Attempt;
  unwatch: (() => void) | undefined;
}

/**
 * Starts one attempt: a connection (idle or new), then the exchange on it. Synchronous when an
 * HTTP/2 session to the origin is open already (the common case on a busy origin): no promise, no
 * extra turn.
 */
export function startAttempt(
  p: Prepared,
  guard: CallGuard | null,
  mode: BodyMode,
  sink: Writable | undefined,
  fresh: boolean,
  onHead: ((head: ResponseHead) => void) | undefined,
): StartedAttempt | Promise<StartedAttempt> {
  const transport = p.client.transport;
  if (p.wire === "h2" || (p.wire === "auto" && !transport.isH1Only(p.origin.key))) {
    const acquired = transport.acquireH2(
      p.origin,
      { connectTimeout: p.timeouts.connectTimeout, signal: guard?.signal, fresh },
      p.wire,
      p.http2Settings,
    );
    if (!(acquired instanceof Promise)) {
      return acquired !== null
        ? startH2(p, acquired, guard, mode, sink, onHead)
        : startH1(p, guard, mode, sink, fresh, onHead);
    }
    return startWhenConnected(acquired, p, guard, mode, sink, fresh, onHead);
  }
  return startH1(p, guard, mode, sink, fresh, onHead);
}

/**
 * The attempt once the HTTP/2 dial settled (a session, or `null`: the server chose HTTP/1.1). Apart
 * from `startAttempt`, whose variables a closure there would put in a heap context on every call.
 */
function startWhenConnected(
  acquired: Promise<H2ClientSession | null>,
  p: Prepared,
  guard: CallGuard | null,
  mode: BodyMode,
  sink: Writable | undefined,
  fresh: boolean,
  onHead: ((head: ResponseHead) => void) | undefined,
): Promise<StartedAttempt> {
  return acquired.then((session) =>
    session !== null
      ? startH2(p, session, guard, mode, sink, onHead)
      : startH1(p, guard, mode, sink, fresh, onHead),
  );
}

/** The HTTP/1.1 engine's request: flat headers, plus the wire-only ones. */
function exchangeRequest(p: Prepared): ExchangeRequest {
  const flat = p.headers.toFlat();
  const wireOnly = p.wireOnly;
  return {
    method: p.method,
    path: p.path,
    headers: wireOnly === undefined ? flat : [...flat, ...wireOnly],
    body: p.body,
  };
}

function startH2(
  p: Prepared,
  session: H2ClientSession,
  guard: CallGuard | null,
  mode: BodyMode,
  sink: Writable | undefined,
  onHead: ((head: ResponseHead) => void) | undefined,
): StartedAttempt {
  const exchange = new H2Exchange(session, p.timeouts, mode, sink, onHead);
  const unwatch = guard?.watch(exchange);
  exchange.start(p, p.authority, p.origin.secure ? "https" : "http", p.expectContinue);
  return { exchange, unwatch };
}

/** The HTTP/1.1 attempt (also when the server chose HTTP/1.1 by ALPN: its connection waits in the pool). */
async function startH1(
  p: Prepared,
  guard: CallGuard | null,
  mode: BodyMode,
  sink: Writable | undefined,
  fresh: boolean,
  onHead: ((head: ResponseHead) => void) | undefined,
): Promise<StartedAttempt> {
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
  const req = exchangeRequest(p);
  if (p.expectContinue) exchange.startExpectContinue(req, p.authority);
  else exchange.start(req);
  return { exchange, unwatch };
}

/**
 * The protocol the next attempt of `p` goes out with, for the `request` trace event: known unless
 * an https origin was never asked, in which case HTTP/2 is offered and `'h2'` is told (the
 * response's `version` says what was used).
 */
export function attemptProtocol(p: Prepared): WireProtocol {
  if (p.wire === "h1") return "h1";
  if (p.wire === "h2") return "h2";
  return p.client.transport.isH1Only(p.origin.key) ? "h1" : "h2";
}

/** Silent retries of an HTTP/2 stream the server did not process (GOAWAY, REFUSED_STREAM): at most 2. */
const MAX_UNPROCESSED_RETRIES = 2;

/**
 * True when a failed attempt may be repeated silently (`retried`: silent retries so far): once for a
 * reused HTTP/1.1 connection found closed (idempotent methods), up to twice for an HTTP/2 stream the
 * server did not process (any method). The body must be replayable.
 */
export function mayRetryStale(
  p: Prepared,
  exchange: Attempt | undefined,
  guard: CallGuard | null,
  error?: unknown,
  retried = 0,
): boolean {
  if (!(p.body === null || p.body instanceof Uint8Array) || (guard?.signal.aborted ?? false)) return false;
  // The server said it did not process the stream: safe for any method, on another session.
  if (isUnprocessedStreamError(error)) return retried < MAX_UNPROCESSED_RETRIES;
  return retried === 0 && exchange?.stale === true && STALE_RETRY_METHODS.has(p.method);
}

/** The `Response` of a completed attempt: its head and `body`, trailers, and cookies stored in `jar`. */
function attemptResponse(
  p: Prepared,
  exchange: Attempt,
  body: Uint8Array,
  jar: CookieJar | null,
): Response<Uint8Array> {
  const res = responseOf(p, exchange.head!, body);
  finishResponse(p, exchange, res, jar);
  return res;
}

/** What a completed attempt adds to its response: the trailers, and the cookies it set. */
function finishResponse(
  p: Prepared,
  exchange: Attempt,
  res: Response<Uint8Array>,
  jar: CookieJar | null,
): void {
  if (exchange.trailers !== undefined) res.trailers = exchange.trailers;
  if (jar !== null && res.headers.has("set-cookie")) storeCookies(jar, new URL(p.url), res.headers);
}

/** The client-side `Response` of a head: url, request and version filled in. */
export function responseOf(p: Prepared, head: ResponseHead, body: Uint8Array): Response<Uint8Array> {
  const res = new Response<Uint8Array>(head.status, {
    headers: head.headers,
    reason: head.reason,
    body,
    version: head.version,
  });
  res.url = p.url;
  res.request = p.request;
  return res;
}

/** The per-hop state `send()` hands to each attempt. */
interface HopRun {
  readonly hop: Prepared;
  readonly guard: CallGuard | null;
  readonly mode: BodyMode;
  readonly sink: Writable | undefined;
  readonly retry: RetryPolicy;
  readonly redirect: RedirectPolicy;
  readonly redirects: number;
  readonly jar: CookieJar | null;
  readonly progress: DownloadProgress | undefined;
  /** Wire attempts of this hop so far, as trace events number them (a stale-connection retry counts). */
  traced: number;
  /** The first attempt, made already (by `sendPlain`), to take as this hop's first; cleared when taken. */
  first: FirstAttempt | undefined;
}

/** What the attempts of one hop ended with. */
interface HopOutcome {
  readonly response: Response<Uint8Array>;
  /** The sink the final attempt's body went through, still to be settled. */
  readonly wrapper: ResponseSink | undefined;
  /** Retries this hop made. */
  readonly retries: number;
  /** The trace number of the attempt that produced `response`. */
  readonly attempt: number;
}

/**
 * Runs a prepared request to its buffered (or streamed-out) response: hops (redirects) × attempts
 * (retries), cookies per hop, decompression of the final body, status exceptions and trace events.
 */
export function send(
  p: Prepared,
  options: RequestOptions,
  mode: BodyMode,
  sink: Writable | undefined,
): Promise<Response<Uint8Array>> {
  if (mode === "buffer" && p.tracer === null && options.downloadProgress === undefined) {
    if (defaultPolicies(options, p.client.defaults) !== null) return sendPlain(p, options);
  }
  return sendHops(p, options, mode, sink, CallGuard.for(p, options), undefined);
}

/**
 * A buffered call with the client's policies and no tracer: its first attempt runs without the
 * general path's three awaited layers (hops, attempts, the stale-connection retry), which cost
 * about a tenth of a small request's CPU time on an open HTTP/2 session. Most calls end with it
 * (no redirect, no retry, nothing to decode); any other outcome (a failure, a status a rule may
 * retry or follow, an encoded body, a failing status) goes to {@link sendHops} as that path's first
 * attempt, so every rule is applied in one place.
 */
function sendPlain(p: Prepared, options: RequestOptions): Promise<Response<Uint8Array>> {
  const jar = jarFor(p.client, options);
  const guard = CallGuard.for(p, options);
  let started: StartedAttempt | Promise<StartedAttempt>;
  try {
    started = startAttempt(p, guard, "buffer", undefined, false, undefined);
  } catch (err) {
    return plainGoesOn(p, options, guard, undefined, undefined, err);
  }
  if (started instanceof Promise) return plainWhenStarted(started, p, options, jar, guard);
  return new PlainCall(p, options, jar, guard, started).promise;
}

/** {@link sendPlain} once a new connection is up (or the HTTP/1.1 pool handed one over). */
async function plainWhenStarted(
  started: Promise<StartedAttempt>,
  p: Prepared,
  options: RequestOptions,
  jar: CookieJar | null,
  guard: CallGuard | null,
): Promise<Response<Uint8Array>> {
  let attempt: StartedAttempt;
  try {
    attempt = await started;
  } catch (err) {
    return plainGoesOn(p, options, guard, undefined, undefined, err);
  }
  return new PlainCall(p, options, jar, guard, attempt).promise;
}

// The resolving functions of the promise being made (a shared executor, not a closure per call).
let newResolve: ((res: Response<Uint8Array> | Promise<Response<Uint8Array>>) => void) | undefined;
function captureResolve(resolve: (res: Response<Uint8Array> | Promise<Response<Uint8Array>>) => void): void {
  newResolve = resolve;
}

/**
 * The attempt of a plain call, told of its end by the exchange (`whenDone`): one object and the
 * caller's promise, instead of async frames and a promise per layer. Its promise never rejects by
 * itself: a failure is handed to the general path, whose promise it is resolved with.
 */
class PlainCall {
  readonly promise: Promise<Response<Uint8Array>>;
  readonly #resolve: (res: Response<Uint8Array> | Promise<Response<Uint8Array>>) => void;
  readonly #p: Prepared;
  readonly #options: RequestOptions;
  readonly #jar: CookieJar | null;
  readonly #guard: CallGuard | null;
  readonly #started: StartedAttempt;

  constructor(
    p: Prepared,
    options: RequestOptions,
    jar: CookieJar | null,
    guard: CallGuard | null,
    started: StartedAttempt,
  ) {
    this.promise = new Promise(captureResolve);
    this.#resolve = newResolve!;
    newResolve = undefined;
    this.#p = p;
    this.#options = options;
    this.#jar = jar;
    this.#guard = guard;
    this.#started = started;
    started.exchange.whenDone(this);
  }

  /** The exchange completed with `body` (called from a stream event: nothing may throw out of here). */
  resolve(body: Uint8Array): void {
    const { exchange, unwatch } = this.#started;
    unwatch?.();
    const p = this.#p;
    let res: Response<Uint8Array>;
    try {
      res = attemptResponse(p, exchange, body, this.#jar);
    } catch (err) {
      this.#handOver(undefined, err);
      return;
    }
    const status = res.status;
    // The client's policies have no retryIf: only a retryable status can be retried.
    if (
      RETRYABLE_STATUSES.has(status) ||
      FOLLOWED_STATUSES.has(status) ||
      (p.statusException && isFailingStatus(status)) ||
      (p.decompress && codingOf(status, p.method, res.headers) !== null)
    ) {
      this.#handOver(res, null);
      return;
    }
    this.#guard?.dispose();
    this.#resolve(res);
  }

  /** The exchange failed. */
  reject(err: unknown): void {
    this.#started.unwatch?.();
    this.#handOver(undefined, err);
  }

  #handOver(res: Response<Uint8Array> | undefined, err: unknown): void {
    this.#resolve(plainGoesOn(this.#p, this.#options, this.#guard, this.#started.exchange, res, err));
  }
}

/** A plain call whose first attempt (or its start) needs a rule: the general path takes it from there. */
function plainGoesOn(
  p: Prepared,
  options: RequestOptions,
  guard: CallGuard | null,
  exchange: Attempt | undefined,
  res: Response<Uint8Array> | undefined,
  err: unknown,
): Promise<Response<Uint8Array>> {
  return sendHops(p, options, "buffer", undefined, guard, { exchange, res, err });
}

/** The outcome of a first attempt made by {@link sendPlain}, for the general path to go on from. */
interface FirstAttempt {
  readonly exchange: Attempt | undefined;
  /** The response (its cookies stored, its trailers set), or `undefined` when the attempt failed. */
  readonly res: Response<Uint8Array> | undefined;
  readonly err: unknown;
}

/** The general path of {@link send}; `first`: the outcome of the first hop's first attempt, if made. */
async function sendHops(
  p: Prepared,
  options: RequestOptions,
  mode: BodyMode,
  sink: Writable | undefined,
  guard: CallGuard | null,
  first: FirstAttempt | undefined,
): Promise<Response<Uint8Array>> {
  const tracer = p.tracer;
  const defaults = p.client.defaults;
  let response: Response<Uint8Array> | null = null;
  let error: unknown = null;
  let retries = 0;
  let hop = p;
  try {
    const plain = defaultPolicies(options, defaults);
    const retry = plain?.retry ?? retryPolicy(options, defaults.retryBucket);
    const redirect =
      plain?.redirect ?? redirectPolicy(options, defaults.maxRedirects, defaults.checkRedirect);
    const progress = options.downloadProgress;
    if (progress !== undefined && typeof progress !== "function") {
      throw new ArgumentError("downloadProgress must be a function");
    }
    const jar = jarFor(p.client, options);
    // What the redirect hops carry along about cookies: made at the first redirect, if any.
    let cookies: HopCookies | undefined;
    let previous: Response<Uint8Array> | undefined;
    // Each turn follows one redirect; the limit check below ends the loop.
    for (let redirects = 0; ; redirects++) {
      const run: HopRun = {
        hop,
        guard,
        mode,
        sink,
        retry,
        redirect,
        redirects,
        jar,
        progress,
        traced: 0,
        first,
      };
      first = undefined;
      const outcome = await attempts(run);
      retries += outcome.retries;
      const res = outcome.response;
      res.previous = previous;
      res.redirectCount = redirects;
      const next = followable(run, res) ? locationOf(res.status, res.headers, hop.url) : null;
      if (next === null || !allowedByCheck(redirect, res, hop.request, next.href)) {
        if (outcome.wrapper !== undefined) await outcome.wrapper.settle(true);
        if (mode === "buffer" && hop.decompress) {
          const coding = codingOf(res.status, hop.method, res.headers);
          if (coding !== null) res.body = await decodeBuffered(res.body, coding, hop.maxDecompressedSize);
        }
        response = res;
        break;
      }
      outcome.wrapper?.discard();
      if (redirects >= redirect.limit) throw new TooManyRedirectsError(redirect.limit, res);
      cookies ??= {
        callCookies: typeof options.cookies === "object" ? options.cookies : undefined,
        manual: undefined,
      };
      const nextHop = redirectHop(p, options, run, res, next, cookies, outcome.attempt);
      previous = res;
      hop = nextHop;
    }
    if (hop.statusException && isFailingStatus(response.status)) {
      throw new StatusError(response, { method: hop.method, url: hop.url, retries });
    }
    return response;
  } catch (e) {
    error = e;
    throw e;
  } finally {
    guard?.dispose();
    if (retries > 0) recordRetryAttempts(response, options.context, retries);
    if (tracer !== null) emit(tracer, { type: "done", response, error, url: hop.url });
  }
}

/** The retry and redirect policies of calls that set no option of theirs: made once per client. */
interface Policies {
  readonly retry: RetryPolicy;
  readonly redirect: RedirectPolicy;
}
const policiesOfClients = new WeakMap<ClientDefaults, Policies>();

/** The client's default policies when `options` sets none of the retry and redirect options; else null. */
function defaultPolicies(options: RequestOptions, defaults: ClientDefaults): Policies | null {
  if (
    options.retry !== undefined ||
    options.retries !== undefined ||
    options.retryIf !== undefined ||
    options.retryNonIdempotent !== undefined ||
    options.respectRetryAfter !== undefined ||
    options.retryBucket !== undefined ||
    options.redirect !== undefined ||
    options.redirectLimit !== undefined ||
    options.redirectMethod !== undefined ||
    options.forwardHeaders !== undefined
  ) {
    return null;
  }
  let policies = policiesOfClients.get(defaults);
  if (policies === undefined) {
    policies = {
      retry: retryPolicy({}, defaults.retryBucket),
      redirect: redirectPolicy({}, defaults.maxRedirects, defaults.checkRedirect),
    };
    policiesOfClients.set(defaults, policies);
  }
  return policies;
}

/** The cookie state a call's redirect hops carry from one to the next. */
interface HopCookies {
  /** The call's `cookies` record: for the first origin only. */
  callCookies: Record<string, string> | undefined;
  /** The caller's own Cookie header (`undefined`: not read yet; `null`: none, or dropped). */
  manual: string | null | undefined;
}

/**
 * The request of the next redirect hop, after `res` (on `run.hop`) pointed to `next`: method and body
 * by the redirect rules, the headers forwarded or dropped, the cookies of the new hop, and the
 * `redirect` trace event. Kept out of `send`, which runs for every request and rarely redirects.
 */
function redirectHop(
  p: Prepared,
  options: RequestOptions,
  run: HopRun,
  res: Response<Uint8Array>,
  next: URL,
  cookies: HopCookies,
  attempt: number,
): Prepared {
  const { hop, redirect, jar } = run;
  const from = new URL(hop.url);
  const method = nextMethod(res.status, hop.method, redirect);
  const keepBody = method === hop.method && res.status !== 303;
  if (crossOrigin(from, next)) {
    // Per-call cookies and the caller's own Cookie header are for the first origin only.
    cookies.callCookies = undefined;
    cookies.manual = null;
  } else if (cookies.manual === undefined) cookies.manual = callerCookie(p, options);
  const implicit: [string, string][] = [["User-Agent", p.headers.get("user-agent") ?? USER_AGENT]];
  if (p.decompress) implicit.push(["Accept-Encoding", ACCEPT_ENCODING]);
  const headers = nextHeaders(hop.headers, from, next, keepBody, redirect.forwardHeaders, implicit);
  if (jar !== null || cookies.callCookies !== undefined) {
    const manual = redirect.forwardHeaders ? (cookies.manual ?? null) : null;
    const cookie = cookieHeader(jar, next, cookies.callCookies, manual);
    if (cookie === null) headers.delete("cookie");
    else headers.set("Cookie", cookie);
  }
  const body = keepBody ? (hop.body as Uint8Array | null) : null;
  const nextHop = prepareHop(hop, options, next, method, headers, body);
  const tracer = hop.tracer;
  if (tracer !== null) {
    emit(tracer, {
      type: "redirect",
      request: hop.request,
      response: res,
      url: hop.url,
      attempt,
      fromUrl: hop.url,
      toUrl: nextHop.url,
      redirectCount: run.redirects + 1,
    });
  }
  return nextHop;
}

/** True when a 3xx may be followed at all: redirects on and a body that can be sent again. */
function followable(run: HopRun, res: Response<Uint8Array>): boolean {
  const body = run.hop.body;
  return (
    run.redirect.limit > 0 &&
    FOLLOWED_STATUSES.has(res.status) &&
    (body === null || body instanceof Uint8Array)
  );
}

/** The caller's own `Cookie` header (before the jar's were merged in), for redirect hops. */
function callerCookie(p: Prepared, options: RequestOptions): string | null {
  const own = new Headers(options.headers);
  let values = own.getAll("cookie");
  if (values.length === 0) values = p.client.defaults.defaultHeaders?.getAll("cookie") ?? [];
  return values.length === 0 ? null : values.join("; ");
}

/** The attempts of one hop: the first, then retries as the policy, the bucket and the deadline allow. */
async function attempts(run: HopRun): Promise<HopOutcome> {
  const { hop, guard, retry } = run;
  const replayable = hop.body === null || hop.body instanceof Uint8Array;
  let token: RetryToken | null = null;
  // Bounded by retry.retries: a retry needs `attempt <= retries`.
  for (let attempt = 1; ; attempt++) {
    let res: Response<Uint8Array> | null = null;
    let wrapper: ResponseSink | undefined;
    let err: unknown = null;
    try {
      ({ res, wrapper } = await oneAttempt(run, attempt));
    } catch (e) {
      err = e;
      wrapper = (e as { wrapper?: ResponseSink })?.wrapper;
    }
    if (token !== null) {
      retry.bucket!.release(token, retryCost(res));
      token = null;
    }
    let again =
      attempt <= retry.retries &&
      replayable &&
      !(guard?.signal.aborted ?? false) &&
      // Bytes already in the caller's responseStream, or a body that failed to decode: not repeatable.
      (wrapper === undefined || (!wrapper.wroteToTarget && (err === null || err !== wrapper.failure)));
    // A response no retry rule can take (the common case) is settled without the async verdict.
    if (again && (err !== null || retry.retryIf !== undefined || RETRYABLE_STATUSES.has(res!.status))) {
      again = await shouldRetry(retry, attempt, hop.method, hop.request, err, res);
    } else again = false;
    if (again && retry.bucket !== null) {
      token = retry.bucket.acquire(new URL(hop.url).hostname);
      again = token !== null;
    }
    let delay = 0;
    if (again) {
      delay = retryDelay(retry, attempt, res);
      const left = guard?.remaining();
      if (left !== undefined && delay >= left) {
        // The deadline would pass while waiting: give up now, with the reservation refunded.
        retry.bucket?.release(token!, 0);
        token = null;
        again = false;
      }
    }
    if (!again) {
      if (err !== null) {
        wrapper?.discard();
        throw err;
      }
      return { response: res!, wrapper, retries: attempt - 1, attempt: run.traced };
    }
    wrapper?.discard();
    if (hop.tracer !== null) traceRetry(run, attempt, delay, res, err);
    try {
      await backoffSleep(delay, guard?.signal);
    } catch (e) {
      if (token !== null) retry.bucket?.release(token, 0);
      throw e;
    }
  }
}

/** The `retry` trace event of a hop's attempt that is to be repeated after `delay` ms. */
function traceRetry(
  run: HopRun,
  attempt: number,
  delay: number,
  res: Response<Uint8Array> | null,
  err: unknown,
): void {
  const hop = run.hop;
  emit(hop.tracer!, {
    type: "retry",
    request: hop.request,
    url: hop.url,
    attempt,
    nextAttempt: attempt + 1,
    redirectCount: run.redirects,
    delayMs: delay,
    reason: res !== null ? `status ${res.status}` : `${(err as Error)?.name}: ${(err as Error)?.message}`,
    response: res,
    error: err,
  });
}

/**
 * One attempt of the retry policy: a connection and an exchange, plus the one silent retry of a
 * stale keep-alive connection (not counted as an attempt). A failure carries the attempt's
 * ResponseSink (as `wrapper`) so the policy can tell what reached the caller.
 */
async function oneAttempt(
  run: HopRun,
  attempt: number,
): Promise<{ res: Response<Uint8Array>; wrapper: ResponseSink | undefined }> {
  const { hop: p, guard, mode, sink } = run;
  const tracer = p.tracer;
  // A Writable of ours between the exchange and the caller: always for a responseStream (a 3xx or
  // a retried response must not reach it, and it may need decoding), and for progress reports.
  const wrapped = mode === "writable" || run.progress !== undefined;
  // No closure in this function captures its variables (they would live in a heap context made on
  // every call and every turn): what the head callback needs is in a HeadWatch, made only with a
  // tracer or a wrapper.
  for (let stale = 0; ; stale++) {
    const traceAttempt = ++run.traced;
    const first = run.first;
    if (first !== undefined) {
      // Made by sendPlain (buffered, no wrapper, no tracer): its outcome is this attempt's.
      run.first = undefined;
      if (first.res !== undefined) return { res: first.res, wrapper: undefined };
      if (mayRetryStale(p, first.exchange, guard, first.err, stale)) continue;
      throw first.err;
    }
    let exchange: Attempt | undefined;
    let unwatch: (() => void) | undefined;
    const wrapper = wrapped
      ? new ResponseSink(mode === "writable" ? sink : undefined, run.progress, p.maxDecompressedSize)
      : undefined;
    try {
      if (tracer !== null) {
        emit(tracer, {
          type: "request",
          request: p.request,
          url: p.url,
          attempt: traceAttempt,
          redirectCount: run.redirects,
          protocol: attemptProtocol(p),
        });
      }
      const watch =
        tracer === null && wrapper === undefined
          ? undefined
          : new HeadWatch(run, attempt, traceAttempt, wrapper);
      const started = startAttempt(
        p,
        guard,
        wrapper === undefined ? mode : "writable",
        wrapper ?? sink,
        stale > 0,
        watch?.onHead,
      );
      ({ exchange, unwatch } = started instanceof Promise ? await started : started);
      if (wrapper !== undefined) failWith(wrapper, exchange);
      const done = await exchange.done();
      const body = mode === "buffer" ? (wrapper !== undefined ? wrapper.collected : done) : EMPTY;
      const traced = watch?.traced;
      let res: Response<Uint8Array>;
      if (traced !== undefined) {
        traced.body = body;
        res = traced;
        finishResponse(p, exchange, res, run.jar);
      } else res = attemptResponse(p, exchange, body, run.jar);
      return { res, wrapper };
    } catch (e) {
      if (mayRetryStale(p, exchange, guard, e, stale)) {
        wrapper?.discard();
        continue;
      }
      if (wrapper !== undefined && e !== null && typeof e === "object") {
        Object.defineProperty(e, "wrapper", { value: wrapper, enumerable: false, configurable: true });
      }
      throw e;
    } finally {
      unwatch?.();
    }
  }
}

/**
 * The head callback of an attempt with a tracer or a ResponseSink: tells the sink what to do with
 * the body, and traces the head (keeping the Response it made, which gets the body later).
 */
class HeadWatch {
  traced: Response<Uint8Array> | undefined = undefined;
  readonly #run: HopRun;
  readonly #attempt: number;
  readonly #traceAttempt: number;
  readonly #wrapper: ResponseSink | undefined;

  constructor(run: HopRun, attempt: number, traceAttempt: number, wrapper: ResponseSink | undefined) {
    this.#run = run;
    this.#attempt = attempt;
    this.#traceAttempt = traceAttempt;
    this.#wrapper = wrapper;
  }

  readonly onHead = (head: ResponseHead): void => {
    const run = this.#run;
    if (this.#wrapper !== undefined) headOfWrapper(run, this.#attempt, this.#wrapper, head);
    const p = run.hop;
    if (p.tracer !== null) {
      this.traced = responseOf(p, head, EMPTY);
      emit(p.tracer, {
        type: "responseHead",
        response: this.traced,
        url: p.url,
        attempt: this.#traceAttempt,
        redirectCount: run.redirects,
      });
    }
  };
}

/** A failing responseStream fails the attempt that writes to it. */
function failWith(wrapper: ResponseSink, exchange: Attempt): void {
  wrapper.onFailure = (e) => exchange.fail(e);
}

/** Tells an attempt's ResponseSink, from the head, whether to hold the body and how to decode it. */
function headOfWrapper(run: HopRun, attempt: number, wrapper: ResponseSink, head: ResponseHead): void {
  const p = run.hop;
  const replayable = p.body === null || p.body instanceof Uint8Array;
  const redirectCandidate =
    replayable && run.redirect.limit > 0 && locationOf(head.status, head.headers, p.url) !== null;
  const retryCandidate =
    replayable &&
    attempt <= run.retry.retries &&
    (run.retry.retryIf !== undefined || RETRYABLE_STATUSES.has(head.status));
  const coding = p.decompress ? codingOf(head.status, p.method, head.headers) : null;
  wrapper.head(head.headers, redirectCandidate || retryCandidate, redirectCandidate, coding);
}
