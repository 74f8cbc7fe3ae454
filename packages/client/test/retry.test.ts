import {
  ArgumentError,
  CanceledError,
  ConnectError,
  DNSError,
  ParseError,
  ProtocolError,
  RequestContext,
  RequestRetryError,
  StatusError,
  TimeoutError,
  TLSHandshakeError,
} from "@hyperwire/core";
import { H2GoAwayError, H2StreamResetError } from "@hyperwire/h2";
import { afterEach, describe, expect, test } from "vitest";
import type { ClientEvent, RetryEvent } from "../src/index.js";
import { Transport } from "../src/index.js";
import { isRecoverable, parseRetryAfter, RetryBucket, retryAttempts } from "../src/retry.js";
import { Resources, rejectionOf, reply } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

describe("RetryBucket", () => {
  test("defaults 25 ms / 20 s / 500, and the refund math", () => {
    const b = new RetryBucket();
    expect([b.backoffScaleFactor, b.maxBackoff, b.capacity]).toEqual([25, 20_000, 500]);
    const t1 = b.acquire("Example.COM")!;
    expect(b.available("example.com")).toBe(490);
    b.release(t1, 10); // an error keeps everything
    expect(b.available("example.com")).toBe(490);
    const t2 = b.acquire("example.com")!;
    b.release(t2, 5); // a retryable status keeps 5
    expect(b.available("example.com")).toBe(485);
    const t3 = b.acquire("example.com")!;
    b.release(t3, 0); // success: refunded in full
    b.release(t3, 0); // idempotent
    expect(b.available("example.com")).toBe(485);
    expect(b.available("other.example")).toBe(500);
  });

  test("an empty partition denies; a refund never passes the capacity", () => {
    const b = new RetryBucket({ capacity: 25 });
    const a = b.acquire("h")!;
    const c = b.acquire("h")!;
    expect(b.acquire("h")).toBeNull();
    b.release(a, 0);
    b.release(c, 0);
    expect(b.available("h")).toBe(25);
  });

  test("backoff is full jitter under min(scale·2^(n−1), max)", () => {
    const b = new RetryBucket({ backoffScaleFactor: 10, maxBackoff: 50 });
    for (let n = 1; n <= 8; n++) {
      for (let i = 0; i < 50; i++) {
        const d = b.backoff(n);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(Math.min(10 * 2 ** (n - 1), 50));
      }
    }
  });

  test("bad options are ArgumentErrors", () => {
    expect(() => new RetryBucket({ capacity: 0 })).toThrow(ArgumentError);
    expect(() => new RetryBucket({ maxBackoff: -1 })).toThrow(ArgumentError);
    expect(() => new RetryBucket({ backoffScaleFactor: Number.NaN })).toThrow(ArgumentError);
    expect(() => new Transport({ retryBucket: {} as RetryBucket })).toThrow(ArgumentError);
  });
});

describe("classification", () => {
  test("isRecoverable", () => {
    const reset = Object.assign(new Error("reset"), { code: "ECONNRESET" });
    expect(isRecoverable(reset)).toBe(true);
    expect(isRecoverable(new RequestRetryError(reset))).toBe(true);
    expect(isRecoverable(new ParseError("bad"))).toBe(true);
    expect(isRecoverable(new ConnectError("h:1"))).toBe(true);
    expect(isRecoverable(new ProtocolError("closed", { code: "HW_CONNECTION_CLOSED" }))).toBe(true);
    expect(isRecoverable(new TimeoutError("connect", 1, 1))).toBe(true);
    expect(isRecoverable(new TimeoutError("tls", 1, 1))).toBe(true);
    expect(isRecoverable(new H2GoAwayError(0, 1))).toBe(true);
    expect(isRecoverable(new H2StreamResetError(7))).toBe(true);
    expect(isRecoverable(new H2StreamResetError(8))).toBe(false);
    for (const phase of ["request", "readIdle", "responseHeader"] as const) {
      expect(isRecoverable(new TimeoutError(phase, 1, 1))).toBe(false);
    }
    expect(isRecoverable(new DNSError("nowhere"))).toBe(false);
    expect(isRecoverable(new TLSHandshakeError("self-signed"))).toBe(false);
    expect(isRecoverable(new CanceledError())).toBe(false);
    expect(isRecoverable(new ProtocolError("proxy said no"))).toBe(false);
    expect(isRecoverable(new Error("plain"))).toBe(false);
  });

  test("Retry-After: delta-seconds, HTTP-date, invalid", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
    expect(parseRetryAfter("3", now)).toBe(3000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:02 GMT", now)).toBe(2000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-1", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

/** A server that fails the first `failures` requests with `status`, then answers 200 "ok". */
function flaky(status: number, failures = 1, extra: Record<string, string> = {}) {
  let n = 0;
  return res.counting((req, out) => {
    req.resume();
    req.on("end", () => {
      n++;
      if (n <= failures) {
        out.writeHead(status, extra);
        out.end(`fail ${n}`);
      } else out.end("ok");
    });
  });
}

describe("retryable statuses", () => {
  test.each([408, 429, 500, 502, 503, 504])(
    "GET after %i is retried; retryAttempts counts it",
    async (status) => {
      const server = await flaky(status, 2, status === 408 ? {} : {});
      const ctx = new RequestContext();
      const r = await res.client().get(server.url, { context: ctx });
      expect(r.text()).toBe("ok");
      expect(server.requests.length).toBe(3);
      expect(retryAttempts(r)).toBe(2);
      expect(retryAttempts(ctx)).toBe(2);
    },
  );

  test("a status not in the list (404, 501) is not retried", async () => {
    for (const status of [404, 501]) {
      const server = await flaky(status, 1);
      const err = await rejectionOf(res.client().get(server.url));
      expect((err as StatusError).status).toBe(status);
      expect(server.requests.length).toBe(1);
    }
  });

  test("retries run out: the last response is thrown, its message counts the retries", async () => {
    const server = await flaky(503, 10);
    const err = (await rejectionOf(res.client().get(server.url, { retries: 2 }))) as StatusError;
    expect(err).toBeInstanceOf(StatusError);
    expect(server.requests.length).toBe(3);
    expect(err.message).toContain("after 2 retries");
    expect(retryAttempts(err.response as never)).toBe(2);
  });

  test.each([
    ["POST", {}, false],
    ["PATCH", {}, false],
    ["POST", { "Idempotency-Key": "k1" }, true],
    ["POST", { "X-Idempotency-Key": "k1" }, true],
    ["PUT", {}, true],
    ["DELETE", {}, true],
    ["QUERY", {}, true],
  ] as const)("%s %j after a 503: retried %s", async (method, headers, retried) => {
    const server = await flaky(503, 1);
    const client = res.client({ statusException: false });
    const r = await client.request(method, server.url, { headers, body: "payload" });
    expect(r.status).toBe(retried ? 200 : 503);
    expect(server.requests.length).toBe(retried ? 2 : 1);
  });

  test("retryNonIdempotent lets POST retry; a streamed body never is", async () => {
    const server = await flaky(503, 1);
    const client = res.client({ statusException: false });
    expect((await client.post(server.url, { body: "x", retryNonIdempotent: true })).status).toBe(200);
    const s2 = await flaky(503, 1);
    async function* chunks() {
      yield new TextEncoder().encode("streamed");
    }
    const r = await client.put(s2.url, { body: chunks(), retryNonIdempotent: true });
    expect(r.status).toBe(503);
    expect(s2.requests.length).toBe(1);
  });

  test("retry: false and retries: 0 do not retry; bad values are ArgumentErrors", async () => {
    const server = await flaky(503, 5);
    const client = res.client({ statusException: false });
    expect((await client.get(server.url, { retry: false })).status).toBe(503);
    expect((await client.get(server.url, { retries: 0 })).status).toBe(503);
    expect(server.requests.length).toBe(2);
    for (const retries of [-1, 1.5, Number.NaN]) {
      expect(await rejectionOf(client.get(server.url, { retries }))).toBeInstanceOf(ArgumentError);
    }
    expect(await rejectionOf(client.get(server.url, { retryBucket: 3 as never }))).toBeInstanceOf(
      ArgumentError,
    );
  });

  test("an empty bucket stops retries; retryBucket: false ignores it; a given bucket is used", async () => {
    const empty = new RetryBucket({ capacity: 5 });
    const server = await flaky(503, 1);
    const client = res.client({
      statusException: false,
      transport: res.add(new Transport({ retryBucket: empty })),
    });
    expect((await client.get(server.url)).status).toBe(503);
    expect((await client.get(server.url, { retryBucket: false })).status).toBe(200);
    const mine = new RetryBucket();
    const s2 = await flaky(503, 1);
    expect((await client.get(s2.url, { retryBucket: mine })).status).toBe(200);
    // The retried attempt succeeded: its reservation came back in full.
    expect(mine.available("127.0.0.1")).toBe(500);
    const s3 = await flaky(503, 1);
    const c2 = res.client({ statusException: false, retryBucket: mine });
    expect((await c2.get(s3.url)).status).toBe(200);
  });

  test("the bucket keeps 5 per retried 503 and 10 per retried error", async () => {
    const bucket = new RetryBucket();
    const server = await flaky(503, 3);
    const client = res.client({ statusException: false, retryBucket: bucket });
    await client.get(server.url, { retries: 2 });
    // Two retries, both answered 503: 5 kept each.
    expect(bucket.available("127.0.0.1")).toBe(490);
  });
});

describe("errors before a response", () => {
  /** Resets the first `resets` connections right after their request arrives, then answers. */
  async function resetting(resets: number) {
    return res.raw((conn) => {
      conn.onHead(1, () => {
        if (conn.index <= resets) conn.socket.resetAndDestroy();
        else conn.write(reply("ok", "Connection: close\r\n"));
      });
    });
  }

  test("a reset GET is retried; a reset POST is not", async () => {
    const raw = await resetting(1);
    expect((await res.client().get(raw.url)).text()).toBe("ok");
    expect(raw.accepted).toBe(2);
    const raw2 = await resetting(1);
    const err = await rejectionOf(res.client().post(raw2.url, { body: "x" }));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(raw2.accepted).toBe(1);
  });

  test("a refused connection is retried (ConnectError), up to the retries", async () => {
    const raw = await res.raw();
    const url = raw.url;
    await raw.close();
    const events: ClientEvent[] = [];
    const err = await rejectionOf(res.client().get(url, { retries: 2, trace: (e) => events.push(e) }));
    expect(err).toBeInstanceOf(ConnectError);
    const retries = events.filter((e): e is RetryEvent => e.type === "retry");
    expect(retries.map((e) => [e.attempt, e.nextAttempt])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(retries[0]!.error).toBeInstanceOf(ConnectError);
    expect(retries[0]!.response).toBeNull();
    expect(retries[0]!.reason).toContain("ConnectError");
  });
});

describe("retryIf", () => {
  test("true forces a retry of a 200; false suppresses a 503's; it sees attempt, request and response", async () => {
    const server = await res.counting((_req, out) => out.end("ok"));
    const seen: [number, number | undefined][] = [];
    const r = await res.client().get(server.url, {
      retryIf: (attempt, err, request, response) => {
        expect(err).toBeNull();
        expect(request.method).toBe("GET");
        seen.push([attempt, response?.status]);
        return attempt < 3;
      },
    });
    expect(r.text()).toBe("ok");
    expect(seen).toEqual([
      [1, 200],
      [2, 200],
      [3, 200],
    ]);
    const s2 = await flaky(503, 1);
    const r2 = await res.client({ statusException: false }).get(s2.url, { retryIf: () => false });
    expect(r2.status).toBe(503);
    expect(s2.requests.length).toBe(1);
  });

  test("undefined defers to the built-in rules; a failure arrives as RequestRetryError", async () => {
    const raw = await res.raw((conn) => {
      conn.onHead(1, () => {
        if (conn.index === 1) conn.socket.resetAndDestroy();
        else conn.write(reply("ok", "Connection: close\r\n"));
      });
    });
    const errors: unknown[] = [];
    const r = await res.client().post(raw.url, {
      body: "x",
      retryIf: (_attempt, err) => {
        errors.push(err);
        return err === null ? undefined : true;
      },
    });
    expect(r.text()).toBe("ok");
    expect(errors[0]).toBeInstanceOf(RequestRetryError);
    expect((errors[0] as RequestRetryError).cause).toBeInstanceOf(ProtocolError);
    const s2 = await flaky(503, 1);
    expect((await res.client().get(s2.url, { retryIf: () => undefined })).status).toBe(200);
  });

  test("true cannot retry a streamed body; another return value is an ArgumentError", async () => {
    const server = await flaky(503, 1);
    async function* chunks() {
      yield new TextEncoder().encode("s");
    }
    const client = res.client({ statusException: false });
    expect((await client.post(server.url, { body: chunks(), retryIf: () => true })).status).toBe(503);
    const s2 = await flaky(503, 1);
    const err = await rejectionOf(client.get(s2.url, { retryIf: (() => "yes") as never }));
    expect(err).toBeInstanceOf(ArgumentError);
  });
});

describe("Retry-After and the deadline", () => {
  test("Retry-After in seconds and as an HTTP-date is honoured on 429/503", async () => {
    const s1 = await flaky(429, 1, { "Retry-After": "0" });
    expect((await res.client().get(s1.url)).text()).toBe("ok");
    const s2 = await flaky(503, 1, { "Retry-After": new Date(Date.now() - 1000).toUTCString() });
    const events: ClientEvent[] = [];
    expect((await res.client().get(s2.url, { trace: (e) => events.push(e) })).text()).toBe("ok");
    const retry = events.find((e): e is RetryEvent => e.type === "retry")!;
    expect(retry.delayMs).toBe(0);
    expect(retry.reason).toBe("status 503");
  });

  test("a Retry-After that would pass the deadline ends the call with the last response", async () => {
    const server = await flaky(503, 5, { "Retry-After": "30" });
    const err = await rejectionOf(res.client().get(server.url, { requestTimeout: 2_000 }));
    expect(err).toBeInstanceOf(StatusError);
    expect(server.requests.length).toBe(1);
  });

  test("cancelling during the backoff rejects with CanceledError and sends nothing more", async () => {
    const server = await flaky(503, 5, { "Retry-After": "10" });
    const ctl = new AbortController();
    const p = res.client().get(server.url, {
      signal: ctl.signal,
      trace: (e) => {
        if (e.type === "retry") ctl.abort();
      },
    });
    expect(await rejectionOf(p)).toBeInstanceOf(CanceledError);
    expect(server.requests.length).toBe(1);
  });

  test("respectRetryAfter: false uses the jitter instead", async () => {
    const server = await flaky(503, 1, { "Retry-After": "30" });
    const r = await res.client().get(server.url, { respectRetryAfter: false, requestTimeout: 5_000 });
    expect(r.text()).toBe("ok");
  });
});
