import { once } from "node:events";
import { ArgumentError, Request, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import type { RequestHandler } from "../src/handler.js";
import { listen, type StreamHandler } from "../src/listen.js";
import type { Middleware } from "../src/middleware.js";
import { getParam, getParams, getRoute, MAX_ROUTE_SEGMENTS, Router } from "../src/router.js";
import { serve } from "../src/serve.js";
import { bodyOf, get, headOf, raw, Servers, statuses } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

/** A request handler that answers with its own name, so a test can see which route ran. */
function named(name: string): RequestHandler {
  return () => new Response(200, { body: name });
}

/** The name of the handler a lookup found (`undefined` when none). */
function routed(router: Router, method: string, target: string): string | undefined {
  const m = router.match(method, target);
  if (m === undefined) return undefined;
  const resp = m.handler(new Request(method, "/")) as Response;
  return resp.text();
}

/** Runs `router.handle` and returns the response (awaited). */
async function handle(router: Router, method: string, target: string): Promise<Response> {
  return (await router.handle(new Request(method, target))) as Response;
}

describe("Router: segment kinds", () => {
  test("exact segments match only themselves", () => {
    const r = new Router().register("GET", "/a/b", named("ab"));
    expect(routed(r, "GET", "/a/b")).toBe("ab");
    expect(routed(r, "GET", "/a/c")).toBeUndefined();
    expect(routed(r, "GET", "/a")).toBeUndefined();
    expect(routed(r, "GET", "/a/b/c")).toBeUndefined();
  });

  test("the root route matches / and nothing else", () => {
    const r = new Router().register("GET", "/", named("root"));
    expect(routed(r, "GET", "/")).toBe("root");
    expect(routed(r, "GET", "//")).toBe("root");
    expect(routed(r, "GET", "/x")).toBeUndefined();
  });

  test("{name} matches any one segment and captures it", () => {
    const r = new Router().register("GET", "/users/{id}/posts/{postId}", named("post"));
    const m = r.match("GET", "/users/42/posts/x-9");
    expect(m?.route).toBe("/users/{id}/posts/{postId}");
    expect(m?.params).toEqual({ id: "42", postId: "x-9" });
    expect(r.match("GET", "/users/42/posts")).toBeUndefined();
  });

  test("* matches any one segment without capturing it", () => {
    const r = new Router().register("GET", "/a/*/c", named("star"));
    expect(routed(r, "GET", "/a/anything/c")).toBe("star");
    expect(r.match("GET", "/a/b/c")?.params).toBeUndefined();
    expect(routed(r, "GET", "/a/b/x/c")).toBeUndefined();
    expect(routed(r, "GET", "/a/c")).toBeUndefined();
  });

  test("{name:regex} must match the whole segment", () => {
    const r = new Router().register("GET", "/n/{id:[0-9]+}", named("digits"));
    expect(r.match("GET", "/n/123")?.params).toEqual({ id: "123" });
    expect(routed(r, "GET", "/n/12a")).toBeUndefined();
    expect(routed(r, "GET", "/n/a12")).toBeUndefined();
    expect(routed(r, "GET", "/n/")).toBeUndefined();
  });

  test("an alternation is anchored as a whole, and braces inside a pattern are kept", () => {
    const r = new Router()
      .register("GET", "/k/{kind:cat|dog}", named("pet"))
      .register("GET", "/y/{year:\\d{4}}", named("year"));
    expect(routed(r, "GET", "/k/cat")).toBe("pet");
    expect(routed(r, "GET", "/k/dog")).toBe("pet");
    expect(routed(r, "GET", "/k/catdog")).toBeUndefined();
    expect(routed(r, "GET", "/k/xcat")).toBeUndefined();
    expect(r.match("GET", "/y/2024")?.params).toEqual({ year: "2024" });
    expect(routed(r, "GET", "/y/202")).toBeUndefined();
  });

  test("** matches one or more remaining segments, not zero", () => {
    const r = new Router().register("GET", "/files/**", named("rest"));
    expect(routed(r, "GET", "/files/a")).toBe("rest");
    expect(routed(r, "GET", "/files/a/b/c/d")).toBe("rest");
    expect(routed(r, "GET", "/files")).toBeUndefined();
    expect(routed(r, "GET", "/other/a")).toBeUndefined();
    expect(r.match("GET", "/files/a/b")?.route).toBe("/files/**");
  });

  test("** after variables keeps their params", () => {
    const r = new Router().register("GET", "/u/{user}/**", named("rest"));
    expect(r.match("GET", "/u/ann/x/y")?.params).toEqual({ user: "ann" });
  });
});

describe("Router: precedence and backtracking", () => {
  // Registered from lowest to highest precedence so that order of registration cannot explain it.
  const r = new Router()
    .register("GET", "/p/**", named("rest"))
    .register("GET", "/p/*", named("wild"))
    .register("GET", "/p/{n:[0-9]+}", named("digits"))
    .register("GET", "/p/{n:[0-9a-f]+}", named("hex"))
    .register("GET", "/p/123", named("exact"));

  test("exact > regex > {name}/* > ** at one level", () => {
    expect(routed(r, "GET", "/p/123")).toBe("exact");
    expect(routed(r, "GET", "/p/456")).toBe("digits");
    expect(routed(r, "GET", "/p/beef")).toBe("hex");
    expect(routed(r, "GET", "/p/zzz")).toBe("wild");
    expect(routed(r, "GET", "/p/zzz/more")).toBe("rest");
  });

  test("regex variables are tried in registration order", () => {
    // "456" matches both patterns: the first registered wins.
    const other = new Router()
      .register("GET", "/p/{n:[0-9a-f]+}", named("hex"))
      .register("GET", "/p/{n:[0-9]+}", named("digits"));
    expect(routed(other, "GET", "/p/456")).toBe("hex");
  });

  test("{name} and * share one level: the later registration at the same place replaces", () => {
    const other = new Router().register("GET", "/q/*", named("star"));
    other.register("POST", "/q/{id}", named("var"));
    expect(routed(other, "GET", "/q/1")).toBe("star");
    expect(other.match("POST", "/q/1")?.params).toEqual({ id: "1" });
  });

  test("an exact branch that fails deeper falls back to a variable branch", () => {
    const b = new Router()
      .register("GET", "/a/b/x", named("exact-x"))
      .register("GET", "/a/{p}/c", named("var-c"));
    expect(routed(b, "GET", "/a/b/x")).toBe("exact-x");
    expect(routed(b, "GET", "/a/b/c")).toBe("var-c");
    expect(b.match("GET", "/a/b/c")?.params).toEqual({ p: "b" });
  });

  test("a regex branch that fails deeper falls back to the wildcard, then to **", () => {
    const b = new Router()
      .register("GET", "/a/{n:[0-9]+}/x", named("regex-x"))
      .register("GET", "/a/*/y", named("wild-y"))
      .register("GET", "/a/**", named("rest"));
    expect(routed(b, "GET", "/a/1/x")).toBe("regex-x");
    expect(routed(b, "GET", "/a/1/y")).toBe("wild-y");
    expect(routed(b, "GET", "/a/1/z")).toBe("rest");
  });

  test("a branch whose path matches but not the method falls back to one that has the method", () => {
    const b = new Router()
      .register("GET", "/a/b", named("get-exact"))
      .register("POST", "/{x}/b", named("post-var"));
    expect(routed(b, "GET", "/a/b")).toBe("get-exact");
    expect(routed(b, "POST", "/a/b")).toBe("post-var");
    expect(b.match("POST", "/a/b")?.params).toEqual({ x: "a" });
  });

  test("a deeper exact match beats a shallower variable only when the shallower level ties", () => {
    // Precedence is decided level by level: at level one the exact "a" wins over {x}.
    const b = new Router()
      .register("GET", "/a/{y}", named("exact-first"))
      .register("GET", "/{x}/b", named("var-first"));
    expect(routed(b, "GET", "/a/b")).toBe("exact-first");
    expect(routed(b, "GET", "/z/b")).toBe("var-first");
  });
});

describe("Router: methods", () => {
  test("methods match exactly and case-sensitively", () => {
    const r = new Router().register("GET", "/x", named("get"));
    expect(routed(r, "GET", "/x")).toBe("get");
    expect(routed(r, "get", "/x")).toBeUndefined();
    expect(routed(r, "POST", "/x")).toBeUndefined();
  });

  test('"*" (or the two-argument form) matches any method; an exact method wins over it', () => {
    const r = new Router().register("/any", named("any")).register("*", "/both", named("star"));
    r.register("PUT", "/both", named("put"));
    expect(routed(r, "DELETE", "/any")).toBe("any");
    expect(routed(r, "BREW", "/any")).toBe("any");
    expect(routed(r, "PUT", "/both")).toBe("put");
    expect(routed(r, "GET", "/both")).toBe("star");
  });

  test("allowedMethods lists the methods of every route matching the path", () => {
    const r = new Router()
      .register("PUT", "/a/b", named("put"))
      .register("GET", "/a/{x}", named("get"))
      .register("DELETE", "/a/**", named("del"))
      .register("PUT", "/a/{x}", named("put2"));
    expect(r.allowedMethods("/a/b")).toEqual(["PUT", "GET", "DELETE"]);
    expect(r.allowedMethods("/a/c?q=1")).toEqual(["GET", "PUT", "DELETE"]);
    expect(r.allowedMethods("/nothing")).toEqual([]);
  });
});

describe("Router: path normalisation", () => {
  const r = new Router().register("GET", "/a/b", named("ab")).register("GET", "/v/{id}", named("v"));

  test("the query (and a fragment) is ignored", () => {
    expect(routed(r, "GET", "/a/b?x=1&y=/c")).toBe("ab");
    expect(routed(r, "GET", "/a/b?")).toBe("ab");
    expect(routed(r, "GET", "/a/b#frag")).toBe("ab");
    expect(r.match("GET", "/v/7?id=8")?.params).toEqual({ id: "7" });
  });

  test("the path is taken from an absolute-form target", () => {
    expect(routed(r, "GET", "http://example.com/a/b?q=1")).toBe("ab");
    expect(routed(r, "GET", "https://h:8443/v/9")).toBe("v");
    const root = new Router().register("GET", "/", named("root"));
    expect(routed(root, "GET", "http://example.com")).toBe("root");
    expect(routed(root, "GET", "http://example.com?x=/a/b")).toBe("root");
  });

  test("trailing slashes and empty segments are ignored", () => {
    expect(routed(r, "GET", "/a/b/")).toBe("ab");
    expect(routed(r, "GET", "//a//b//")).toBe("ab");
    expect(routed(r, "GET", "/a//b?x")).toBe("ab");
    const registeredOddly = new Router().register("GET", "//c//d/", named("cd"));
    expect(routed(registeredOddly, "GET", "/c/d")).toBe("cd");
  });

  test("targets without a path (asterisk and authority form) match nothing", () => {
    const any = new Router().register("*", "/{x}", named("x"));
    expect(routed(any, "OPTIONS", "*")).toBeUndefined();
    expect(routed(any, "CONNECT", "example.com:443")).toBeUndefined();
  });

  test("params are raw: percent escapes are not decoded and %2F does not split", () => {
    const files = new Router()
      .register("GET", "/f/{name}", named("one"))
      .register("GET", "/f/**", named("rest"));
    expect(files.match("GET", "/f/a%2Fb")?.params).toEqual({ name: "a%2Fb" });
    expect(files.match("GET", "/f/caf%C3%A9%20x")?.params).toEqual({ name: "caf%C3%A9%20x" });
    expect(routed(files, "GET", "/f/a%2Fb")).toBe("one");
  });
});

describe("Router: registration errors", () => {
  const h = named("h");

  test("** anywhere but last is an ArgumentError", () => {
    expect(() => new Router().register("GET", "/a/**/b", h)).toThrow(ArgumentError);
    expect(() => new Router().register("GET", "/**/x", h)).toThrow(/must be the last segment/);
  });

  test("an invalid regex is an ArgumentError with the cause", () => {
    expect(() => new Router().register("GET", "/a/{id:[0-9}", h)).toThrow(ArgumentError);
    expect(() => new Router().register("GET", "/a/{id:(}", h)).toThrow(/not a valid regular expression/);
    // Valid only once wrapped: it would escape the anchoring group and match part of a segment.
    expect(() => new Router().register("GET", "/a/{id:a)|(b}", h)).toThrow(ArgumentError);
    expect(() => new Router().register("GET", "/a/{id:}", h)).toThrow(/empty pattern/);
    try {
      new Router().register("GET", "/a/{id:*}", h);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ArgumentError);
      expect((err as ArgumentError).cause).toBeInstanceOf(SyntaxError);
    }
  });

  test("bad variables are ArgumentErrors", () => {
    expect(() => new Router().register("GET", "/u/user-{id}", h)).toThrow(/whole segment/);
    expect(() => new Router().register("GET", "/u/{id:[^/]+}", h)).toThrow(ArgumentError);
    expect(() => new Router().register("GET", "/u/{id}/{id}", h)).toThrow(/appears twice/);
    expect(() => new Router().register("GET", "/u/{}", h)).toThrow(ArgumentError);
    expect(() => new Router().register("GET", "/u/{1x}", h)).toThrow(ArgumentError);
    expect(() => new Router().register("GET", "/u/{__proto__}", h)).toThrow(ArgumentError);
  });

  test("bad methods, paths, handlers and options are ArgumentErrors", () => {
    const r = new Router();
    expect(() => r.register("", "/x", h)).toThrow(ArgumentError);
    expect(() => r.register("GE T", "/x", h)).toThrow(ArgumentError);
    expect(() => r.register("GET", "x", h)).toThrow(/starting with/);
    expect(() => r.register("GET", "/x?y=1", h)).toThrow(/query/);
    expect(() => r.register("GET", "/x", "nope" as unknown as RequestHandler)).toThrow(/must be a function/);
    expect(() => (r.register as unknown as (a: string, b: string) => Router)("GET", "/x")).toThrow(
      /needs a handler/,
    );
    expect(() => r.register("GET", "/a".repeat(MAX_ROUTE_SEGMENTS + 1), h)).toThrow(ArgumentError);
    expect(() => new Router({ notFound: 404 as unknown as RequestHandler })).toThrow(ArgumentError);
    const broken = new Router({ middleware: (() => undefined) as unknown as Middleware });
    expect(() => broken.register("GET", "/x", h)).toThrow(/middleware returned/);
    // Nothing half-registered was left behind by the failures.
    expect(r.match("GET", "/x")).toBeUndefined();
  });

  test("registering the same method and pattern again replaces it, with a process warning", async () => {
    const r = new Router().register("GET", "/u/{id}", named("first"));
    const warned = once(process, "warning") as Promise<[Error & { code?: string }]>;
    r.register("GET", "/u/{uid}/", named("second"));
    const [warning] = await warned;
    expect(warning.code).toBe("HW_ROUTE_REPLACED");
    expect(warning.message).toContain("/u/{id}");
    expect(routed(r, "GET", "/u/7")).toBe("second");
    expect(r.match("GET", "/u/7")?.params).toEqual({ uid: "7" });
    expect(r.match("GET", "/u/7")?.route).toBe("/u/{uid}/");
  });
});

describe("Router.handle: request handlers", () => {
  test("runs the handler and records route and params for getRoute/getParams/getParam", async () => {
    const r = new Router().register("GET", "/users/{id}/posts/{postId}", (req) => {
      const body = JSON.stringify({
        route: getRoute(req),
        params: getParams(req),
        id: getParam(req, "id"),
        missing: getParam(req, "missing"),
        fallback: getParam(req, "missing", "dflt"),
        inherited: getParam(req, "constructor", "none"),
      });
      return new Response(200, { body });
    });
    const resp = await handle(r, "GET", "/users/7/posts/9?x=1");
    expect(JSON.parse(resp.text())).toEqual({
      route: "/users/{id}/posts/{postId}",
      params: { id: "7", postId: "9" },
      id: "7",
      fallback: "dflt",
      inherited: "none",
    });
  });

  test("getParams is undefined for a route without variables; all three are empty for an unrouted request", async () => {
    const r = new Router().register(
      "GET",
      "/plain/*",
      (req) => new Response(200, { body: `${getRoute(req)} ${getParams(req)} ${getParam(req, "x", "d")}` }),
    );
    expect((await handle(r, "GET", "/plain/1")).text()).toBe("/plain/* undefined d");
    const req = new Request("GET", "/plain/1");
    expect(getRoute(req)).toBeUndefined();
    expect(getParams(req)).toBeUndefined();
    expect(getParam(req, "x")).toBeUndefined();
    expect(getParam(req, "x", 5)).toBe(5);
  });

  test("no route for the path: 404, empty", async () => {
    const r = new Router().register("GET", "/a", named("a"));
    const resp = await handle(r, "GET", "/b");
    expect(resp.status).toBe(404);
    expect(resp.headers.has("allow")).toBe(false);
  });

  test("the path matches but not the method: 405 with Allow", async () => {
    const r = new Router().register("GET", "/a", named("a")).register("DELETE", "/a", named("d"));
    const resp = await handle(r, "POST", "/a");
    expect(resp.status).toBe(405);
    expect(resp.headers.get("allow")).toBe("GET, DELETE");
  });

  test("custom 404 and 405 handlers; the 405 gets Allow unless it set one, also when async", async () => {
    const r = new Router({
      notFound: () => new Response(404, { body: "nothing here" }),
      methodNotAllowed: (req) =>
        req.target === "/keep"
          ? new Response(405, { headers: { Allow: "OPTIONS" } })
          : Promise.resolve(new Response(405, { body: "no" })),
    })
      .register("GET", "/a", named("a"))
      .register("GET", "/keep", named("k"));
    expect((await handle(r, "GET", "/zzz")).text()).toBe("nothing here");
    const added = await handle(r, "PUT", "/a");
    expect(added.text()).toBe("no");
    expect(added.headers.get("allow")).toBe("GET");
    expect((await handle(r, "PUT", "/keep")).headers.getAll("allow")).toEqual(["OPTIONS"]);
  });

  test("middleware wraps each handler once, at registration, and not the 404/405 handlers", async () => {
    let wrapped = 0;
    const calls: string[] = [];
    const middleware: Middleware = (next) => {
      wrapped++;
      return (req) => {
        calls.push(req.target);
        return next(req);
      };
    };
    const r = new Router({ middleware })
      .register("GET", "/a", named("a"))
      .register("GET", "/b/{x}", (req) => new Response(200, { body: getParam(req, "x") ?? "" }));
    expect(wrapped).toBe(2);
    expect((await handle(r, "GET", "/a")).text()).toBe("a");
    expect((await handle(r, "GET", "/b/q")).text()).toBe("q");
    expect((await handle(r, "GET", "/a")).text()).toBe("a");
    expect(wrapped).toBe(2);
    expect((await handle(r, "GET", "/none")).status).toBe(404);
    expect((await handle(r, "POST", "/a")).status).toBe(405);
    expect(calls).toEqual(["/a", "/b/q", "/a"]);
  });
});

describe("Router through a real server", () => {
  function app(): Router {
    return new Router()
      .register("GET", "/users/{id}", (req) => new Response(200, { body: `user ${getParam(req, "id")}` }))
      .register("DELETE", "/users/{id}", () => new Response(204))
      .register("GET", "/files/{name}", (req) => new Response(200, { body: `one ${getParams(req)?.name}` }))
      .register("GET", "/files/**", (req) => new Response(200, { body: `rest ${getRoute(req)}` }))
      .register("POST", "/echo", (req) => new Response(200, { body: req.body }));
  }

  test("serve(router): routes, params, 404, 405 with Allow, query ignored, request body", async () => {
    const s = servers.add(await serve(app(), { port: 0 }));
    const ok = await get(`${s.url}/users/42?expand=1`);
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe("user 42");
    expect((await get(`${s.url}/users/42/`)).body.toString()).toBe("user 42");
    expect((await get(`${s.url}/nope`)).status).toBe(404);
    const bad = await get(`${s.url}/users/42`, { method: "PUT", body: "x" });
    expect(bad.status).toBe(405);
    expect(bad.headers.allow).toBe("GET, DELETE");
    expect((await get(`${s.url}/users/1`, { method: "DELETE" })).status).toBe(204);
    expect((await get(`${s.url}/echo`, { method: "POST", body: "payload" })).body.toString()).toBe("payload");
  });

  test("serve(router): an absolute-form target and %2F on the wire", async () => {
    const s = servers.add(await serve(app(), { port: 0 }));
    const abs = await raw(
      s.port,
      "GET http://example.com/users/9?x=/files/a HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    );
    expect(statuses(abs.text)).toEqual([200]);
    expect(bodyOf(abs.text)).toBe("user 9");
    const slash = await get(`${s.url}/files/a%2Fb`);
    expect(slash.body.toString()).toBe("one a%2Fb");
    expect((await get(`${s.url}/files/a/b`)).body.toString()).toBe("rest /files/**");
  });

  test("listen(router): stream handlers, params, 404 and 405 end the response", async () => {
    const router = new Router<StreamHandler>()
      .register("GET", "/s/{id}", async (stream) => {
        stream.setHeader("Content-Type", "text/plain");
        await stream.write(`stream ${getParam(stream, "id")} ${getRoute(stream.request)}`);
      })
      .register("PUT", "/s/{id}", async (stream) => {
        let n = 0;
        for await (const chunk of stream) n += chunk.byteLength;
        await stream.write(`${getParams(stream)?.id}:${n}`);
      });
    const s = servers.add(await listen(router, { port: 0 }));
    const ok = await get(`${s.url}/s/5?q`);
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe("stream 5 /s/{id}");
    expect((await get(`${s.url}/s/6`, { method: "PUT", body: "abcd" })).body.toString()).toBe("6:4");
    const missing = await get(`${s.url}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers["content-length"]).toBe("0");
    const wrong = await get(`${s.url}/s/1`, { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe("GET, PUT");
  });

  test("listen(router): a 404 to a request with an unread body says Connection: close", async () => {
    const router = new Router<StreamHandler>().register("GET", "/x", (stream) => stream.write("x"));
    const s = servers.add(await listen(router, { port: 0 }));
    // The head promises 10 bytes and only 3 are sent: the server must answer without waiting for them.
    const reply = await raw(s.port, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    expect(statuses(reply.text)).toEqual([404]);
    expect(headOf(reply.text)).toContain("connection: close");
    expect(reply.closed).toBe(true);
  });

  test("listen(router): custom stream 404/405 handlers; the 405 finds Allow already set", async () => {
    const router = new Router<StreamHandler>({
      notFound: async (stream) => {
        stream.setStatus(404);
        await stream.write("custom 404");
      },
      methodNotAllowed: async (stream) => {
        stream.setStatus(405);
        await stream.write("custom 405");
      },
    }).register("GET", "/x", (stream) => stream.write("x"));
    const s = servers.add(await listen(router, { port: 0 }));
    const nf = await get(`${s.url}/y`);
    expect([nf.status, nf.body.toString()]).toEqual([404, "custom 404"]);
    const na = await get(`${s.url}/x`, { method: "PATCH" });
    expect([na.status, na.body.toString(), na.headers.allow]).toEqual([405, "custom 405", "GET"]);
  });

  test("listen rejects a handler that is neither a function nor has handleStream", async () => {
    await expect(listen({} as unknown as StreamHandler, { port: 0 })).rejects.toThrow(ArgumentError);
  });
});

describe("Router: scale and hostile paths", () => {
  test("10,000 routes of every kind all resolve to the right handler", () => {
    const r = new Router();
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      switch (i % 4) {
        case 0:
          r.register("GET", `/static/${i}/page`, named(`s${i}`));
          break;
        case 1:
          r.register("GET", `/r${i}/{id}`, named(`v${i}`));
          break;
        case 2:
          r.register("POST", `/r${i}/{id:[0-9]+}/items/{item}`, named(`x${i}`));
          break;
        default:
          r.register("GET", `/d${i}/**`, named(`d${i}`));
      }
    }
    for (let i = 0; i < N; i++) {
      switch (i % 4) {
        case 0:
          expect(routed(r, "GET", `/static/${i}/page`)).toBe(`s${i}`);
          break;
        case 1:
          expect(r.match("GET", `/r${i}/abc`)?.params).toEqual({ id: "abc" });
          expect(routed(r, "GET", `/r${i}/abc`)).toBe(`v${i}`);
          break;
        case 2:
          expect(r.match("POST", `/r${i}/12/items/z`)?.params).toEqual({ id: "12", item: "z" });
          expect(routed(r, "POST", `/r${i}/ab/items/z`)).toBeUndefined();
          break;
        default:
          expect(routed(r, "GET", `/d${i}/a/b/c`)).toBe(`d${i}`);
      }
    }
    expect(routed(r, "GET", "/static/1/page")).toBeUndefined();
    expect(r.allowedMethods("/r2/1/items/z")).toEqual(["POST"]);
  });

  test("a very long path, 10,000 segments, and junk answer a miss or the right route", () => {
    const r = new Router()
      .register("GET", "/a/{x}", named("ax"))
      .register("GET", "/deep/**", named("deep"))
      .register("GET", "/{n:[0-9]+}/*", named("num"));
    const long = "z".repeat(1 << 20);
    expect(routed(r, "GET", `/${long}`)).toBeUndefined();
    expect(r.match("GET", `/a/${long}`)?.params?.x).toHaveLength(1 << 20);
    const many = "/a".repeat(10_000);
    expect(routed(r, "GET", many)).toBeUndefined();
    expect(r.allowedMethods(many)).toEqual([]);
    expect(routed(r, "GET", `/deep${many}`)).toBe("deep");
    expect(routed(r, "GET", `/1/x${"/".repeat(10_000)}`)).toBe("num");
    for (const junk of [
      "",
      "?",
      "#",
      "http://",
      "http:///",
      "://x/a/b",
      "%",
      "/%zz/%",
      "\u0000/\uffff",
      "/a/\ud800",
    ]) {
      expect(() => r.match("GET", junk)).not.toThrow();
      expect(() => r.allowedMethods(junk)).not.toThrow();
    }
    expect(routed(r, "GET", "/a/\ud800")).toBe("ax");
  });

  test("a deep trie with a failing branch at every level still answers (each node visited once)", () => {
    const r = new Router();
    const depth = 500;
    // Every level offers an exact, a regex and a wildcard branch; only the wildcard chain ends in a route.
    for (let d = 1; d <= depth; d++) {
      r.register("GET", `${"/*".repeat(d - 1)}/x/leaf${d}`, named(`x${d}`));
      r.register("GET", `${"/*".repeat(d - 1)}/{v:x}/other${d}`, named(`v${d}`));
    }
    r.register("GET", "/*".repeat(depth + 1), named("end"));
    expect(routed(r, "GET", "/x".repeat(depth + 1))).toBe("end");
    expect(routed(r, "GET", `${"/x".repeat(depth - 1)}/x/leaf${depth}`)).toBe(`x${depth}`);
  });

  test("through the server: a long path, many segments, %2F and an asterisk target never crash", async () => {
    const r = new Router()
      .register("GET", "/a/{x}", (req) => new Response(200, { body: `a ${getParam(req, "x")}` }))
      .register("*", "/{any}", () => new Response(200, { body: "any" }));
    const s = servers.add(await serve(r, { port: 0 }));
    expect((await get(`${s.url}/${"q".repeat(6000)}/x`)).status).toBe(404);
    expect((await get(`${s.url}${"/a".repeat(3000)}`)).status).toBe(404);
    expect((await get(`${s.url}/a/x%2Fy%00`)).body.toString()).toBe("a x%2Fy%00");
    const star = await raw(s.port, "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statuses(star.text)).toEqual([404]);
    expect((await get(`${s.url}/a/1`)).status).toBe(200);
  });
});
