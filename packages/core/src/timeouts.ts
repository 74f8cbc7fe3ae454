import { ArgumentError, TimeoutError, type TimeoutPhase } from "./errors.js";

/**
 * The client's timeouts, in milliseconds. In a call's options `undefined` means "not set here"
 * (the client's default applies) and `0` means disabled.
 */
export interface TimeoutOptions {
  /** DNS + TCP connect + proxy handshake + TLS handshake. Default 30 000. */
  connectTimeout?: number;
  /** The whole exchange, from the first dial to the last body byte. Default 0 (none). */
  requestTimeout?: number;
  /** From the request being sent to the response head. Default 0 (none; `readIdleTimeout` covers it). */
  responseHeaderTimeout?: number;
  /** Silence between response reads (and before the head when `responseHeaderTimeout` is unset). Default 0. */
  readIdleTimeout?: number;
  /** Stall between request-body writes. Default 0. */
  writeIdleTimeout?: number;
  /** How long to wait for `100 Continue` after sending a head with `Expect: 100-continue`. Default 1 000. */
  expectContinueTimeout?: number;
}

/** Every timeout with a value: what a request actually runs with. */
export type ResolvedTimeouts = Readonly<Required<TimeoutOptions>>;

/** The defaults, in one place. */
export const TIMEOUT_DEFAULTS: ResolvedTimeouts = Object.freeze({
  connectTimeout: 30_000,
  requestTimeout: 0,
  responseHeaderTimeout: 0,
  readIdleTimeout: 0,
  writeIdleTimeout: 0,
  expectContinueTimeout: 1_000,
});

const NAMES = Object.keys(TIMEOUT_DEFAULTS) as (keyof TimeoutOptions)[];

/**
 * Resolves the timeouts of one call: the call's value when set, else the client's, else the default.
 * Each value must be a finite number ≥ 0 (`ArgumentError` otherwise).
 *
 * ```ts
 * resolveTimeouts({ readIdleTimeout: 0 }, { readIdleTimeout: 5_000 }).readIdleTimeout; // 0: disabled by the call
 * ```
 */
export function resolveTimeouts(call?: TimeoutOptions, client?: TimeoutOptions): ResolvedTimeouts {
  const out = { ...TIMEOUT_DEFAULTS };
  for (const name of NAMES) {
    const v = call?.[name] ?? client?.[name];
    if (v === undefined) continue;
    out[name] = checkTimeout(name, v);
  }
  return out;
}

/** Validates one timeout value (ms). */
export function checkTimeout(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ArgumentError(
      `${name} must be a finite number of milliseconds ≥ 0 (0 disables), got ${String(value)}`,
    );
  }
  return value;
}

/**
 * A one-shot timer for an overall deadline. Calls `onTimeout` with a {@link TimeoutError} of the
 * given phase unless cancelled first. `0` disables it. Never keeps the process alive.
 *
 * ```ts
 * const d = new Deadline(5_000, "request", (err) => socket.destroy(err));
 * try { await exchange(); } finally { d.cancel(); }
 * ```
 */
export class Deadline {
  readonly timeoutMs: number;
  readonly phase: TimeoutPhase;
  readonly #start = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #fired = false;

  constructor(timeoutMs: number, phase: TimeoutPhase, onTimeout: (err: TimeoutError) => void) {
    this.timeoutMs = timeoutMs;
    this.phase = phase;
    if (timeoutMs > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#fired = true;
        onTimeout(new TimeoutError(phase, timeoutMs, performance.now() - this.#start));
      }, timeoutMs);
      this.#timer.unref();
    }
  }

  /** True once the timer fired. */
  get fired(): boolean {
    return this.#fired;
  }

  /** Milliseconds since the deadline started. */
  get elapsedMs(): number {
    return performance.now() - this.#start;
  }

  /** Milliseconds left (never negative); `Infinity` when disabled. */
  remaining(): number {
    if (this.timeoutMs <= 0) return Number.POSITIVE_INFINITY;
    // Timers may fire a fraction of a millisecond before the clock says so: once fired, none is left.
    return this.#fired ? 0 : Math.max(0, this.timeoutMs - this.elapsedMs);
  }

  /** Stops the timer. Idempotent. */
  cancel(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  [Symbol.dispose](): void {
    this.cancel();
  }
}

/**
 * An inactivity timer: fires when `touch()` has not been called for `timeoutMs`. Re-arming is
 * `Timeout.refresh()`, cheap enough to call per chunk. `0` disables it. Never keeps the process alive.
 *
 * ```ts
 * const idle = new IdleTimer(10_000, "readIdle", (err) => stream.destroy(err));
 * for await (const chunk of body) { idle.touch(); ... }
 * idle.cancel();
 * ```
 */
export class IdleTimer {
  readonly timeoutMs: number;
  readonly phase: TimeoutPhase;
  #timer: NodeJS.Timeout | undefined;
  #last = performance.now();
  #paused = false;
  readonly #onTimeout: (err: TimeoutError) => void;

  constructor(timeoutMs: number, phase: TimeoutPhase, onTimeout: (err: TimeoutError) => void) {
    this.timeoutMs = timeoutMs;
    this.phase = phase;
    this.#onTimeout = onTimeout;
    if (timeoutMs > 0) {
      this.#timer = setTimeout(() => this.#fire(), timeoutMs);
      this.#timer.unref();
    }
  }

  #fire(): void {
    this.#timer = undefined;
    this.#onTimeout(new TimeoutError(this.phase, this.timeoutMs, performance.now() - this.#last));
  }

  /** Progress was made: start the wait again. */
  touch(): void {
    this.#last = performance.now();
    if (this.#timer !== undefined) this.#timer.refresh();
    else if (this.#paused && this.timeoutMs > 0) {
      this.#paused = false;
      this.#timer = setTimeout(() => this.#fire(), this.timeoutMs);
      this.#timer.unref();
    }
  }

  /** Stops counting until the next {@link touch} (e.g. while the consumer, not the peer, is slow). */
  pause(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#paused = true;
    }
  }

  /** Stops the timer for good. Idempotent. */
  cancel(): void {
    this.#paused = false;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  [Symbol.dispose](): void {
    this.cancel();
  }
}
