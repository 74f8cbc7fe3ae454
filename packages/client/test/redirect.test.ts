import { Writable } from "node:stream";
import {
  ArgumentError,
  type Request as CoreRequest,
  ProtocolError,
  Response,
  TooManyRedirectsError,
} from "@hyperwire/core";
import { serve } from "@hyperwire/server";
import { afterEach, describe, expect, test } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";
import type { ClientEvent, RedirectEvent } from "../src/index.js";
import { bodyBytes, type Echoed, echo, headerValues, Resources } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

/**
 * A server whose `/r/<status>?to=<url>` answers `status` with `Location: <url>` (and a body), and
 * echoes everything else.
 */
function redirector(extra: (req: CoreRequest) => Response | undefined = () => undefined) {
  return res.serve((req) => {
    const special = extra(req);
    if (special !== undefined) return special;
    const m = /^\/r\/(\d+)\?to=(.*)$/.exec(req.target);
    if (m === null) return echo(req);
    return new Response(Number(m[1]), {
      headers: { Location: decodeURIComponent(m[2]!) },
      body: "redirect body",
    });
  });
}

function to(base: string, status: number, target: string): string {
  return `${base}/r/${status}?to=${encodeURIComponent(target)}`;
}

const STATUSES = [301, 302, 303, 307, 308] as const;
const METHODS = ["GET", "HEAD", "POST", "PUT", "QUERY"] as const;

function expectedMethod(status: number, method: string): string {
  if (status === 303) return method === "HEAD" ? "HEAD" : "GET";
  if ((status === 301 || status === 302) && method === "POST") return "GET";
  return method;
}

describe("the redirect matrix", () => {
  for (const status of STATUSES) {
    for (const method of METHODS) {
      for (const cross of [false, true]) {
        test(`${status} ${method} ${cross ? "cross" : "same"}-origin, replayable body`, async () => {
          const a = await redirector();
          const b = cross ? await redirector() : a;
          const client = res.client();
          const hasBody = method !== "GET" && method !== "HEAD";
          const r = await client.request(method, to(a.url, status, `${b.url}/target?x=1`), {
            ...(hasBody ? { body: "the body" } : {}),
          });
          expect(r.status).toBe(200);
          expect(r.redirectCount).toBe(1);
          expect(r.url).toBe(`${b.url}/target?x=1`);
          expect(r.previous?.status).toBe(status);
          const want = expectedMethod(status, method);
          expect(r.request?.method).toBe(want);
          if (method === "HEAD") return; // no body to look at
          const e = r.json<Echoed>();
          expect(e.method).toBe(want);
          expect(e.target).toBe("/target?x=1");
          const kept = hasBody && want === method && status !== 303;
          expect(bodyBytes(e).toString()).toBe(kept ? "the body" : "");
          expect(headerValues(e, "content-length")).toEqual(kept ? ["8"] : []);
          expect(headerValues(e, "host")).toEqual([new URL(b.url).host]);
        });
      }
      if (method !== "GET" && method !== "HEAD") {
        test(`${status} ${method} with a streamed body is returned, not followed`, async () => {
          const a = await redirector();
          async function* chunks() {
            yield new TextEncoder().encode("streamed");
          }
          const r = await res
            .client()
            .request(method, to(a.url, status, `${a.url}/target`), { body: chunks() });
          expect(r.status).toBe(status);
          expect(r.redirectCount).toBe(0);
          expect(r.text()).toBe("redirect body");
        });
      }
    }
  }
});

describe("headers across hops", () => {
  const secrets = {
    Authorization: "Bearer secret",
    Cookie: "session=abc",
    "Proxy-Authorization": "Basic c2VjcmV0",
    "X-Custom": "kept",
  };

  test("credentials are kept same-origin and dropped cross-origin (scheme, host or port)", async () => {
    const a = await redirector();
    const b = await redirector();
    const client = res.client({ cookieJar: null });
    const same = (await client.get(to(a.url, 302, `${a.url}/t`), { headers: secrets })).json<Echoed>();
    for (const [k, v] of Object.entries(secrets)) expect(headerValues(same, k)).toEqual([v]);
    const cross = (await client.get(to(a.url, 302, `${b.url}/t`), { headers: secrets })).json<Echoed>();
    expect(headerValues(cross, "authorization")).toEqual([]);
    expect(headerValues(cross, "cookie")).toEqual([]);
    expect(headerValues(cross, "proxy-authorization")).toEqual([]);
    expect(headerValues(cross, "x-custom")).toEqual(["kept"]);
    // Another host name for the same server is another origin too.
    const byName = a.url.replace("127.0.0.1", "localhost");
    const named = (await client.get(to(a.url, 307, `${byName}/t`), { headers: secrets })).json<Echoed>();
    expect(headerValues(named, "authorization")).toEqual([]);
  });

  test("per-call cookies go to the first origin only", async () => {
    const a = await redirector();
    const b = await redirector();
    const client = res.client();
    const same = (await client.get(to(a.url, 302, `${a.url}/t`), { cookies: { c: "1" } })).json<Echoed>();
    expect(headerValues(same, "cookie")).toEqual(["c=1"]);
    const cross = (await client.get(to(a.url, 302, `${b.url}/t`), { cookies: { c: "1" } })).json<Echoed>();
    expect(headerValues(cross, "cookie")).toEqual([]);
  });

  test("Referer is the previous URL (no userinfo or fragment), not sent from https to http", async () => {
    const a = await redirector();
    const r = await res.client().get(to(a.url, 302, `${a.url}/t`));
    expect(headerValues(r.json<Echoed>(), "referer")).toEqual([to(a.url, 302, `${a.url}/t`)]);
    const secure = await serve(
      (req) => {
        const m = /^\/r\/(\d+)\?to=(.*)$/.exec(req.target);
        return m === null
          ? echo(req)
          : new Response(Number(m[1]), { headers: { Location: decodeURIComponent(m[2]!) } });
      },
      { host: "127.0.0.1", port: 0, tls: { key: tls.key, cert: tls.cert } },
    );
    res.add({ close: () => secure.forceClose() });
    const https = `https://127.0.0.1:${secure.port}`;
    const client = res.client();
    const down = await client.get(to(https, 302, `${a.url}/t`), { tls: { ca: tls.ca } });
    expect(headerValues(down.json<Echoed>(), "referer")).toEqual([]);
    const up = await client.get(to(a.url, 302, `${https}/t`), { tls: { ca: tls.ca } });
    expect(up.url).toBe(`${https}/t`);
    expect(headerValues(up.json<Echoed>(), "referer")).toEqual([to(a.url, 302, `${https}/t`)]);
  });

  test("forwardHeaders: false starts the next hop without the caller's headers", async () => {
    const a = await redirector();
    const r = await res.client().get(to(a.url, 302, `${a.url}/t`), {
      headers: { "X-Custom": "v", Authorization: "Bearer s" },
      forwardHeaders: false,
    });
    const e = r.json<Echoed>();
    expect(headerValues(e, "x-custom")).toEqual([]);
    expect(headerValues(e, "authorization")).toEqual([]);
    expect(headerValues(e, "user-agent").length).toBe(1);
  });
});

describe("limits and checks", () => {
  test("redirect: false and redirectLimit: 0 return the 3xx", async () => {
    const a = await redirector();
    const client = res.client();
    for (const opts of [{ redirect: false }, { redirectLimit: 0 }]) {
      const r = await client.get(to(a.url, 301, `${a.url}/t`), opts);
      expect(r.status).toBe(301);
      expect(r.text()).toBe("redirect body");
    }
    expect(await rejectionOrNull(client.get(a.url, { redirectLimit: -1 }))).toBeInstanceOf(ArgumentError);
    expect(await rejectionOrNull(client.get(a.url, { redirectMethod: "BREW" }))).toBeInstanceOf(
      ArgumentError,
    );
  });

  test("a loop ends in TooManyRedirectsError carrying the last 3xx; maxRedirects is the client's default", async () => {
    const a = await redirector((req) =>
      req.target.startsWith("/loop") ? new Response(302, { headers: { Location: "/loop" } }) : undefined,
    );
    const err = (await rejectionOrNull(res.client().get(`${a.url}/loop`))) as TooManyRedirectsError<Response>;
    expect(err).toBeInstanceOf(TooManyRedirectsError);
    expect(err.limit).toBe(10);
    expect(err.response.status).toBe(302);
    const small = res.client({ maxRedirects: 2 });
    const e2 = (await rejectionOrNull(small.get(`${a.url}/loop`))) as TooManyRedirectsError<Response>;
    expect(e2.limit).toBe(2);
    expect((e2.response as Response).redirectCount).toBe(2);
    expect(() => res.client({ maxRedirects: -1 })).toThrow(ArgumentError);
  });

  test("checkRedirect: false returns the 3xx, a non-boolean is a ProtocolError", async () => {
    const a = await redirector();
    const seen: string[] = [];
    const client = res.client({
      checkRedirect: (response, request, location) => {
        seen.push(`${response.status} ${request.method} ${location}`);
        return false;
      },
    });
    const r = await client.get(to(a.url, 307, `${a.url}/t`));
    expect(r.status).toBe(307);
    expect(seen).toEqual([`307 GET ${a.url}/t`]);
    const odd = res.client({ checkRedirect: (() => "yes") as never });
    expect(await rejectionOrNull(odd.get(to(a.url, 307, `${a.url}/t`)))).toBeInstanceOf(ProtocolError);
  });

  test("redirectMethod for 301/302: 'same' keeps POST, a method replaces it", async () => {
    const a = await redirector();
    const client = res.client();
    const same = await client.post(to(a.url, 302, `${a.url}/t`), { body: "b", redirectMethod: "same" });
    expect(same.json<Echoed>().method).toBe("POST");
    expect(bodyBytes(same.json<Echoed>()).toString()).toBe("b");
    const put = await client.get(to(a.url, 301, `${a.url}/t`), { redirectMethod: "put" });
    expect(put.json<Echoed>().method).toBe("PUT");
  });
});

describe("locations and the chain", () => {
  test("relative and absolute Locations, the previous chain, trace events", async () => {
    const a = await redirector((req) => {
      if (req.target === "/one") return new Response(301, { headers: { Location: "two" } });
      if (req.target === "/two") return new Response(302, { headers: { Location: "/three?q=1" } });
      return undefined;
    });
    const events: ClientEvent[] = [];
    const r = await res.client().get(`${a.url}/one`, { trace: (e) => events.push(e) });
    expect(r.json<Echoed>().target).toBe("/three?q=1");
    expect(r.redirectCount).toBe(2);
    expect(r.previous?.url).toBe(`${a.url}/two`);
    expect(r.previous?.redirectCount).toBe(1);
    expect(r.previous?.previous?.url).toBe(`${a.url}/one`);
    expect(r.previous?.previous?.previous).toBeUndefined();
    const redirects = events.filter((e): e is RedirectEvent => e.type === "redirect");
    expect(redirects.map((e) => [e.redirectCount, e.fromUrl, e.toUrl])).toEqual([
      [1, `${a.url}/one`, `${a.url}/two`],
      [2, `${a.url}/two`, `${a.url}/three?q=1`],
    ]);
    expect(events.map((e) => e.type)).toEqual([
      "request",
      "responseHead",
      "redirect",
      "request",
      "responseHead",
      "redirect",
      "request",
      "responseHead",
      "done",
    ]);
  });

  test("a Location that is not an http(s) URL, or none, returns the 3xx", async () => {
    const a = await redirector((req) => {
      if (req.target === "/ftp") return new Response(302, { headers: { Location: "ftp://example.com/" } });
      if (req.target === "/bad") return new Response(302, { headers: { Location: "http://[::1" } });
      if (req.target === "/none") return new Response(302, { body: "no location" });
      return undefined;
    });
    const client = res.client();
    for (const path of ["/ftp", "/bad", "/none"]) {
      const r = await client.get(`${a.url}${path}`);
      expect(r.status).toBe(302);
      expect(r.redirectCount).toBe(0);
    }
  });

  test("a responseStream only gets the final body; the 3xx connection is reused", async () => {
    const a = await redirector();
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        cb();
      },
    });
    const client = res.client();
    const r = await client.get(to(a.url, 302, `${a.url}/final`), { responseStream: sink });
    expect(r.status).toBe(200);
    const e = JSON.parse(Buffer.concat(chunks).toString()) as Echoed;
    expect(e.target).toBe("/final");
    expect(client.transport.idleConnectionCount()).toBe(1);
  });
});

async function rejectionOrNull(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return null;
  } catch (e) {
    return e;
  }
}
