import { createHook } from "node:async_hooks";
import http from "node:http";
import zlib from "node:zlib";
import { ArgumentError, CanceledError, Request, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import type { RequestHandler } from "../src/handler.js";
import { compose, handlerTimeout, type Middleware } from "../src/middleware.js";
import { compression, isCompressibleType, negotiateEncoding } from "../src/middleware-compression.js";
import { cookieMiddleware, getCookies, type RequestCookie } from "../src/middleware-cookies.js";
import { cors } from "../src/middleware-cors.js";
import { serve } from "../src/serve.js";
import { deferred, get, raw, Servers, waitFor } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

async function start(handler: RequestHandler) {
  return servers.add(await serve(handler, { port: 0 }));
}

/** Counts live timers made with `ms` (a duration nothing else in the test uses). */
function timersOf(ms: number): { live: () => number; made: () => number; stop: () => void } {
  const live = new Set<number>();
  let made = 0;
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type === "Timeout" && (resource as { _idleTimeout?: number })._idleTimeout === ms) {
        live.add(id);
        made++;
      }
    },
    destroy(id) {
      live.delete(id);
    },
  });
  hook.enable();
  return { live: () => live.size, made: () => made, stop: () => hook.disable() };
}

/** Collects process warnings while `fn` runs. */
async function withWarnings(fn: (warnings: Error[]) => Promise<void>): Promise<void> {
  const warnings: Error[] = [];
  const unhandled: unknown[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("warning", onWarning);
  process.on("unhandledRejection", onUnhandled);
  try {
    await fn(warnings);
    // Rejections become "unhandled" after the microtask queue drains; give it a macrotask.
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  } finally {
    process.off("warning", onWarning);
    process.off("unhandledRejection", onUnhandled);
  }
}

const text = (body: string, type = "text/plain; charset=utf-8") =>
  new Response(200, { headers: { "Content-Type": type }, body });

describe("compose", () => {
  test("the first middleware listed is the outermost, on the way in and on the way out", async () => {
    const mark =
      (name: string): Middleware =>
      (next) =>
      async (req) => {
        req.headers.append("X-In", name);
        const res = (await next(req)) as Response;
        res.headers.append("X-Out", name);
        return res;
      };
    const app = compose(mark("a"), mark("b"), mark("c"));
    const s = await start(app((req) => new Response(200, { body: req.headers.getAll("x-in").join(",") })));
    const r = await get(s.url);
    expect(r.body.toString()).toBe("a,b,c");
    expect(r.headers["x-out"]).toBe("c, b, a");
  });

  test("compose() with nothing returns the handler itself; a non-function is an ArgumentError", () => {
    const h: RequestHandler = () => new Response(204);
    expect(compose()(h)).toBe(h);
    expect(() => compose(undefined as unknown as Middleware)).toThrow(ArgumentError);
  });
});

describe("handlerTimeout", () => {
  test("a slow handler: 503 with the default body, and its request's signal aborts", async () => {
    let seen: Request | undefined;
    const lateAnswer = deferred();
    const s = await start(
      handlerTimeout(30)(async (req) => {
        seen = req;
        await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
        lateAnswer.resolve();
        return new Response(200, { body: "too late" });
      }),
    );
    const r = await get(s.url);
    expect(r.status).toBe(503);
    expect(r.body.toString()).toBe("handler timed out");
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
    await lateAnswer.promise;
    expect(seen!.signal.aborted).toBe(true);
    expect(seen!.signal.reason).toBeInstanceOf(CanceledError);
    expect((seen!.signal.reason as Error).message).toBe("handler timed out");
  });

  test("status, body and contentType are configurable", async () => {
    const s = await start(
      handlerTimeout(20, { status: 504, body: '{"error":"slow"}', contentType: "application/json" })(
        (req) =>
          new Promise((resolve) => req.signal.addEventListener("abort", () => resolve(new Response(200)))),
      ),
    );
    const r = await get(s.url);
    expect(r.status).toBe(504);
    expect(r.body.toString()).toBe('{"error":"slow"}');
    expect(r.headers["content-type"]).toBe("application/json");
  });

  test("a quick handler answers, and the timer is gone afterwards", async () => {
    const timers = timersOf(54_321);
    try {
      let remaining: number | undefined;
      const s = await start(
        handlerTimeout(54_321)(async (req) => {
          remaining = req.context.remaining();
          return text("quick");
        }),
      );
      for (let i = 0; i < 3; i++) {
        const r = await get(s.url);
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe("quick");
      }
      expect(timers.made()).toBe(3);
      expect(timers.live()).toBe(0);
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThanOrEqual(54_321);
    } finally {
      timers.stop();
    }
  });

  test("a handler error before the timeout propagates (500) and clears the timer", async () => {
    const timers = timersOf(54_322);
    try {
      await withWarnings(async (warnings) => {
        const s = await start(
          handlerTimeout(54_322)(async () => {
            throw new Error("handler failed early");
          }),
        );
        const r = await get(s.url);
        expect(r.status).toBe(500);
        await waitFor(() => warnings.some((w) => w.message === "handler failed early"), 3_000, "the report");
        const sync = await start(
          handlerTimeout(54_322)(() => {
            throw new Error("sync failure");
          }),
        );
        expect((await get(sync.url)).status).toBe(500);
      });
      expect(timers.made()).toBe(2);
      expect(timers.live()).toBe(0);
    } finally {
      timers.stop();
    }
  });

  test("a rejection after the timeout is reported as a warning, never an unhandled rejection", async () => {
    await withWarnings(async (warnings) => {
      const failedLate = deferred();
      const s = await start(
        handlerTimeout(20)(async (req) => {
          await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
          setImmediate(failedLate.resolve);
          throw new Error("late failure");
        }),
      );
      expect((await get(s.url)).status).toBe(503);
      await failedLate.promise;
      await waitFor(() => warnings.some((w) => w.message === "late failure"), 3_000, "the late report");
    });
  });

  test("a late CanceledError (the handler obeyed the signal) is dropped quietly", async () => {
    await withWarnings(async (warnings) => {
      const thrown = deferred();
      const s = await start(
        handlerTimeout(20)(async (req) => {
          await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
          setImmediate(thrown.resolve);
          throw req.signal.reason;
        }),
      );
      expect((await get(s.url)).status).toBe(503);
      await thrown.promise;
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.message === "handler timed out")).toEqual([]);
    });
  });

  test("a streamed body returned after the timeout is closed, not leaked", async () => {
    const closed = deferred();
    const s = await start(
      handlerTimeout(20)(async (req) => {
        await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
        async function* body(): AsyncGenerator<Uint8Array> {
          try {
            yield Buffer.from("never sent");
          } finally {
            closed.resolve();
          }
        }
        // The generator must have started for its finally to run on return(): pull once.
        const it = body();
        await it.next();
        return new Response(200, { body: it });
      }),
    );
    expect((await get(s.url)).status).toBe(503);
    await closed.promise;
  });

  test.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY, "10" as unknown as number])(
    "ms = %s is an ArgumentError",
    (ms) => {
      expect(() => handlerTimeout(ms)).toThrow(ArgumentError);
    },
  );

  test("bad status, body or contentType is an ArgumentError", () => {
    expect(() => handlerTimeout(10, { status: 101 })).toThrow(ArgumentError);
    expect(() => handlerTimeout(10, { status: 503.5 })).toThrow(ArgumentError);
    expect(() => handlerTimeout(10, { body: 5 as unknown as string })).toThrow(ArgumentError);
    expect(() => handlerTimeout(10, { contentType: "text/plain\r\nX-Evil: 1" })).toThrow(ArgumentError);
  });
});

describe("cookies", () => {
  const echo = (req: Request) => new Response(200, { body: JSON.stringify(getCookies(req)) });

  test("getCookies parses every Cookie header, in order, without the middleware", async () => {
    const s = await start(echo);
    const reply = await raw(
      s.port,
      'GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; b="quoted"; c=\r\nCookie: a=2;d=x y,z\r\nConnection: close\r\n\r\n',
    );
    const body = reply.text.slice(reply.text.indexOf("\r\n\r\n") + 4);
    expect(JSON.parse(body)).toEqual([
      { name: "a", value: "1" },
      { name: "b", value: "quoted" },
      { name: "c", value: "" },
      { name: "a", value: "2" },
      { name: "d", value: "x y,z" },
    ]);
  });

  test("malformed pairs are skipped, never thrown; a bare name is a cookie with an empty value", async () => {
    const s = await start(echo);
    const garbage = [
      "ok=1",
      "noequals",
      "=novalue",
      "bad name=x",
      "semi\\colon=x",
      'quote=a"b',
      'half="open',
      "back=sl\\ash",
      "uni=\u00ff\u00fe",
      "",
      " ; ;",
      "tab\t=x",
      "last=fine",
    ].join("; ");
    const r = await get(s.url, { headers: { Cookie: garbage } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toEqual([
      { name: "ok", value: "1" },
      // As Go and HTTP.jl read it (core's cookies(req) does the parsing).
      { name: "noequals", value: "" },
      // Whitespace around the name is trimmed (as Go and browsers do).
      { name: "tab", value: "x" },
      { name: "last", value: "fine" },
    ]);
  });

  test("no Cookie header gives an empty list", async () => {
    const s = await start(echo);
    expect((await get(s.url)).body.toString()).toBe("[]");
  });

  test("cookieMiddleware parses once and stores the list in req.context.metadata", async () => {
    let first: readonly RequestCookie[] | undefined;
    let second: readonly RequestCookie[] | undefined;
    let stored: unknown;
    const s = await start(
      cookieMiddleware((req) => {
        first = getCookies(req);
        second = getCookies(req);
        stored = req.context.metadata.get("cookies");
        return new Response(204);
      }),
    );
    await get(s.url, { headers: { Cookie: "session=abc; theme=dark" } });
    expect(first).toEqual([
      { name: "session", value: "abc" },
      { name: "theme", value: "dark" },
    ]);
    expect(second).toBe(first);
    expect(stored).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });

  test("works on a Request made by hand too", () => {
    const req = new Request("GET", "/", { headers: [["Cookie", "x=1; y=2"]] });
    expect(getCookies(req).map((c) => c.name)).toEqual(["x", "y"]);
  });
});

describe("cors", () => {
  const api = (req: Request) =>
    new Response(200, {
      headers: { "Content-Type": "text/plain", Vary: "Accept-Language", "X-Total": "3" },
      body: `${req.method} handled`,
    });

  test("a preflight from an allowed origin: 204 with the Allow headers, the handler not called", async () => {
    let called = 0;
    const s = await start(
      cors({ origins: ["https://app.example", "https://other.example"], maxAge: 600 })((req) => {
        called++;
        return api(req);
      }),
    );
    const r = await get(s.url, {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-token",
      },
    });
    expect(r.status).toBe(204);
    expect(r.headers["access-control-allow-origin"]).toBe("https://app.example");
    expect(r.headers["access-control-allow-methods"]).toBe("GET, HEAD, PUT, PATCH, POST, DELETE");
    expect(r.headers["access-control-allow-headers"]).toBe("content-type, x-token");
    expect(r.headers["access-control-max-age"]).toBe("600");
    expect(r.headers["access-control-allow-credentials"]).toBeUndefined();
    expect(r.headers.vary).toBe("Origin, Access-Control-Request-Headers");
    expect(called).toBe(0);
  });

  test("a preflight with configured methods and allowedHeaders answers with those", async () => {
    const s = await start(
      cors({ origins: "https://app.example", methods: ["GET", "POST"], allowedHeaders: ["X-Token"] })(api),
    );
    const r = await get(s.url, {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-other",
      },
    });
    expect(r.status).toBe(204);
    expect(r.headers["access-control-allow-methods"]).toBe("GET, POST");
    expect(r.headers["access-control-allow-headers"]).toBe("X-Token");
  });

  test("an OPTIONS request that is not a preflight reaches the handler", async () => {
    const s = await start(cors()(api));
    const r = await get(s.url, { method: "OPTIONS", headers: { Origin: "https://a.example" } });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("OPTIONS handled");
    expect(r.headers["access-control-allow-origin"]).toBe("*");
  });

  test("an allowed origin's request gets Allow-Origin, Expose-Headers and Vary (kept with the handler's)", async () => {
    const s = await start(cors({ origins: (o) => o.endsWith(".example"), exposedHeaders: ["X-Total"] })(api));
    const r = await get(s.url, { headers: { Origin: "https://a.example" } });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("GET handled");
    expect(r.headers["access-control-allow-origin"]).toBe("https://a.example");
    expect(r.headers["access-control-expose-headers"]).toBe("X-Total");
    expect(r.headers.vary).toBe("Accept-Language, Origin");
  });

  test("the default allows any origin with *, and says no Vary", async () => {
    const s = await start(cors()(() => new Response(200, { body: "x" })));
    const r = await get(s.url, { headers: { Origin: "https://anyone.example" } });
    expect(r.headers["access-control-allow-origin"]).toBe("*");
    expect(r.headers.vary).toBeUndefined();
  });

  test("a disallowed origin gets no CORS headers, on a request or a preflight", async () => {
    const s = await start(cors({ origins: ["https://app.example"], credentials: true })(api));
    const r = await get(s.url, { headers: { Origin: "https://evil.example" } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.headers).filter((k) => k.startsWith("access-control-"))).toEqual([]);
    expect(r.headers.vary).toBe("Accept-Language, Origin");
    const p = await get(s.url, {
      method: "OPTIONS",
      headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "DELETE" },
    });
    expect(p.status).toBe(204);
    expect(Object.keys(p.headers).filter((k) => k.startsWith("access-control-"))).toEqual([]);
  });

  test("credentials: the origin is echoed (never *) with Allow-Credentials, and Vary: Origin", async () => {
    const s = await start(cors({ credentials: true })(() => new Response(200, { body: "x" })));
    const r = await get(s.url, { headers: { Origin: "https://a.example" } });
    expect(r.headers["access-control-allow-origin"]).toBe("https://a.example");
    expect(r.headers["access-control-allow-credentials"]).toBe("true");
    expect(r.headers.vary).toBe("Origin");
  });

  test("a request without Origin gets no CORS headers", async () => {
    const s = await start(cors({ origins: "https://app.example" })(api));
    const r = await get(s.url);
    expect(r.headers["access-control-allow-origin"]).toBeUndefined();
  });

  test("a predicate that throws, or a hostile Origin, is simply not allowed", async () => {
    const s = await start(
      cors({
        origins: (o) => {
          if (o.includes("boom")) throw new Error("predicate failed");
          return true;
        },
      })(api),
    );
    const boom = await get(s.url, { headers: { Origin: "https://boom.example" } });
    expect(boom.status).toBe(200);
    expect(boom.headers["access-control-allow-origin"]).toBeUndefined();
    const reply = await raw(
      s.port,
      "GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\x7f\xff\r\nConnection: close\r\n\r\n",
    );
    expect(reply.text).toMatch(/^HTTP\/1\.1 (200|400)/);
    expect(reply.text.toLowerCase()).not.toContain("access-control-allow-origin");
  });

  test("a WHATWG Response from the handler is decorated too", async () => {
    const s = await start(cors({ origins: "https://app.example" })(() => new globalThis.Response("web")));
    const r = await get(s.url, { headers: { Origin: "https://app.example" } });
    expect(r.body.toString()).toBe("web");
    expect(r.headers["access-control-allow-origin"]).toBe("https://app.example");
  });

  test("bad options are an ArgumentError", () => {
    expect(() => cors({ methods: ["GE T"] })).toThrow(ArgumentError);
    expect(() => cors({ allowedHeaders: ["ok", "bad header"] })).toThrow(ArgumentError);
    expect(() => cors({ exposedHeaders: "X-A" as unknown as string[] })).toThrow(ArgumentError);
    expect(() => cors({ maxAge: -1 })).toThrow(ArgumentError);
    expect(() => cors({ origins: 5 as unknown as string })).toThrow(ArgumentError);
    expect(() => cors({ origins: [""] })).toThrow(ArgumentError);
    expect(() => cors({ credentials: "yes" as unknown as boolean })).toThrow(ArgumentError);
  });
});

describe("compression", () => {
  const big = "hello compression! ".repeat(400); // 7600 bytes

  test("gzip: a byte body is compressed with its compressed Content-Length and Vary", async () => {
    const s = await start(compression()(() => text(big)));
    const r = await get(s.url, { headers: { "Accept-Encoding": "gzip" } });
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(r.headers["content-length"]).toBe(String(r.body.byteLength));
    expect(r.body.byteLength).toBeLessThan(big.length / 10);
    expect(r.headers.vary).toBe("Accept-Encoding");
    expect(zlib.gunzipSync(r.body).toString()).toBe(big);
  });

  test("br: chosen when accepted, and decodes to the body", async () => {
    const s = await start(compression()(() => text(big, "application/json")));
    const r = await get(s.url, { headers: { "Accept-Encoding": "gzip, deflate, br" } });
    expect(r.headers["content-encoding"]).toBe("br");
    expect(zlib.brotliDecompressSync(r.body).toString()).toBe(big);
  });

  test("a streamed body is compressed chunk by chunk: the client decodes the first part before the rest exists", async () => {
    const gate = deferred();
    const first = "first part ".repeat(200);
    const rest = "the rest ".repeat(2000);
    const s = await start(
      compression()(
        () =>
          new Response(200, {
            headers: { "Content-Type": "text/plain", "Content-Length": String(first.length + rest.length) },
            body: (async function* () {
              yield Buffer.from(first);
              await gate.promise;
              for (let i = 0; i < rest.length; i += 1000) yield Buffer.from(rest.slice(i, i + 1000));
            })(),
          }),
      ),
    );
    const decoded = await new Promise<string>((resolve, reject) => {
      const req = http.get(s.url, { agent: false, headers: { "Accept-Encoding": "gzip" } }, (res) => {
        expect(res.headers["content-encoding"]).toBe("gzip");
        expect(res.headers["content-length"]).toBeUndefined();
        expect(res.headers["transfer-encoding"]).toBe("chunked");
        const gunzip = zlib.createGunzip();
        let out = "";
        gunzip.on("data", (c: Buffer) => {
          out += c.toString();
          if (out === first) gate.resolve();
        });
        gunzip.on("end", () => resolve(out));
        gunzip.on("error", reject);
        res.pipe(gunzip);
      });
      req.on("error", reject);
    });
    expect(decoded).toBe(first + rest);
  });

  test("a streamed br body round-trips", async () => {
    const parts = Array.from({ length: 50 }, (_, i) => `part ${i} `.repeat(100));
    const s = await start(
      compression()(
        () =>
          new Response(200, {
            headers: { "Content-Type": "text/csv" },
            body: (async function* () {
              for (const p of parts) yield Buffer.from(p);
            })(),
          }),
      ),
    );
    const r = await get(s.url, { headers: { "Accept-Encoding": "br" } });
    expect(r.headers["content-encoding"]).toBe("br");
    expect(zlib.brotliDecompressSync(r.body).toString()).toBe(parts.join(""));
  });

  test("when the client leaves a compressed stream, the source is closed", async () => {
    const closed = deferred();
    let produced = 0;
    const s = await start(
      compression()(
        () =>
          new Response(200, {
            headers: { "Content-Type": "text/plain" },
            body: (async function* () {
              try {
                for (let i = 0; i < 100_000; i++) {
                  produced++;
                  yield Buffer.from(`${i} `.repeat(2000));
                }
              } finally {
                closed.resolve();
              }
            })(),
          }),
      ),
    );
    const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", {
      until: (t) => t.length > 4000,
    });
    expect(reply.text).toMatch(/content-encoding: gzip/i);
    await closed.promise;
    expect(produced).toBeLessThan(100_000);
  });

  test.each([
    ["gzip;q=0, br;q=0", undefined],
    ["*;q=0", undefined],
    ["identity", undefined],
    ["", undefined],
    ["deflate", undefined],
    ["gzip;q=0.5, br;q=0.8", "br"],
    ["gzip, br;q=0.1", "gzip"],
    ["gzip, br", "br"],
    ["*", "br"],
    ["br;q=0, *", "gzip"],
    ["x-gzip", "gzip"],
    ["GZIP;Q=1", "gzip"],
    ["br;q=2, gzip;q=0.3", "gzip"],
    ["br;q=abc", undefined],
  ])("Accept-Encoding %j → %s", (header, expected) => {
    expect(negotiateEncoding(header)).toBe(expected);
  });

  test("q=0 for every coding, identity only, or no Accept-Encoding: the body is sent as is", async () => {
    const s = await start(compression()(() => text(big)));
    const cases: Record<string, string>[] = [
      { "Accept-Encoding": "gzip;q=0, br;q=0" },
      { "Accept-Encoding": "identity" },
      {},
    ];
    for (const headers of cases) {
      const r = await get(s.url, { headers });
      expect(r.headers["content-encoding"]).toBeUndefined();
      expect(r.body.toString()).toBe(big);
      expect(r.headers.vary).toBe("Accept-Encoding");
    }
  });

  test("a body under the threshold is not compressed; the threshold is an option", async () => {
    const small = "x".repeat(1000);
    const s = await start(compression()(() => text(small)));
    const r = await get(s.url, { headers: { "Accept-Encoding": "gzip" } });
    expect(r.headers["content-encoding"]).toBeUndefined();
    expect(r.body.toString()).toBe(small);
    const low = await start(compression({ threshold: 100 })(() => text(small)));
    const r2 = await get(low.url, { headers: { "Accept-Encoding": "gzip" } });
    expect(r2.headers["content-encoding"]).toBe("gzip");
    expect(zlib.gunzipSync(r2.body).toString()).toBe(small);
  });

  test("a response that already has Content-Encoding is left alone", async () => {
    const pre = zlib.gzipSync(big);
    const s = await start(
      compression()(
        () =>
          new Response(200, {
            headers: { "Content-Type": "text/plain", "Content-Encoding": "gzip" },
            body: pre,
          }),
      ),
    );
    const r = await get(s.url, { headers: { "Accept-Encoding": "br, gzip" } });
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(r.body.equals(pre)).toBe(true);
  });

  test.each(["image/png", "video/mp4", "application/zip", "application/octet-stream", "font/woff2", ""])(
    "%j is not compressed",
    async (type) => {
      const headers: Record<string, string> = type === "" ? {} : { "Content-Type": type };
      const s = await start(compression()(() => new Response(200, { headers, body: big })));
      const r = await get(s.url, { headers: { "Accept-Encoding": "gzip, br" } });
      expect(r.headers["content-encoding"]).toBeUndefined();
      expect(r.body.toString()).toBe(big);
    },
  );

  test("HEAD, 204, 304 and no-transform responses are left alone", async () => {
    let status = 200;
    let cacheControl: string | undefined;
    const s = await start(
      compression()(() => {
        const res = text(status === 200 ? big : "");
        if (cacheControl) res.headers.set("Cache-Control", cacheControl);
        return status === 200 ? res : new Response(status, { headers: { "Content-Type": "text/plain" } });
      }),
    );
    const head = await raw(
      s.port,
      "HEAD / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    expect(head.text.toLowerCase()).not.toContain("content-encoding");
    expect(head.text.toLowerCase()).toContain(`content-length: ${big.length}`);
    for (status of [204, 304]) {
      const r = await get(s.url, { headers: { "Accept-Encoding": "gzip" } });
      expect(r.status).toBe(status);
      expect(r.headers["content-encoding"]).toBeUndefined();
    }
    status = 200;
    cacheControl = "public, no-transform";
    const r = await get(s.url, { headers: { "Accept-Encoding": "gzip" } });
    expect(r.headers["content-encoding"]).toBeUndefined();
    expect(r.body.toString()).toBe(big);
  });

  test("a strong ETag becomes weak on the compressed representation", async () => {
    const s = await start(
      compression()(() => {
        const res = text(big);
        res.headers.set("ETag", '"v1"');
        return res;
      }),
    );
    const r = await get(s.url, { headers: { "Accept-Encoding": "gzip" } });
    expect(r.headers.etag).toBe('W/"v1"');
    const plain = await get(s.url);
    expect(plain.headers.etag).toBe('"v1"');
  });

  test("composes with cors: both sets of headers, and Vary lists both", async () => {
    const s = await start(compose(cors({ origins: "https://app.example" }), compression())(() => text(big)));
    const r = await get(s.url, { headers: { "Accept-Encoding": "gzip", Origin: "https://app.example" } });
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(r.headers["access-control-allow-origin"]).toBe("https://app.example");
    expect(r.headers.vary).toBe("Accept-Encoding, Origin");
    expect(zlib.gunzipSync(r.body).toString()).toBe(big);
  });

  test("isCompressibleType: text-like yes, already compressed no", () => {
    for (const t of [
      "text/html",
      "text/event-stream",
      "application/json",
      "application/ld+json",
      "image/svg+xml",
    ]) {
      expect(isCompressibleType(t)).toBe(true);
    }
    for (const t of ["image/jpeg", "audio/ogg", "application/gzip", "application/pdf", "font/woff"]) {
      expect(isCompressibleType(t)).toBe(false);
    }
  });

  test("bad options are an ArgumentError", () => {
    expect(() => compression({ threshold: -1 })).toThrow(ArgumentError);
    expect(() => compression({ threshold: 1.5 })).toThrow(ArgumentError);
    expect(() => compression({ encodings: [] })).toThrow(ArgumentError);
    expect(() => compression({ encodings: ["deflate" as "gzip"] })).toThrow(ArgumentError);
    expect(() => compression({ gzipLevel: 10 })).toThrow(ArgumentError);
    expect(() => compression({ brotliQuality: -1 })).toThrow(ArgumentError);
    expect(() => compression({ filter: "text" as unknown as () => boolean })).toThrow(ArgumentError);
  });
});
