import { createHash } from "node:crypto";
import type http from "node:http";
import { ArgumentError, HTTPError, ParseError, Response, StatusError } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { ClientStream, open } from "../src/index.js";
import {
  bodyBytes,
  type Echoed,
  echo,
  headerValues,
  type RawConn,
  Resources,
  rejectionOf,
  reply,
  requestCount,
  waitFor,
  within,
} from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

function pattern(size: number, seed = 0): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed) % 251;
  return b;
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

describe("open without a handler", () => {
  test("write, closeWrite, startRead, then for await the body", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const stream = await open("POST", `${server.url}/up`, { client });
    expect(stream).toBeInstanceOf(ClientStream);
    await stream.write("hello ");
    await stream.write(new Uint8Array([0x77, 0x6f]));
    await stream.write("rld");
    await stream.closeWrite();
    const head = await stream.startRead();
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("application/json");
    expect(head.body.byteLength).toBe(0);
    expect(head.url).toBe(`${server.url}/up`);
    expect(stream.response).toBe(head);
    const e = JSON.parse((await collect(stream)).toString()) as Echoed;
    expect(e.method).toBe("POST");
    expect(bodyBytes(e).toString()).toBe("hello world");
    expect(headerValues(e, "transfer-encoding")).toEqual(["chunked"]);
  });

  test("read() returns chunks, then null at the end (and stays null)", async () => {
    const payload = pattern(300_000);
    const server = await res.serve(() => new Response(200, { body: payload }));
    const client = res.client();
    const stream = await client.open("GET", server.url);
    const parts: Buffer[] = [];
    for (;;) {
      const chunk = await stream.read();
      if (chunk === null) break;
      parts.push(Buffer.from(chunk));
    }
    expect(Buffer.concat(parts).equals(payload)).toBe(true);
    expect(await stream.read()).toBeNull();
    // A fully read body gives its connection back.
    expect(client.transport.idleConnectionCount()).toBe(1);
  });

  test("a GET with nothing written: startRead sends the request", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const stream = await client.open("GET", `${server.url}/g?x=1`, { query: { y: "2" } });
    const head = await stream.startRead();
    expect(head.status).toBe(200);
    const e = JSON.parse((await collect(stream)).toString()) as Echoed;
    expect(e.target).toBe("/g?x=1&y=2");
    expect(bodyBytes(e).byteLength).toBe(0);
  });

  test("write after closeWrite is an ArgumentError", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const stream = await client.open("POST", server.url);
    await stream.write("a");
    await stream.closeWrite();
    await stream.closeWrite(); // idempotent
    expect(await rejectionOf(stream.write("b"))).toBeInstanceOf(ArgumentError);
    await stream.startRead();
    expect(bodyBytes(JSON.parse((await collect(stream)).toString()) as Echoed).toString()).toBe("a");
  });

  test("write after startRead is an ArgumentError", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const stream = await client.open("POST", server.url);
    await stream.startRead();
    expect(await rejectionOf(stream.write("late"))).toBeInstanceOf(ArgumentError);
    await stream.closeRead();
  });

  test("write of something that is not bytes or a string is an ArgumentError", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const stream = await client.open("POST", server.url);
    expect(await rejectionOf(stream.write(42 as unknown as string))).toBeInstanceOf(ArgumentError);
    await stream.close();
  });

  test("back-pressure: writes wait for a slow reader; bytes arrive intact and in order", async () => {
    const total = 40 * 1024 * 1024;
    const chunkSize = 64 * 1024;
    let held: http.IncomingMessage | undefined;
    const server = await res.counting((req, r) => {
      held = req;
      req.pause();
      const hash = createHash("sha256");
      let length = 0;
      req.on("data", (c: Buffer) => {
        hash.update(c);
        length += c.length;
      });
      req.on("end", () => r.end(JSON.stringify({ length, sha: hash.digest("hex") })));
    });
    const client = res.client();
    const stream = await client.open("PUT", server.url);
    const expected = createHash("sha256");
    const order: number[] = [];
    const writes: Promise<void>[] = [];
    for (let i = 0; i < total / chunkSize; i++) {
      const chunk = pattern(chunkSize, i);
      expected.update(chunk);
      writes.push(stream.write(chunk).then(() => void order.push(i)));
    }
    await waitFor(() => held !== undefined && order.length > 0, 5_000, "the first writes to be taken");
    // The scenario: the server does not read for a while. The client must not take everything.
    await new Promise((r) => setTimeout(r, 300));
    expect(order.length).toBeLessThan(writes.length);
    held!.resume();
    await Promise.all(writes);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    await stream.closeWrite();
    expect((await stream.startRead()).status).toBe(200);
    const got = JSON.parse((await collect(stream)).toString()) as { length: number; sha: string };
    expect(got.length).toBe(total);
    expect(got.sha).toBe(expected.digest("hex"));
  });

  test("writes after the connection died reject instead of hanging", async () => {
    const raw = await res.raw((conn) => {
      conn
        .until((t) => t.includes("first-chunk"), 5_000)
        .then(
          () => conn.socket.resetAndDestroy(),
          () => {},
        );
    });
    const client = res.client();
    const stream = await client.open("POST", raw.url);
    await stream.write("first-chunk");
    await raw.conns[0]!.closedPromise();
    // The first writes after the reset may still be taken by the engine; within a few, one must
    // fail, and none may hang.
    let failure: unknown;
    for (let i = 0; i < 5 && failure === undefined; i++) {
      try {
        await within(stream.write(`more-${i}`), 3_000, `write ${i}`);
      } catch (e) {
        failure = e;
      }
    }
    expect(failure).toBeInstanceOf(HTTPError);
    expect(await rejectionOf(stream.startRead())).toBeInstanceOf(HTTPError);
  });

  test("writes after an early final response reject instead of hanging", async () => {
    const raw = await res.raw((conn) =>
      conn.onHead(1, () => {
        conn.write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig");
        conn.socket.end();
      }),
    );
    const client = res.client();
    const stream = await client.open("POST", raw.url);
    await stream.write("start");
    await raw.conns[0]!.closedPromise();
    // Whether a write is still taken or refused, it must settle, with one of our errors if any.
    for (let i = 0; i < 5; i++) {
      const outcome = await within(stream.write(`more-${i}`), 3_000, `write ${i}`).then(
        () => "taken",
        (e: unknown) => e,
      );
      if (outcome !== "taken") expect(outcome).toBeInstanceOf(HTTPError);
    }
    expect((await stream.startRead()).status).toBe(413);
    await stream.close();
  });

  test("a body cut short surfaces as a ParseError from the iteration", async () => {
    const raw = await res.raw((conn) =>
      conn.onHead(1, () => {
        conn.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        conn.socket.end();
      }),
    );
    const client = res.client();
    const stream = await client.open("GET", raw.url);
    await stream.startRead();
    const err = await rejectionOf(collect(stream));
    expect(err).toBeInstanceOf(ParseError);
  });

  test("close() aborts a running exchange and closes its socket", async () => {
    const raw = await res.raw((conn) =>
      conn.onHead(1, () => conn.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")),
    );
    const client = res.client();
    const stream = await client.open("GET", raw.url);
    await stream.startRead();
    await stream.close();
    await stream.close(); // idempotent
    await waitFor(() => raw.open === 0, 5_000, "the socket to close");
    expect(client.transport.idleConnectionCount()).toBe(0);
  });

  test("await using closes the stream", async () => {
    const raw = await res.raw((conn) =>
      conn.onHead(1, () => conn.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")),
    );
    const client = res.client();
    {
      await using stream = await client.open("GET", raw.url);
      await stream.startRead();
    }
    await waitFor(() => raw.open === 0, 5_000, "the socket to close");
  });

  test("a stale keep-alive connection is retried for a GET", async () => {
    const raw = await res.raw((conn: RawConn) => {
      if (conn.index === 1) {
        conn.onHead(1, () => conn.write(reply("first")));
        conn
          .until((t) => requestCount(t) >= 2, 60_000)
          .then(
            () => conn.socket.destroy(),
            () => {},
          );
      } else conn.onHead(1, () => conn.write(reply("fresh")));
    });
    const client = res.client();
    await client.get(raw.url);
    const stream = await client.open("GET", raw.url);
    expect((await stream.startRead()).status).toBe(200);
    expect((await collect(stream)).toString()).toBe("fresh");
    expect(raw.accepted).toBe(2);
  });
});

describe("open with a handler", () => {
  test("resolves to the final Response after the handler ran", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    let seen = "";
    const r = await open(
      "POST",
      server.url,
      async (stream) => {
        await stream.write("abc");
        await stream.closeWrite();
        seen = bodyBytes(JSON.parse((await collect(stream)).toString()) as Echoed).toString();
        return "the handler's value is not what open returns";
      },
      { client },
    );
    expect(seen).toBe("abc");
    expect(r).toBeInstanceOf(Response);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.url).toBe(`${server.url}/`);
  });

  test("the handler need not close the write side", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const r = await client.open("POST", server.url, async (stream) => {
      await stream.write("no closeWrite");
    });
    expect(r.status).toBe(200);
  });

  test("a handler that reads nothing: the body is discarded and the connection not reused", async () => {
    const big = pattern(2 * 1024 * 1024);
    const server = await res.counting((_req, r) => r.end(big));
    const client = res.client();
    const r = await client.open("GET", server.url, async () => {});
    expect(r.status).toBe(200);
    expect(client.transport.idleConnectionCount()).toBe(0);
    await waitFor(() => server.open === 0, 5_000, "the discarded connection to close");
    await client.get(server.url);
    expect(server.accepted).toBe(2);
  });

  test("a handler that reads everything leaves the connection reusable", async () => {
    const server = await res.counting((_req, r) => r.end("all of it"));
    const client = res.client();
    await client.open("GET", server.url, async (s) => {
      expect((await collect(s)).toString()).toBe("all of it");
    });
    await client.get(server.url);
    expect(server.accepted).toBe(1);
  });

  test("statusException: StatusError is thrown after the handler ran", async () => {
    const server = await res.serve(() => new Response(404, { body: "missing" }));
    const client = res.client();
    let ran = false;
    let body = "";
    const err = await rejectionOf(
      client.open("GET", server.url, async (s) => {
        ran = true;
        body = (await collect(s)).toString();
      }),
    );
    expect(ran).toBe(true);
    expect(body).toBe("missing");
    expect(err).toBeInstanceOf(StatusError);
    expect((err as StatusError).status).toBe(404);
    const ok = await client.open("GET", server.url, async () => {}, { statusException: false });
    expect(ok.status).toBe(404);
  });

  test("the handler's error is rethrown", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const boom = new Error("handler failed");
    const err = await rejectionOf(
      client.open("POST", server.url, async (s) => {
        await s.write("x");
        throw boom;
      }),
    );
    expect(err).toBe(boom);
  });

  test("with a failing status and a failing handler: StatusError, the handler's error as its cause", async () => {
    const server = await res.serve(() => new Response(500, { body: "err" }));
    const client = res.client();
    const boom = new Error("handler failed");
    const err = await rejectionOf(
      client.open("GET", server.url, async (s) => {
        await s.startRead();
        throw boom;
      }),
    );
    expect(err).toBeInstanceOf(StatusError);
    expect((err as StatusError).cause).toBe(boom);
  });

  test("a connection failure reaches the caller as an HTTPError", async () => {
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.socket.destroy()));
    const client = res.client();
    const err = await rejectionOf(
      client.open("GET", raw.url, async (s) => {
        await s.startRead();
      }),
    );
    expect(err).toBeInstanceOf(HTTPError);
  });
});

describe("open guard rails", () => {
  test("body, json and responseStream options are ArgumentErrors", async () => {
    const raw = await res.raw();
    const client = res.client();
    expect(await rejectionOf(client.open("POST", raw.url, { body: "x" }))).toBeInstanceOf(ArgumentError);
    expect(await rejectionOf(client.open("POST", raw.url, { json: {} }))).toBeInstanceOf(ArgumentError);
    expect(await rejectionOf(client.open("POST", raw.url, async () => {}, { body: "x" }))).toBeInstanceOf(
      ArgumentError,
    );
    const { Writable } = await import("node:stream");
    expect(await rejectionOf(client.open("GET", raw.url, { responseStream: new Writable() }))).toBeInstanceOf(
      ArgumentError,
    );
    expect(raw.accepted).toBe(0);
  });
});
