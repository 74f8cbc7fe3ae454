// The built-in retry policy: which outcomes are retried, the retry budget (RetryBucket), full-jitter
// backoff and Retry-After, and `isRecoverable`.
import {
  ArgumentError,
  CanceledError,
  ConnectError,
  DNSError,
  HTTPError,
  ParseError,
  ProtocolError,
  type Request,
  RequestContext,
  RequestRetryError,
  type Response,
  TimeoutError,
  TLSHandshakeError,
} from "@hyperwire/core";
import { H2GoAwayError, H2StreamResetError } from "@hyperwire/h2";

/** Options of {@link RetryBucket}. */
export interface RetryBucketOptions {
  /** The first backoff ceiling, doubled per attempt, in ms. Default 25; must be ≥ 0. */
  backoffScaleFactor?: number;
  /** The largest backoff (and the cap on a honoured `Retry-After`), in ms. Default 20 000; must be ≥ 0. */
  maxBackoff?: number;
  /** Tokens each host partition starts with (a retry reserves 10). Default 500; must be > 0. */
  capacity?: number;
}

/** The defaults of {@link RetryBucketOptions}, in one place. */
export const RETRY_BUCKET_DEFAULTS = Object.freeze({
  backoffScaleFactor: 25,
  maxBackoff: 20_000,
  capacity: 500,
});

/** The defaults of the retry request options, in one place. */
export const RETRY_DEFAULTS = Object.freeze({
  retry: true,
  retries: 4,
  retryNonIdempotent: false,
  respectRetryAfter: true,
});

/** What a retry reserves from its partition. */
export const RETRY_COST = 10;
/** What a retried attempt that failed with an error keeps (nothing is refunded). */
export const FAILURE_COST_ERROR = 10;
/** What a retried attempt answered with a retryable status (408, 429, 5xx) keeps. */
export const FAILURE_COST_STATUS = 5;
/** What a successful retried attempt keeps: our decision is a full refund. */
export const FAILURE_COST_SUCCESS = 0;

/** A reservation from {@link RetryBucket.acquire}; give it back with {@link RetryBucket.release}. */
export interface RetryToken {
  readonly partition: string;
  released: boolean;
}

/**
 * A retry budget per host: each retry reserves 10 tokens from its host's partition and gets part
 * or all of them back depending on how the retried attempt went (error: nothing; 408/429/5xx: 5;
 * success: all 10). An empty partition stops retries to that host until successes refill it.
 *
 * ```ts
 * const bucket = new RetryBucket({ capacity: 100 });
 * const client = new Client({ transport: new Transport({ retryBucket: bucket }) });
 * ```
 */
export class RetryBucket {
  readonly backoffScaleFactor: number;
  readonly maxBackoff: number;
  readonly capacity: number;
  readonly #partitions = new Map<string, number>();

  constructor(options: RetryBucketOptions = {}) {
    const o: { backoffScaleFactor: number; maxBackoff: number; capacity: number } = {
      ...RETRY_BUCKET_DEFAULTS,
    };
    if (options.backoffScaleFactor !== undefined) o.backoffScaleFactor = options.backoffScaleFactor;
    if (options.maxBackoff !== undefined) o.maxBackoff = options.maxBackoff;
    if (options.capacity !== undefined) o.capacity = options.capacity;
    for (const k of ["backoffScaleFactor", "maxBackoff"] as const) {
      if (typeof o[k] !== "number" || !Number.isFinite(o[k]) || o[k] < 0) {
        throw new ArgumentError(`${k} must be a finite number ≥ 0 (ms), got ${String(o[k])}`);
      }
    }
    if (typeof o.capacity !== "number" || !Number.isFinite(o.capacity) || o.capacity <= 0) {
      throw new ArgumentError(`capacity must be a finite number > 0, got ${String(o.capacity)}`);
    }
    this.backoffScaleFactor = o.backoffScaleFactor;
    this.maxBackoff = o.maxBackoff;
    this.capacity = o.capacity;
  }

  /** Tokens left in `partition` (a host name, case-insensitive). */
  available(partition: string): number {
    return this.#partitions.get(partition.toLowerCase()) ?? this.capacity;
  }

  /** Reserves 10 tokens for one retry, or returns `null` when the partition has fewer left. */
  acquire(partition: string): RetryToken | null {
    const key = partition.toLowerCase();
    const left = this.#partitions.get(key) ?? this.capacity;
    if (left < RETRY_COST) return null;
    this.#partitions.set(key, left - RETRY_COST);
    return { partition: key, released: false };
  }

  /** Refunds `10 − min(10, cost)` tokens of a reservation. Only the first call per token counts. */
  release(token: RetryToken, cost: number): void {
    if (token.released) return;
    token.released = true;
    const refund = RETRY_COST - Math.min(RETRY_COST, Math.max(0, cost));
    const left = this.#partitions.get(token.partition) ?? this.capacity;
    this.#partitions.set(token.partition, Math.min(this.capacity, left + refund));
  }

  /** The full-jitter delay before retry number `attempt` (1-based): `random(0, min(scale·2^(attempt−1), max))` ms. */
  backoff(attempt: number): number {
    return Math.random() * Math.min(this.backoffScaleFactor * 2 ** (attempt - 1), this.maxBackoff);
  }
}

/** The backoff scale used when no bucket is in play. */
const NO_BUCKET = {
  backoff: (attempt: number): number =>
    Math.random() *
    Math.min(RETRY_BUCKET_DEFAULTS.backoffScaleFactor * 2 ** (attempt - 1), RETRY_BUCKET_DEFAULTS.maxBackoff),
  maxBackoff: RETRY_BUCKET_DEFAULTS.maxBackoff,
};

/** Methods retried without further ado. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
  "QUERY",
]);

/** Statuses the built-in policy retries. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

const CLOSED_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED", "ECONNABORTED", "UND_ERR_SOCKET"]);

/**
 * True when the built-in policy retries a request that failed with `err` (a `RequestRetryError` is
 * unwrapped): the connection failed or closed before a response, the response could not be parsed,
 * the connect or TLS handshake timed out, or HTTP/2 said the stream was not processed. Never for
 * cancellation, DNS or certificate errors, or the request, response-header and read-idle timeouts.
 *
 * ```ts
 * isRecoverable(new ParseError("bad")); // true
 * ```
 */
export function isRecoverable(err: unknown): boolean {
  const e = err instanceof RequestRetryError ? err.cause : err;
  if (e instanceof H2GoAwayError) return true;
  if (e instanceof H2StreamResetError) return e.refused;
  if (e instanceof CanceledError || e instanceof DNSError) return false;
  if (e instanceof TimeoutError) return e.phase === "connect" || e.phase === "tls";
  if (e instanceof ParseError || e instanceof ConnectError) return true;
  if (e instanceof TLSHandshakeError) return CLOSED_CODES.has(codeOf((e as Error).cause));
  if (e instanceof ProtocolError) return e.code === "HW_CONNECTION_CLOSED";
  if (e instanceof HTTPError) return false;
  return CLOSED_CODES.has(codeOf(e));
}

/** Errors retried for any method: the server says it never processed the request. */
function unprocessed(err: unknown): boolean {
  return err instanceof H2GoAwayError || (err instanceof H2StreamResetError && err.refused);
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : "";
}

/** The `retryIf` callback: `true` forces a retry, `false` suppresses it, `undefined`/`null` defers to the built-in rules. */
export type RetryIf = (
  attempt: number,
  err: RequestRetryError | null,
  request: Request,
  response: Response<Uint8Array> | null,
) => boolean | undefined | null | Promise<boolean | undefined | null>;

/** The retry settings of one call, checked once. */
export interface RetryPolicy {
  /** Retries after the first attempt; `0` when retrying is off. */
  readonly retries: number;
  readonly retryIf: RetryIf | undefined;
  readonly retryNonIdempotent: boolean;
  readonly respectRetryAfter: boolean;
  readonly bucket: RetryBucket | null;
}

/** What the request options say about retrying. */
export interface RetryOptionsIn {
  retry?: boolean | undefined;
  retries?: number | undefined;
  retryIf?: RetryIf | undefined;
  retryNonIdempotent?: boolean | undefined;
  respectRetryAfter?: boolean | undefined;
  retryBucket?: boolean | RetryBucket | undefined;
}

/** Checks the retry options and resolves them against the client's bucket. Throws `ArgumentError`. */
export function retryPolicy(o: RetryOptionsIn, clientBucket: RetryBucket | null): RetryPolicy {
  const retry = o.retry ?? RETRY_DEFAULTS.retry;
  if (typeof retry !== "boolean") throw new ArgumentError("retry must be a boolean");
  const retries = o.retries ?? RETRY_DEFAULTS.retries;
  if (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0) {
    throw new ArgumentError(`retries must be an integer ≥ 0, got ${String(retries)}`);
  }
  if (o.retryIf !== undefined && typeof o.retryIf !== "function") {
    throw new ArgumentError("retryIf must be a function");
  }
  const bucketOpt = o.retryBucket ?? true;
  let bucket: RetryBucket | null;
  if (bucketOpt === true) bucket = clientBucket;
  else if (bucketOpt === false) bucket = null;
  else if (bucketOpt instanceof RetryBucket) bucket = bucketOpt;
  else throw new ArgumentError("retryBucket must be a boolean or a RetryBucket");
  return {
    retries: retry ? retries : 0,
    retryIf: o.retryIf,
    retryNonIdempotent: o.retryNonIdempotent ?? RETRY_DEFAULTS.retryNonIdempotent,
    respectRetryAfter: o.respectRetryAfter ?? RETRY_DEFAULTS.respectRetryAfter,
    bucket,
  };
}

/** True when `request` may be repeated without changing the outcome (method or an idempotency key). */
export function isIdempotent(method: string, request: Request): boolean {
  if (IDEMPOTENT_METHODS.has(method)) return true;
  const h = request.headers;
  return !!(h.get("idempotency-key") || h.get("x-idempotency-key"));
}

/**
 * Whether attempt `attempt` (1-based, just finished) is retried: `retryIf` first, then the built-in
 * rules. The caller has checked that retries are left and the body is replayable.
 */
export async function shouldRetry(
  policy: RetryPolicy,
  attempt: number,
  method: string,
  request: Request,
  err: unknown,
  response: Response<Uint8Array> | null,
): Promise<boolean> {
  if (policy.retryIf !== undefined) {
    const verdict = await policy.retryIf(
      attempt,
      response === null ? new RequestRetryError(err) : null,
      request,
      response,
    );
    if (verdict === true) return true;
    if (verdict === false) return false;
    if (verdict !== undefined && verdict !== null) {
      throw new ArgumentError(`retryIf must return true, false, undefined or null, got ${String(verdict)}`);
    }
  }
  if (response !== null) {
    return (
      RETRYABLE_STATUSES.has(response.status) && (policy.retryNonIdempotent || isIdempotent(method, request))
    );
  }
  if (unprocessed(err)) return true;
  return isRecoverable(err) && (policy.retryNonIdempotent || isIdempotent(method, request));
}

/** How much of a retry's reservation the retried attempt keeps, by its outcome. */
export function retryCost(response: Response<Uint8Array> | null): number {
  if (response === null) return FAILURE_COST_ERROR;
  return RETRYABLE_STATUSES.has(response.status) ? FAILURE_COST_STATUS : FAILURE_COST_SUCCESS;
}

/**
 * The delay before retry number `attempt` (1-based): `Retry-After` on a 429/503 when honoured
 * (capped at the bucket's `maxBackoff`), else full jitter.
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  response: Response<Uint8Array> | null,
): number {
  const scale = policy.bucket ?? NO_BUCKET;
  if (policy.respectRetryAfter && response !== null && (response.status === 429 || response.status === 503)) {
    const after = parseRetryAfter(response.headers.get("retry-after"));
    if (after !== undefined) return Math.min(after, scale.maxBackoff);
  }
  return scale.backoff(attempt);
}

/** `Retry-After` (delta-seconds or an HTTP-date) in ms from now; `undefined` when absent or invalid. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Only the IMF-fixdate and the two obsolete formats name a weekday; Date.parse would also take
  // loose strings like "5" or "tomorrow" on some engines.
  if (!/^[A-Za-z]{3,9}, /.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

const attemptsOf = new WeakMap<object, number>();
const METADATA_KEY = "retryAttempts";

/** Records how many retries a call made (only called when it made some). */
export function recordRetryAttempts(
  response: Response | null,
  context: RequestContext | undefined,
  n: number,
): void {
  if (response !== null) attemptsOf.set(response, n);
  context?.metadata.set(METADATA_KEY, n);
}

/**
 * How many retries produced `target` (a response returned by `request`, or the `RequestContext`
 * passed to it; the context also counts for a call that threw). `0` when none.
 *
 * ```ts
 * const res = await get(url);
 * retryAttempts(res); // 2 when the third attempt succeeded
 * ```
 */
export function retryAttempts(target: Response | RequestContext): number {
  if (target instanceof RequestContext) {
    const n = target.metadata.get(METADATA_KEY);
    return typeof n === "number" ? n : 0;
  }
  return attemptsOf.get(target) ?? 0;
}

/**
 * Waits `ms`, or rejects with the signal's reason when it aborts first. The timer is not unref'ed:
 * a request waiting to retry is work the process is doing.
 */
export function backoffSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
