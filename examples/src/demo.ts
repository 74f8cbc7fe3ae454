// The README's demo: starts a hyperwire server on loopback, talks to it with the hyperwire client,
// and prints what actually happened (every row comes from a real exchange).
import { Client, open } from "@hyperwire/client";
import { Headers, ProtocolError, Response, StatusError, TimeoutError } from "@hyperwire/core";
import { serve } from "@hyperwire/server";
import { WebSockets } from "@hyperwire/websockets";

interface Row {
  what: string;
  outcome: string;
  bytes: number;
  ms: number;
}

async function main(): Promise<number> {
  const server = await serve(
    async (req) => {
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
        body: `hello from ${req.target}`,
      });
    },
    { host: "127.0.0.1", port: 0, maxBodyBytes: 1024 },
  );
  const client = new Client();
  const rows: Row[] = [];
  const expected: string[] = [];
  const timed = async (
    what: string,
    expect: string,
    run: () => Promise<{ status: number; body: Uint8Array }>,
  ) => {
    const start = performance.now();
    let outcome: string;
    let bytes = 0;
    try {
      const res = await run();
      outcome = `${res.status}`;
      bytes = res.body.byteLength;
    } catch (e) {
      if (e instanceof TimeoutError) outcome = `TimeoutError(${e.phase})`;
      else if (e instanceof StatusError) outcome = `StatusError(${e.status})`;
      else outcome = (e as Error).name;
    }
    rows.push({ what, outcome, bytes, ms: Math.round((performance.now() - start) * 10) / 10 });
    expected.push(expect);
  };
  try {
    console.log(`server listening on ${server.url}`);
    await timed("GET /hello?lang=en", "200", () =>
      client.get(`${server.url}/hello`, { query: { lang: "en" } }),
    );
    await timed("POST /echo (json)", "200", () =>
      client.post(`${server.url}/echo`, { json: { hello: "world" } }),
    );
    await timed("GET /missing", "StatusError(404)", () => client.get(`${server.url}/missing`));
    await timed("POST 4 KiB (server maxBodyBytes 1 KiB)", "StatusError(413)", () =>
      client.post(`${server.url}/big`, { body: "x".repeat(4096) }),
    );
    await timed("GET /slow, readIdleTimeout 100 ms", "TimeoutError(readIdle)", () =>
      client.get(`${server.url}/slow`, { readIdleTimeout: 100 }),
    );
    await timed("open(): stream a body up, read it back", "200", async () => {
      let received = 0;
      const res = await open(
        "POST",
        `${server.url}/stream`,
        async (stream) => {
          for (let i = 0; i < 4; i++) await stream.write(`chunk ${i};`);
          await stream.closeWrite();
          for await (const chunk of stream) received += chunk.byteLength;
        },
        { client },
      );
      return { status: res.status, body: new Uint8Array(received) };
    });
    await timed("WebSocket /ws: send hello, receive", "101", async () => {
      const url = `${server.url.replace("http", "ws")}/ws`;
      const reply = await WebSockets.open(url, async (ws) => {
        await ws.send("hello");
        return ws.receive();
      });
      return { status: reply === "HELLO" ? 101 : 0, body: Buffer.from(String(reply)) };
    });
    console.table(rows);
    let rejected = false;
    try {
      new Headers({ "X-Evil": "a\r\nSet-Cookie: b" });
    } catch (e) {
      rejected = e instanceof ProtocolError;
      console.log(`header injection attempt: ${(e as Error).name}: ${(e as Error).message}`);
    }
    console.log(`idle keep-alive connections in the pool: ${client.transport.idleConnectionCount()}`);
    const ok = rejected && rows.every((r, i) => r.outcome === expected[i]);
    console.log(
      ok ? "demo: every exchange behaved as expected" : "demo: something did not behave as expected",
    );
    return ok ? 0 : 1;
  } finally {
    await client.close();
    await server.close();
  }
}

process.exitCode = await main();
