// HTTP/2 in the client: negotiation (ALPN, the HTTP/1.1 fallback and its cache, h2c), one session
// shared by concurrent requests, extra sessions at the peer's stream limit, idle eviction, bodies
// both ways, trailers, open() streaming, trace events and proxies. Servers are raw node:http2 ones.
import { Readable, Writable } from "node:stream";
import { ArgumentError } from "@hyperwire/core";
import { H2NegotiationError, HTTP2Settings } from "@hyperwire/h2";
import { afterEach, describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { type ClientEvent, type RequestEvent, Transport, type TransportOptions } from "../src/index.js";
import { H1TlsServer, H2Server, type StreamHandler } from "./h2-servers.js";
import { Resources, rejectionOf, waitFor } from "./helpers.js";
import { Microsocks, TestProxy } from "./proxies.js";

const res = new Resources();
afterEach(() => res.closeAll());

const TLS = { ca: fixtures.ca };

async function h2(
  handler?: StreamHandler,
  options?: Parameters<typeof H2Server.start>[1],
): Promise<H2Server> {
  return res.add(await H2Server.start(handler, options));
}

function transport(options: TransportOptions = {}): Transport {
  return res.add(new Transport({ tls: TLS, ...options }));
}

describe("negotiation", () => {
  test("auto on https negotiates h2 by ALPN", async () => {
    const server = await h2(undefined, { tls: true, allowHTTP1: true });
    const t = transport();
    const client = res.client({ transport: t });
    const r = await client.get(`${server.url}/a`);
    expect(r.status).toBe(200);
    expect(r.version).toBe("2");
    expect(r.text()).toBe("ok /a");
    expect(server.offers).toEqual([["h2", "http/1.1"]]);
    expect(server.h1Requests).toBe(0);
    expect(t.idleConnectionCount(`https://127.0.0.1:${server.port}`)).toBe(1);
  });

  test("auto against an HTTP/1.1-only TLS server: HTTP/1.1 on the same connection, then cached", async () => {
    const server = res.add(await H1TlsServer.start());
    const t = transport();
    const client = res.client({ transport: t });
    const first = await client.get(`${server.url}/one`);
    expect(first.version).toBe("1.1");
    expect(first.text()).toBe("h1 /one");
    // The ALPN dial was not wasted: the second request reuses it.
    const second = await client.get(`${server.url}/two`);
    expect(second.text()).toBe("h1 /two");
    expect(server.accepted).toBe(1);
    expect(server.offers).toEqual([["h2", "http/1.1"]]);
  });

  test("concurrent first requests to an HTTP/1.1-only TLS server: one ALPN dial, the rest HTTP/1.1", async () => {
    const server = res.add(await H1TlsServer.start());
    const client = res.client({ transport: transport() });
    const replies = await Promise.all(
      Array.from({ length: 5 }, (_, i) => client.get(`${server.url}/${i}`).then((r) => r.text())),
    );
    expect(replies).toEqual(Array.from({ length: 5 }, (_, i) => `h1 /${i}`));
    expect(server.offers[0]).toEqual(["h2", "http/1.1"]);
    expect(server.offers.slice(1).every((o) => o.length === 1 && o[0] === "http/1.1")).toBe(true);
  });

  test("the HTTP/1.1-only cache: later dials offer only http/1.1, until closeIdleConnections", async () => {
    const server = res.add(await H1TlsServer.start(true));
    const t = transport();
    const client = res.client({ transport: t });
    const events: ClientEvent[] = [];
    await client.get(`${server.url}/1`);
    await client.get(`${server.url}/2`, { trace: (e) => events.push(e) });
    expect(server.offers).toEqual([["h2", "http/1.1"], ["http/1.1"]]);
    expect((events[0] as RequestEvent).protocol).toBe("h1");
    client.closeIdleConnections();
    await client.get(`${server.url}/3`);
    expect(server.offers.at(-1)).toEqual(["h2", "http/1.1"]);
  });

  test("a failed connect is not cached as HTTP/1.1-only", async () => {
    const server = await h2(undefined, { tls: true });
    const t = transport();
    const client = res.client({ transport: t });
    // The wrong CA fails the handshake: transient, so the next request offers h2 again.
    await rejectionOf(client.get(`${server.url}/x`, { tls: { ca: fixtures.untrustedCert } }));
    const r = await client.get(`${server.url}/y`);
    expect(r.version).toBe("2");
  });

  test("preferHttp2: false on the Transport offers only http/1.1", async () => {
    const server = await h2(undefined, { tls: true, allowHTTP1: true });
    const client = res.client({ transport: transport({ preferHttp2: false }) });
    const r = await client.get(`${server.url}/p`);
    expect(r.version).toBe("1.1");
    expect(r.text()).toBe("h1 /p");
    expect(server.offers).toEqual([["http/1.1"]]);
  });

  test("preferHttp2: false on a Client given an h2-preferring transport", async () => {
    const server = await h2(undefined, { tls: true, allowHTTP1: true });
    const t = transport();
    const h1client = res.client({ transport: t, preferHttp2: false });
    expect((await h1client.get(`${server.url}/a`)).version).toBe("1.1");
    const h2client = res.client({ transport: t });
    expect((await h2client.get(`${server.url}/b`)).version).toBe("2");
  });

  test("a Client made without a transport passes preferHttp2 to the one it makes", async () => {
    const server = await h2(undefined, { tls: true, allowHTTP1: true });
    const client = res.client({ preferHttp2: false });
    expect(client.transport.preferHttp2).toBe(false);
    expect((await client.get(`${server.url}/a`, { tls: TLS })).version).toBe("1.1");
  });

  test("TLS options whose ALPNProtocols leave out h2 skip HTTP/2", async () => {
    const server = await h2(undefined, { tls: true, allowHTTP1: true });
    const client = res.client({ transport: transport() });
    const r = await client.get(`${server.url}/a`, { tls: { ...TLS, ALPNProtocols: ["http/1.1"] } });
    expect(r.version).toBe("1.1");
  });

  test("protocol: 'h2' on https against an HTTP/1.1-only server is an H2NegotiationError", async () => {
    const server = res.add(await H1TlsServer.start());
    const client = res.client({ transport: transport() });
    const err = await rejectionOf(client.get(`${server.url}/`, { protocol: "h2" }));
    expect(err).toBeInstanceOf(H2NegotiationError);
    expect(server.offers).toEqual([["h2"]]);
  });

  test("protocol: 'h2' on http is h2c with prior knowledge", async () => {
    const server = await h2();
    const t = transport();
    const client = res.client({ transport: t });
    const r = await client.get(`${server.url}/c`, { protocol: "h2" });
    expect(r.version).toBe("2");
    expect(r.text()).toBe("ok /c");
    expect(server.sessions).toBe(1);
    // auto on http: is always HTTP/1.1; an h2c-only server cannot answer it.
    await rejectionOf(client.get(`${server.url}/d`, { connectTimeout: 2_000, requestTimeout: 2_000 }));
    expect(server.streams).toHaveLength(1);
  });

  test("protocol: 'h2' on http to an HTTP/1.1 server is an H2NegotiationError", async () => {
    const server = await res.counting();
    const client = res.client({ transport: transport() });
    const err = await rejectionOf(client.get(`${server.url}/`, { protocol: "h2" }));
    expect(err).toBeInstanceOf(H2NegotiationError);
  });

  test("protocol: 'h1' forces HTTP/1.1", async () => {
    const server = await h2(undefined, { tls: true, allowHTTP1: true });
    const client = res.client({ transport: transport() });
    const r = await client.get(`${server.url}/f`, { protocol: "h1" });
    expect(r.version).toBe("1.1");
    expect(server.offers).toEqual([["http/1.1"]]);
  });

  test("any other protocol is an ArgumentError", async () => {
    const client = res.client();
    const bad = { protocol: "h3" } as unknown as { protocol: "h2" };
    await expect(client.get("https://127.0.0.1:1/", bad)).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe("sessions", () => {
  test("100 concurrent requests share one session", async () => {
    const server = await h2(undefined, { tls: true });
    const t = transport();
    const client = res.client({ transport: t });
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => client.get(`${server.url}/${i}`).then((r) => r.text())),
    );
    expect(replies).toEqual(Array.from({ length: 100 }, (_, i) => `ok /${i}`));
    expect(server.sessions).toBe(1);
    // Concurrent first requests waited for one ALPN dial instead of each dialing.
    expect(server.offers).toHaveLength(1);
    expect(server.streams).toHaveLength(100);
    expect(t.http2SessionCount()).toBe(1);
  });

  test("a new session when the peer's MAX_CONCURRENT_STREAMS is reached", async () => {
    // Holds every stream until all 12 arrived: with 5 per session that needs 3 sessions, and any
    // over-subscribed session would leave streams queued on the client (the test would time out).
    const held: (() => void)[] = [];
    const server = await h2(
      (stream, headers) => {
        held.push(() => {
          stream.respond({ ":status": 200 });
          stream.end(`ok ${headers[":path"]}`);
        });
        if (held.length === 12) for (const f of held) f();
      },
      { settings: { maxConcurrentStreams: 5 } },
    );
    const client = res.client({ transport: transport() });
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        client.get(`${server.url}/${i}`, { protocol: "h2" }).then((r) => r.text()),
      ),
    );
    expect(replies).toHaveLength(12);
    expect(server.sessions).toBe(3);
  });

  test("idle sessions close after the transport's idleTimeout", async () => {
    const server = await h2();
    const t = transport({ idleTimeout: 50 });
    const client = res.client({ transport: t });
    await client.get(`${server.url}/`, { protocol: "h2" });
    await waitFor(() => server.openSessions === 0, 5_000, "the idle session to close");
    expect(t.idleConnectionCount()).toBe(0);
    // The next request makes a new one.
    expect((await client.get(`${server.url}/again`, { protocol: "h2" })).text()).toBe("ok /again");
    expect(server.sessions).toBe(2);
  });

  test("closeIdleConnections closes idle sessions; idleConnectionCount counts them", async () => {
    const server = await h2();
    const t = transport();
    const client = res.client({ transport: t });
    await client.get(`${server.url}/`, { protocol: "h2" });
    expect(t.idleConnectionCount()).toBe(1);
    expect(t.idleConnectionCount(`http://127.0.0.1:${server.port}`)).toBe(1);
    t.closeIdleConnections();
    await waitFor(() => server.openSessions === 0, 5_000, "the session to close");
    expect(t.idleConnectionCount()).toBe(0);
  });

  test("transport.close() lets the streams in flight finish", async () => {
    let answer: (() => void) | undefined;
    const server = await h2((stream) => {
      answer = () => {
        stream.respond({ ":status": 200 });
        stream.end("late");
      };
    });
    const t = new Transport();
    const client = res.client({ transport: t });
    const pending = client.get(`${server.url}/`, { protocol: "h2" });
    await waitFor(() => answer !== undefined, 5_000, "the stream");
    const closing = t.close();
    answer!();
    expect((await pending).text()).toBe("late");
    await closing;
    await waitFor(() => server.openSessions === 0, 5_000, "the session to close");
  });

  test("a client's own http2Settings get their own session, with its windows", async () => {
    let window = 0;
    const server = await h2((stream) => {
      window = stream.session!.remoteSettings.initialWindowSize ?? 0;
      stream.respond({ ":status": 200 });
      stream.end("ok");
    });
    const t = transport();
    const plain = res.client({ transport: t });
    const big = res.client({
      transport: t,
      http2Settings: new HTTP2Settings({ initialWindowSize: 1 << 20, connectionWindowSize: 4 << 20 }),
    });
    await plain.get(`${server.url}/`, { protocol: "h2" });
    expect(window).toBe(65_535);
    await big.get(`${server.url}/`, { protocol: "h2" });
    expect(window).toBe(1 << 20);
    expect(server.sessions).toBe(2);
  });
});

describe("bodies", () => {
  test("a Uint8Array body is sent with its Content-Length", async () => {
    const server = await h2();
    const client = res.client({ transport: transport() });
    const body = Buffer.alloc(300_000, "b");
    const r = await client.post(`${server.url}/up`, { body, protocol: "h2" });
    expect(r.headers.get("x-content-length")).toBe("300000");
    expect(Buffer.from(r.body).equals(body)).toBe(true);
  });

  test("an async iterable body is streamed", async () => {
    const server = await h2();
    const client = res.client({ transport: transport() });
    async function* parts(): AsyncGenerator<string> {
      for (let i = 0; i < 50; i++) yield `part ${i};`;
    }
    const r = await client.post(`${server.url}/up`, { body: parts(), protocol: "h2" });
    expect(r.text()).toBe(Array.from({ length: 50 }, (_, i) => `part ${i};`).join(""));
  });

  test("a Readable body is streamed", async () => {
    const server = await h2();
    const client = res.client({ transport: transport() });
    const r = await client.put(`${server.url}/up`, {
      body: Readable.from([Buffer.from("a"), Buffer.from("bc")]),
      protocol: "h2",
    });
    expect(r.text()).toBe("abc");
  });

  test("a large response body is read under flow control", async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, "z");
    const server = await h2((stream) => {
      stream.respond({ ":status": 200, "content-length": String(big.length) });
      stream.end(big);
    });
    const client = res.client({ transport: transport() });
    const r = await client.get(`${server.url}/big`, { protocol: "h2" });
    expect(r.body.byteLength).toBe(big.length);
  });

  test("responseStream receives the body", async () => {
    const server = await h2();
    const client = res.client({ transport: transport() });
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    const r = await client.get(`${server.url}/sink`, { protocol: "h2", responseStream: sink });
    expect(r.body.byteLength).toBe(0);
    expect(Buffer.concat(chunks).toString()).toBe("ok /sink");
  });

  test("response trailers", async () => {
    const server = await h2((stream) => {
      stream.respond({ ":status": 200 }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-checksum": "abc123" }));
      stream.end("body");
    });
    const client = res.client({ transport: transport() });
    const r = await client.get(`${server.url}/t`, { protocol: "h2" });
    expect(r.text()).toBe("body");
    expect(r.trailers.get("x-checksum")).toBe("abc123");
  });

  test("Host becomes :authority; connection-specific headers are not sent", async () => {
    let seen: Record<string, unknown> = {};
    const server = await h2((stream, headers) => {
      seen = { ...headers };
      stream.respond({ ":status": 204 });
      stream.end();
    });
    const client = res.client({ transport: transport() });
    const r = await client.get(`${server.url}/h`, {
      protocol: "h2",
      headers: { Host: "example.test", Connection: "keep-alive", "X-Many": "1" },
    });
    expect(r.status).toBe(204);
    expect(seen[":authority"]).toBe("example.test");
    expect(seen.connection).toBeUndefined();
    expect(seen["x-many"]).toBe("1");
    expect(seen.host).toBeUndefined();

    // TE only as "trailers"; repeated fields arrive as repeated fields; names in lower case.
    await client.get(`${server.url}/h`, {
      protocol: "h2",
      headers: [
        ["TE", " Trailers "],
        ["X-Twice", "a"],
        ["x-twice", "b"],
        ["Upgrade", "h2c"],
        ["Transfer-Encoding", "chunked"],
      ],
    });
    expect(seen.te).toBe("trailers");
    expect(seen["x-twice"]).toBe("a, b");
    expect(seen.upgrade).toBeUndefined();
    expect(seen["transfer-encoding"]).toBeUndefined();
    await client.get(`${server.url}/h`, { protocol: "h2", headers: { TE: "gzip" } });
    expect(seen.te).toBeUndefined();
  });

  test("open(): write the request body, read the response body", async () => {
    const server = await h2();
    const client = res.client({ transport: transport() });
    const stream = await client.open("POST", `${server.url}/open`, { protocol: "h2" });
    await stream.write("hello ");
    await stream.write("world");
    const head = await stream.startRead();
    expect(head.status).toBe(200);
    expect(head.version).toBe("2");
    let text = "";
    for await (const chunk of stream) text += Buffer.from(chunk).toString();
    expect(text).toBe("hello world");
    const final = await stream.closeRead();
    expect(final.status).toBe(200);
  });

  test("open() with a handler resolves to the response", async () => {
    const server = await h2(undefined, { tls: true });
    const client = res.client({ transport: transport() });
    let text = "";
    const r = await client.open("GET", `${server.url}/o`, async (s) => {
      for await (const chunk of s) text += Buffer.from(chunk).toString();
    });
    expect(r.status).toBe(200);
    expect(text).toBe("ok /o");
  });

  test("a response that ends before the upload finished stops the upload", async () => {
    const server = await h2((stream) => {
      stream.respond({ ":status": 413 });
      stream.end("too big");
    });
    const client = res.client({ transport: transport() });
    let pulled = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10_000; i++) {
        pulled++;
        yield Buffer.alloc(16 * 1024);
      }
    }
    const r = await client.post(`${server.url}/up`, {
      body: endless(),
      protocol: "h2",
      statusException: false,
    });
    expect(r.status).toBe(413);
    expect(r.text()).toBe("too big");
    expect(pulled).toBeLessThan(10_000);
  });
});

describe("trace and proxies", () => {
  test("trace events say h2", async () => {
    const server = await h2(undefined, { tls: true });
    const client = res.client({ transport: transport() });
    const events: ClientEvent[] = [];
    await client.get(`${server.url}/t`, { trace: (e) => events.push(e) });
    expect(events.map((e) => e.type)).toEqual(["request", "responseHead", "done"]);
    expect((events[0] as RequestEvent).protocol).toBe("h2");
  });

  test("h2 through an HTTP CONNECT tunnel", async () => {
    const server = await h2(undefined, { tls: true });
    const proxy = res.add(await TestProxy.start());
    const t = transport({ proxy: proxy.url() });
    const client = res.client({ transport: t });
    const [a, b] = await Promise.all([client.get(`${server.url}/a`), client.get(`${server.url}/b`)]);
    expect(a.version).toBe("2");
    expect(a.text() + b.text()).toBe("ok /aok /b");
    expect(proxy.connects).toEqual([`127.0.0.1:${server.port}`]);
    expect(server.sessions).toBe(1);
  });

  test("h2 through SOCKS5", async () => {
    const server = await h2(undefined, { tls: true });
    const socks = res.add(await Microsocks.start());
    const client = res.client({ transport: transport({ proxy: socks.url() }) });
    const r = await client.get(`${server.url}/s`);
    expect(r.version).toBe("2");
    expect(r.text()).toBe("ok /s");
  });

  test("protocol: 'h2' is refused for a plain-http forward proxy", async () => {
    const proxy = res.add(await TestProxy.start());
    const client = res.client({ transport: transport({ proxy: proxy.url() }) });
    await expect(client.get("http://127.0.0.1:1/", { protocol: "h2" })).rejects.toBeInstanceOf(ArgumentError);
  });
});
