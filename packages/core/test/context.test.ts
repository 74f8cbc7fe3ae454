import { describe, expect, test } from "vitest";
import { ArgumentError, CanceledError, RequestContext } from "../src/index.js";

describe("cancellation", () => {
  test("a new context is not cancelled", () => {
    const ctx = new RequestContext();
    expect(ctx.canceled).toBe(false);
    expect(ctx.signal).toBeInstanceOf(AbortSignal);
    expect(ctx.signal.aborted).toBe(false);
  });

  test("cancel(message) aborts the signal with a CanceledError carrying the message", () => {
    const ctx = new RequestContext();
    let events = 0;
    ctx.signal.addEventListener("abort", () => events++);
    ctx.cancel("user pressed stop");
    expect(ctx.canceled).toBe(true);
    expect(ctx.signal.aborted).toBe(true);
    const reason = ctx.signal.reason as CanceledError;
    expect(reason).toBeInstanceOf(CanceledError);
    expect(reason.code).toBe("HW_CANCELED");
    expect(reason.message).toBe("user pressed stop");
    expect(events).toBe(1);
  });

  test("cancel() without a message uses 'request canceled'", () => {
    const ctx = new RequestContext();
    ctx.cancel();
    expect((ctx.signal.reason as CanceledError).message).toBe("request canceled");
  });

  test("cancel is idempotent: the first reason stays, the event fires once, it never throws", () => {
    const ctx = new RequestContext();
    let events = 0;
    ctx.signal.addEventListener("abort", () => events++);
    ctx.cancel("first");
    const reason = ctx.signal.reason;
    expect(() => ctx.cancel("second")).not.toThrow();
    expect(ctx.signal.reason).toBe(reason);
    expect((ctx.signal.reason as CanceledError).message).toBe("first");
    expect(events).toBe(1);
  });

  test("a parent signal that aborts later cancels the context with its reason's message", () => {
    const ac = new AbortController();
    const ctx = new RequestContext({ signal: ac.signal });
    expect(ctx.canceled).toBe(false);
    ac.abort(new Error("peer left"));
    expect(ctx.canceled).toBe(true);
    expect((ctx.signal.reason as CanceledError).message).toBe("peer left");
  });

  test("a parent signal that already aborted cancels the context at once", () => {
    const ctx = new RequestContext({ signal: AbortSignal.abort("gone") });
    expect(ctx.canceled).toBe(true);
    expect(ctx.signal.reason).toBeInstanceOf(CanceledError);
    expect((ctx.signal.reason as CanceledError).message).toBe("gone");
  });

  test("a parent reason without a message gives the default message", () => {
    const ac = new AbortController();
    const ctx = new RequestContext({ signal: ac.signal });
    ac.abort(42);
    expect((ctx.signal.reason as CanceledError).message).toBe("request canceled");
  });

  test("cancelling the context does not abort the parent signal", () => {
    const ac = new AbortController();
    const ctx = new RequestContext({ signal: ac.signal });
    ctx.cancel();
    expect(ac.signal.aborted).toBe(false);
  });
});

describe("deadline", () => {
  test("no deadline by default, or with 0", () => {
    for (const ctx of [new RequestContext(), new RequestContext({ deadline: 0 })]) {
      expect(ctx.deadline).toBeUndefined();
      expect(ctx.remaining()).toBeUndefined();
      expect(ctx.expired()).toBe(false);
      expect(ctx.expired(Number.MAX_VALUE)).toBe(false);
    }
  });

  test("a deadline is an absolute time on the performance.now() clock", () => {
    const before = performance.now();
    const ctx = new RequestContext({ deadline: 5_000 });
    const after = performance.now();
    const d = ctx.deadline!;
    expect(d).toBeGreaterThanOrEqual(before + 5_000);
    expect(d).toBeLessThanOrEqual(after + 5_000);
  });

  test("remaining(now) and expired(now)", () => {
    const ctx = new RequestContext();
    ctx.setDeadline(1_000);
    const d = ctx.deadline!;
    expect(ctx.remaining(d - 250)).toBe(250);
    expect(ctx.remaining(d + 250)).toBe(0);
    expect(ctx.expired(d - 1)).toBe(false);
    expect(ctx.expired(d)).toBe(true);
    expect(ctx.expired(d + 1)).toBe(true);
    expect(ctx.remaining()).toBeGreaterThan(0);
    expect(ctx.remaining()).toBeLessThanOrEqual(1_000);
    expect(ctx.expired()).toBe(false);
  });

  test("setDeadline(0) clears it", () => {
    const ctx = new RequestContext({ deadline: 100 });
    ctx.setDeadline(0);
    expect(ctx.deadline).toBeUndefined();
  });

  test("negative and non-finite deadlines are an ArgumentError", () => {
    const ctx = new RequestContext();
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => ctx.setDeadline(bad)).toThrow(ArgumentError);
    }
    expect(() => new RequestContext({ deadline: -5 })).toThrow(ArgumentError);
  });

  test("a passed deadline is expired; the deadline does not cancel by itself", async () => {
    const ctx = new RequestContext({ deadline: 5 });
    const d = ctx.deadline!;
    await new Promise<void>((resolve) => {
      const poll = () => (performance.now() > d + 1 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    expect(ctx.expired()).toBe(true);
    expect(ctx.remaining()).toBe(0);
    expect(ctx.canceled).toBe(false);
  });
});

describe("child contexts", () => {
  test("a child is cancelled with its parent, with the parent's message", () => {
    const parent = new RequestContext();
    const child = parent.child();
    const grandchild = child.child();
    parent.cancel("shutting down");
    expect(child.canceled).toBe(true);
    expect(grandchild.canceled).toBe(true);
    expect((child.signal.reason as CanceledError).message).toBe("shutting down");
    expect((grandchild.signal.reason as CanceledError).message).toBe("shutting down");
  });

  test("a child of a cancelled parent starts cancelled", () => {
    const parent = new RequestContext();
    parent.cancel("already");
    expect(parent.child().canceled).toBe(true);
  });

  test("cancelling a child does not cancel the parent or siblings", () => {
    const parent = new RequestContext();
    const a = parent.child();
    const b = parent.child();
    a.cancel();
    expect(parent.canceled).toBe(false);
    expect(b.canceled).toBe(false);
  });

  test("a child inherits the parent's deadline", () => {
    const parent = new RequestContext({ deadline: 1_000 });
    const child = parent.child();
    expect(child.deadline).toBeDefined();
    expect(child.deadline!).toBeLessThanOrEqual(parent.deadline! + 1);
    expect(child.deadline!).toBeGreaterThan(parent.deadline! - 50);
  });

  test("a child's deadline is the sooner of its own and the parent's", () => {
    const parent = new RequestContext({ deadline: 10_000 });
    const sooner = parent.child({ deadline: 100 });
    expect(sooner.deadline!).toBeLessThan(parent.deadline! - 9_000);
    const later = parent.child({ deadline: 60_000 });
    expect(later.deadline!).toBeLessThanOrEqual(parent.deadline! + 1);
  });

  test("a child of a parent without a deadline gets its own", () => {
    const parent = new RequestContext();
    expect(parent.child().deadline).toBeUndefined();
    const before = performance.now();
    const child = parent.child({ deadline: 300 });
    expect(child.deadline!).toBeGreaterThanOrEqual(before + 300);
    expect(parent.deadline).toBeUndefined();
  });

  test("a child of an expired parent is expired", async () => {
    const parent = new RequestContext({ deadline: 5 });
    const d = parent.deadline!;
    await new Promise<void>((resolve) => {
      const poll = () => (performance.now() > d + 1 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    expect(parent.expired()).toBe(true);
    const child = parent.child({ deadline: 60_000 });
    expect(child.deadline).toBeDefined();
    expect(child.expired()).toBe(true);
  });
});

describe("metadata", () => {
  test("a Map, empty by default, filled from options", () => {
    expect(new RequestContext().metadata.size).toBe(0);
    const ctx = new RequestContext({ metadata: [["route", "/items/{id}"]] });
    expect(ctx.metadata).toBeInstanceOf(Map);
    expect(ctx.metadata.get("route")).toBe("/items/{id}");
    ctx.metadata.set("retryAttempt", 2);
    expect(ctx.metadata.get("retryAttempt")).toBe(2);
  });

  test("the options' entries are copied, not shared", () => {
    const source = new Map<string, unknown>([["a", 1]]);
    const ctx = new RequestContext({ metadata: source });
    ctx.metadata.set("b", 2);
    expect(source.has("b")).toBe(false);
  });

  test("a child starts with a copy of the parent's metadata", () => {
    const parent = new RequestContext({ metadata: [["user", "ann"]] });
    const child = parent.child();
    expect(child.metadata.get("user")).toBe("ann");
    child.metadata.set("user", "bob");
    child.metadata.set("extra", true);
    expect(parent.metadata.get("user")).toBe("ann");
    expect(parent.metadata.has("extra")).toBe(false);
  });
});
