import { CanceledError, RequestContext, TimeoutError, type TimeoutPhase } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { type RawConn, type RawServer, Resources, rejectionOf, reply, waitFor } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

function expectTimeout(err: unknown, phase: TimeoutPhase, timeoutMs: number): void {
  expect(err).toBeInstanceOf(TimeoutError);
  const t = err as TimeoutError;
  expect(t.phase).toBe(phase);
  expect(t.timeoutMs).toBe(timeoutMs);
  expect(t.code).toBe("HW_TIMEOUT");
  expect(t.message).toContain(phase);
}

/** The server's side of every connection closed: nothing left open by the client. */
function noLeak(raw: RawServer): Promise<void> {
  return waitFor(() => raw.open === 0, 5_000, "the client to close its connection");
}

/** A raw server that reads requests and never answers. */
const silent = () => res.raw();

describe("each phase fires, labelled", () => {
  test("connectTimeout during the TLS handshake: phase tls", async () => {
    const raw = await silent(); // accepts TCP, never speaks TLS
    const client = res.client();
    const t0 = performance.now();
    const err = await rejectionOf(
      client.get(`https://127.0.0.1:${raw.port}/`, { connectTimeout: 200, retry: false }),
    );
    expectTimeout(err, "tls", 200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    expect((err as TimeoutError).elapsedMs).toBeGreaterThanOrEqual(150);
    expect(raw.accepted).toBe(1);
    await noLeak(raw);
  });

  test("connectTimeout from the client's defaults", async () => {
    const raw = await silent();
    const client = res.client({ connectTimeout: 150 });
    expectTimeout(await rejectionOf(client.get(`https://127.0.0.1:${raw.port}/`)), "tls", 150);
    await noLeak(raw);
  });

  test("responseHeaderTimeout: the request was read, no head comes", async () => {
    const raw = await silent();
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url, { responseHeaderTimeout: 200 }));
    expectTimeout(err, "responseHeader", 200);
    expect(raw.conns[0]!.received).toMatch(/^GET \/ HTTP\/1\.1\r\n/);
    await noLeak(raw);
    expect(client.transport.idleConnectionCount()).toBe(0);
  });

  test("responseHeaderTimeout after a streamed body: counted from the end of the body", async () => {
    const raw = await silent();
    const client = res.client();
    async function* body() {
      yield "a";
      yield "b";
    }
    const err = await rejectionOf(client.post(raw.url, { body: body(), responseHeaderTimeout: 200 }));
    expectTimeout(err, "responseHeader", 200);
    await noLeak(raw);
  });

  test("readIdleTimeout: the head arrives, the body stalls", async () => {
    const raw = await res.raw((conn) => {
      conn.onHead(1, () => conn.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    });
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url, { readIdleTimeout: 200 }));
    expectTimeout(err, "readIdle", 200);
    await noLeak(raw);
  });

  test("readIdleTimeout covers the head when responseHeaderTimeout is unset", async () => {
    const raw = await silent();
    const client = res.client();
    expectTimeout(await rejectionOf(client.get(raw.url, { readIdleTimeout: 200 })), "readIdle", 200);
    await noLeak(raw);
  });

  test("with both set, the shorter one fires first", async () => {
    const raw = await silent();
    const client = res.client();
    expectTimeout(
      await rejectionOf(client.get(raw.url, { readIdleTimeout: 150, responseHeaderTimeout: 5_000 })),
      "readIdle",
      150,
    );
    expectTimeout(
      await rejectionOf(client.get(raw.url, { readIdleTimeout: 5_000, responseHeaderTimeout: 150 })),
      "responseHeader",
      150,
    );
    await noLeak(raw);
  });

  test("readIdleTimeout is re-armed by every chunk: a steady trickle passes", async () => {
    const body = "x".repeat(20);
    const raw = await res.raw((conn) => {
      conn.onHead(1, () => {
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
        let i = 0;
        const timer = setInterval(() => {
          if (i >= body.length || conn.closed) clearInterval(timer);
          else conn.write(body[i++]!);
        }, 20);
      });
    });
    const client = res.client();
    // 20 chunks 20 ms apart take ~400 ms in all, well over the 150 ms idle limit.
    const r = await client.get(raw.url, { readIdleTimeout: 150 });
    expect(r.text()).toBe(body);
  });

  test("requestTimeout: a trickle that keeps readIdle happy but passes the overall deadline", async () => {
    const raw = await res.raw((conn) => {
      conn.onHead(1, () => {
        conn.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        const timer = setInterval(() => {
          if (conn.closed) clearInterval(timer);
          else conn.write("x");
        }, 20);
      });
    });
    const client = res.client();
    const t0 = performance.now();
    const err = await rejectionOf(client.get(raw.url, { readIdleTimeout: 300, requestTimeout: 400 }));
    expectTimeout(err, "request", 400);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(350);
    await noLeak(raw);
  });

  test("writeIdleTimeout: a streamed body to a server that never reads", async () => {
    const raw = await res.raw((conn) => conn.socket.pause());
    const client = res.client();
    let produced = 0;
    let finalised = false;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    async function* endless() {
      try {
        while (produced < 1024 * 1024 * 1024) {
          produced += chunk.length;
          yield chunk;
        }
      } finally {
        finalised = true;
      }
    }
    const err = await rejectionOf(client.post(raw.url, { body: endless(), writeIdleTimeout: 300 }));
    expectTimeout(err, "writeIdle", 300);
    expect(produced).toBeLessThan(1024 * 1024 * 1024);
    // A paused socket sees no EOF: let the server read what is queued, then it must see the close.
    for (const c of raw.conns) c.socket.resume();
    await noLeak(raw);
    await waitFor(() => finalised, 5_000, "the body generator to be finalised");
  });

  test("writeIdleTimeout does not count the time the body source takes", async () => {
    const raw = await res.raw((conn) => {
      conn
        .until((t) => t.endsWith("0\r\n\r\n"), 10_000)
        .then(
          () => conn.write(reply("got it")),
          () => {},
        );
    });
    const client = res.client();
    async function* slowSource() {
      for (let i = 0; i < 3; i++) {
        // The producer is slow, the socket is not: this must not look like a write stall.
        await new Promise((r) => setTimeout(r, 150));
        yield `part${i}`;
      }
    }
    const r = await client.post(raw.url, { body: slowSource(), writeIdleTimeout: 80 });
    expect(r.text()).toBe("got it");
  });
});

describe("cancellation", () => {
  test("a context deadline is a TimeoutError, phase request", async () => {
    const raw = await silent();
    const client = res.client();
    const context = new RequestContext({ deadline: 200 });
    const err = await rejectionOf(client.get(raw.url, { context }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe("request");
    await noLeak(raw);
  });

  test("the sooner of a context deadline and requestTimeout fires", async () => {
    const raw = await silent();
    const client = res.client();
    const context = new RequestContext({ deadline: 10_000 });
    const t0 = performance.now();
    const err = await rejectionOf(client.get(raw.url, { context, requestTimeout: 200 }));
    expectTimeout(err, "request", 200);
    expect(performance.now() - t0).toBeLessThan(5_000);
    await noLeak(raw);
  });

  test("signal abort: CanceledError and the server sees the socket closed", async () => {
    const raw = await silent();
    const client = res.client();
    const ac = new AbortController();
    const p = client.get(raw.url, { signal: ac.signal });
    const conn = await raw.connection(1);
    await conn.head();
    ac.abort();
    const err = await rejectionOf(p);
    expect(err).toBeInstanceOf(CanceledError);
    expect((err as CanceledError).code).toBe("HW_CANCELED");
    await conn.closedPromise();
    expect(client.transport.idleConnectionCount()).toBe(0);
  });

  test("signal abort while the body is arriving", async () => {
    const raw = await res.raw((conn) => {
      conn.onHead(1, () => conn.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part"));
    });
    const client = res.client();
    const ac = new AbortController();
    const p = client.get(raw.url, {
      signal: ac.signal,
      trace: (e) => {
        if (e.type === "responseHead") ac.abort();
      },
    });
    expect(await rejectionOf(p)).toBeInstanceOf(CanceledError);
    await noLeak(raw);
  });

  test("an already aborted signal rejects with CanceledError", async () => {
    const raw = await silent();
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url, { signal: AbortSignal.abort() }));
    expect(err).toBeInstanceOf(CanceledError);
    await noLeak(raw);
    for (const c of raw.conns) expect(c.received).toBe("");
  });

  test("the abort reason's message is kept", async () => {
    const raw = await silent();
    const client = res.client();
    const ac = new AbortController();
    const p = client.get(raw.url, { signal: ac.signal });
    await (await raw.connection(1)).head();
    ac.abort(new Error("user pressed stop"));
    const err = await rejectionOf(p);
    expect(err).toBeInstanceOf(CanceledError);
    expect((err as Error).message).toBe("user pressed stop");
    await noLeak(raw);
  });

  test('context.cancel("msg") is a CanceledError with message "msg"', async () => {
    const raw = await silent();
    const client = res.client();
    const context = new RequestContext();
    const p = client.get(raw.url, { context });
    await (await raw.connection(1)).head();
    context.cancel("msg");
    const err = await rejectionOf(p);
    expect(err).toBeInstanceOf(CanceledError);
    expect((err as Error).message).toBe("msg");
    await noLeak(raw);
  });

  test("cancelling during the TLS handshake closes the socket", async () => {
    const raw = await silent();
    const client = res.client();
    const ac = new AbortController();
    const p = client.get(`https://127.0.0.1:${raw.port}/`, { signal: ac.signal });
    await raw.connection(1);
    ac.abort();
    expect(await rejectionOf(p)).toBeInstanceOf(CanceledError);
    await noLeak(raw);
  });

  test("a finished request leaves no timer that fires later", async () => {
    const raw = await res.raw((conn) => {
      let answered = 0;
      conn.socket.on("data", () => {
        while ((conn.received.match(/\r\n\r\n/g) ?? []).length > answered) {
          answered++;
          conn.write(reply("ok"));
        }
      });
    });
    const client = res.client();
    const ac = new AbortController();
    const context = new RequestContext({ deadline: 100 });
    const r = await client.get(raw.url, {
      signal: ac.signal,
      context,
      requestTimeout: 100,
      readIdleTimeout: 100,
      responseHeaderTimeout: 100,
    });
    expect(r.text()).toBe("ok");
    // Aborting afterwards, and the deadline passing, must not disturb the pooled connection.
    ac.abort();
    context.cancel("late");
    await new Promise((r) => setTimeout(r, 250)); // the scenario: time passes beyond every deadline
    expect(client.transport.idleConnectionCount()).toBe(1);
    expect((await client.get(raw.url)).text()).toBe("ok");
    expect(raw.accepted).toBe(1);
  });
});

describe("Expect: 100-continue", () => {
  test("the body waits for 100 Continue and is then sent", async () => {
    const raw = await res.raw((conn: RawConn) => {
      conn.onHead(1, () => {
        conn.write("HTTP/1.1 100 Continue\r\n\r\n");
        conn
          .until((t) => t.endsWith("payload"), 5_000)
          .then(
            () => conn.write(reply("done")),
            () => {},
          );
      });
    });
    const client = res.client();
    const r = await client.post(raw.url, {
      body: "payload",
      headers: { Expect: "100-continue" },
      expectContinueTimeout: 10_000,
    });
    expect(r.text()).toBe("done");
    const received = raw.conns[0]!.received;
    expect(received.toLowerCase()).toContain("expect: 100-continue");
    expect(received).toMatch(/\r\n\r\npayload$/);
  });

  test("without 100 Continue the body goes after expectContinueTimeout", async () => {
    let headAt = 0;
    let bodyAt = 0;
    const raw = await res.raw((conn: RawConn) => {
      conn.onHead(1, () => {
        headAt = performance.now();
        conn
          .until((t) => t.endsWith("payload"), 5_000)
          .then(
            () => {
              bodyAt = performance.now();
              conn.write(reply("done"));
            },
            () => {},
          );
      });
    });
    const client = res.client();
    const r = await client.post(raw.url, {
      body: "payload",
      headers: { Expect: "100-continue" },
      expectContinueTimeout: 300,
    });
    expect(r.text()).toBe("done");
    expect(bodyAt - headAt).toBeGreaterThanOrEqual(200);
  });

  test("a final response before 100 Continue suppresses the body", async () => {
    const raw = await res.raw((conn: RawConn) => {
      conn.onHead(1, () => conn.write("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope"));
    });
    const client = res.client();
    const r = await client.post(raw.url, {
      body: "payload",
      headers: { Expect: "100-continue" },
      expectContinueTimeout: 2_000,
      statusException: false,
    });
    expect(r.status).toBe(417);
    expect(r.text()).toBe("nope");
    await noLeak(raw);
    expect(raw.conns[0]!.received).not.toContain("payload");
  });
});
