import net from "node:net";
import { ArgumentError, ClosedError, ProtocolError, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";
import { listen, type PeerAddr, type ServerStream, streamHandler } from "../src/index.js";
import { bodyOf, deferred, get, headOf, raw, Servers, statuses } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

describe("listen: reading", () => {
  test("the body is pulled with for await, and read() gives null at its end", async () => {
    const s = servers.add(
      await listen(
        async (stream) => {
          const parts: string[] = [];
          for await (const chunk of stream) parts.push(Buffer.from(chunk).toString());
          const after = await stream.read();
          stream.setHeader("Content-Type", "text/plain");
          await stream.write(
            `${stream.request.method} ${(stream.request.body as Uint8Array).byteLength} ${parts.join("")} ${after}`,
          );
        },
        { port: 0 },
      ),
    );
    const r = await get(s.url, { method: "PUT", body: "payload" });
    expect(r.body.toString()).toBe("PUT 0 payload null");
    expect(r.headers["transfer-encoding"]).toBe("chunked");
  });

  test("the first body read sends 100 Continue, not before", async () => {
    const reading = deferred();
    const s = servers.add(
      await listen(
        async (stream) => {
          await reading.promise;
          const chunk = await stream.read();
          await stream.write(`got ${Buffer.from(chunk ?? []).toString()}`);
        },
        { port: 0 },
      ),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    let text = "";
    const got = (needle: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (text.includes(needle)) {
            socket.off("data", onData);
            resolve();
          }
        };
        const onData = (c: Buffer) => {
          text += c.toString();
          check();
        };
        socket.on("data", onData);
        check();
      });
    socket.write(
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
    );
    await new Promise((r) => socket.once("connect", r));
    expect(text).toBe("");
    reading.resolve();
    await got("100 Continue");
    socket.write("hi");
    await got("got hi");
    expect(statuses(text)).toEqual([100, 200]);
    socket.destroy();
  });

  test("peerAddr() reports the client over TCP and TLS", async () => {
    const peers: (PeerAddr | null)[] = [];
    const h = async (stream: ServerStream) => {
      peers.push(stream.peerAddr());
    };
    const plain = servers.add(await listen(h, { port: 0 }));
    const secure = servers.add(await listen(h, { port: 0, tls: { key: tls.key, cert: tls.cert } }));
    await get(plain.url);
    await get(`https://localhost:${secure.port}/`, { ca: tls.ca });
    expect(peers).toHaveLength(2);
    for (const p of peers) {
      expect(p?.address).toBe("127.0.0.1");
      expect(p?.family).toBe("IPv4");
      expect(p?.port).toBeGreaterThan(0);
    }
  });

  test("the signal aborts when the peer goes away", async () => {
    const aborted = deferred<boolean>();
    const entered = deferred();
    const s = servers.add(
      await listen(
        async (stream) => {
          stream.signal.addEventListener("abort", () => aborted.resolve(true));
          const first = await stream.read();
          entered.resolve();
          expect(Buffer.from(first ?? []).toString()).toBe("abc");
          await expect(stream.read()).rejects.toBeInstanceOf(ClosedError);
        },
        { port: 0 },
      ),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    await entered.promise;
    socket.destroy();
    expect(await aborted.promise).toBe(true);
  });
});

describe("listen: writing", () => {
  test("setStatus and setHeader shape the head; after it started they are an ArgumentError", async () => {
    const errors: unknown[] = [];
    const s = servers.add(
      await listen(
        async (stream) => {
          stream.setStatus(201);
          stream.setHeader("X-One", "1");
          stream.startWrite();
          for (const f of [() => stream.setStatus(202), () => stream.setHeader("X-Two", "2")]) {
            try {
              f();
            } catch (e) {
              errors.push(e);
            }
          }
          await stream.write("body");
          await stream.closeWrite();
        },
        { port: 0 },
      ),
    );
    const r = await get(s.url);
    expect([r.status, r.headers["x-one"], r.headers["x-two"], r.body.toString()]).toEqual([
      201,
      "1",
      undefined,
      "body",
    ]);
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e).toBeInstanceOf(ArgumentError);
  });

  test("a fixed Content-Length is enforced: writing past it or ending short is a ProtocolError and closes", async () => {
    const errors: unknown[] = [];
    const s = servers.add(
      await listen(
        async (stream) => {
          stream.setHeader("Content-Length", "4");
          try {
            if (stream.request.target === "/long") {
              await stream.write("abc");
              await stream.write("de");
            } else {
              await stream.write("ab");
              await stream.closeWrite();
            }
          } catch (e) {
            errors.push(e);
            throw e;
          }
        },
        { port: 0 },
      ),
    );
    for (const path of ["/long", "/short"]) {
      const r = await raw(s.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(r.closed).toBe(true);
      expect(statuses(r.text).every((x) => x === 200)).toBe(true);
      expect(bodyOf(r.text).length).toBeLessThan(4);
    }
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e).toBeInstanceOf(ProtocolError);
  });

  test("trailers are declared and sent after a chunked body", async () => {
    const s = servers.add(
      await listen(
        async (stream) => {
          stream.addTrailer("X-Checksum", "abc");
          await stream.write("data");
          await stream.closeWrite();
        },
        { port: 0 },
      ),
    );
    const r = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(headOf(r.text)).toContain("trailer: x-checksum");
    expect(bodyOf(r.text)).toBe("4\r\ndata\r\n0\r\nX-Checksum: abc\r\n\r\n");
  });

  test("HEAD, 204 and 304 responses ignore writes; a 1xx status is an ArgumentError", async () => {
    const errors: unknown[] = [];
    const s = servers.add(
      await listen(
        async (stream) => {
          try {
            stream.setStatus(103);
          } catch (e) {
            errors.push(e);
          }
          const status = Number(stream.request.target.slice(1));
          if (status) stream.setStatus(status);
          await stream.write("ignored");
        },
        { port: 0 },
      ),
    );
    const head = await raw(s.port, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statuses(head.text)).toEqual([200]);
    expect(bodyOf(head.text)).toBe("");
    for (const status of [204, 304]) {
      const none = await raw(s.port, `GET /${status} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(statuses(none.text)).toEqual([status]);
      expect(bodyOf(none.text)).toBe("");
      expect(headOf(none.text)).not.toContain("transfer-encoding");
    }
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toBeInstanceOf(ArgumentError);
  });

  test("a handler error before the head gives 500; after it, the connection is closed", async () => {
    const s = servers.add(
      await listen(
        async (stream) => {
          stream.setHeader("X-Deferred", "1");
          if (stream.request.target === "/late") await stream.write("partial");
          throw new Error("handler failed");
        },
        { port: 0 },
      ),
    );
    const early = await raw(s.port, "GET /early HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(statuses(early.text)).toEqual([500]);
    expect(early.closed).toBe(true);
    const late = await raw(s.port, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(late.closed).toBe(true);
    expect(late.text).not.toContain("\r\n0\r\n\r\n");
    expect(statuses(late.text).every((x) => x === 200)).toBe(true);
  });

  test("an unread request body closes the connection after the response", async () => {
    const s = servers.add(
      await listen(
        async (stream) => {
          if (stream.request.target === "/started") await stream.write("not reading");
        },
        { port: 0 },
      ),
    );
    // Before the head: the response says Connection: close.
    const quiet = await raw(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc");
    expect(statuses(quiet.text)).toEqual([200]);
    expect(headOf(quiet.text)).toContain("connection: close");
    expect(quiet.closed).toBe(true);
    // After the head went out: the connection is closed once the response ended.
    const started = await raw(
      s.port,
      "POST /started HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc",
    );
    expect(statuses(started.text)).toEqual([200]);
    expect(started.text).toContain("\r\n0\r\n\r\n");
    expect(started.closed).toBe(true);
  });

  test("a handler that answered before reading still sees its read end when the peer leaves", async () => {
    const seen = deferred<unknown>();
    const answered = deferred();
    const s = servers.add(
      await listen(
        async (stream) => {
          await stream.write("answered early");
          await stream.closeWrite();
          answered.resolve();
          try {
            for await (const _ of stream);
            seen.resolve("ended");
          } catch (e) {
            seen.resolve(e);
          }
        },
        { port: 0 },
      ),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc");
    await answered.promise;
    socket.destroy();
    expect(await seen.promise).toBeInstanceOf(ClosedError);
  });

  test("write() honours back-pressure: a large response arrives whole", async () => {
    const chunk = Buffer.alloc(64 * 1024, "z");
    const s = servers.add(
      await listen(
        async (stream) => {
          for (let i = 0; i < 64; i++) await stream.write(chunk);
        },
        { port: 0 },
      ),
    );
    const r = await get(s.url);
    expect(r.body.byteLength).toBe(64 * chunk.byteLength);
  });
});

describe("streamHandler", () => {
  test("bridges a request handler (buffered body, response written)", async () => {
    const s = servers.add(
      await listen(
        streamHandler(
          (req) =>
            new Response(200, {
              headers: { "X-Len": String((req.body as Uint8Array).byteLength) },
              body: req.body,
            }),
        ),
        { port: 0 },
      ),
    );
    const r = await get(s.url, { method: "POST", body: "echo me" });
    expect([r.status, r.headers["x-len"], r.headers["content-length"], r.body.toString()]).toEqual([
      200,
      "7",
      "7",
      "echo me",
    ]);
  });

  test("applies maxBodyBytes (declared and chunked) and turns a non-Response into 500", async () => {
    const s = servers.add(
      await listen(
        streamHandler(
          (req) =>
            req.target === "/bad" ? ("nope" as unknown as Response) : new Response(200, { body: "fine" }),
          { maxBodyBytes: 5 },
        ),
        { port: 0 },
      ),
    );
    const declared = await raw(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n");
    expect(statuses(declared.text)).toEqual([413]);
    expect(declared.closed).toBe(true);
    const chunked = await raw(
      s.port,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n4\r\n5678\r\n0\r\n\r\n",
    );
    expect(statuses(chunked.text)).toEqual([413]);
    expect((await get(`${s.url}/bad`)).status).toBe(500);
    expect((await get(`${s.url}/ok`, { method: "POST", body: "12345" })).body.toString()).toBe("fine");
  });
});
