// Bad input and faults, mostly from raw-socket servers: every failure reaches the caller as one of
// core's error classes, with nothing left open and no unhandled rejection.
import net from "node:net";
import {
  ConnectError,
  DNSError,
  HTTPError,
  ParseError,
  ProtocolError,
  Response,
  TLSHandshakeError,
} from "@hyperwire/core";
import { serve } from "@hyperwire/server";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { Transport } from "../src/index.js";
import { type RawConn, Resources, rejectionOf, reply, requestCount, waitFor } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterAll(async () => {
  // Unhandled rejections are reported once the microtask queue drains: let two turns pass.
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

/** Every error a user sees is a hyperwire error with a stable HW_ code, never a raw Node error. */
function expectHyperwire(err: unknown): asserts err is HTTPError {
  expect(err).toBeInstanceOf(HTTPError);
  expect((err as HTTPError).code).toMatch(/^HW_/);
}

/** A raw server that answers the first request on each connection with `bytes`, then keeps silent. */
function answering(bytes: string | Buffer, after?: (conn: RawConn) => void) {
  return res.raw((conn) => {
    conn.onHead(1, () => {
      conn.write(bytes);
      after?.(conn);
    });
  });
}

async function refusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("dialing", () => {
  test("a refused port is a ConnectError", async () => {
    const port = await refusedPort();
    const client = res.client();
    const err = await rejectionOf(client.get(`http://127.0.0.1:${port}/`));
    expect(err).toBeInstanceOf(ConnectError);
    expectHyperwire(err);
    expect((err as ConnectError).address).toBe(`127.0.0.1:${port}`);
    expect((err as ConnectError).cause).toBeDefined();
    expect(client.transport.idleConnectionCount()).toBe(0);
  });

  test("a failed dial frees its slot under maxConnsPerHost", async () => {
    const port = await refusedPort();
    const transport = res.add(new Transport({ maxConnsPerHost: 1 }));
    const client = res.client({ transport });
    for (let i = 0; i < 3; i++) {
      expect(await rejectionOf(client.get(`http://127.0.0.1:${port}/`))).toBeInstanceOf(ConnectError);
    }
  });

  test("an unknown host is a DNSError", async () => {
    const client = res.client();
    const err = await rejectionOf(client.get("http://nonexistent.invalid/"), 30_000);
    expect(err).toBeInstanceOf(DNSError);
    expectHyperwire(err);
    expect((err as DNSError).hostname).toBe("nonexistent.invalid");
  });

  test("an untrusted certificate is a TLSHandshakeError", async () => {
    const server = await serve(() => new Response(200, { body: "secret" }), {
      host: "127.0.0.1",
      port: 0,
      tls: { cert: fixtures.untrustedCert, key: fixtures.untrustedKey },
    });
    res.add({ close: () => server.forceClose() });
    const client = res.client();
    const url = `https://127.0.0.1:${server.port}/`;
    const err = await rejectionOf(client.get(url));
    expect(err).toBeInstanceOf(TLSHandshakeError);
    expectHyperwire(err);
    // Trusting the test CA does not make a self-signed certificate trusted.
    expect(await rejectionOf(client.get(url, { tls: { ca: fixtures.ca } }))).toBeInstanceOf(
      TLSHandshakeError,
    );
  });

  test("a certificate for another name is a TLSHandshakeError", async () => {
    const server = await serve(() => new Response(200, { body: "x" }), {
      host: "127.0.0.2",
      port: 0,
      tls: { cert: fixtures.cert, key: fixtures.key },
    });
    res.add({ close: () => server.forceClose() });
    const client = res.client();
    const err = await rejectionOf(
      client.get(`https://127.0.0.2:${server.port}/`, { tls: { ca: fixtures.ca } }),
    );
    expect(err).toBeInstanceOf(TLSHandshakeError);
  });

  test("a server that closes during the TLS handshake is a TLSHandshakeError", async () => {
    const raw = await res.raw((conn) => conn.socket.destroy());
    const client = res.client();
    const err = await rejectionOf(client.get(`https://127.0.0.1:${raw.port}/`));
    expectHyperwire(err);
    expect(err).toBeInstanceOf(TLSHandshakeError);
  });
});

describe("malformed responses are ParseErrors", () => {
  test.each<[string, string]>([
    ["a garbage status line", "garbage\r\n\r\n"],
    ["a non-numeric status", "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"],
    ["an unknown version", "HTTP/9.9 200 OK\r\nContent-Length: 0\r\n\r\n"],
    [
      "conflicting Content-Lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    ],
    ["a Content-Length list that disagrees", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"],
    ["a negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
    ["a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
    ["a NUL in a header value", "HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 0\r\n\r\n"],
    ["a header line without a colon", "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n"],
  ])("%s", async (_name, bytes) => {
    const raw = await answering(bytes);
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url));
    expect(err).toBeInstanceOf(ParseError);
    expectHyperwire(err);
    await waitFor(() => raw.open === 0, 5_000, "the client to drop the connection");
    expect(client.transport.idleConnectionCount()).toBe(0);
  });

  test("a body truncated mid-way (Content-Length 100, 10 bytes, close)", async () => {
    const raw = await answering("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", (c) =>
      c.socket.end(),
    );
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url));
    expect(err).toBeInstanceOf(ParseError);
    expect((err as Error).message).toMatch(/truncated|Content-Length/);
  });

  test("a chunked body truncated mid-way", async () => {
    const raw = await answering("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234", (c) =>
      c.socket.end(),
    );
    const client = res.client();
    expect(await rejectionOf(client.get(raw.url))).toBeInstanceOf(ParseError);
  });

  test("a response head over 64 KiB", async () => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70 * 1024)}\r\nContent-Length: 0\r\n\r\n`;
    const raw = await answering(big);
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url));
    expect(err).toBeInstanceOf(ParseError);
    expect((err as Error).message).toContain("maxResponseHeaderBytes");
  });

  test("many headers adding up to more than 64 KiB", async () => {
    let head = "HTTP/1.1 200 OK\r\n";
    for (let i = 0; i < 2_000; i++) head += `X-H${i}: ${"v".repeat(40)}\r\n`;
    const raw = await answering(`${head}Content-Length: 0\r\n\r\n`);
    const client = res.client();
    expect(await rejectionOf(client.get(raw.url))).toBeInstanceOf(ParseError);
  });

  test("maxResponseHeaderBytes is honoured both ways", async () => {
    const head = `HTTP/1.1 200 OK\r\nX-Mid: ${"a".repeat(10 * 1024)}\r\nContent-Length: 2\r\n\r\nok`;
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.write(head)));
    const small = res.client({ transport: res.add(new Transport({ maxResponseHeaderBytes: 4 * 1024 })) });
    expect(await rejectionOf(small.get(raw.url))).toBeInstanceOf(ParseError);
    const roomy = res.client();
    expect((await roomy.get(raw.url)).text()).toBe("ok");
  });

  test("an interim 1xx response is skipped", async () => {
    const raw = await answering("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + reply("final"));
    const client = res.client();
    const r = await client.get(raw.url);
    expect(r.status).toBe(200);
    expect(r.text()).toBe("final");
  });

  test("bytes after a complete response do not leak into the next one", async () => {
    const raw = await res.raw((conn) => {
      if (conn.index === 1)
        conn.onHead(1, () => conn.write(`${reply("ok")}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!`));
      else conn.onHead(1, () => conn.write(reply("clean")));
    });
    const client = res.client();
    expect((await client.get(raw.url)).text()).toBe("ok");
    // The unsolicited response must never be taken as the answer to the next request.
    let next: string;
    try {
      next = (await client.get(raw.url)).text();
    } catch (e) {
      expectHyperwire(e);
      next = "failed";
    }
    expect(next).not.toBe("EVIL!");
  });
});

describe("connections that die", () => {
  test("a reset after the head rejects with an HTTPError", async () => {
    const raw = await answering("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", (c) =>
      setImmediate(() => c.socket.resetAndDestroy()),
    );
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url));
    expectHyperwire(err);
    expect(err instanceof ParseError || err instanceof ProtocolError).toBe(true);
  });

  test("a reset before any response is a ProtocolError", async () => {
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.socket.resetAndDestroy()));
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url));
    expect(err).toBeInstanceOf(ProtocolError);
    expectHyperwire(err);
  });

  test("a clean close before any response is a ProtocolError", async () => {
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.socket.end()));
    const client = res.client();
    expect(await rejectionOf(client.get(raw.url))).toBeInstanceOf(ProtocolError);
  });

  test("a POST that fails mid-flight is not retried", async () => {
    const raw = await res.raw((conn) => {
      // Read the head and part of the body, then drop the connection.
      conn
        .until((t) => t.includes("\r\n\r\n") && t.length > 2_000, 5_000)
        .then(
          () => conn.socket.resetAndDestroy(),
          () => {},
        );
    });
    const client = res.client();
    async function* body() {
      for (let i = 0; i < 1_000; i++) {
        yield Buffer.alloc(16 * 1024, 0x62);
        await new Promise((r) => setImmediate(r));
      }
    }
    const err = await rejectionOf(client.post(raw.url, { body: body() }));
    expectHyperwire(err);
    expect(raw.accepted).toBe(1);
    expect(requestCount(raw.conns.map((c) => c.received).join(""))).toBe(1);
  });

  test("a POST with a replayable body that fails mid-flight is not retried either", async () => {
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.socket.destroy()));
    const client = res.client();
    const err = await rejectionOf(client.post(raw.url, { body: "x".repeat(100_000) }));
    expectHyperwire(err);
    expect(raw.accepted).toBe(1);
  });

  test("a server that answers early and closes while the body is still being sent", async () => {
    const raw = await res.raw((conn) =>
      conn.onHead(1, () => {
        conn.write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig");
        conn.socket.end();
      }),
    );
    const client = res.client();
    async function* body() {
      for (let i = 0; i < 200; i++) {
        yield Buffer.alloc(64 * 1024);
        await new Promise((r) => setImmediate(r));
      }
    }
    // Either outcome is fine for a user (the 413 or a connection error), as long as it is ours.
    try {
      const r = await client.post(raw.url, { body: body(), statusException: false });
      expect(r.status).toBe(413);
    } catch (e) {
      expectHyperwire(e);
    }
    await waitFor(() => raw.open === 0, 5_000, "the connection to close");
  });
});
