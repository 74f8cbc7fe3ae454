import { execFile } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";
import { type Request, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";
import { listen, serve } from "../src/index.js";
import { bodyOf, deferred, get, headOf, raw, Servers, statuses, waitFor } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

const hello = (req: Request) =>
  new Response(200, { headers: { "Content-Type": "text/plain" }, body: `hello ${req.method} ${req.target}` });

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

describe("serve: requests and responses", () => {
  test("a GET gets the handler's response with Content-Length and Date", async () => {
    const s = servers.add(await serve(hello, { port: 0 }));
    const r = await get(`${s.url}/a?b=1`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("hello GET /a?b=1");
    expect(r.headers["content-length"]).toBe(String("hello GET /a?b=1".length));
    expect(r.headers["content-type"]).toBe("text/plain");
    expect(Date.parse(r.headers.date ?? "")).toBeGreaterThan(0);
  });

  test("a string body is sent as UTF-8 with its byte length; HEAD gets the length and no body", async () => {
    const text = "héllo € 🌍 \ud800 end";
    const bytes = Buffer.from(text, "utf8");
    const s = servers.add(
      await serve(() => new Response(200, { body: text, headers: { "Content-Type": "text/plain" } }), {
        port: 0,
      }),
    );
    const r = await get(s.url);
    expect(r.headers["content-length"]).toBe(String(bytes.byteLength));
    expect(r.body.equals(bytes)).toBe(true);
    const reply = await raw(s.port, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(reply.text).toMatch(new RegExp(`content-length: ${bytes.byteLength}\r\n`, "i"));
    expect(reply.text.endsWith("\r\n\r\n")).toBe(true);
    expect(reply.closed).toBe(true);
  });

  test("a string body with a Content-Length that does not match its bytes is a 500", async () => {
    const s = servers.add(
      await serve(() => new Response(200, { body: "é", headers: { "Content-Length": "1" } }), { port: 0 }),
    );
    const r = await get(s.url);
    expect(r.status).toBe(500);
  });

  test("a streamed body is closed when the head cannot be sent (node:http refuses the reason)", async () => {
    let closed = false;
    const body: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: false, value: Buffer.from("never") }),
        return: async () => {
          closed = true;
          return { done: true, value: undefined };
        },
      }),
    };
    const s = servers.add(
      await serve(
        (req) => {
          // A control character in the reason phrase (set after construction, which checks it):
          // node:http's writeHead throws.
          const res = new Response(200, { body: req.target === "/stream" ? body : "bytes" });
          res.reason = "O\u0001K";
          return res;
        },
        { port: 0 },
      ),
    );
    expect((await get(`${s.url}/stream`)).status).toBe(500);
    await waitFor(() => closed, 2_000, "the body's return()");
    expect((await get(`${s.url}/bytes`)).status).toBe(500);
    // The server is still there.
    expect((await get(`${s.url}/bytes`)).status).toBe(500);
  });

  test("the request carries the headers, version and a live signal", async () => {
    let seen: Request | undefined;
    const s = servers.add(
      await serve(
        (req) => {
          seen = req;
          return new Response(204);
        },
        { port: 0 },
      ),
    );
    const r = await get(`${s.url}/x`, { headers: { "X-Thing": "one" } });
    expect(r.status).toBe(204);
    expect(seen?.headers.get("x-thing")).toBe("one");
    expect(seen?.version).toBe("1.1");
    expect(seen?.signal.aborted).toBe(false);
    expect((seen!.body as Uint8Array).byteLength).toBe(0);
  });

  test("a request body is buffered before the handler runs (Content-Length and chunked)", async () => {
    const s = servers.add(
      await serve((req) => new Response(200, { body: `${req.body instanceof Uint8Array}:${req.text()}` }), {
        port: 0,
      }),
    );
    expect((await get(s.url, { method: "POST", body: "abc" })).body.toString()).toBe("true:abc");
    const reply = await raw(
      s.port,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    expect(statuses(reply.text)).toEqual([200]);
    expect(bodyOf(reply.text)).toBe("true:abcde");
  });

  test("async handlers, handle() objects, WHATWG responses and fetch() objects are served", async () => {
    const a = servers.add(await serve(async () => new Response(201, { body: "async" }), { port: 0 }));
    const b = servers.add(await serve({ handle: () => new Response(202, { body: "object" }) }, { port: 0 }));
    const c = servers.add(
      await serve(() => new globalThis.Response("web", { status: 203, headers: { "X-Web": "1" } }), {
        port: 0,
      }),
    );
    const d = servers.add(
      await serve(
        {
          fetch: async (req: globalThis.Request) =>
            new globalThis.Response(`${req.method} ${req.url} ${await req.text()}`, { status: 200 }),
        },
        { port: 0 },
      ),
    );
    expect((await get(a.url)).status).toBe(201);
    expect((await get(b.url)).body.toString()).toBe("object");
    const rc = await get(c.url);
    expect([rc.status, rc.headers["x-web"], rc.body.toString()]).toEqual([203, "1", "web"]);
    const rd = await get(`${d.url}/p?q=1`, { method: "POST", body: "hi" });
    expect(rd.body.toString()).toBe(`POST http://${d.address}/p?q=1 hi`);
  });

  test("an async iterable body is streamed chunked, with declared trailers", async () => {
    const s = servers.add(
      await serve(() => new Response(200, { body: chunks("ab", "", "cd"), trailers: { "X-Sum": "4" } }), {
        port: 0,
      }),
    );
    const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const head = headOf(reply.text);
    expect(head).toContain("transfer-encoding: chunked");
    expect(head).toContain("trailer: x-sum");
    expect(bodyOf(reply.text)).toBe("2\r\nab\r\n2\r\ncd\r\n0\r\nX-Sum: 4\r\n\r\n");
  });

  test("a streamed body with a Content-Length is sent as is when it matches", async () => {
    const s = servers.add(
      await serve(() => new Response(200, { headers: { "Content-Length": "4" }, body: chunks("ab", "cd") }), {
        port: 0,
      }),
    );
    const r = await get(s.url);
    expect([r.headers["content-length"], r.headers["transfer-encoding"], r.body.toString()]).toEqual([
      "4",
      undefined,
      "abcd",
    ]);
  });

  test("HEAD, 204 and 304 never carry a body; HEAD keeps the Content-Length", async () => {
    const s = servers.add(
      await serve(
        (req) =>
          req.target === "/204"
            ? new Response(204, { body: "nope" })
            : req.target === "/304"
              ? new Response(304, { body: chunks("nope") })
              : new Response(200, { body: "twelve bytes" }),
        { port: 0 },
      ),
    );
    const head = await raw(s.port, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(headOf(head.text)).toContain("content-length: 12");
    expect(bodyOf(head.text)).toBe("");
    for (const path of ["/204", "/304"]) {
      const reply = await raw(s.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(statuses(reply.text)).toEqual([Number(path.slice(1))]);
      expect(bodyOf(reply.text)).toBe("");
    }
  });

  test("every response carries a Date header: handler, streamed, stream-handler and error responses", async () => {
    const s = servers.add(
      await serve(
        (req) => {
          if (req.target === "/throw") throw new Error("boom");
          return new Response(200, { body: req.target === "/stream" ? chunks("a", "b") : "bytes" });
        },
        { port: 0, maxBodyBytes: 4, readHeaderTimeout: 200 },
      ),
    );
    const l = servers.add(await listen((stream) => stream.write("streamed"), { port: 0 }));
    const close = "Connection: close\r\n";
    const exchanges: [number, string | string[], number][] = [
      [s.port, `GET /bytes HTTP/1.1\r\nHost: x\r\n${close}\r\n`, 200],
      [s.port, `GET /stream HTTP/1.1\r\nHost: x\r\n${close}\r\n`, 200],
      [s.port, "GET /throw HTTP/1.1\r\nHost: x\r\n\r\n", 500],
      [s.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Bad : 1\r\n\r\n", 400],
      [s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", 413],
      [s.port, "GET / HTTP/1.1\r\nHo", 408],
      [l.port, `GET / HTTP/1.1\r\nHost: x\r\n${close}\r\n`, 200],
    ];
    const before = Date.now() - 1_000;
    for (const [port, bytes, status] of exchanges) {
      const reply = await raw(port, bytes);
      expect(statuses(reply.text)).toEqual([status]);
      const date = /^date: (.+)$/m.exec(headOf(reply.text))?.[1];
      expect(date, `Date in the ${status} reply`).toMatch(
        /^[a-z]{3}, \d{2} [a-z]{3} \d{4} \d{2}:\d{2}:\d{2} gmt$/,
      );
      expect(Date.parse(date!)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    }
  });

  test("a 1xx status from a handler is not sent as the answer: 500, and the connection stays in step", async () => {
    const s = servers.add(
      await serve(
        (req) =>
          req.target === "/early"
            ? new Response(103, { headers: { Link: "</s.css>" }, body: "nope" })
            : new Response(200, { body: "second" }),
        { port: 0 },
      ),
    );
    // Sent as is, the 103 would be taken by the client as interim and the next response as this one's.
    const reply = await raw(
      s.port,
      "GET /early HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    expect(statuses(reply.text)).toEqual([500]);
    expect(reply.text).not.toContain("nope");
    expect(reply.text).not.toContain("second");
    expect(reply.closed).toBe(true);
  });

  test("keep-alive serves several requests on one connection; HTTP/1.0 and Connection: close end it", async () => {
    const s = servers.add(await serve(hello, { port: 0 }));
    const two = await raw(s.port, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n", {
      until: (t) => t.includes("hello GET /2"),
    });
    expect(statuses(two.text)).toEqual([200, 200]);
    expect(two.closed).toBe(false);
    const old = await raw(s.port, "GET /old HTTP/1.0\r\n\r\n");
    expect(old.closed).toBe(true);
    expect(old.text).toMatch(/^HTTP\/1\.1 200/);
    const close = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(close.closed).toBe(true);
    expect(headOf(close.text)).toContain("connection: close");
  });
});

describe("serve: request details", () => {
  test("request trailers of a chunked body reach the handler", async () => {
    const s = servers.add(
      await serve((req) => new Response(200, { body: `${req.text()}|${req.trailers.get("x-digest")}` }), {
        port: 0,
      }),
    );
    const reply = await raw(
      s.port,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\nX-Digest: abc\r\n\r\n",
    );
    expect(bodyOf(reply.text)).toBe("hi|abc");
  });

  test("pipelined requests in flight all see their signal abort when the peer leaves", async () => {
    const aborted: string[] = [];
    const s = servers.add(
      await serve(
        (req) => {
          const signal = req.signal;
          return new Promise<Response>((resolve) => {
            signal.addEventListener("abort", () => {
              aborted.push(req.target);
              resolve(new Response(200, { body: "late" }));
            });
          });
        },
        { port: 0 },
      ),
    );
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    await waitFor(() => s.activeRequests === 3, 2_000, "three requests in flight on one connection");
    socket.destroy();
    await waitFor(() => aborted.length === 3, 2_000, "every handler's signal to abort");
    expect(aborted.sort()).toEqual(["/a", "/b", "/c"]);
    await waitFor(() => s.activeRequests === 0 && s.connections === 0, 2_000, "nothing left in flight");
  });

  test("a signal first looked at after the peer left is already aborted; after the response it is not", async () => {
    const gone = deferred();
    const results: boolean[] = [];
    let kept: Request | undefined;
    const s = servers.add(
      await serve(
        async (req) => {
          if (req.target === "/wait") {
            await gone.promise;
            results.push(req.signal.aborted);
          } else kept = req;
          return new Response(200, { body: "x" });
        },
        { port: 0 },
      ),
    );
    expect((await get(`${s.url}/done`)).status).toBe(200);
    await waitFor(() => s.connections === 0, 2_000, "the first connection to close");
    expect(kept?.signal.aborted).toBe(false);
    const socket = net.connect(s.port, "127.0.0.1");
    socket.write("GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => s.activeRequests === 1, 2_000, "the request to start");
    socket.destroy();
    await waitFor(() => s.connections === 0, 2_000, "the server to see the close");
    gone.resolve();
    await waitFor(() => results.length === 1, 2_000, "the handler to finish");
    expect(results).toEqual([true]);
  });
});

describe("serve: error statuses", () => {
  test("a throwing handler gives 500 and closes the connection", async () => {
    const s = servers.add(
      await serve(
        () => {
          throw new Error("boom");
        },
        { port: 0 },
      ),
    );
    const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(statuses(reply.text)).toEqual([500]);
    expect(reply.closed).toBe(true);
  });

  test("a rejecting handler and a non-Response result give 500", async () => {
    const a = servers.add(await serve(async () => Promise.reject(new Error("no")), { port: 0 }));
    const b = servers.add(await serve((() => "text") as unknown as () => Response, { port: 0 }));
    expect((await get(a.url)).status).toBe(500);
    expect((await get(b.url)).status).toBe(500);
  });

  test("a body that fails after the head was sent closes the connection without a final chunk", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from("partial");
      throw new Error("producer failed");
    }
    const s = servers.add(await serve(() => new Response(200, { body: failing() }), { port: 0 }));
    const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(reply.closed).toBe(true);
    // Whatever got out before the failure, the message is never completed nor followed by a 500.
    expect(reply.text).not.toContain("\r\n0\r\n\r\n");
    expect(statuses(reply.text).every((s) => s === 200)).toBe(true);
  });

  test("a streamed body that breaks its Content-Length closes the connection", async () => {
    const s = servers.add(
      await serve(
        (req) =>
          new Response(200, {
            headers: { "Content-Length": "3" },
            body: req.target === "/long" ? chunks("ab", "cd") : chunks("a"),
          }),
        { port: 0 },
      ),
    );
    for (const path of ["/long", "/short"]) {
      const reply = await raw(s.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(reply.closed).toBe(true);
      expect(bodyOf(reply.text).length).toBeLessThan(3);
    }
  });

  test("a bytes body that contradicts its Content-Length gives 500", async () => {
    const s = servers.add(
      await serve(() => new Response(200, { headers: { "Content-Length": "99" }, body: "short" }), {
        port: 0,
      }),
    );
    expect((await get(s.url)).status).toBe(500);
  });

  test("Expect: 100-continue is answered before the body; a declared body over the limit gets 413 instead", async () => {
    const s = servers.add(
      await serve((req) => new Response(200, { body: req.body }), { port: 0, maxBodyBytes: 10 }),
    );
    const ok = await raw(
      s.port,
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
      { until: (t) => t.includes("100 Continue") },
    );
    expect(statuses(ok.text)).toEqual([100]);
    const big = await raw(
      s.port,
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    expect(statuses(big.text)).toEqual([413]);
    expect(big.closed).toBe(true);
    const full = await raw(s.port, [
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
      "abc",
    ]);
    expect(statuses(full.text)).toEqual([100, 200]);
    expect(full.text.endsWith("abc")).toBe(true);
  });

  test("any other Expect gets 417", async () => {
    const s = servers.add(await serve(hello, { port: 0 }));
    const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\nExpect: the-unexpected\r\n\r\n");
    expect(statuses(reply.text)).toEqual([417]);
    expect(reply.closed).toBe(true);
  });

  test("maxBodyBytes: 413 on the declared length before reading, and on a chunked body that grows past it", async () => {
    let calls = 0;
    const s = servers.add(
      await serve(
        () => {
          calls++;
          return new Response(200);
        },
        { port: 0, maxBodyBytes: 8 },
      ),
    );
    const declared = await raw(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n");
    expect(statuses(declared.text)).toEqual([413]);
    const chunked = await raw(
      s.port,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n",
    );
    expect(statuses(chunked.text)).toEqual([413]);
    expect(calls).toBe(0);
    const unlimited = servers.add(
      await serve((req) => new Response(200, { body: String((req.body as Uint8Array).byteLength) }), {
        port: 0,
        maxBodyBytes: 0,
      }),
    );
    expect((await get(unlimited.url, { method: "POST", body: Buffer.alloc(100_000) })).body.toString()).toBe(
      "100000",
    );
  });

  test("readTimeout: a body that stops arriving gets 408", async () => {
    const s = servers.add(await serve(hello, { port: 0, readTimeout: 150 }));
    const reply = await raw(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    expect(statuses(reply.text)).toEqual([408]);
    expect(reply.closed).toBe(true);
    expect(reply.elapsed).toBeLessThan(2_000);
  });

  test("idleTimeout closes a keep-alive connection that stays idle", async () => {
    const s = servers.add(await serve(hello, { port: 0, idleTimeout: 100 }));
    const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(statuses(reply.text)).toEqual([200]);
    expect(reply.closed).toBe(true);
    expect(reply.elapsed).toBeLessThan(900);
  });
});

describe("serve: interop", () => {
  test("curl talks to it (GET, POST with Expect: 100-continue)", async () => {
    const s = servers.add(
      await serve(
        (req) => new Response(200, { body: `${req.method}:${(req.body as Uint8Array).byteLength}` }),
        { port: 0 },
      ),
    );
    const run = promisify(execFile);
    const a = await run("curl", ["-s", "-i", `${s.url}/`]);
    expect(a.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(a.stdout.endsWith("GET:0")).toBe(true);
    const b = await run("curl", [
      "-s",
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      "x".repeat(5000),
      `${s.url}/`,
    ]);
    expect(b.stdout).toBe("POST:5000");
  });

  test("https with the tls option", async () => {
    const s = servers.add(await serve(hello, { port: 0, tls: { key: tls.key, cert: tls.cert } }));
    expect(s.url).toBe(`https://127.0.0.1:${s.port}`);
    const r = await get(`https://localhost:${s.port}/secure`, { ca: tls.ca });
    expect([r.status, r.body.toString()]).toEqual([200, "hello GET /secure"]);
  });
});
