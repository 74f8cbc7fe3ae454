import type http from "node:http";
import { ArgumentError, CanceledError, ClosedError, HTTPError, TimeoutError } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { retryAttempts, TRANSPORT_DEFAULTS, Transport, type TransportOptions } from "../src/index.js";
import { type RawConn, Resources, rejectionOf, reply, requestCount, waitFor, within } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

/** A handler that holds every response until `n` requests are waiting, then answers them all. */
function barrier(n: number): http.RequestListener {
  const waiting: http.ServerResponse[] = [];
  return (_req, r) => {
    waiting.push(r);
    if (waiting.length >= n) for (const w of waiting.splice(0)) w.end("ok");
  };
}

describe("keep-alive pooling", () => {
  test("sequential requests reuse one connection", async () => {
    const server = await res.counting();
    const client = res.client();
    for (let i = 0; i < 20; i++) expect((await client.get(`${server.url}/${i}`)).text()).toBe("ok");
    expect(server.accepted).toBe(1);
    expect(server.requests).toHaveLength(20);
  });

  test("idleConnectionCount, overall and per origin key", async () => {
    const server = await res.counting();
    const client = res.client();
    expect(client.transport.idleConnectionCount()).toBe(0);
    await client.get(server.url);
    expect(client.transport.idleConnectionCount()).toBe(1);
    expect(client.transport.idleConnectionCount(`http://127.0.0.1:${server.port}`)).toBe(1);
    expect(client.transport.idleConnectionCount("http://127.0.0.1:1")).toBe(0);
    expect(client.transport.idleConnectionCount(`https://127.0.0.1:${server.port}`)).toBe(0);
  });

  test("closeIdleConnections closes them; the server sees the sockets close", async () => {
    const server = await res.counting();
    const client = res.client();
    await Promise.all([client.get(server.url), client.get(server.url)]);
    expect(client.transport.idleConnectionCount()).toBe(2);
    client.transport.closeIdleConnections();
    expect(client.transport.idleConnectionCount()).toBe(0);
    await waitFor(() => server.open === 0, 5_000, "the server to see both sockets close");
    // The pool still works afterwards, on a new connection.
    expect((await client.get(server.url)).text()).toBe("ok");
    expect(server.accepted).toBe(3);
  });

  test("a response with Connection: close is not reused", async () => {
    const server = await res.counting((_req, r) => {
      r.setHeader("Connection", "close");
      r.end("bye");
    });
    const client = res.client();
    expect((await client.get(server.url)).text()).toBe("bye");
    expect(client.transport.idleConnectionCount()).toBe(0);
    expect((await client.get(server.url)).text()).toBe("bye");
    expect(server.accepted).toBe(2);
  });

  test("a connection the server closes while idle leaves the pool; the next request dials anew", async () => {
    const server = await res.counting();
    const client = res.client();
    await client.get(server.url);
    expect(client.transport.idleConnectionCount()).toBe(1);
    for (const s of server.sockets) s.destroy();
    await waitFor(
      () => client.transport.idleConnectionCount() === 0,
      5_000,
      "the pool to drop the closed socket",
    );
    expect((await client.get(server.url)).text()).toBe("ok");
    expect(server.accepted).toBe(2);
  });

  test("maxIdlePerHost caps the idle connections after parallel requests", async () => {
    const server = await res.counting(barrier(5));
    const transport = res.add(new Transport({ maxIdlePerHost: 3 }));
    const client = res.client({ transport });
    const replies = await Promise.all(Array.from({ length: 5 }, () => client.get(server.url)));
    expect(replies.map((r) => r.text())).toEqual(Array(5).fill("ok"));
    expect(server.accepted).toBe(5);
    expect(transport.idleConnectionCount()).toBe(3);
    await waitFor(() => server.open === 3, 5_000, "the two extra connections to close");
  });

  test("the default maxIdlePerHost is 2", async () => {
    expect(TRANSPORT_DEFAULTS.maxIdlePerHost).toBe(2);
    const server = await res.counting(barrier(4));
    const client = res.client();
    await Promise.all(Array.from({ length: 4 }, () => client.get(server.url)));
    expect(client.transport.idleConnectionCount()).toBe(2);
    await waitFor(() => server.open === 2, 5_000, "the extra connections to close");
  });

  test("maxIdleTotal caps idle connections across origins", async () => {
    const a = await res.counting();
    const b = await res.counting();
    const transport = res.add(new Transport({ maxIdleTotal: 1 }));
    const client = res.client({ transport });
    await client.get(a.url);
    await client.get(b.url);
    expect(transport.idleConnectionCount()).toBe(1);
    await waitFor(() => a.open + b.open === 1, 5_000, "one of the two connections to close");
  });
});

describe("maxConnsPerHost", () => {
  test("1 serialises parallel requests over one connection", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const server = await res.counting((_req, r) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // Answer on a later turn so that parallel requests would overlap if the cap did not hold.
      setTimeout(() => {
        inFlight--;
        r.end("ok");
      }, 10);
    });
    const transport = res.add(new Transport({ maxConnsPerHost: 1 }));
    const client = res.client({ transport });
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => client.get(`${server.url}/${i}`)));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(server.maxOpen).toBe(1);
    expect(server.accepted).toBe(1);
    expect(maxInFlight).toBe(1);
    expect(server.requests.sort()).toEqual(["GET /0", "GET /1", "GET /2", "GET /3", "GET /4", "GET /5"]);
  });

  test("2 allows two connections at most", async () => {
    const server = await res.counting((_req, r) => {
      setTimeout(() => r.end("ok"), 10);
    });
    const transport = res.add(new Transport({ maxConnsPerHost: 2, maxIdlePerHost: 2 }));
    const client = res.client({ transport });
    await Promise.all(Array.from({ length: 8 }, () => client.get(server.url)));
    expect(server.maxOpen).toBeLessThanOrEqual(2);
    expect(server.accepted).toBe(2);
  });

  describe("a waiter", () => {
    async function blockedOrigin() {
      const held: http.ServerResponse[] = [];
      const server = await res.counting((req, r) => {
        if (req.url === "/hang") held.push(r);
        else r.end("ok");
      });
      const transport = res.add(new Transport({ maxConnsPerHost: 1 }));
      const client = res.client({ transport });
      // One attempt: these tests watch the pool hand connections over, not the retry policy.
      const hanging = client.get(`${server.url}/hang`, { retry: false });
      await waitFor(() => held.length === 1, 5_000, "the first request to reach the server");
      return { server, transport, client, hanging, held };
    }

    test("is bounded by requestTimeout (TimeoutError phase request)", async () => {
      const { server, transport, client, hanging, held } = await blockedOrigin();
      const t0 = performance.now();
      const err = await rejectionOf(client.get(`${server.url}/ok`, { requestTimeout: 200 }));
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).phase).toBe("request");
      expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
      // The timed-out waiter is gone: the released connection goes idle, not to it.
      held[0]!.end("late");
      expect((await hanging).text()).toBe("late");
      expect(transport.idleConnectionCount()).toBe(1);
      expect((await client.get(`${server.url}/ok`)).text()).toBe("ok");
      expect(server.accepted).toBe(1);
    });

    test("is bounded by its signal (CanceledError)", async () => {
      const { server, transport, client, hanging, held } = await blockedOrigin();
      const ac = new AbortController();
      const waiting = client.get(`${server.url}/ok`, { signal: ac.signal });
      ac.abort();
      expect(await rejectionOf(waiting)).toBeInstanceOf(CanceledError);
      held[0]!.end("late");
      await hanging;
      expect(transport.idleConnectionCount()).toBe(1);
      expect(server.requests).toEqual(["GET /hang"]);
    });

    test("gets the connection the first request releases", async () => {
      const { server, client, hanging, held } = await blockedOrigin();
      const waiting = client.get(`${server.url}/ok`);
      held[0]!.end("first");
      expect((await hanging).text()).toBe("first");
      expect((await waiting).text()).toBe("ok");
      expect(server.accepted).toBe(1);
    });

    test("gets a new dial when the busy connection fails", async () => {
      const { server, client, hanging, held } = await blockedOrigin();
      const waiting = client.get(`${server.url}/ok`);
      held[0]!.socket?.destroy();
      expect(await rejectionOf(hanging)).toBeInstanceOf(HTTPError);
      expect((await waiting).text()).toBe("ok");
      expect(server.accepted).toBe(2);
    });

    test("gets ClosedError when the transport closes; the request in flight finishes", async () => {
      const { server, transport, client, hanging, held } = await blockedOrigin();
      const waiting = client.get(`${server.url}/ok`);
      await transport.close();
      expect(await rejectionOf(waiting)).toBeInstanceOf(ClosedError);
      held[0]!.end("finished");
      expect((await hanging).text()).toBe("finished");
      // Nothing is kept idle by a closed transport.
      expect(transport.idleConnectionCount()).toBe(0);
      await waitFor(() => server.open === 0, 5_000, "the connection to close");
    });
  });
});

describe("connections the server closes after one response", () => {
  // undici closes these sockets itself right after the response; the pool must notice.
  const cases: [string, string, Record<string, string>][] = [
    ["an HTTP/1.0 response", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", {}],
    [
      "Connection: close in a token list",
      "HTTP/1.1 200 OK\r\nConnection: close, x-other\r\nContent-Length: 2\r\n\r\nok",
      {},
    ],
    [
      "a request with Connection: close",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      { Connection: "close" },
    ],
  ];

  test.each(cases)("%s does not use up a maxConnsPerHost slot", async (_name, bytes, headers) => {
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.write(bytes)));
    const transport = res.add(new Transport({ maxConnsPerHost: 1 }));
    const client = res.client({ transport });
    for (let i = 0; i < 3; i++) {
      expect((await within(client.get(raw.url, { headers }), 5_000, `request ${i}`)).text()).toBe("ok");
    }
    expect(raw.accepted).toBe(3);
  });

  test.each(cases)("%s is not handed to a waiting POST", async (_name, bytes, headers) => {
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.write(bytes)));
    const transport = res.add(new Transport({ maxConnsPerHost: 1 }));
    const client = res.client({ transport });
    const replies = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        within(client.post(`${raw.url}/${i}`, { headers, body: "x" }), 5_000, `POST ${i}`),
      ),
    );
    expect(replies.map((r) => r.text())).toEqual(["ok", "ok", "ok", "ok"]);
    expect(raw.accepted).toBe(4);
  });
});

describe("idleTimeout", () => {
  test("closes idle connections", async () => {
    const server = await res.counting();
    const transport = res.add(new Transport({ idleTimeout: 150 }));
    const client = res.client({ transport });
    await client.get(server.url);
    expect(transport.idleConnectionCount()).toBe(1);
    await waitFor(() => server.open === 0, 5_000, "the idle connection to be closed");
    await waitFor(() => transport.idleConnectionCount() === 0, 5_000, "the pool to forget it");
    expect((await client.get(server.url)).text()).toBe("ok");
    expect(server.accepted).toBe(2);
  });
});

describe("Transport lifecycle", () => {
  test("close() rejects later requests with ClosedError", async () => {
    const server = await res.counting();
    const transport = new Transport();
    const client = res.client({ transport });
    await client.get(server.url);
    await transport.close();
    expect(transport.isOpen).toBe(false);
    expect(await rejectionOf(client.get(server.url))).toBeInstanceOf(ClosedError);
    await waitFor(() => server.open === 0, 5_000, "the idle connection to close");
    await transport.close(); // idempotent
  });

  test("close() while a request is dialing fails it with ClosedError", async () => {
    const server = await res.counting();
    const transport = new Transport();
    const client = res.client({ transport });
    const pending = client.get(server.url);
    await transport.close();
    expect(await rejectionOf(pending)).toBeInstanceOf(ClosedError);
    await waitFor(() => server.open === 0, 5_000, "the dialed socket to close");
  });

  test("await using closes it", async () => {
    let t: Transport | undefined;
    {
      await using transport = new Transport();
      t = transport;
    }
    expect(t.isOpen).toBe(false);
  });

  test.each<[string, TransportOptions]>([
    ["maxIdlePerHost 0", { maxIdlePerHost: 0 }],
    ["maxIdlePerHost -1", { maxIdlePerHost: -1 }],
    ["maxIdlePerHost 1.5", { maxIdlePerHost: 1.5 }],
    ["maxIdlePerHost '2'", { maxIdlePerHost: "2" as unknown as number }],
    ["maxIdleTotal 0", { maxIdleTotal: 0 }],
    ["maxConnsPerHost -1", { maxConnsPerHost: -1 }],
    ["maxConnsPerHost NaN", { maxConnsPerHost: Number.NaN }],
    ["idleTimeout -5", { idleTimeout: -5 }],
    ["idleTimeout Infinity", { idleTimeout: Number.POSITIVE_INFINITY }],
    ["maxResponseHeaderBytes 0", { maxResponseHeaderBytes: 0 }],
  ])("invalid option %s is an ArgumentError", (_name, options) => {
    expect(() => new Transport(options)).toThrow(ArgumentError);
  });

  test("defaults", () => {
    const t = new Transport();
    expect(t.maxIdlePerHost).toBe(2);
    expect(t.maxIdleTotal).toBe(64);
    expect(t.maxConnsPerHost).toBe(0);
    expect(t.idleTimeout).toBe(90_000);
    expect(t.maxResponseHeaderBytes).toBe(64 * 1024);
    expect(Object.isFrozen(TRANSPORT_DEFAULTS)).toBe(true);
  });
});

describe("a stale keep-alive connection", () => {
  /**
   * Connection 1 answers its first request, then destroys the socket when the second request's
   * bytes arrive, without answering. Later connections answer everything.
   */
  async function staleServer() {
    return res.raw((conn: RawConn) => {
      if (conn.index === 1) {
        conn.onHead(1, () => conn.write(reply("first")));
        conn
          .until((t) => requestCount(t) >= 2, 60_000)
          .then(
            () => conn.socket.destroy(),
            () => {},
          );
      } else {
        let answered = 0;
        conn.socket.on("data", () => {
          while (requestCount(conn.received) > answered) {
            answered++;
            conn.write(reply("fresh"));
          }
        });
      }
    });
  }

  test.each(["GET", "HEAD", "OPTIONS", "QUERY"])(
    "%s is retried once on a fresh connection",
    async (method) => {
      const raw = await staleServer();
      const client = res.client();
      expect((await client.get(raw.url)).text()).toBe("first");
      expect(client.transport.idleConnectionCount()).toBe(1);
      const r = await client.request(method, `${raw.url}/again`);
      expect(r.status).toBe(200);
      if (method !== "HEAD") expect(r.text()).toBe("fresh");
      // The silent retry, not one of the policy's (which would count, after a backoff).
      expect(retryAttempts(r)).toBe(0);
      expect(raw.accepted).toBe(2);
      expect(requestCount(raw.conns[1]!.received)).toBe(1);
    },
  );

  test("GETs to a server that closes each connection just after answering never fail", async () => {
    // Whether the pool sees the close first or the next request races it, the caller sees a response.
    const raw = await res.raw((conn: RawConn) => {
      conn.onHead(1, () => {
        conn.write(reply(`conn ${conn.index}`));
        setImmediate(() => conn.socket.destroy());
      });
    });
    const client = res.client();
    for (let i = 0; i < 20; i++) expect((await client.get(raw.url)).text()).toMatch(/^conn \d+$/);
    expect(raw.accepted).toBeGreaterThanOrEqual(20);
  });

  test("a GET whose reused socket is reset (RST) is retried too", async () => {
    const raw = await res.raw((conn: RawConn) => {
      if (conn.index === 1) {
        conn.onHead(1, () => conn.write(reply("first")));
        conn
          .until((t) => requestCount(t) >= 2, 60_000)
          .then(
            () => conn.socket.resetAndDestroy(),
            () => {},
          );
      } else conn.onHead(1, () => conn.write(reply("fresh")));
    });
    const client = res.client();
    await client.get(raw.url);
    expect((await client.get(raw.url)).text()).toBe("fresh");
  });

  test.each(["POST", "PUT", "PATCH", "DELETE"])("%s is not retried (rejects)", async (method) => {
    const raw = await staleServer();
    const client = res.client();
    expect((await client.get(raw.url)).text()).toBe("first");
    const err = await rejectionOf(
      client.request(method, `${raw.url}/again`, { body: "payload", retry: false }),
    );
    expect(err).toBeInstanceOf(HTTPError);
    expect(raw.accepted).toBe(1);
  });

  test("a GET is retried once only: a second failure rejects", async () => {
    // Connection 1 answers its first request and drops the second; connection 2 (the retry's)
    // drops its request at once.
    const raw = await res.raw((conn: RawConn) => {
      if (conn.index === 1) {
        conn.onHead(1, () => conn.write(reply("first")));
        conn
          .until((t) => requestCount(t) >= 2, 60_000)
          .then(
            () => conn.socket.destroy(),
            () => {},
          );
      } else conn.onHead(1, () => conn.socket.destroy());
    });
    const client = res.client();
    await client.get(raw.url);
    // The policy's retries are off: this is the stale-connection retry alone.
    const err = await rejectionOf(client.get(raw.url, { retry: false }));
    expect(err).toBeInstanceOf(HTTPError);
    expect(raw.accepted).toBe(2);
  });

  test("a fresh connection that closes before answering is not retried", async () => {
    const raw = await res.raw((conn: RawConn) => {
      conn.onHead(1, () => conn.socket.destroy());
    });
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url, { retry: false }));
    expect(err).toBeInstanceOf(HTTPError);
    expect(raw.accepted).toBe(1);
  });
});
