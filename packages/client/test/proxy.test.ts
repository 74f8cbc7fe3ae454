// Proxies, for real: tinyproxy (HTTP forward + CONNECT) and microsocks (SOCKS5) from Debian's
// packages run as child processes on 127.0.0.1; the `https://` proxy mode uses a TLS-terminating
// proxy written in ./proxies.ts. Origins are hyperwire servers (plain and TLS) on 127.0.0.1. When a
// proxy binary is missing, every test here fails with a message naming the package to install.
import { execFile } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { inspect, promisify } from "node:util";
import {
  ArgumentError,
  ConnectError,
  HTTPError,
  ProtocolError,
  ProxyConfig,
  type ProxyInit,
  StatusError,
  TimeoutError,
  TLSHandshakeError,
} from "@hyperwire/core";
import { type Server, serve } from "@hyperwire/server";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import {
  type Client,
  type ClientEvent,
  get,
  getDefaultClient,
  request,
  Transport,
  type TransportOptions,
} from "../src/index.js";
import { type Echoed, echo, headerValues, Resources, rejectionOf, within } from "./helpers.js";
import {
  type Credentials,
  freePort,
  Microsocks,
  proxyUrl,
  Relay,
  requireBinary,
  TestProxy,
  Tinyproxy,
} from "./proxies.js";

const TINY_AUTH: Credentials = ["tinyuser", "tinypass123"];
const SOCKS_AUTH: Credentials = ["sockuser", "p@ss:w0rd%"];
const TLS_AUTH: Credentials = ["tlsuser", "s3cret p@ss:x"];
const WRONG = "wrongpw999";

let tiny: Tinyproxy;
let tinyAuth: Tinyproxy;
let socks: Microsocks;
let socksAuth: Microsocks;
let tlsProxy: TestProxy;
let tlsProxyAuth: TestProxy;
let httpOrigin: Server;
let httpsOrigin: Server;
let usedDefaultClient = false;

let setupError: unknown;

beforeAll(async () => {
  try {
    // Both binaries first, so that a missing one is what the failure says.
    requireBinary("tinyproxy", "tinyproxy-bin");
    requireBinary("microsocks", "microsocks");
    // Whatever started is closed in afterAll, even when a later start fails.
    httpOrigin = await serve(echo, { host: "127.0.0.1", port: 0 });
    httpsOrigin = await serve(echo, {
      host: "127.0.0.1",
      port: 0,
      tls: { key: fixtures.key, cert: fixtures.cert },
    });
    tlsProxy = await TestProxy.start({ tls: true });
    tlsProxyAuth = await TestProxy.start({ tls: true, auth: TLS_AUTH });
    tiny = await Tinyproxy.start();
    tinyAuth = await Tinyproxy.start(TINY_AUTH);
    socks = await Microsocks.start();
    socksAuth = await Microsocks.start(SOCKS_AUTH);
  } catch (e) {
    setupError = e;
  }
}, 30_000);

// A failed setup (a proxy binary missing) fails every test with its message, rather than skipping them.
beforeEach(() => {
  if (setupError !== undefined) throw setupError;
});

afterAll(async () => {
  if (usedDefaultClient) await getDefaultClient().close();
  await Promise.all([tiny, tinyAuth, socks, socksAuth, tlsProxy, tlsProxyAuth].map((p) => p?.close()));
  await Promise.all([httpOrigin, httpsOrigin].map((s) => s?.forceClose()));
});

const res = new Resources();
afterEach(() => res.closeAll());

/** A client whose own Transport goes through `proxy` and trusts the test CA (origin and https proxy). */
function via(proxy: ProxyInit, options: TransportOptions = {}): { client: Client; transport: Transport } {
  const transport = res.add(new Transport({ proxy, tls: { ca: fixtures.ca }, ...options }));
  return { client: res.client({ transport }), transport };
}

const httpUrl = (p: string): string => `${httpOrigin.url}${p}`;
const httpsUrl = (p: string): string => `https://127.0.0.1:${httpsOrigin.port}${p}`;

/** The password in every form it could leak in: as is, percent-encoded, and inside `Basic` base64. */
function secretForms(auth: Credentials): string[] {
  const password = auth[1];
  return [
    password,
    encodeURIComponent(password),
    Buffer.from(`${auth[0]}:${password}`, "utf8").toString("base64"),
  ];
}

/** JSON of anything, cycles cut, errors with their message, name, code and cause. */
function dump(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "bigint") return String(v);
    if (v instanceof Uint8Array) return Buffer.from(v).toString("latin1");
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[cycle]";
      seen.add(v);
      if (v instanceof Error) {
        return { ...v, name: v.name, message: v.message, stack: v.stack, cause: v.cause };
      }
    }
    return v;
  });
}

/** The error's message, `String(err)`, `util.inspect(err)` (causes included) and its JSON hold no secret. */
function expectNoSecret(err: unknown, auth: Credentials): void {
  const views = [
    (err as Error).message,
    String(err),
    inspect(err, { depth: 10 }),
    (err as Error).stack ?? "",
    dump(err),
  ];
  for (const view of views) {
    for (const secret of secretForms(auth)) expect(view).not.toContain(secret);
  }
}

/** The redacted proxy as errors name it: `proxy http://user:***@127.0.0.1:port`. */
function named(scheme: string, port: number, user?: string): string {
  return `proxy ${scheme}://${user !== undefined ? `${user}:***@` : ""}127.0.0.1:${port}`;
}

/** Runs `body` with process.stderr.write captured (and restored afterwards). */
async function captureStderr(body: () => Promise<unknown>): Promise<string> {
  const original = process.stderr.write;
  let text = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    await body();
  } finally {
    process.stderr.write = original;
  }
  return text;
}

/** An https hyperwire origin with the untrusted certificate. */
async function untrustedOrigin(): Promise<Server> {
  const s = await serve(echo, {
    host: "127.0.0.1",
    port: 0,
    tls: { key: fixtures.untrustedKey, cert: fixtures.untrustedCert },
  });
  res.add({ close: () => s.forceClose() });
  return s;
}

describe("HTTP forward proxy (tinyproxy): http targets", () => {
  test("without auth: the request goes to the proxy in absolute form and reaches the origin", async () => {
    const relay = res.add(await Relay.start(tiny.port));
    const { client } = via(proxyUrl("http", relay.port));
    const r = await client.get(httpUrl("/fwd?q=1"), { headers: { "X-Test": "forward" } });
    expect(r.status).toBe(200);
    const e = r.json<Echoed>();
    // The proxy turned the absolute-form target back into origin form and added its Via.
    expect(e.target).toBe("/fwd?q=1");
    expect(headerValues(e, "via").join()).toContain("tinyproxy");
    expect(headerValues(e, "host")).toEqual([`127.0.0.1:${httpOrigin.port}`]);
    expect(headerValues(e, "x-test")).toEqual(["forward"]);
    expect(headerValues(e, "proxy-authorization")).toEqual([]);
    expect(r.url).toBe(httpUrl("/fwd?q=1"));
    expect(relay.accepted).toBe(1);
  });

  test("with basic auth from the URL's percent-decoded userinfo (a POST with a body)", async () => {
    // `%61` is `a`: the proxy only accepts the decoded password.
    const { client } = via(`http://${TINY_AUTH[0]}:tinyp%61ss123@127.0.0.1:${tinyAuth.port}`);
    const r = await client.post(httpUrl("/auth"), { body: "payload through the proxy" });
    expect(r.status).toBe(200);
    const e = r.json<Echoed>();
    expect(e.method).toBe("POST");
    expect(e.target).toBe("/auth");
    expect(Buffer.from(e.body, "base64").toString()).toBe("payload through the proxy");
    expect(headerValues(e, "via").join()).toContain("tinyproxy");
  });

  test("wrong credentials: tinyproxy's 401 surfaces as a StatusError (and as the status without statusException)", async () => {
    const { client } = via(tinyAuth.url([TINY_AUTH[0], WRONG]));
    const err = await rejectionOf(client.get(httpUrl("/wrong")));
    expect(err).toBeInstanceOf(StatusError);
    // tinyproxy answers a wrong password with 401 (a missing one with 407, below).
    expect((err as StatusError).status).toBe(401);
    expectNoSecret(err, [TINY_AUTH[0], WRONG]);
    const r = await client.get(httpUrl("/wrong"), { statusException: false });
    expect(r.status).toBe(401);
  });

  test("no credentials for a proxy that wants them: 407 as a StatusError", async () => {
    const { client } = via(tinyAuth.url(null));
    const err = await rejectionOf(client.get(httpUrl("/none")));
    expect(err).toBeInstanceOf(StatusError);
    expect((err as StatusError).status).toBe(407);
  });
});

describe("CONNECT tunnels (tinyproxy): https targets", () => {
  test("without auth: TLS to the origin through the tunnel; a second request reuses it", async () => {
    const relay = res.add(await Relay.start(tiny.port));
    const { client, transport } = via(proxyUrl("http", relay.port));
    const r = await client.get(httpsUrl("/tunnel"));
    expect(r.status).toBe(200);
    const e = r.json<Echoed>();
    expect(e.target).toBe("/tunnel");
    // Tunnelled bytes are TLS to the origin: the proxy cannot add its Via.
    expect(headerValues(e, "via")).toEqual([]);
    expect(transport.idleConnectionCount()).toBe(1);
    // Pooled under its own key, not as a direct connection to the origin.
    expect(transport.idleConnectionCount(`https://127.0.0.1:${httpsOrigin.port}`)).toBe(0);
    expect((await client.get(httpsUrl("/again"))).json<Echoed>().target).toBe("/again");
    expect(relay.accepted).toBe(1);
    expect(transport.idleConnectionCount()).toBe(1);
  });

  test("with basic auth", async () => {
    const { client } = via(tinyAuth.url());
    const r = await client.get(httpsUrl("/tunnel-auth"));
    expect(r.json<Echoed>().target).toBe("/tunnel-auth");
  });

  test("wrong credentials: a ProtocolError (HW_PROXY_CONNECT) naming the status, not the password", async () => {
    const { client } = via(tinyAuth.url([TINY_AUTH[0], WRONG]));
    const err = await rejectionOf(client.get(httpsUrl("/x")));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("HW_PROXY_CONNECT");
    expect((err as Error).message).toContain("status 401");
    expect((err as Error).message).toContain(named("http", tinyAuth.port, TINY_AUTH[0]));
    expectNoSecret(err, [TINY_AUTH[0], WRONG]);
  });

  test("no credentials: 407, and the message says to check them", async () => {
    const { client } = via(tinyAuth.url(null));
    const err = await rejectionOf(client.get(httpsUrl("/x")));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toContain("status 407");
    expect((err as Error).message).toContain("check the proxy credentials");
  });

  test("the proxy cannot reach the origin: a ProtocolError naming the proxy's status", async () => {
    const closed = await freePort();
    const { client } = via(tiny.url());
    const err = await rejectionOf(client.get(`https://127.0.0.1:${closed}/`));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/CONNECT to 127\.0\.0\.1:\d+ failed with status 5\d\d/);
  });

  test("the certificate checked is the origin's: an untrusted origin is a TLSHandshakeError", async () => {
    const bad = await untrustedOrigin();
    const { client } = via(tiny.url());
    const err = await rejectionOf(client.get(`https://127.0.0.1:${bad.port}/`));
    expect(err).toBeInstanceOf(TLSHandshakeError);
    expect((err as Error).message).toContain(`127.0.0.1:${bad.port}`);
  });
});

describe("SOCKS5 (microsocks)", () => {
  for (const scheme of ["socks5", "socks5h"] as const) {
    test(`${scheme} without auth: http and https targets`, async () => {
      const { client } = via(socks.url(scheme));
      const a = await client.get(httpUrl(`/${scheme}-plain`));
      expect(a.json<Echoed>().target).toBe(`/${scheme}-plain`);
      // A tunnel, not a forward proxy: origin form on the wire.
      expect(headerValues(a.json<Echoed>(), "host")).toEqual([`127.0.0.1:${httpOrigin.port}`]);
      const b = await client.get(httpsUrl(`/${scheme}-tls`));
      expect(b.json<Echoed>().target).toBe(`/${scheme}-tls`);
    });

    test(`${scheme} with user/password auth (percent-decoded): http and https targets`, async () => {
      const { client } = via(socksAuth.url(scheme));
      expect(socksAuth.url(scheme)).toContain("p%40ss%3Aw0rd%25@");
      expect((await client.get(httpUrl("/sa"))).json<Echoed>().target).toBe("/sa");
      expect((await client.post(httpsUrl("/sb"), { body: "x".repeat(100_000) })).json<Echoed>().target).toBe(
        "/sb",
      );
    });
  }

  test("wrong credentials: a ConnectError naming the redacted proxy", async () => {
    const { client } = via(socksAuth.url("socks5", [SOCKS_AUTH[0], WRONG]));
    for (const url of [httpUrl("/"), httpsUrl("/")]) {
      const err = await rejectionOf(client.get(url));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as Error).message).toContain("authentication failed");
      expect((err as Error).message).toContain(named("socks5", socksAuth.port, SOCKS_AUTH[0]));
      expectNoSecret(err, [SOCKS_AUTH[0], WRONG]);
    }
  });

  test("no credentials for a proxy that wants them: a ConnectError", async () => {
    const { client } = via(socksAuth.url("socks5h", null));
    const err = await rejectionOf(client.get(httpUrl("/")));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as Error).message).toContain("authentication methods");
  });

  test("the proxy cannot reach the origin: a ConnectError", async () => {
    const closed = await freePort();
    const { client } = via(socksAuth.url("socks5"));
    const err = await rejectionOf(client.get(`http://127.0.0.1:${closed}/`));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as Error).message).toContain(`could not connect to 127.0.0.1:${closed}`);
    expectNoSecret(err, SOCKS_AUTH);
  });

  test("tunnels are pooled: two requests per origin, one proxy connection each", async () => {
    const relay = res.add(await Relay.start(socksAuth.port));
    const { client, transport } = via(proxyUrl("socks5", relay.port, SOCKS_AUTH));
    for (const p of ["/1", "/2"]) expect((await client.get(httpsUrl(p))).json<Echoed>().target).toBe(p);
    expect(relay.accepted).toBe(1);
    expect(transport.idleConnectionCount()).toBe(1);
    for (const p of ["/3", "/4"]) expect((await client.get(httpUrl(p))).json<Echoed>().target).toBe(p);
    expect(relay.accepted).toBe(2);
    expect(transport.idleConnectionCount()).toBe(2);
  });
});

describe("HTTPS proxy (TLS to the proxy itself)", () => {
  test("forward mode for http targets", async () => {
    const proxy = res.add(await TestProxy.start({ tls: true }));
    const { client, transport } = via(proxy.url());
    const r = await client.get(httpUrl("/tls-fwd?a=b"));
    expect(r.json<Echoed>().target).toBe("/tls-fwd?a=b");
    expect(proxy.forwards).toEqual([`GET ${httpUrl("/tls-fwd?a=b")}`]);
    expect(proxy.connects).toEqual([]);
    // The forward connection is kept and reused for any origin.
    expect((await client.get(httpUrl("/again"))).status).toBe(200);
    expect(proxy.accepted).toBe(1);
    expect(transport.idleConnectionCount()).toBe(1);
  });

  test("CONNECT mode for https targets; the tunnel is pooled", async () => {
    const proxy = res.add(await TestProxy.start({ tls: true }));
    const { client, transport } = via(proxy.url());
    expect((await client.get(httpsUrl("/tls-tun"))).json<Echoed>().target).toBe("/tls-tun");
    expect((await client.get(httpsUrl("/tls-tun2"))).json<Echoed>().target).toBe("/tls-tun2");
    expect(proxy.connects).toEqual([`127.0.0.1:${httpsOrigin.port}`]);
    expect(proxy.forwards).toEqual([]);
    expect(proxy.accepted).toBe(1);
    expect(transport.idleConnectionCount()).toBe(1);
  });

  test("with basic auth in both modes (percent-decoded: space, @ and :)", async () => {
    const before = tlsProxyAuth.authorizations.length;
    const { client } = via(tlsProxyAuth.url());
    expect(tlsProxyAuth.url()).toContain("s3cret%20p%40ss%3Ax@");
    expect((await client.get(httpUrl("/fa"))).json<Echoed>().target).toBe("/fa");
    expect((await client.get(httpsUrl("/ca"))).json<Echoed>().target).toBe("/ca");
    const expected = `Basic ${Buffer.from("tlsuser:s3cret p@ss:x").toString("base64")}`;
    expect(tlsProxyAuth.authorizations.slice(before)).toEqual([expected, expected]);
  });

  test("wrong credentials: 407 as a StatusError (forward) and a ProtocolError (CONNECT)", async () => {
    const { client } = via(tlsProxyAuth.url([TLS_AUTH[0], WRONG]));
    const forward = await rejectionOf(client.get(httpUrl("/")));
    expect(forward).toBeInstanceOf(StatusError);
    expect((forward as StatusError).status).toBe(407);
    expectNoSecret(forward, [TLS_AUTH[0], WRONG]);
    const tunnel = await rejectionOf(client.get(httpsUrl("/")));
    expect(tunnel).toBeInstanceOf(ProtocolError);
    expect((tunnel as Error).message).toContain("status 407");
    expect((tunnel as Error).message).toContain(named("https", tlsProxyAuth.port, TLS_AUTH[0]));
    expectNoSecret(tunnel, [TLS_AUTH[0], WRONG]);
  });

  test("the proxy's certificate is checked too: untrusted → TLSHandshakeError naming the redacted proxy", async () => {
    // No `ca`: the default trust store does not know the test CA.
    const transport = res.add(new Transport({ proxy: tlsProxyAuth.url() }));
    const client = res.client({ transport });
    for (const url of [httpUrl("/"), httpsUrl("/")]) {
      const err = await rejectionOf(client.get(url));
      expect(err).toBeInstanceOf(TLSHandshakeError);
      expect((err as Error).message).toContain(named("https", tlsProxyAuth.port, TLS_AUTH[0]));
      expectNoSecret(err, TLS_AUTH);
    }
  });

  test("a proxy by name gets SNI for its own name", async () => {
    const proxy = res.add(await TestProxy.start({ tls: true }));
    const { client } = via(`https://localhost:${proxy.port}`);
    expect((await client.get(httpsUrl("/sni"))).status).toBe(200);
    expect(proxy.servernames).toEqual(["localhost"]);
  });
});

describe("tunnels whose origin closes the connection right away", () => {
  test("through CONNECT (https target) and SOCKS5 (http and https targets): an HTTPError", async () => {
    const closing = await res.raw((conn) => conn.socket.destroy());
    const cases: [ProxyInit, string][] = [
      [tiny.url(), `https://127.0.0.1:${closing.port}/`],
      [socks.url(), `http://127.0.0.1:${closing.port}/`],
      [socks.url(), `https://127.0.0.1:${closing.port}/`],
      [tlsProxy.url(), `https://127.0.0.1:${closing.port}/`],
    ];
    // TLSHandshakeError for https targets, a ProtocolError ("closed before sending a response") for
    // the plain one; what matters is that it is typed.
    for (const [proxy, url] of cases) {
      const { client } = via(proxy);
      const err = await rejectionOf(client.get(url));
      expect(err, `${String(proxy)} → ${url}: ${String(err)}`).toBeInstanceOf(HTTPError);
      if (url.startsWith("https:")) expect(err).toBeInstanceOf(TLSHandshakeError);
    }
  });
});

describe("proxy selection", () => {
  test("a NoProxy match goes direct: the proxy sees nothing", async () => {
    const relay = res.add(await Relay.start(tiny.port));
    const proxy = proxyUrl("http", relay.port);
    const { client } = via(new ProxyConfig({ all: proxy, noProxy: "127.0.0.1" }));
    const r = await client.get(httpUrl("/direct"));
    expect(headerValues(r.json<Echoed>(), "via")).toEqual([]);
    expect((await client.get(httpsUrl("/direct"))).status).toBe(200);
    expect(relay.accepted).toBe(0);
    // Any NoProxy list sends loopback direct, even one that does not name it (as HTTP.jl does);
    // without a list, loopback is proxied (what every other test here relies on).
    const { client: other } = via(new ProxyConfig({ all: proxy, noProxy: "example.com" }));
    expect((await other.get(httpUrl("/direct"))).status).toBe(200);
    expect(relay.accepted).toBe(0);
    const { client: proxied } = via(new ProxyConfig({ all: proxy }));
    expect(headerValues((await proxied.get(httpUrl("/p"))).json<Echoed>(), "via").join()).toContain(
      "tinyproxy",
    );
    expect(relay.accepted).toBe(1);
  });

  test("NoProxy matching for other hosts (proxyFor)", () => {
    const cfg = new ProxyConfig({ all: "http://proxy.internal:3128", noProxy: ".corp.example, 10.0.0.0/8" });
    expect(cfg.proxyFor("http://api.corp.example/")).toBeNull();
    expect(cfg.proxyFor("https://10.1.2.3/")).toBeNull();
    expect(cfg.proxyFor("https://example.com/")?.href).toBe("http://proxy.internal:3128/");
  });

  test("http targets use the http proxy, https targets the https one, both falling back to all", async () => {
    const [h, s, a] = await Promise.all([
      Relay.start(tiny.port),
      Relay.start(socks.port),
      Relay.start(tiny.port),
    ]);
    for (const r of [h, s, a]) res.add(r);
    const counts = (): number[] => [h.accepted, s.accepted, a.accepted];
    const H = proxyUrl("http", h.port);
    const S = proxyUrl("socks5", s.port);
    const A = proxyUrl("http", a.port);

    const { client: both } = via(new ProxyConfig({ http: H, https: S, all: A }));
    expect((await both.get(httpUrl("/h"))).status).toBe(200);
    expect(counts()).toEqual([1, 0, 0]);
    expect((await both.get(httpsUrl("/s"))).status).toBe(200);
    expect(counts()).toEqual([1, 1, 0]);

    const { client: httpOnly } = via(new ProxyConfig({ http: H, all: A }));
    expect((await httpOnly.get(httpsUrl("/fallback"))).status).toBe(200);
    expect(counts()).toEqual([1, 1, 1]);

    const { client: httpsOnly } = via(new ProxyConfig({ https: S, all: A }));
    expect((await httpsOnly.get(httpUrl("/fallback"))).status).toBe(200);
    expect(counts()).toEqual([1, 1, 2]);

    // No http proxy and no all: http goes direct.
    const { client: noHttp } = via(new ProxyConfig({ https: S }));
    expect(headerValues((await noHttp.get(httpUrl("/d"))).json<Echoed>(), "via")).toEqual([]);
    expect(counts()).toEqual([1, 1, 2]);
  });

  test("a per-call proxy with the default client; each credential has its own pooled tunnel", async () => {
    usedDefaultClient = true;
    const r = await get(httpUrl("/per-call"), { proxy: tiny.url() });
    expect(headerValues(r.json<Echoed>(), "via").join()).toContain("tinyproxy");
    expect(headerValues((await get(httpUrl("/d"), { proxy: null })).json<Echoed>(), "via")).toEqual([]);

    // One TLS options object for all three calls: a per-call `tls` object is part of the pool key.
    const tls = { ca: fixtures.ca };
    const good = tinyAuth.url();
    const idle = (): number => getDefaultClient().transport.idleConnectionCount();
    const before = idle();
    expect((await get(httpsUrl("/good"), { proxy: good, tls })).status).toBe(200);
    expect(idle()).toBe(before + 1);
    // Same proxy host, other password: the pooled tunnel of the good credentials is not lent.
    const err = await rejectionOf(get(httpsUrl("/bad"), { proxy: tinyAuth.url([TINY_AUTH[0], WRONG]), tls }));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toContain("status 401");
    // The good one is still pooled and reused.
    expect((await get(httpsUrl("/good2"), { proxy: good, tls })).status).toBe(200);
    expect(idle()).toBe(before + 1);
  });

  test("a proxy option together with an explicit client is an ArgumentError", async () => {
    const relay = res.add(await Relay.start(tiny.port));
    const proxy = proxyUrl("http", relay.port);
    const client = res.client({ transport: res.add(new Transport()) });
    const calls = [
      () => client.get(httpUrl("/"), { proxy }),
      () => get(httpUrl("/"), { client, proxy }),
      () => request("GET", httpUrl("/"), { client, proxy: null }),
    ];
    for (const call of calls) {
      const err = await rejectionOf(Promise.resolve().then(call));
      expect(err).toBeInstanceOf(ArgumentError);
    }
    expect(relay.accepted).toBe(0);
  });
});

describe("the default client reads the environment", () => {
  test("HTTP_PROXY: non-loopback targets go through it, loopback ones go direct (in a child process)", async () => {
    const dist = new URL("../dist/index.js", import.meta.url);
    if (!existsSync(dist)) {
      throw new Error(
        `${fileURLToPath(dist)} is missing: build first (pnpm --filter @hyperwire/client... build)`,
      );
    }
    const proxy = res.add(
      await TestProxy.start({ hosts: { "proxied.invalid": `127.0.0.1:${httpOrigin.port}` } }),
    );
    const script = `
      import { get, getDefaultClient } from ${JSON.stringify(dist.href)};
      import { ProxyConfig } from "@hyperwire/core";
      const out = {};
      const cfg = getDefaultClient().transport.proxy;
      out.fromEnvironment = cfg.fromEnvironment;
      out.http = cfg.http && cfg.http.href;
      out.loopback = cfg.proxyFor(process.env.ORIGIN + "/");
      out.remote = cfg.proxyFor("http://proxied.invalid/x").href;
      out.fromEnv = ProxyConfig.fromEnv().proxyFor("http://example.com/").href;
      out.direct = (await get(process.env.ORIGIN + "/direct")).json();
      out.proxied = (await get("http://proxied.invalid/x")).json();
      await getDefaultClient().close();
      console.log(JSON.stringify(out));
    `;
    const env: NodeJS.ProcessEnv = { ...process.env, HTTP_PROXY: proxy.url(), ORIGIN: httpOrigin.url };
    for (const k of [
      "http_proxy",
      "HTTPS_PROXY",
      "https_proxy",
      "ALL_PROXY",
      "all_proxy",
      "NO_PROXY",
      "no_proxy",
    ])
      delete env[k];
    const { stdout } = await within(
      promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        env,
        timeout: 15_000,
      }),
      16_000,
      "the child process",
    );
    const out = JSON.parse(stdout) as Record<string, unknown>;
    expect(out.fromEnvironment).toBe(true);
    expect(out.http).toBe(`${proxy.url()}/`);
    expect(out.loopback).toBeNull();
    expect(out.remote).toBe(`${proxy.url()}/`);
    expect(out.fromEnv).toBe(`${proxy.url()}/`);
    expect((out.direct as Echoed).target).toBe("/direct");
    expect((out.proxied as Echoed).target).toBe("/x");
    expect(headerValues(out.proxied as Echoed, "host")).toEqual(["proxied.invalid"]);
    // The proxy saw the non-loopback request only.
    expect(proxy.forwards).toEqual(["GET http://proxied.invalid/x"]);
    expect(proxy.connects).toEqual([]);
  });

  test("ProxyConfig.fromEnv: loopback always direct, other hosts through HTTP_PROXY", () => {
    const cfg = ProxyConfig.fromEnv({ HTTP_PROXY: "http://127.0.0.1:1" });
    expect(cfg.proxyFor("http://127.0.0.1:8080/")).toBeNull();
    expect(cfg.proxyFor("http://localhost:8080/")).toBeNull();
    expect(cfg.proxyFor("http://[::1]:8080/")).toBeNull();
    expect(cfg.proxyFor("http://example.com/")?.href).toBe("http://127.0.0.1:1/");
    expect(cfg.proxyFor("https://example.com/")).toBeNull();
  });
});

describe("proxies that fail", () => {
  const modes: [string, "http" | "https" | "socks5" | "socks5h", boolean][] = [
    ["http proxy, http target (forward)", "http", false],
    ["http proxy, https target (CONNECT)", "http", true],
    ["https proxy, http target (forward)", "https", false],
    ["https proxy, https target (CONNECT)", "https", true],
    ["socks5 proxy, http target", "socks5", false],
    ["socks5h proxy, https target", "socks5h", true],
  ];

  for (const [name, scheme, secure] of modes) {
    test(`a proxy that refuses: a ConnectError naming the redacted proxy (${name})`, async () => {
      const port = await freePort();
      const auth: Credentials = ["someone", "refusedpw1"];
      const { client } = via(proxyUrl(scheme, port, auth));
      const err = await rejectionOf(client.get(secure ? httpsUrl("/") : httpUrl("/")));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as Error).message).toContain(named(scheme, port, "someone"));
      expectNoSecret(err, auth);
    });

    const forward = scheme === "http" && !secure;
    const phase = forward ? "responseHeader" : "connect";
    test(`a proxy that hangs: TimeoutError phase ${phase} after its timeout (${name})`, async () => {
      // Accepts and never answers: the CONNECT reply, the SOCKS5 greeting or the TLS handshake with
      // the proxy never comes. (An http proxy for an http target is not dialed further than TCP:
      // the request is then sent and it is the response-header wait that runs.)
      const silent = await res.raw();
      const auth: Credentials = ["someone", "hangingpw1"];
      const { client } = via(proxyUrl(scheme, silent.port, auth));
      const started = performance.now();
      const call = client.get(secure ? httpsUrl("/") : httpUrl("/"), {
        connectTimeout: 300,
        retry: false,
        ...(forward ? { responseHeaderTimeout: 300 } : {}),
      });
      const err = await rejectionOf(call, 5_000);
      const elapsed = performance.now() - started;
      expect(err, String(err)).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).phase).toBe(phase);
      expect((err as TimeoutError).timeoutMs).toBe(300);
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(3_000);
      expect(silent.accepted).toBe(1);
      expectNoSecret(err, auth);
    });
  }
});

describe("credentials never leak", () => {
  test("not in error messages, String(err), util.inspect(err) or trace events", async () => {
    const cases: { proxy: string; url: string; auth: Credentials }[] = [
      // Successful requests (forward and tunnel) and failing ones (wrong password, each mode).
      { proxy: tinyAuth.url(), url: httpUrl("/ok"), auth: TINY_AUTH },
      { proxy: tinyAuth.url(), url: httpsUrl("/ok"), auth: TINY_AUTH },
      { proxy: tinyAuth.url([TINY_AUTH[0], WRONG]), url: httpsUrl("/"), auth: [TINY_AUTH[0], WRONG] },
      { proxy: tlsProxyAuth.url(), url: httpsUrl("/ok"), auth: TLS_AUTH },
      { proxy: socksAuth.url("socks5h"), url: httpUrl("/ok"), auth: SOCKS_AUTH },
      {
        proxy: socksAuth.url("socks5h", [SOCKS_AUTH[0], WRONG]),
        url: httpUrl("/"),
        auth: [SOCKS_AUTH[0], WRONG],
      },
      { proxy: tlsProxyAuth.url([TLS_AUTH[0], WRONG]), url: httpsUrl("/"), auth: [TLS_AUTH[0], WRONG] },
    ];
    for (const { proxy, url, auth } of cases) {
      const { client } = via(proxy);
      const events: ClientEvent[] = [];
      let err: unknown;
      try {
        await client.get(url, { trace: (e) => events.push(e) });
      } catch (e) {
        err = e;
      }
      expect(events.map((e) => e.type).at(-1)).toBe("done");
      for (const ev of events) {
        expect(ev.url).toBe(url);
        for (const secret of secretForms(auth))
          expect(dump(ev), `${proxy} → ${url} ${ev.type}`).not.toContain(secret);
      }
      if (err !== undefined) expectNoSecret(err, auth);
    }
  });

  test("not in the trace of a forward request whose proxy answered 407", async () => {
    const events: ClientEvent[] = [];
    const { client } = via(tlsProxyAuth.url([TLS_AUTH[0], WRONG]));
    const err = await rejectionOf(client.get(httpUrl("/x"), { trace: (e) => events.push(e) }));
    expect(err).toBeInstanceOf(StatusError);
    expectNoSecret(err, [TLS_AUTH[0], WRONG]);
    for (const secret of secretForms([TLS_AUTH[0], WRONG])) expect(dump(events)).not.toContain(secret);
  });
  test("a forward request's Proxy-Authorization goes on the wire only: not in res.request, verbose 2 or diagnostics_channel", async () => {
    const before = tlsProxyAuth.authorizations.length;
    const { client } = via(tlsProxyAuth.url());
    const published: unknown[] = [];
    const onRequest = (m: unknown): void => {
      published.push(m);
    };
    diagnostics.subscribe("hyperwire:client:request", onRequest);
    let r: Awaited<ReturnType<Client["get"]>> | undefined;
    let stderr: string;
    try {
      stderr = await captureStderr(async () => {
        r = await client.get(httpUrl("/v2"), { verbose: 2 });
      });
    } finally {
      diagnostics.unsubscribe("hyperwire:client:request", onRequest);
    }
    expect(r?.status).toBe(200);
    expect(tlsProxyAuth.authorizations.slice(before)).toEqual([
      `Basic ${Buffer.from(`${TLS_AUTH[0]}:${TLS_AUTH[1]}`).toString("base64")}`,
    ]);
    expect(r?.request?.headers.has("proxy-authorization")).toBe(false);
    expect(stderr).toContain("User-Agent");
    expect(published.length).toBe(1);
    for (const secret of secretForms(TLS_AUTH)) {
      expect(stderr).not.toContain(secret);
      expect(dump(published)).not.toContain(secret);
      expect(dump(r)).not.toContain(secret);
    }
  });

  test("a Proxy-Authorization header set by the caller is sent as given (forward mode)", async () => {
    const before = tlsProxyAuth.authorizations.length;
    const { client } = via(tlsProxyAuth.url(null));
    const header = `Basic ${Buffer.from(`${TLS_AUTH[0]}:${TLS_AUTH[1]}`).toString("base64")}`;
    const r = await client.get(httpUrl("/own"), { headers: { "Proxy-Authorization": header } });
    expect(r.status).toBe(200);
    expect(tlsProxyAuth.authorizations.slice(before)).toEqual([header]);
  });
});
