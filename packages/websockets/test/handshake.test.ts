// The opening handshake, both sides: URL schemes, dial errors, non-101 answers, redirects, the
// handshake timeouts and cancellation, TLS, and the server's 400/403 refusals and addresses.
import http from "node:http";
import net from "node:net";
import tlsModule from "node:tls";
import {
  AddressInUseError,
  ArgumentError,
  CanceledError,
  ConnectError,
  ProxyConfig,
  RequestContext,
  TimeoutError,
  TLSHandshakeError,
  TooManyRedirectsError,
  WebSocketError,
} from "@hyperwire/core";
import { describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { isUpgrade, listen, type OpenOptions, open, serverAddr, type WebSocketServer } from "../src/index.js";
import {
  checkUnhandledRejections,
  connectProxy,
  deferred,
  freePort,
  handshakeRequest,
  Resources,
  rawExchange,
  settle,
  waitFor,
  within,
} from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

function echoServer(options: Parameters<Resources["listen"]>[1] = {}): Promise<WebSocketServer> {
  return res.listen(async (ws) => {
    for await (const msg of ws) await ws.send(msg);
  }, options);
}

/** One echo exchange over `open(url)`, closing afterwards. */
function echoOnce(url: string | URL, options: OpenOptions = {}): Promise<unknown> {
  return within(
    open(
      url,
      async (ws) => {
        await ws.send("ping?");
        return ws.receive();
      },
      { proxy: null, ...options },
    ),
    5_000,
    `an echo from ${url}`,
  );
}

/** A node:http server on 127.0.0.1:0 answering every request (upgrades included) with `answer`. */
async function httpServer(
  answer: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ port: number; requests: http.IncomingMessage[] }> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, r) => {
    requests.push(req);
    answer(req, r);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  res.defer(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, requests };
}

/** A raw TCP server that accepts and never answers; tracks its sockets and when they close. */
async function silentServer(): Promise<{ port: number; sockets: net.Socket[]; closedCount: () => number }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on("error", () => {});
    // Read (and drop) the request, so the client's FIN is seen.
    s.resume();
    s.on("close", () => closed++);
  });
  return { port: await res.listenRaw(server, sockets), sockets, closedCount: () => closed };
}

describe("URLs", () => {
  test("ws:, and http: (read as ws:) both work", async () => {
    const server = await echoServer();
    expect(await echoOnce(`ws://${serverAddr(server)}/`)).toBe("ping?");
    expect(await echoOnce(`http://${serverAddr(server)}/`)).toBe("ping?");
    expect(await echoOnce(new URL(`ws://${serverAddr(server)}/`))).toBe("ping?");
  });

  test("ftp: and garbage are an ArgumentError", async () => {
    for (const url of ["ftp://127.0.0.1/", "not a url", "file:///tmp/x"]) {
      const { error } = await settle(open(url, { proxy: null }));
      expect(error, url).toBeInstanceOf(ArgumentError);
    }
  });

  test("a negative or non-finite timeout is an ArgumentError", async () => {
    const server = await echoServer();
    for (const bad of [-1, Number.NaN]) {
      const { error } = await settle(
        open(`ws://${serverAddr(server)}/`, { proxy: null, connectTimeout: bad }),
      );
      expect(error).toBeInstanceOf(ArgumentError);
    }
  });
});

describe("dial and handshake failures", () => {
  test("a refused port is a ConnectError", async () => {
    const port = await freePort();
    const { error } = await settle(open(`ws://127.0.0.1:${port}/`, { proxy: null }));
    expect(error).toBeInstanceOf(ConnectError);
  });

  test("a 404 is a WebSocketError with status 404 and close code 1002", async () => {
    const { port } = await httpServer((_req, r) => {
      r.writeHead(404, { "Content-Type": "text/plain" });
      r.end("no such thing\n");
    });
    const { error } = await settle(open(`ws://127.0.0.1:${port}/nope`, { proxy: null }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).status).toBe(404);
    expect((error as WebSocketError).closeCode).toBe(1002);
  });

  test("a 200 (a server that ignores the upgrade) is a WebSocketError with status 200", async () => {
    const { port } = await httpServer((_req, r) => r.end("hello"));
    const { error } = await settle(open(`ws://127.0.0.1:${port}/`, { proxy: null }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).status).toBe(200);
  });

  test("a 101 with a wrong Sec-WebSocket-Accept is a WebSocketError 1002", async () => {
    const server = net.createServer((s) => {
      s.on("error", () => {});
      s.once("data", () =>
        s.write(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBvbmU=\r\n\r\n",
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    res.defer(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
        }),
    );
    const { port } = server.address() as net.AddressInfo;
    const { error } = await settle(within(open(`ws://127.0.0.1:${port}/`, { proxy: null }), 3_000, "open"));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1002);
  });
});

describe("redirects", () => {
  test("a 302 to the real server is followed (ws: and http: Locations)", async () => {
    const targets: string[] = [];
    const server = await res.listen(async (ws) => {
      targets.push(ws.target);
      for await (const m of ws) await ws.send(m);
    });
    const real = serverAddr(server);
    const { port, requests } = await httpServer((req, r) => {
      const location = req.url === "/http" ? `http://${real}/via-http` : `ws://${real}/via-ws?q=1`;
      r.writeHead(302, { Location: location });
      r.end();
    });
    expect(await echoOnce(`ws://127.0.0.1:${port}/ws`)).toBe("ping?");
    expect(await echoOnce(`ws://127.0.0.1:${port}/http`)).toBe("ping?");
    expect(requests.map((r) => r.url)).toEqual(["/ws", "/http"]);
    expect(targets).toEqual(["/via-ws?q=1", "/via-http"]);
  });

  test("a relative Location resolves against the URL that answered", async () => {
    const { port, requests } = await httpServer((req, r) => {
      if (req.url === "/start") {
        r.writeHead(307, { Location: "/next" });
        r.end();
      } else {
        r.writeHead(404);
        r.end();
      }
    });
    const { error } = await settle(open(`ws://127.0.0.1:${port}/start`, { proxy: null }));
    expect((error as WebSocketError).status).toBe(404);
    expect(requests.map((r) => r.url)).toEqual(["/start", "/next"]);
  });

  test("redirect: false makes the 302 a WebSocketError with status 302", async () => {
    const server = await echoServer();
    const { port, requests } = await httpServer((_req, r) => {
      r.writeHead(302, { Location: `ws://${serverAddr(server)}/` });
      r.end();
    });
    const { error } = await settle(open(`ws://127.0.0.1:${port}/`, { proxy: null, redirect: false }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).status).toBe(302);
    expect((error as WebSocketError).closeCode).toBe(1002);
    expect(requests).toHaveLength(1);
    expect(server.sessionCount).toBe(0);
  });

  test("too many redirects is a TooManyRedirectsError", async () => {
    const { port, requests } = await httpServer((_req, r) => {
      r.writeHead(302, { Location: "/again" });
      r.end();
    });
    const limited = await settle(open(`ws://127.0.0.1:${port}/`, { proxy: null, redirectLimit: 3 }));
    expect(limited.error).toBeInstanceOf(TooManyRedirectsError);
    expect(requests).toHaveLength(4);
    const byDefault = await settle(open(`ws://127.0.0.1:${port}/`, { proxy: null }));
    expect(byDefault.error).toBeInstanceOf(TooManyRedirectsError);
    expect((byDefault.error as TooManyRedirectsError).limit).toBe(10);
    expect(requests).toHaveLength(4 + 11);
  });

  test("credentials are dropped when a redirect changes origin", async () => {
    const seen = deferred<http.IncomingHttpHeaders>();
    const finalServer = await httpServer((req, r) => {
      seen.resolve(req.headers);
      r.writeHead(404);
      r.end();
    });
    const { port } = await httpServer((_req, r) => {
      r.writeHead(302, { Location: `ws://localhost:${finalServer.port}/` });
      r.end();
    });
    await settle(
      open(`ws://127.0.0.1:${port}/`, {
        proxy: null,
        headers: { Authorization: "Bearer secret", Cookie: "a=b", "X-Keep": "yes" },
      }),
    );
    const headers = await within(seen.promise, 3_000, "the second hop");
    expect(headers.authorization).toBeUndefined();
    expect(headers.cookie).toBeUndefined();
    expect(headers["x-keep"]).toBe("yes");
  });
});

describe("handshake timeouts and cancellation", () => {
  test("responseHeaderTimeout → TimeoutError phase responseHeader, and the connection is dropped", async () => {
    const silent = await silentServer();
    const started = performance.now();
    const { error } = await settle(
      within(
        open(`ws://127.0.0.1:${silent.port}/`, { proxy: null, responseHeaderTimeout: 150 }),
        3_000,
        "the timeout",
      ),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).phase).toBe("responseHeader");
    expect((error as TimeoutError).timeoutMs).toBe(150);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await waitFor(() => silent.closedCount() === 1, 3_000, "the client to drop the connection");
  });

  test("requestTimeout → TimeoutError phase request", async () => {
    const silent = await silentServer();
    const { error } = await settle(
      within(
        open(`ws://127.0.0.1:${silent.port}/`, { proxy: null, requestTimeout: 150 }),
        3_000,
        "the timeout",
      ),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).phase).toBe("request");
    await waitFor(() => silent.closedCount() === 1, 3_000, "the client to drop the connection");
  });

  test("readIdleTimeout without responseHeaderTimeout → TimeoutError phase readIdle", async () => {
    const silent = await silentServer();
    const { error } = await settle(
      within(
        open(`ws://127.0.0.1:${silent.port}/`, { proxy: null, readIdleTimeout: 150 }),
        3_000,
        "the timeout",
      ),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).phase).toBe("readIdle");
    await waitFor(() => silent.closedCount() === 1, 3_000, "the client to drop the connection");
  });

  test("a context deadline bounds the handshake", async () => {
    const silent = await silentServer();
    const context = new RequestContext({ deadline: 150 });
    const { error } = await settle(
      within(open(`ws://127.0.0.1:${silent.port}/`, { proxy: null, context }), 3_000, "the deadline"),
    );
    expect(error === undefined).toBe(false);
    expect(error instanceof TimeoutError || error instanceof CanceledError).toBe(true);
  });

  test("aborting the signal is a CanceledError (during the handshake, and before it)", async () => {
    const silent = await silentServer();
    const controller = new AbortController();
    const opening = settle(
      open(`ws://127.0.0.1:${silent.port}/`, { proxy: null, signal: controller.signal }),
    );
    await waitFor(() => silent.sockets.length === 1, 3_000, "the connection");
    controller.abort();
    const { error } = await within(opening, 3_000, "open to settle");
    expect(error).toBeInstanceOf(CanceledError);
    await waitFor(() => silent.closedCount() === 1, 3_000, "the client to drop the connection");

    const pre = await settle(
      within(
        open(`ws://127.0.0.1:${silent.port}/`, { proxy: null, signal: AbortSignal.abort() }),
        3_000,
        "open",
      ),
    );
    expect(pre.error).toBeInstanceOf(CanceledError);
  });

  test("context.cancel() is a CanceledError", async () => {
    const silent = await silentServer();
    const context = new RequestContext();
    const opening = settle(open(`ws://127.0.0.1:${silent.port}/`, { proxy: null, context }));
    await waitFor(() => silent.sockets.length === 1, 3_000, "the connection");
    context.cancel("stop");
    const { error } = await within(opening, 3_000, "open to settle");
    expect(error).toBeInstanceOf(CanceledError);
  });
});

describe("proxies", () => {
  test("an explicit HTTP proxy is used through a CONNECT tunnel", async () => {
    const server = await echoServer();
    const proxy = await connectProxy(res);
    expect(await echoOnce(`ws://${serverAddr(server)}/`, { proxy: proxy.url })).toBe("ping?");
    expect(proxy.targets).toEqual([serverAddr(server)]);
  });

  test("wss: through a CONNECT tunnel", async () => {
    const server = await echoServer({ tls: { key: fixtures.key, cert: fixtures.cert } });
    const proxy = await connectProxy(res);
    expect(
      await echoOnce(`wss://localhost:${server.port}/`, { proxy: proxy.url, tls: { ca: fixtures.ca } }),
    ).toBe("ping?");
    expect(proxy.targets).toEqual([`localhost:${server.port}`]);
  });

  test("a SOCKS5 proxy", async () => {
    const server = await echoServer();
    const targets: string[] = [];
    const sockets = new Set<net.Socket>();
    const socks = net.createServer((client) => {
      sockets.add(client);
      client.on("error", () => {});
      let buf = Buffer.alloc(0);
      let stage = 0;
      const onData = (chunk: Buffer): void => {
        buf = Buffer.concat([buf, chunk]);
        if (stage === 0 && buf.length >= 2 && buf.length >= 2 + (buf[1] as number)) {
          buf = buf.subarray(2 + (buf[1] as number));
          client.write(Buffer.from([5, 0]));
          stage = 1;
        }
        if (stage === 1 && buf.length >= 10 && buf[3] === 1) {
          const host = [...buf.subarray(4, 8)].join(".");
          const port = buf.readUInt16BE(8);
          targets.push(`${host}:${port}`);
          client.off("data", onData);
          stage = 2;
          const upstream = net.connect(port, host, () => {
            client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
            client.pipe(upstream);
            upstream.pipe(client);
          });
          sockets.add(upstream);
          upstream.on("error", () => client.destroy());
          upstream.on("close", () => client.destroy());
        }
      };
      client.on("data", onData);
    });
    const proxyUrl = `socks5://127.0.0.1:${await res.listenRaw(socks, sockets)}`;
    expect(await echoOnce(`ws://${serverAddr(server)}/`, { proxy: proxyUrl })).toBe("ping?");
    expect(targets).toEqual([serverAddr(server)]);
  });

  test("proxy: null and new ProxyConfig() are direct", async () => {
    const server = await echoServer();
    const proxy = await connectProxy(res);
    expect(await echoOnce(`ws://${serverAddr(server)}/`, { proxy: null })).toBe("ping?");
    expect(await echoOnce(`ws://${serverAddr(server)}/`, { proxy: new ProxyConfig() })).toBe("ping?");
    expect(proxy.targets).toEqual([]);
  });

  test("a proxy that cannot be reached is a ConnectError", async () => {
    const server = await echoServer();
    const port = await freePort();
    const { error } = await settle(
      open(`ws://${serverAddr(server)}/`, { proxy: `http://127.0.0.1:${port}` }),
    );
    expect(error).toBeInstanceOf(ConnectError);
  });
});

describe("TLS", () => {
  test("rejectUnauthorized: false accepts an untrusted certificate", async () => {
    const server = await echoServer({ tls: { key: fixtures.untrustedKey, cert: fixtures.untrustedCert } });
    expect(await echoOnce(`wss://127.0.0.1:${server.port}/`, { tls: { rejectUnauthorized: false } })).toBe(
      "ping?",
    );
  });

  test("a wss: client against a plain ws: server fails with a typed error", async () => {
    const server = await echoServer();
    const { error } = await settle(
      within(
        open(`wss://127.0.0.1:${server.port}/`, { proxy: null, tls: { ca: fixtures.ca } }),
        5_000,
        "open",
      ),
    );
    expect(error).toBeInstanceOf(TLSHandshakeError);
  });

  test("wss: with the fixture CA works, and https: is read as wss:", async () => {
    const server = await echoServer({ tls: { key: fixtures.key, cert: fixtures.cert } });
    expect(server.url.startsWith("wss://")).toBe(true);
    const port = server.port;
    expect(await echoOnce(`wss://127.0.0.1:${port}/`, { tls: { ca: fixtures.ca } })).toBe("ping?");
    expect(await echoOnce(`https://localhost:${port}/`, { tls: { ca: fixtures.ca } })).toBe("ping?");
  });

  test("an untrusted certificate is a TLSHandshakeError", async () => {
    const server = await echoServer({ tls: { key: fixtures.untrustedKey, cert: fixtures.untrustedCert } });
    const { error } = await settle(
      open(`wss://127.0.0.1:${server.port}/`, { proxy: null, tls: { ca: fixtures.ca } }),
    );
    expect(error).toBeInstanceOf(TLSHandshakeError);
    await waitFor(() => server.sessionCount === 0, 1_000, "no session");
  });

  test("the default origin check over TLS wants an https:/wss: Origin", async () => {
    const server = await echoServer({ tls: { key: fixtures.key, cert: fixtures.cert } });
    const connect = (port: number) =>
      tlsModule.connect({ port, host: "127.0.0.1", ca: fixtures.ca, servername: "localhost" });
    const https = await rawExchange(
      server.port,
      handshakeRequest(server.port, { Origin: `https://127.0.0.1:${server.port}` }),
      { connect },
    );
    expect(https.status).toBe(101);
    const plain = await rawExchange(
      server.port,
      handshakeRequest(server.port, { Origin: `http://127.0.0.1:${server.port}` }),
      { connect },
    );
    expect(plain.status).toBe(403);
  });
});

describe("server refusals (raw sockets)", () => {
  async function refusalOf(
    request: (port: number) => string,
    options: Parameters<Resources["listen"]>[1] = {},
  ) {
    let sessions = 0;
    const server = await res.listen(async () => {
      sessions++;
    }, options);
    const reply = await rawExchange(server.port, request(server.port));
    return { ...reply, sessions: () => sessions };
  }

  const cases: [string, (port: number) => string, number, RegExp][] = [
    ["a non-GET method", (p) => handshakeRequest(p, {}, "POST"), 400, /websocket upgrade required/],
    ["a missing Upgrade", (p) => handshakeRequest(p, { Upgrade: null }), 400, /websocket upgrade required/],
    ["Upgrade: h2c", (p) => handshakeRequest(p, { Upgrade: "h2c" }), 400, /websocket upgrade required/],
    [
      "a missing Connection: upgrade",
      (p) => handshakeRequest(p, { Connection: "keep-alive" }),
      400,
      /websocket upgrade required/,
    ],
    [
      "version 8",
      (p) => handshakeRequest(p, { "Sec-WebSocket-Version": "8" }),
      400,
      /websocket upgrade required/,
    ],
    [
      "no version",
      (p) => handshakeRequest(p, { "Sec-WebSocket-Version": null }),
      400,
      /websocket upgrade required/,
    ],
    [
      "a missing key",
      (p) => handshakeRequest(p, { "Sec-WebSocket-Key": null }),
      400,
      /missing websocket key/,
    ],
    [
      "a key that is not base64",
      (p) => handshakeRequest(p, { "Sec-WebSocket-Key": "not-a-key!" }),
      400,
      /invalid/,
    ],
    [
      "a key of 15 bytes",
      (p) => handshakeRequest(p, { "Sec-WebSocket-Key": Buffer.alloc(15).toString("base64") }),
      400,
      /invalid websocket key/,
    ],
    [
      "a cross-site Origin",
      (p) => handshakeRequest(p, { Origin: "https://evil.example" }),
      403,
      /websocket origin rejected/,
    ],
    [
      "an Origin on another port",
      (p) => handshakeRequest(p, { Origin: `http://127.0.0.1:${p + 1}` }),
      403,
      /origin rejected/,
    ],
    [
      "an Origin with another scheme",
      (p) => handshakeRequest(p, { Origin: `https://127.0.0.1:${p}` }),
      403,
      /origin/,
    ],
    ["a malformed Origin", (p) => handshakeRequest(p, { Origin: "::::" }), 403, /origin/],
    ["Origin: null", (p) => handshakeRequest(p, { Origin: "null" }), 403, /origin/],
    [
      "a plain GET without upgrade",
      (p) => `GET / HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`,
      400,
      /upgrade required/,
    ],
  ];

  for (const [name, request, status, body] of cases) {
    test(`${name} → ${status}`, async () => {
      const reply = await refusalOf(request);
      expect(reply.status, reply.text).toBe(status);
      expect(reply.text).toMatch(body);
      expect(reply.closed).toBe(true);
      expect(reply.sessions()).toBe(0);
    });
  }

  test("a same-origin Origin → 101 (host compared without case, default port filled in)", async () => {
    const server = await echoServer();
    const p = server.port;
    for (const origin of [`http://127.0.0.1:${p}`, `ws://127.0.0.1:${p}`]) {
      const reply = await rawExchange(p, handshakeRequest(p, { Origin: origin }));
      expect(reply.status, origin).toBe(101);
    }
    const upper = await rawExchange(
      p,
      handshakeRequest(p, { Host: `LOCALHOST:${p}`, Origin: `http://localhost:${p}` }),
    );
    expect(upper.status).toBe(101);
    const defaultPort = await rawExchange(
      p,
      handshakeRequest(p, { Host: "example.test", Origin: "http://example.test:80" }),
    );
    expect(defaultPort.status).toBe(101);
  });

  test("no Origin → 101, with the right Sec-WebSocket-Accept", async () => {
    const server = await echoServer();
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const reply = await rawExchange(server.port, handshakeRequest(server.port, { "Sec-WebSocket-Key": key }));
    expect(reply.status).toBe(101);
    expect(reply.text).toContain("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("a custom checkOrigin decides, and receives the request and the Origin", async () => {
    const calls: (string | null)[] = [];
    const server = await echoServer({
      checkOrigin: (req, origin) => {
        calls.push(origin);
        expect(req.headers.host).toBeDefined();
        return origin === "https://app.example";
      },
    });
    const p = server.port;
    expect((await rawExchange(p, handshakeRequest(p, { Origin: "https://app.example" }))).status).toBe(101);
    expect((await rawExchange(p, handshakeRequest(p, { Origin: `http://127.0.0.1:${p}` }))).status).toBe(403);
    expect((await rawExchange(p, handshakeRequest(p))).status).toBe(403);
    expect(calls).toEqual(["https://app.example", `http://127.0.0.1:${p}`, null]);
  });

  test("a checkOrigin that throws refuses the handshake and the server keeps serving", async () => {
    const server = await echoServer({
      checkOrigin: () => {
        throw new Error("bad check");
      },
    });
    const reply = await rawExchange(server.port, handshakeRequest(server.port));
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.closed).toBe(true);
    expect(server.isOpen).toBe(true);
  });

  test("our client sends no Origin, so the default check lets it in", async () => {
    const server = await echoServer();
    expect(await echoOnce(`ws://${serverAddr(server)}/`)).toBe("ping?");
  });

  test("isUpgrade recognises a WebSocket upgrade request", () => {
    expect(isUpgrade({ headers: { upgrade: "WebSocket", connection: "keep-alive, Upgrade" } })).toBe(true);
    expect(isUpgrade({ headers: { upgrade: "websocket" } })).toBe(false);
    expect(isUpgrade({ headers: { connection: "upgrade" } })).toBe(false);
    expect(isUpgrade({ headers: { upgrade: "h2c", connection: "upgrade" } })).toBe(false);
  });
});

describe("addresses", () => {
  test("serverAddr reports host:port of the bound address", async () => {
    const server = await echoServer();
    expect(serverAddr(server)).toBe(`127.0.0.1:${server.port}`);
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
    expect(server.url).toBe(`ws://127.0.0.1:${server.port}`);
  });

  test("a wildcard bind reads as loopback in serverAddr", async () => {
    const server = await echoServer({ host: "0.0.0.0" });
    expect(server.address).toBe(`0.0.0.0:${server.port}`);
    expect(serverAddr(server)).toBe(`127.0.0.1:${server.port}`);
    expect(await echoOnce(`ws://${serverAddr(server)}/`)).toBe("ping?");
  });

  test("an IPv6 loopback bind is bracketed", async () => {
    const server = await echoServer({ host: "::1" });
    expect(serverAddr(server)).toBe(`[::1]:${server.port}`);
    expect(await echoOnce(`ws://${serverAddr(server)}/`)).toBe("ping?");
  });

  test("serverAddr of a closed server is an error, not a wrong address", async () => {
    const server = await echoServer();
    await server.close();
    expect(() => serverAddr(server)).toThrow();
  });

  test("a busy port is an AddressInUseError; with listenAny the next free port is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    res.defer(() => new Promise<void>((r) => blocker.close(() => r())));
    const busy = (blocker.address() as net.AddressInfo).port;

    const { error } = await settle(listen(async () => {}, { host: "127.0.0.1", port: busy }));
    expect(error).toBeInstanceOf(AddressInUseError);

    const server = await res.listen(
      async (ws) => {
        for await (const m of ws) await ws.send(m);
      },
      { port: busy, listenAny: true },
    );
    expect(server.port).toBeGreaterThan(busy);
    expect(await echoOnce(`ws://${serverAddr(server)}/`)).toBe("ping?");
  });

  test("listen rejects a handler that is not a function", async () => {
    const { error } = await settle(listen("nope" as never, { port: 0 }));
    expect(error).toBeInstanceOf(ArgumentError);
  });
});
