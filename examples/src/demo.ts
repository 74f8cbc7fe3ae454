// The README's demo: one server with two ports (cleartext: HTTP/1.1, h2c and WebSocket; TLS: h2,
// HTTP/1.1, wss and wss over HTTP/2), the hyperwire client talking to it over each protocol, and a report of what
// actually happened. Every row comes from a real exchange; the protocol column is the one the
// response arrived on, not the one asked for.
import { Client, open, Transport } from "@hyperwire/client";
import { Headers, ProtocolError, Response, StatusError, TimeoutError } from "@hyperwire/core";
import { type Server, serve } from "@hyperwire/server";
import { WebSockets } from "@hyperwire/websockets";
// A test CA made for the tests (fixtures/tls), so the demo needs no real certificate.
import { tls as fixtures } from "../../fixtures/tls/index.mjs";

interface Row {
  what: string;
  protocol: string;
  outcome: string;
  bytes: number;
  ms: number;
}

interface Outcome {
  status: number;
  body: Uint8Array;
  protocol: string;
}

/** One handler for both ports: HTTP routes and a WebSocket echo. */
async function handler(req: import("@hyperwire/core").Request): Promise<Response> {
  const path = req.target.split("?")[0];
  if (path === "/slow") {
    await new Promise((r) => setTimeout(r, 500));
    return new Response(200, { body: "late" });
  }
  if (path === "/missing") return new Response(404, { body: "no such thing" });
  if (path === "/ws") {
    return WebSockets.upgrade(req, async (ws) => {
      for await (const msg of ws) await ws.send(String(msg).toUpperCase());
    });
  }
  if (req.method === "POST") {
    return new Response(200, { headers: { "Content-Type": "application/json" }, body: req.body });
  }
  return new Response(200, {
    headers: { "Content-Type": "text/plain" },
    body: `hello from ${req.target} over HTTP/${req.version}`,
  });
}

async function main(): Promise<number> {
  const options = { host: "127.0.0.1", port: 0, maxBodyBytes: 1024 };
  const plain: Server = await serve(handler, options);
  const secure: Server = await serve(handler, {
    ...options,
    tls: { key: fixtures.key, cert: fixtures.cert },
  });
  const tls = { ca: fixtures.ca };
  const client = new Client({ transport: new Transport({ tls }) });
  const h1only = new Client({ transport: new Transport({ tls, preferHttp2: false }) });
  const rows: Row[] = [];
  const expected: string[] = [];
  const timed = async (what: string, expect: string, run: () => Promise<Outcome>) => {
    const start = performance.now();
    let outcome: string;
    let protocol = "-";
    let bytes = 0;
    try {
      const res = await run();
      outcome = `${res.status}`;
      protocol = res.protocol;
      bytes = res.body.byteLength;
    } catch (e) {
      if (e instanceof TimeoutError) outcome = `TimeoutError(${e.phase})`;
      else if (e instanceof StatusError) {
        outcome = `StatusError(${e.status})`;
        const res = e.response as { version?: string; body?: unknown };
        if (res.version !== undefined) protocol = `HTTP/${res.version}`;
        if (res.body instanceof Uint8Array) bytes = res.body.byteLength;
      } else outcome = (e as Error).name;
    }
    rows.push({ what, protocol, outcome, bytes, ms: Math.round((performance.now() - start) * 10) / 10 });
    expected.push(expect);
  };
  const http = (res: { status: number; body: Uint8Array; version: string }): Outcome => ({
    status: res.status,
    body: res.body,
    protocol: `HTTP/${res.version}`,
  });
  const httpsUrl = `https://localhost:${secure.port}`;
  try {
    console.log(`cleartext port: ${plain.url} (HTTP/1.1, h2c, ws)`);
    console.log(`TLS port:       ${httpsUrl} (h2 and HTTP/1.1 by ALPN, wss)`);
    await timed("GET /hello", "200 HTTP/1.1", async () =>
      http(await client.get(`${plain.url}/hello`, { query: { lang: "en" } })),
    );
    await timed("GET /hello, protocol h2 (h2c)", "200 HTTP/2", async () =>
      http(await client.get(`${plain.url}/hello`, { protocol: "h2" })),
    );
    await timed("GET https /hello (ALPN)", "200 HTTP/2", async () =>
      http(await client.get(`${httpsUrl}/hello`)),
    );
    await timed("GET https /hello, preferHttp2: false", "200 HTTP/1.1", async () =>
      http(await h1only.get(`${httpsUrl}/hello`)),
    );
    await timed("POST /echo (json) over h2", "200 HTTP/2", async () =>
      http(await client.post(`${httpsUrl}/echo`, { json: { hello: "world" } })),
    );
    await timed("GET /missing", "StatusError(404)", async () =>
      http(await client.get(`${httpsUrl}/missing`)),
    );
    await timed("POST 4 KiB (server maxBodyBytes 1 KiB)", "StatusError(413)", async () =>
      http(await client.post(`${plain.url}/big`, { body: "x".repeat(4096) })),
    );
    await timed("GET /slow, readIdleTimeout 100 ms", "TimeoutError(readIdle)", async () =>
      http(await client.get(`${httpsUrl}/slow`, { readIdleTimeout: 100 })),
    );
    await timed("open(): stream a body up and back over h2", "200 HTTP/2", async () => {
      let received = 0;
      const res = await open(
        "POST",
        `${httpsUrl}/stream`,
        async (stream) => {
          for (let i = 0; i < 4; i++) await stream.write(`chunk ${i};`);
          await stream.closeWrite();
          for await (const chunk of stream) received += chunk.byteLength;
        },
        { client },
      );
      return { status: res.status, body: new Uint8Array(received), protocol: `HTTP/${res.version}` };
    });
    // The handshake answers 101 over HTTP/1.1 and 200 over HTTP/2 (RFC 8441, extended CONNECT on a
    // stream of an HTTP/2 session).
    for (const [what, url, wsOptions, status, protocol] of [
      ["WebSocket ws:// /ws: send hello", `${plain.url.replace("http", "ws")}/ws`, {}, 101, "WebSocket"],
      ["WebSocket wss:// /ws: send hello", `wss://localhost:${secure.port}/ws`, { tls }, 101, "WebSocket"],
      [
        "WebSocket wss:// /ws over HTTP/2 (RFC 8441)",
        `wss://localhost:${secure.port}/ws`,
        { tls, protocol: "h2" },
        200,
        "WebSocket/h2",
      ],
    ] as const) {
      await timed(what, `${status} ${protocol}`, async () => {
        const reply = await WebSockets.open(
          url,
          async (ws) => {
            await ws.send("hello");
            return ws.receive();
          },
          wsOptions,
        );
        return { status: reply === "HELLO" ? status : 0, body: Buffer.from(String(reply)), protocol };
      });
    }
    console.table(rows);
    let rejected = false;
    try {
      new Headers({ "X-Evil": "a\r\nSet-Cookie: b" });
    } catch (e) {
      rejected = e instanceof ProtocolError;
      console.log(`header injection attempt: ${(e as Error).name}: ${(e as Error).message}`);
    }
    console.log(`idle connections in the client's pool: ${client.transport.idleConnectionCount()}`);
    const ok =
      rejected &&
      rows.every((r, i) => {
        const want = expected[i]!;
        // "200 HTTP/2" checks the protocol too; an error is checked by its name alone.
        return want.includes(" ") ? `${r.outcome} ${r.protocol}` === want : r.outcome === want;
      });
    console.log(
      ok ? "demo: every exchange behaved as expected" : "demo: something did not behave as expected",
    );
    return ok ? 0 : 1;
  } finally {
    await h1only.close();
    await client.close();
    await plain.close();
    await secure.close();
  }
}

process.exitCode = await main();
