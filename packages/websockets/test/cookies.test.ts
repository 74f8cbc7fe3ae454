// Cookies on the WebSocket handshake: the default client's jar shared with HTTP requests, Set-Cookie
// stored from every handshake response (redirect, refusal, 101), `cookies: false`, a given jar, the
// per-call record, cross-origin redirects, `forwardHeaders: false`, and Secure cookies and ws:.
import http, { STATUS_CODES } from "node:http";
import https from "node:https";
import type net from "node:net";
import { CookieJar, closeIdleConnections, get, getDefaultClient } from "@hyperwire/client";
import { ArgumentError, WebSocketError } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { WebSocketServer as WsServer } from "ws";
import { tls } from "../../../fixtures/tls/index.mjs";
import { type OpenOptions, open } from "../src/index.js";
import { checkUnhandledRejections, Resources, settle, within } from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

/** The jar `get`/`post` and `open()` share by default. */
function defaultJar(): CookieJar {
  const jar = getDefaultClient().defaults.cookieJar;
  if (jar === null) throw new Error("the default client has no jar");
  return jar;
}

afterEach(() => {
  defaultJar().clear();
  closeIdleConnections();
});

/** How the server answers one request: accept the upgrade (101), or a plain status. */
type Reply =
  | { accept: true; setCookie?: string[] }
  | { status: number; headers?: Record<string, string | string[]> };

interface Seen {
  url: string;
  upgrade: boolean;
  headers: http.IncomingHttpHeaders;
}

/**
 * A node:http (or https) server on 127.0.0.1:0 answering requests and upgrades with `route`: 101s
 * through ws's `handleUpgrade` (Set-Cookie added in its `headers` event), anything else written by
 * hand. Records every request's headers; every socket is destroyed after the test.
 */
async function cookieServer(
  route: (req: http.IncomingMessage) => Reply,
  secure = false,
): Promise<{ port: number; seen: Seen[]; upgrades: () => Seen[] }> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const wss = new WsServer({ noServer: true });
  const replies = new WeakMap<http.IncomingMessage, string[]>();
  wss.on("headers", (headers: string[], req: http.IncomingMessage) => {
    for (const c of replies.get(req) ?? []) headers.push(`Set-Cookie: ${c}`);
  });
  const onRequest = (req: http.IncomingMessage, r: http.ServerResponse): void => {
    seen.push({ url: req.url ?? "", upgrade: false, headers: req.headers });
    const reply = route(req);
    if ("accept" in reply) {
      r.writeHead(400);
      r.end();
      return;
    }
    r.writeHead(reply.status, reply.headers);
    r.end();
  };
  const server = secure
    ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest)
    : http.createServer(onRequest);
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on("error", () => {});
    seen.push({ url: req.url ?? "", upgrade: true, headers: req.headers });
    const reply = route(req);
    if ("accept" in reply) {
      replies.set(req, reply.setCookie ?? []);
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("error", () => {}));
      return;
    }
    let text = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? "Status"}\r\n`;
    for (const [name, value] of Object.entries(reply.headers ?? {})) {
      for (const v of typeof value === "string" ? [value] : value) text += `${name}: ${v}\r\n`;
    }
    socket.end(`${text}Content-Length: 0\r\nConnection: close\r\n\r\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  res.defer(
    () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        for (const s of sockets) s.destroy();
        wss.close();
        server.close(() => resolve());
      }),
  );
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    upgrades: () => seen.filter((s) => s.upgrade),
  };
}

/** `open(url)` with the handler form (closed with 1000 afterwards), direct, bounded. */
function openOnce(url: string, options: OpenOptions = {}): Promise<unknown> {
  return within(
    open(url, async () => "open", { proxy: null, ...options }),
    5_000,
    `open(${url})`,
  );
}

describe("the default jar, shared with HTTP requests", () => {
  test("a cookie an earlier HTTP get stored is sent on open()", async () => {
    const server = await cookieServer((req) =>
      req.url === "/login" ? { status: 200, headers: { "Set-Cookie": "sid=abc; Path=/" } } : { accept: true },
    );
    await get(`http://127.0.0.1:${server.port}/login`, { proxy: null });
    expect(await openOnce(`ws://127.0.0.1:${server.port}/chat`)).toBe("open");
    expect(server.upgrades().map((s) => s.headers.cookie)).toEqual(["sid=abc"]);
  });

  test("Set-Cookie on the 101 lands in the jar, and a later HTTP request sends it", async () => {
    const server = await cookieServer((req) =>
      req.url === "/chat" ? { accept: true, setCookie: ["ws=1; Path=/", "other=2"] } : { status: 204 },
    );
    await openOnce(`ws://127.0.0.1:${server.port}/chat`);
    expect(defaultJar().cookieHeader(`http://127.0.0.1:${server.port}/`)).toBe("ws=1; other=2");
    await get(`http://127.0.0.1:${server.port}/after`, { proxy: null });
    const after = server.seen.find((s) => s.url === "/after");
    expect(after?.headers.cookie).toBe("ws=1; other=2");
  });

  test("Set-Cookie on a redirect is sent on the next hop", async () => {
    const server = await cookieServer((req) =>
      req.url === "/start"
        ? { status: 302, headers: { Location: "/final", "Set-Cookie": "hop=1; Path=/" } }
        : { accept: true },
    );
    await openOnce(`ws://127.0.0.1:${server.port}/start`);
    expect(server.upgrades().map((s) => [s.url, s.headers.cookie])).toEqual([
      ["/start", undefined],
      ["/final", "hop=1"],
    ]);
    expect(defaultJar().cookieHeader(`http://127.0.0.1:${server.port}/`)).toBe("hop=1");
  });

  test("a refused handshake's Set-Cookie is stored", async () => {
    const server = await cookieServer(() => ({ status: 403, headers: { "Set-Cookie": "denied=yes" } }));
    const { error } = await settle(openOnce(`ws://127.0.0.1:${server.port}/`));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).status).toBe(403);
    expect(defaultJar().cookieHeader(`http://127.0.0.1:${server.port}/`)).toBe("denied=yes");
  });
});

describe("cookie options", () => {
  test("cookies: false sends no jar cookie and stores none (your Cookie header goes verbatim)", async () => {
    const server = await cookieServer(() => ({ accept: true, setCookie: ["fresh=1"] }));
    const origin = `http://127.0.0.1:${server.port}/`;
    defaultJar().setCookie("old=1", origin);
    await openOnce(`ws://127.0.0.1:${server.port}/a`, { cookies: false });
    await openOnce(`ws://127.0.0.1:${server.port}/b`, { cookies: false, headers: { Cookie: "mine=1" } });
    expect(server.upgrades().map((s) => s.headers.cookie)).toEqual([undefined, "mine=1"]);
    expect(defaultJar().cookieHeader(origin)).toBe("old=1");
  });

  test("a given cookieJar is used instead of the default one; cookieJar: null uses none", async () => {
    const server = await cookieServer(() => ({ accept: true, setCookie: ["back=1"] }));
    const origin = `http://127.0.0.1:${server.port}/`;
    defaultJar().setCookie("default=1", origin);
    const jar = new CookieJar();
    jar.setCookie("own=1", origin);
    await openOnce(`ws://127.0.0.1:${server.port}/`, { cookieJar: jar });
    expect(jar.cookieHeader(origin)).toBe("own=1; back=1");
    expect(defaultJar().cookieHeader(origin)).toBe("default=1");
    await openOnce(`ws://127.0.0.1:${server.port}/`, { cookieJar: null });
    expect(server.upgrades().map((s) => s.headers.cookie)).toEqual(["own=1", undefined]);
    expect(defaultJar().cookieHeader(origin)).toBe("default=1");
  });

  test("a record wins over the jar, and the jar over your own Cookie header", async () => {
    const server = await cookieServer(() => ({ accept: true }));
    const origin = `http://127.0.0.1:${server.port}/`;
    defaultJar().setCookie("a=jar", origin);
    defaultJar().setCookie("b=jar", origin);
    await openOnce(`ws://127.0.0.1:${server.port}/`, {
      headers: { Cookie: "b=mine; c=mine" },
      cookies: { a: "call" },
    });
    expect(server.upgrades()[0]?.headers.cookie).toBe("c=mine; b=jar; a=call");
  });

  test("bad cookies or cookieJar options are an ArgumentError before anything is dialed", async () => {
    const server = await cookieServer(() => ({ accept: true }));
    const url = `ws://127.0.0.1:${server.port}/`;
    for (const bad of [
      { cookies: "yes" as unknown as boolean },
      { cookies: new Map() as unknown as Record<string, string> },
      { cookieJar: {} as unknown as CookieJar },
      { cookies: { "a b": "1" } },
      { cookies: { a: "x;y" } },
    ]) {
      const { error } = await settle(openOnce(url, bad));
      expect(error).toBeInstanceOf(ArgumentError);
    }
    expect(server.seen).toEqual([]);
  });
});

describe("redirects", () => {
  test("a cross-origin redirect drops the record, your Cookie header and Authorization, but sends the new origin's jar cookies", async () => {
    const final = await cookieServer(() => ({ accept: true }));
    const first = await cookieServer(() => ({
      status: 307,
      headers: { Location: `ws://localhost:${final.port}/there` },
    }));
    defaultJar().setCookie("first=1", `http://127.0.0.1:${first.port}/`);
    defaultJar().setCookie("second=2", `http://localhost:${final.port}/`);
    await openOnce(`ws://127.0.0.1:${first.port}/here`, {
      headers: { Authorization: "Bearer secret", Cookie: "mine=1", "X-Keep": "yes" },
      cookies: { call: "1" },
    });
    const [hop1] = first.upgrades();
    expect(hop1?.headers.cookie).toBe("mine=1; first=1; call=1");
    expect(hop1?.headers.authorization).toBe("Bearer secret");
    const [hop2] = final.upgrades();
    expect(hop2?.headers.host).toBe(`localhost:${final.port}`);
    expect(hop2?.headers.cookie).toBe("second=2");
    expect(hop2?.headers.authorization).toBeUndefined();
    expect(hop2?.headers["x-keep"]).toBe("yes");
  });

  test("forwardHeaders: false drops your headers on the redirect hop; the jar's cookies and the record stay", async () => {
    const server = await cookieServer((req) =>
      req.url === "/start" ? { status: 302, headers: { Location: "/final" } } : { accept: true },
    );
    defaultJar().setCookie("jar=1", `http://127.0.0.1:${server.port}/`);
    const options: OpenOptions = {
      headers: { "X-Custom": "1", Cookie: "mine=1" },
      cookies: { call: "1" },
    };
    await openOnce(`ws://127.0.0.1:${server.port}/start`, { ...options, forwardHeaders: false });
    await openOnce(`ws://127.0.0.1:${server.port}/start`, options);
    expect(server.upgrades().map((s) => [s.url, s.headers["x-custom"], s.headers.cookie])).toEqual([
      ["/start", "1", "mine=1; jar=1; call=1"],
      ["/final", undefined, "jar=1; call=1"],
      ["/start", "1", "mine=1; jar=1; call=1"],
      ["/final", "1", "mine=1; jar=1; call=1"],
    ]);
  });
});

describe("Secure cookies", () => {
  test("go to wss: only, never to ws:; a Secure Set-Cookie over ws: is not stored", async () => {
    const plain = await cookieServer(() => ({ accept: true, setCookie: ["insecure=1; Secure"] }));
    const secure = await cookieServer(() => ({ accept: true }), true);
    const jar = new CookieJar();
    jar.setCookie("p=1", "http://127.0.0.1/");
    jar.setCookie("s=1; Secure", "https://127.0.0.1/");
    await openOnce(`ws://127.0.0.1:${plain.port}/`, { cookieJar: jar });
    await openOnce(`wss://127.0.0.1:${secure.port}/`, { cookieJar: jar, tls: { ca: tls.ca } });
    expect(plain.upgrades()[0]?.headers.cookie).toBe("p=1");
    expect(secure.upgrades()[0]?.headers.cookie).toBe("p=1; s=1");
    expect(jar.cookies().map((c) => c.name)).toEqual(["p", "s"]);
  });
});
