import { describe, expect, test } from "vitest";
import {
  ArgumentError,
  checkTimeout,
  Deadline,
  IdleTimer,
  resolveTimeouts,
  TIMEOUT_DEFAULTS,
  TimeoutError,
} from "../src/index.js";

/** Resolves with the value of `p`, or rejects after `ms` (a bound, not a synchronisation sleep). */
function within<T>(p: Promise<T>, ms = 2_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The number of ref'd timers keeping the event loop alive. */
function refedTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

describe("resolveTimeouts", () => {
  test("the defaults: connect 30 000, expectContinue 1 000, the rest disabled", () => {
    expect(resolveTimeouts()).toEqual({
      connectTimeout: 30_000,
      requestTimeout: 0,
      responseHeaderTimeout: 0,
      readIdleTimeout: 0,
      writeIdleTimeout: 0,
      expectContinueTimeout: 1_000,
    });
    expect(resolveTimeouts()).toEqual(TIMEOUT_DEFAULTS);
    expect(Object.isFrozen(TIMEOUT_DEFAULTS)).toBe(true);
  });

  test("the call's value wins over the client's, which wins over the default", () => {
    const client = { connectTimeout: 5_000, readIdleTimeout: 7_000, requestTimeout: 9_000 };
    const t = resolveTimeouts({ readIdleTimeout: 100 }, client);
    expect(t.readIdleTimeout).toBe(100);
    expect(t.connectTimeout).toBe(5_000);
    expect(t.requestTimeout).toBe(9_000);
    expect(t.writeIdleTimeout).toBe(0);
    expect(t.expectContinueTimeout).toBe(1_000);
  });

  test("undefined in the call means unset: the client's value applies", () => {
    const t = resolveTimeouts(
      { connectTimeout: undefined, readIdleTimeout: undefined },
      { readIdleTimeout: 50 },
    );
    expect(t.connectTimeout).toBe(30_000);
    expect(t.readIdleTimeout).toBe(50);
  });

  test("0 in the call disables, even when the client sets a value", () => {
    const t = resolveTimeouts(
      { readIdleTimeout: 0, connectTimeout: 0, expectContinueTimeout: 0 },
      { readIdleTimeout: 5_000, connectTimeout: 1_000 },
    );
    expect(t.readIdleTimeout).toBe(0);
    expect(t.connectTimeout).toBe(0);
    expect(t.expectContinueTimeout).toBe(0);
  });

  test("0 in the client disables the default", () => {
    expect(resolveTimeouts({}, { connectTimeout: 0 }).connectTimeout).toBe(0);
    expect(resolveTimeouts(undefined, { expectContinueTimeout: 0 }).expectContinueTimeout).toBe(0);
  });

  test("does not change the defaults", () => {
    resolveTimeouts({ connectTimeout: 1 });
    expect(TIMEOUT_DEFAULTS.connectTimeout).toBe(30_000);
  });

  test("negative, NaN, infinite and non-number values are an ArgumentError naming the option", () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, "100", true]) {
      expect(() => resolveTimeouts({ readIdleTimeout: bad as number })).toThrow(ArgumentError);
    }
    expect(() => resolveTimeouts({}, { writeIdleTimeout: -5 })).toThrow(/writeIdleTimeout/);
    expect(() => checkTimeout("connectTimeout", -1)).toThrow(/connectTimeout/);
    expect(checkTimeout("x", 0)).toBe(0);
    expect(checkTimeout("x", 12.5)).toBe(12.5);
  });

  test("an invalid client value is reported even when the call does not set it", () => {
    expect(() => resolveTimeouts({ connectTimeout: 10 }, { readIdleTimeout: -1 })).toThrow(ArgumentError);
  });
});

describe("Deadline", () => {
  test("fires once with a TimeoutError of its phase", async () => {
    const errors: TimeoutError[] = [];
    const fired = new Promise<TimeoutError>((resolve) => {
      new Deadline(30, "request", (err) => {
        errors.push(err);
        resolve(err);
      });
    });
    const err = await within(fired);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.phase).toBe("request");
    expect(err.timeoutMs).toBe(30);
    expect(err.elapsedMs).toBeGreaterThanOrEqual(28);
    await delay(60);
    expect(errors).toHaveLength(1);
  });

  test("fired, elapsedMs and remaining()", async () => {
    let deadline!: Deadline;
    const fired = new Promise<void>((resolve) => {
      deadline = new Deadline(40, "connect", () => resolve());
    });
    expect(deadline.fired).toBe(false);
    expect(deadline.remaining()).toBeGreaterThan(0);
    expect(deadline.remaining()).toBeLessThanOrEqual(40);
    await within(fired);
    expect(deadline.fired).toBe(true);
    expect(deadline.remaining()).toBe(0);
    expect(deadline.elapsedMs).toBeGreaterThanOrEqual(38);
    expect(deadline.timeoutMs).toBe(40);
    expect(deadline.phase).toBe("connect");
  });

  test("cancel() stops it, and is idempotent", async () => {
    let calls = 0;
    const d = new Deadline(20, "request", () => calls++);
    d.cancel();
    d.cancel();
    await delay(80);
    expect(calls).toBe(0);
    expect(d.fired).toBe(false);
  });

  test("Symbol.dispose cancels it", async () => {
    let calls = 0;
    {
      using _d = new Deadline(20, "request", () => calls++);
    }
    await delay(80);
    expect(calls).toBe(0);
  });

  test("0 disables it: never fires, remaining() is Infinity", async () => {
    let calls = 0;
    const d = new Deadline(0, "request", () => calls++);
    expect(d.remaining()).toBe(Number.POSITIVE_INFINITY);
    await delay(50);
    expect(calls).toBe(0);
  });

  test("does not keep the process alive (its timer is unref'd)", () => {
    const before = refedTimers();
    const d = new Deadline(60_000, "request", () => {});
    try {
      expect(refedTimers()).toBe(before);
    } finally {
      d.cancel();
    }
  });
});

describe("IdleTimer", () => {
  test("fires with a TimeoutError of its phase when nothing touches it", async () => {
    const fired = new Promise<TimeoutError>((resolve) => {
      new IdleTimer(30, "readIdle", resolve);
    });
    const err = await within(fired);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.phase).toBe("readIdle");
    expect(err.timeoutMs).toBe(30);
    expect(err.elapsedMs).toBeGreaterThanOrEqual(28);
  });

  test("touch() re-arms: it fires a full timeout after the last touch", async () => {
    const start = performance.now();
    let touchedAt = 0;
    let timer!: IdleTimer;
    const fired = new Promise<number>((resolve) => {
      timer = new IdleTimer(80, "writeIdle", () => resolve(performance.now()));
    });
    await delay(50);
    touchedAt = performance.now();
    timer.touch();
    const firedAt = await within(fired);
    // Without the touch it would have fired ~80 ms after start; with it, no sooner than 80 ms after the touch.
    expect(firedAt - touchedAt).toBeGreaterThanOrEqual(78);
    expect(firedAt - start).toBeGreaterThanOrEqual(touchedAt - start + 78);
  });

  test("elapsedMs is measured from the last touch", async () => {
    let timer!: IdleTimer;
    const fired = new Promise<TimeoutError>((resolve) => {
      timer = new IdleTimer(60, "readIdle", resolve);
    });
    await delay(40);
    timer.touch();
    const err = await within(fired);
    expect(err.elapsedMs).toBeGreaterThanOrEqual(58);
  });

  test("cancel() stops it for good; touch() after cancel does not re-arm", async () => {
    let calls = 0;
    const t = new IdleTimer(20, "readIdle", () => calls++);
    t.cancel();
    t.touch();
    t.cancel();
    await delay(80);
    expect(calls).toBe(0);
  });

  test("pause() stops counting until the next touch()", async () => {
    let calls = 0;
    let resolveFired!: () => void;
    const fired = new Promise<void>((resolve) => {
      resolveFired = resolve;
    });
    const t = new IdleTimer(20, "readIdle", () => {
      calls++;
      resolveFired();
    });
    t.pause();
    await delay(80);
    expect(calls).toBe(0);
    t.touch();
    await within(fired);
    expect(calls).toBe(1);
  });

  test("0 disables it", async () => {
    let calls = 0;
    const t = new IdleTimer(0, "readIdle", () => calls++);
    t.touch();
    t.pause();
    t.touch();
    await delay(50);
    expect(calls).toBe(0);
  });

  test("does not keep the process alive, also after a pause and re-arm", () => {
    const before = refedTimers();
    const t = new IdleTimer(60_000, "readIdle", () => {});
    try {
      expect(refedTimers()).toBe(before);
      t.touch();
      expect(refedTimers()).toBe(before);
      t.pause();
      t.touch();
      expect(refedTimers()).toBe(before);
    } finally {
      t.cancel();
    }
  });

  test("the ref'd-timer probe itself sees a ref'd timer (so the checks above can fail)", () => {
    const before = refedTimers();
    const t = setTimeout(() => {}, 60_000);
    try {
      expect(refedTimers()).toBe(before + 1);
    } finally {
      clearTimeout(t);
    }
  });
});
