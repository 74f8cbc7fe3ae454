import { ArgumentError, CanceledError } from "./errors.js";

/** Options of {@link RequestContext}. */
export interface RequestContextOptions {
  /** An overall deadline in milliseconds from now. `undefined` or `0`: none. */
  deadline?: number;
  /** A signal that cancels the context when it aborts. */
  signal?: AbortSignal;
  /** Initial metadata entries. */
  metadata?: Iterable<readonly [string, unknown]>;
}

/**
 * The cancellation and deadline of one request (or one handler call on the server), plus metadata
 * that middleware share (route parameters, cookies, retry counts).
 *
 * ```ts
 * const ctx = new RequestContext({ deadline: 5_000 });
 * setTimeout(() => ctx.cancel("user pressed stop"), 100);
 * await get(url, { context: ctx }); // rejects with CanceledError("user pressed stop")
 * ```
 */
export class RequestContext {
  readonly #controller = new AbortController();
  #deadline: number | undefined;
  /** Shared key/value metadata (HTTP.jl's `ctx[:key]`). */
  readonly metadata: Map<string, unknown>;

  constructor(options: RequestContextOptions = {}) {
    this.metadata = new Map(options.metadata);
    if (options.deadline !== undefined) this.setDeadline(options.deadline);
    const parent = options.signal;
    if (parent) {
      if (parent.aborted) this.cancel(reasonMessage(parent.reason));
      else parent.addEventListener("abort", () => this.cancel(reasonMessage(parent.reason)), { once: true });
    }
  }

  /** Aborts when the context is cancelled; its `reason` is a {@link CanceledError}. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True once {@link cancel} was called (or the parent signal aborted). */
  get canceled(): boolean {
    return this.#controller.signal.aborted;
  }

  /** The absolute deadline on the `performance.now()` clock, or `undefined` for none. */
  get deadline(): number | undefined {
    return this.#deadline;
  }

  /** Sets the deadline `ms` from now; `0` clears it. Negative or non-finite values are an `ArgumentError`. */
  setDeadline(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new ArgumentError(`deadline must be a non-negative number of milliseconds, got ${ms}`);
    }
    this.#deadline = ms === 0 ? undefined : performance.now() + ms;
  }

  /** Milliseconds left before the deadline (never negative), or `undefined` when there is none. */
  remaining(now = performance.now()): number | undefined {
    return this.#deadline === undefined ? undefined : Math.max(0, this.#deadline - now);
  }

  /** True when the deadline has passed. */
  expired(now = performance.now()): boolean {
    return this.#deadline !== undefined && now >= this.#deadline;
  }

  /** Cancels: aborts {@link signal} with a `CanceledError(message)`. Idempotent; never throws. */
  cancel(message = "request canceled"): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new CanceledError(message));
  }

  /**
   * A context that is cancelled with this one, whose deadline is the sooner of `deadline` (ms from
   * now) and this one's, and which starts with a copy of this one's metadata.
   */
  child(options: { deadline?: number } = {}): RequestContext {
    const child = new RequestContext({ signal: this.signal, metadata: this.metadata });
    const mine = this.remaining();
    const theirs = options.deadline || undefined;
    const soonest = mine === undefined ? theirs : theirs === undefined ? mine : Math.min(mine, theirs);
    if (soonest !== undefined) child.setDeadline(Math.max(soonest, Number.MIN_VALUE));
    return child;
  }
}

function reasonMessage(reason: unknown): string {
  if (reason instanceof Error && reason.message) return reason.message;
  if (typeof reason === "string" && reason) return reason;
  return "request canceled";
}
