// HTTP/2 in the server: h2c prior knowledge and TLS ALPN next to HTTP/1.1 on one port, the serve and
// listen paths over h2, limits, shutdown, and the library's handlers over h2.
import { once } from "node:events";
import http2 from "node:http2";
import { setFlagsFromString } from "node:v8";
import vm from "node:vm";
import { Headers, Response } from "@hyperwire/core";
import { afterEach, describe, expect, it } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";
import { listen, serve } from "../src/index.js";
import { h2get, Sessions } from "./h2-helpers.js";
import { deferred, get, raw, Servers, statuses, waitFor } from "./helpers.js";

const servers = new Servers();
const sessions = new Sessions();
afterEach(async () => {
  await sessions.closeAll();
  await servers.closeAll();
});

const echoVersion = (req: { version: string; target: string }) =>
  new Response(200, { headers: { "Content-Type": "text/plain" }, body: `${req.version} ${req.target}` });

describe("protocol selection", () => {
  it("serves HTTP/1.1 and h2c prior knowledge on one cleartext port with the same handler", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0 }));
    const h1 = await get(`${server.url}/a`);
    expect(h1.body.toString()).toBe("1.1 /a");
    const s = sessions.connect(server.url);
    const h2 = await h2get(s, { ":path": "/b" });
    expect(h2.status).toBe(200);
    expect(h2.body.toString()).toBe("2 /b");
    expect(h2.headers.date).toMatch(/GMT$/);
  });

  it("serves h2 and http/1.1 by ALPN on one TLS port", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0, tls: { key: tls.key, cert: tls.cert } }));
    const h1 = await get(`${server.url}/a`, { ca: tls.ca });
    expect(h1.body.toString()).toBe("1.1 /a");
    const s = sessions.connect(server.url, { ca: tls.ca });
    const h2 = await h2get(s, { ":path": "/b" });
    expect(h2.body.toString()).toBe("2 /b");
    expect((s.socket as import("node:tls").TLSSocket).alpnProtocol).toBe("h2");
  });

  it("http2: false serves HTTP/1.1 only: the preface gets 400, ALPN offers no h2", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0, http2: false }));
    const reply = await raw(server.port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    expect(statuses(reply.text)).toEqual([400]);
    const secure = servers.add(
      await serve(echoVersion, { port: 0, http2: false, tls: { key: tls.key, cert: tls.cert } }),
    );
    const s = sessions.connect(secure.url, { ca: tls.ca });
    const [err] = (await once(s, "error")) as [Error & { code?: string }];
    expect(err.code).toBe("ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL");
  });

  it("tells h1 from h2 when the preface arrives split, and when a partial match then differs", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0 }));
    // "PRI " then something else: an HTTP/1.1 request line with an unknown method → 400 from h1
    const partial = await raw(server.port, ["PR", "I /x HTTP/1.1\r\nHost: a\r\n\r\n"]);
    expect(statuses(partial.text)).toEqual([400]);
    // a GET split into tiny pieces is still HTTP/1.1
    const split = await raw(server.port, ["G", "ET /s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"]);
    expect(statuses(split.text)).toEqual([200]);
    expect(split.text).toContain("1.1 /s");
    // the h2 preface in pieces: node's client writes it whole, so write it by hand
    const { RawH2: _unused } = await import("./h2-helpers.js");
    const net = await import("node:net");
    const sock = net.connect(server.port, "127.0.0.1");
    await once(sock, "connect");
    sock.write("PRI * HTTP/2.0\r\n");
    await new Promise((r) => setImmediate(r));
    sock.write("\r\nSM\r\n\r\n");
    sock.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // empty SETTINGS
    const [first] = (await once(sock, "data")) as [Buffer];
    expect(first[3]).toBe(4); // the server's SETTINGS frame
    sock.destroy();
  });

  it("readHeaderTimeout answers 408 to a cleartext peer that sends nothing", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0, readHeaderTimeout: 100 }));
    const reply = await raw(server.port, []);
    expect(statuses(reply.text)).toEqual([408]);
    expect(reply.closed).toBe(true);
  });

  it("readHeaderTimeout answers 408 to a preface that stops halfway", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0, readHeaderTimeout: 100 }));
    const reply = await raw(server.port, "PRI * HTTP/2.0\r\n");
    expect(statuses(reply.text)).toEqual([408]);
    expect(reply.closed).toBe(true);
    expect(reply.elapsed).toBeLessThan(1_500);
  });

  it("the preface counts only as a connection's first bytes: after a request it gets 400", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0 }));
    const reply = await raw(
      server.port,
      "GET /a HTTP/1.1\r\nHost: a\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    );
    expect(statuses(reply.text)).toEqual([200, 400]);
    expect(reply.text).toContain("1.1 /a");
  });

  it("an h2c session outlives readHeaderTimeout: HTTP/1.1's header timer lets go of it", async () => {
    const server = servers.add(await serve(echoVersion, { port: 0, readHeaderTimeout: 100 }));
    const s = sessions.connect(server.url);
    expect((await h2get(s, { ":path": "/first" })).body.toString()).toBe("2 /first");
    // node:http checks its header timers every 25 ms here: 400 ms is well past the 100 ms timeout
    await new Promise((r) => setTimeout(r, 400));
    expect(s.closed || s.destroyed).toBe(false);
    expect((await h2get(s, { ":path": "/later" })).body.toString()).toBe("2 /later");
    expect(server.connections).toBe(1);
  });
});

/**
 * A GET of `/` whose reader takes nothing: a 1 KB window and a paused stream, so the server can send
 * only the start of a larger body and its stream stays open with the rest queued after the
 * handler's response has ended. Resolves once the response head arrived.
 */
async function slowReader(url: string): Promise<http2.ClientHttp2Stream> {
  const s = sessions.connect(url, { settings: { initialWindowSize: 1024 } });
  const req = s.request({ ":path": "/" });
  req.on("error", () => {});
  req.pause();
  await once(req, "response");
  return req;
}

/** Lets a paused reader take the rest of its response; resolves with the bytes it got. */
async function drain(req: http2.ClientHttp2Stream): Promise<number> {
  let received = 0;
  req.on("data", (c: Buffer) => {
    received += c.length;
  });
  req.resume();
  await once(req, "end");
  return received;
}

describe("serve over h2", () => {
  it("buffers the request body and echoes it; cookies are joined; Host comes from :authority", async () => {
    let seen: { cookie: string | null; host: string | null; body: string } | undefined;
    const server = servers.add(
      await serve(
        (req) => {
          seen = { cookie: req.headers.get("cookie"), host: req.headers.get("host"), body: req.text() };
          return new Response(200, { body: req.body });
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const body = Buffer.alloc(200_000, "z");
    const r = await h2get(s, { ":method": "POST", ":path": "/", cookie: ["a=1", "b=2"] }, body);
    expect(r.status).toBe(200);
    expect(r.body.equals(body)).toBe(true);
    expect(r.headers["content-length"]).toBe(String(body.length));
    expect(seen?.cookie).toBe("a=1; b=2");
    expect(seen?.host).toBe(`127.0.0.1:${server.port}`);
  });

  it("413 when the declared Content-Length is over maxBodyBytes, and when DATA goes over", async () => {
    let calls = 0;
    const server = servers.add(
      await serve(
        () => {
          calls++;
          return new Response(200);
        },
        { port: 0, maxBodyBytes: 1000 },
      ),
    );
    const s = sessions.connect(server.url);
    const declared = await h2get(
      s,
      { ":method": "POST", ":path": "/", "content-length": "5000" },
      Buffer.alloc(5000),
    );
    expect(declared.status).toBe(413);
    const streamed = s.request({ ":method": "POST", ":path": "/" }, { endStream: false });
    const [head] = (await new Promise<[http2.IncomingHttpHeaders]>((resolve) => {
      streamed.on("response", (h) => resolve([h]));
      streamed.on("error", () => {});
      streamed.write(Buffer.alloc(800));
      streamed.write(Buffer.alloc(800));
    })) as [http2.IncomingHttpHeaders];
    expect(head[":status"]).toBe(413);
    streamed.destroy();
    expect(calls).toBe(0);
  });

  it("HEAD, 204 and 304 have no body; HEAD keeps the Content-Length", async () => {
    const server = servers.add(
      await serve(
        (req) => {
          if (req.target === "/204") return new Response(204);
          if (req.target === "/304") return new Response(304, { headers: { ETag: '"x"' } });
          return new Response(200, { body: "hello" });
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const head = await h2get(s, { ":method": "HEAD", ":path": "/" });
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe("5");
    expect(head.body.length).toBe(0);
    const n204 = await h2get(s, { ":path": "/204" });
    expect([n204.status, n204.body.length]).toEqual([204, 0]);
    const n304 = await h2get(s, { ":path": "/304" });
    expect([n304.status, n304.body.length, n304.headers.etag]).toEqual([304, 0, '"x"']);
  });

  it("every response carries one Date, the handler's own when it set one (serve and listen)", async () => {
    const own = "Tue, 01 Jan 2030 00:00:00 GMT";
    const buffered = servers.add(
      await serve(
        (req) => new Response(200, { headers: req.target === "/own" ? { Date: own } : {}, body: "x" }),
        { port: 0 },
      ),
    );
    const streamed = servers.add(
      await listen(
        async (stream) => {
          if (stream.request.target === "/own") stream.setHeader("Date", own);
          await stream.write("x");
        },
        { port: 0 },
      ),
    );
    const dates = (url: string, path: string) => {
      const req = sessions.connect(url).request({ ":path": path });
      req.resume();
      return once(req, "response").then((args) => {
        const raw = args[2] as string[];
        return raw.filter((_, i) => i % 2 === 1 && raw[i - 1] === "date");
      });
    };
    for (const server of [buffered, streamed]) {
      const [ours] = await dates(server.url, "/");
      expect(ours).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      expect(Math.abs(Date.parse(ours!) - Date.now())).toBeLessThan(5_000);
      expect(await dates(server.url, "/own")).toEqual([own]);
    }
  });

  it("writes string, bytes and streamed bodies, with trailers, and strips connection-specific headers", async () => {
    const server = servers.add(
      await serve(
        (req) => {
          if (req.target === "/string") return new Response(200, { body: "héllo" });
          if (req.target === "/bytes") return new Response(200, { body: new Uint8Array([1, 2, 3]) });
          async function* chunks() {
            for (let i = 0; i < 50; i++) yield Buffer.alloc(10_000, i);
          }
          return new Response(200, {
            headers: {
              Connection: "keep-alive",
              "Keep-Alive": "timeout=5",
              "Transfer-Encoding": "chunked",
              "X-Ok": "1",
            },
            body: chunks(),
            trailers: new Headers({ "X-Checksum": "abc" }),
          });
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const str = await h2get(s, { ":path": "/string" });
    expect(str.body.toString("utf8")).toBe("héllo");
    expect(str.headers["content-length"]).toBe("6");
    const bytes = await h2get(s, { ":path": "/bytes" });
    expect([...bytes.body]).toEqual([1, 2, 3]);
    const streamed = await h2get(s, { ":path": "/stream" });
    expect(streamed.body.length).toBe(500_000);
    expect(streamed.body[499_999]).toBe(49);
    expect(streamed.headers["x-ok"]).toBe("1");
    expect(streamed.headers.connection).toBeUndefined();
    expect(streamed.headers["keep-alive"]).toBeUndefined();
    expect(streamed.headers["transfer-encoding"]).toBeUndefined();
    expect(streamed.trailers?.["x-checksum"]).toBe("abc");
  });

  it("a throwing handler gives 500; an error after the head resets the stream with INTERNAL_ERROR", async () => {
    const server = servers.add(
      await serve(
        (req) => {
          if (req.target === "/throw") throw new Error("boom");
          async function* failing() {
            yield Buffer.from("part");
            throw new Error("mid-body");
          }
          return new Response(200, { body: failing() });
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const thrown = await h2get(s, { ":path": "/throw" });
    expect(thrown.status).toBe(500);
    const err = await h2get(s, { ":path": "/late" }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe("ERR_HTTP2_STREAM_ERROR");
    expect(err?.message).toContain("NGHTTP2_INTERNAL_ERROR");
  });

  it("logs HTTP/2.0 in the access log", async () => {
    const entries: { version: string; status: number; target: string }[] = [];
    const server = servers.add(
      await serve(() => new Response(200, { body: "x" }), { port: 0, accessLog: (e) => entries.push(e) }),
    );
    const s = sessions.connect(server.url);
    await h2get(s, { ":path": "/log" });
    expect(entries).toMatchObject([{ version: "2.0", status: 200, target: "/log" }]);
  });

  it("a response still draining to a slow reader does not keep its request alive", async () => {
    setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    let request: WeakRef<object> | undefined;
    const size = 1_000_000;
    const server = servers.add(
      await serve(
        (req) => {
          request = new WeakRef(req);
          return new Response(200, { body: Buffer.alloc(size, "x") });
        },
        { port: 0 },
      ),
    );
    const req = await slowReader(server.url);
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    expect(server.activeRequests).toBe(1);
    expect(request?.deref()).toBeUndefined();
    expect(await drain(req)).toBe(size);
  });

  it("a small response counts off its stream when it ends, before the reader has taken it", async () => {
    const size = 10_000;
    const server = servers.add(
      await serve(() => new Response(200, { body: Buffer.alloc(size, "s") }), { port: 0 }),
    );
    // The reader's 1 KB window holds most of the body on the server's side.
    const req = await slowReader(server.url);
    expect(server.activeRequests).toBe(0);
    expect(await drain(req)).toBe(size);
  });

  it("idleTimeout waits for a large response to drain: no GOAWAY while its reader is slow", async () => {
    const size = 1_000_000;
    const server = servers.add(
      await serve(() => new Response(200, { body: Buffer.alloc(size, "l") }), { port: 0, idleTimeout: 100 }),
    );
    const req = await slowReader(server.url);
    let goaway = false;
    req.session!.on("goaway", () => {
      goaway = true;
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(goaway).toBe(false);
    expect(server.activeRequests).toBe(1);
    expect(await drain(req)).toBe(size);
    // Idle once the stream is done.
    await waitFor(() => goaway);
  });

  it("writeTimeout resets a finished response that a reader stopped taking (CANCEL)", async () => {
    const server = servers.add(
      await serve(() => new Response(200, { body: Buffer.alloc(1_000_000, "x") }), {
        port: 0,
        writeTimeout: 200,
      }),
    );
    const req = await slowReader(server.url);
    const t0 = performance.now();
    await once(req, "close");
    expect(performance.now() - t0).toBeGreaterThan(100);
    expect(req.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(server.activeRequests).toBe(0);
  });
});

describe("listen over h2", () => {
  it("reads the body, writes incrementally, adds trailers, knows the peer", async () => {
    const server = servers.add(
      await listen(
        async (stream) => {
          let n = 0;
          for await (const c of stream) n += c.byteLength;
          stream.addTrailer("X-Count", String(n));
          await stream.write(`got ${n} `);
          await stream.write(`from ${stream.peerAddr()?.address} over ${stream.request.version}`);
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const r = await h2get(s, { ":method": "PUT", ":path": "/" }, Buffer.alloc(300_000));
    expect(r.body.toString()).toBe("got 300000 from 127.0.0.1 over 2");
    expect(r.trailers?.["x-count"]).toBe("300000");
  });

  it("aborts the signal when the client resets the stream", async () => {
    const aborted = deferred<string>();
    const started = deferred();
    const server = servers.add(
      await listen(
        async (stream) => {
          stream.signal.addEventListener("abort", () => aborted.resolve("aborted"));
          started.resolve();
          await stream.write("x");
          await new Promise((r) => stream.signal.addEventListener("abort", r));
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const req = s.request({ ":path": "/" });
    req.on("error", () => {});
    await started.promise;
    req.close(http2.constants.NGHTTP2_CANCEL);
    expect(await aborted.promise).toBe("aborted");
  });

  it("answers Expect: 100-continue on the first read", async () => {
    const server = servers.add(
      await listen(
        async (stream) => {
          let n = 0;
          for await (const c of stream) n += c.byteLength;
          await stream.write(String(n));
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    const req = s.request({ ":method": "POST", ":path": "/", expect: "100-continue" }, { endStream: false });
    await once(req, "continue");
    req.end("hello");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    await once(req, "end");
    expect(Buffer.concat(chunks).toString()).toBe("5");
  });

  it("a fixed Content-Length written past or left short resets the stream", async () => {
    const server = servers.add(
      await listen(
        async (stream) => {
          stream.setHeader("Content-Length", "3");
          if (stream.request.target === "/long") await stream.write("toolong");
          else await stream.write("ab");
        },
        { port: 0 },
      ),
    );
    const s = sessions.connect(server.url);
    for (const path of ["/long", "/short"]) {
      const err = await h2get(s, { ":path": path }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toContain("NGHTTP2_INTERNAL_ERROR");
    }
  });
});
