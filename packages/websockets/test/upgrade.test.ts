// `upgrade(req, handler)` inside an ordinary `serve` handler: HTTP and WebSocket routes on one port.
import http from "node:http";
import { type Request, Response, WebSocketError } from "@hyperwire/core";
import { type Server, serve } from "@hyperwire/server";
import { describe, expect, test } from "vitest";
import { isUpgrade, open, upgrade } from "../src/index.js";
import {
  checkUnhandledRejections,
  handshakeRequest,
  Resources,
  rawExchange,
  settle,
  waitFor,
  within,
} from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

/**
 * A server with `/ws` (echo), `/boom` (a handler that throws) and `/hello` (plain HTTP); `upgrades`
 * records what `isUpgrade(req)` said on `/ws`.
 */
async function mixedServer(): Promise<{
  server: Server;
  port: number;
  sessionsEnded: () => number;
  upgrades: boolean[];
}> {
  let ended = 0;
  const upgrades: boolean[] = [];
  const server = await serve(
    (req: Request) => {
      if (req.target === "/ws") {
        upgrades.push(isUpgrade(req));
        return upgrade(req, async (ws) => {
          try {
            for await (const m of ws) await ws.send(m);
          } finally {
            ended++;
          }
        });
      }
      if (req.target === "/boom") {
        return upgrade(req, async (ws) => {
          await ws.receive();
          ended++;
          throw new Error("boom");
        });
      }
      return new Response(200, { body: `hello ${isUpgrade(req)}` });
    },
    { host: "127.0.0.1", port: 0 },
  );
  res.defer(() => server.forceClose());
  return { server, port: server.port, sessionsEnded: () => ended, upgrades };
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (r) => {
        let body = "";
        r.setEncoding("utf8");
        r.on("data", (c: string) => {
          body += c;
        });
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("upgrade inside serve", () => {
  test("a WebSocket route and an HTTP route share one port", async () => {
    const { server, port, sessionsEnded, upgrades } = await mixedServer();
    const reply = await within(
      open(
        `ws://127.0.0.1:${port}/ws`,
        async (ws) => {
          await ws.send("over the mixed server");
          return ws.receive();
        },
        { proxy: null },
      ),
      5_000,
      "the echo",
    );
    expect(reply).toBe("over the mixed server");
    expect(await get(`${server.url}/hello`)).toEqual({ status: 200, body: "hello false" });
    expect(upgrades).toEqual([true]);
    await waitFor(() => sessionsEnded() === 1, 3_000, "the session to end");
  });

  test("a plain request to an upgrade route gets 426", async () => {
    const { server } = await mixedServer();
    const r = await get(`${server.url}/ws`);
    expect(r.status).toBe(426);
  });

  test("bad handshakes on an upgrade route get 400 and 403", async () => {
    const { port } = await mixedServer();
    const badKey = await rawExchange(
      port,
      handshakeRequest(port, { "Sec-WebSocket-Key": "short" }, "GET", "/ws"),
    );
    expect(badKey.status).toBe(400);
    const foreign = await rawExchange(
      port,
      handshakeRequest(port, { Origin: "https://evil.example" }, "GET", "/ws"),
    );
    expect(foreign.status).toBe(403);
    const ok = await rawExchange(port, handshakeRequest(port, {}, "GET", "/ws"));
    expect(ok.status).toBe(101);
  });

  test("a handler that throws closes with 1011", async () => {
    const { port } = await mixedServer();
    const ws = await open(`ws://127.0.0.1:${port}/boom`, { proxy: null });
    res.defer(() => ws.terminate());
    await ws.send("go");
    const { error } = await settle(within(ws.receive(), 3_000, "the close"));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1011);
  });
});

describe("the HTTP server's shutdown and upgraded sessions", () => {
  test("close() says 1001 to a session started by upgrade() and waits for it", async () => {
    const { server } = await mixedServer();
    const ws = await open(`ws://127.0.0.1:${server.port}/ws`, { proxy: null });
    res.defer(() => ws.terminate());
    await ws.send("ping");
    expect(await ws.receive()).toBe("ping");
    await within(server.close(), 5_000, "the graceful close");
    await within(ws.closed(), 5_000, "the session to close");
    expect(ws.closeCode).toBe(1001);
  });

  test("forceClose() drops a session started by upgrade() at once", async () => {
    const { server } = await mixedServer();
    const ws = await open(`ws://127.0.0.1:${server.port}/ws`, { proxy: null });
    res.defer(() => ws.terminate());
    await within(server.forceClose(), 5_000, "the forced close");
    await within(ws.closed(), 5_000, "the session to drop");
    expect(ws.closeCode).toBe(1006);
  });
});

describe("options", () => {
  test("query is merged into the handshake target", async () => {
    let seen = "";
    const server = await serve(
      (req: Request) =>
        upgrade(req, async (ws) => {
          seen = ws.target;
        }),
      { host: "127.0.0.1", port: 0 },
    );
    res.defer(() => server.forceClose());
    await open(`ws://127.0.0.1:${server.port}/q?a=1`, async () => {}, { proxy: null, query: { b: "x y" } });
    expect(seen).toBe("/q?a=1&b=x%20y");
  });

  test("close() with an invalid code rejects (it does not throw)", async () => {
    const { server } = await mixedServer();
    const ws = await open(`ws://127.0.0.1:${server.port}/ws`, { proxy: null });
    res.defer(() => ws.terminate());
    const p = ws.close(1005);
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toThrow(/invalid close code/);
    await ws.close();
  });
});

describe("cookies", () => {
  test("are merged into the handshake's Cookie header, the given ones winning", async () => {
    let cookie: string | null = null;
    const server = await serve(
      (req: Request) => {
        cookie = req.headers.get("cookie");
        return upgrade(req, async () => {});
      },
      { host: "127.0.0.1", port: 0 },
    );
    res.defer(() => server.forceClose());
    await open(`ws://127.0.0.1:${server.port}/c`, async () => {}, {
      proxy: null,
      headers: { Cookie: "a=1; b=2" },
      cookies: { b: "3", c: "4" },
    });
    expect(cookie).toBe("a=1; b=3; c=4");
  });

  test("an invalid cookie is an ArgumentError before anything is sent", async () => {
    await expect(open("ws://127.0.0.1:1/", { proxy: null, cookies: { a: "x;y" } })).rejects.toThrow(
      /invalid cookie/,
    );
    await expect(open("ws://127.0.0.1:1/", { proxy: null, cookies: { "a b": "x" } })).rejects.toThrow(
      /invalid cookie/,
    );
  });
});
