// The client policies of issue 8 over HTTP/2: redirects, retries, decompression and cookies run
// above the exchange, so they must behave on an h2 stream exactly as on HTTP/1.1.
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { CookieJar, type RetryEvent, Transport } from "../src/index.js";
import { H2Server, type StreamHandler } from "./h2-servers.js";
import { Resources } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

async function h2(handler: StreamHandler): Promise<H2Server> {
  return res.add(await H2Server.start(handler, { tls: true }));
}

function client(options: { cookieJar?: CookieJar } = {}) {
  return res.client({ transport: res.add(new Transport({ tls: { ca: fixtures.ca } })), ...options });
}

describe("client policies over HTTP/2", () => {
  test("a 307 redirect keeps the method and body; a 303 becomes GET; all on one session", async () => {
    const server = await h2((stream, headers) => {
      const path = headers[":path"];
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (path === "/307") stream.respond({ ":status": 307, location: "/target" });
        else if (path === "/303") stream.respond({ ":status": 303, location: "/target" });
        else stream.respond({ ":status": 200 });
        stream.end(`${headers[":method"]} ${path} ${Buffer.concat(chunks).toString()}`);
      });
    });
    const c = client();
    const kept = await c.post(`${server.url}/307`, { body: "payload" });
    expect(kept.version).toBe("2");
    expect(kept.text()).toBe("POST /target payload");
    expect(kept.redirectCount).toBe(1);
    expect(kept.previous?.status).toBe(307);
    const changed = await c.post(`${server.url}/303`, { body: "payload" });
    expect(changed.text()).toBe("GET /target ");
    expect(server.sessions).toBe(1);
  });

  test("a 503 is retried on the same session, with a retry event", async () => {
    let calls = 0;
    const server = await h2((stream) => {
      calls++;
      stream.respond({ ":status": calls === 1 ? 503 : 200 });
      stream.end(calls === 1 ? "busy" : "fine");
    });
    const events: RetryEvent[] = [];
    const r = await client().get(`${server.url}/`, {
      trace: (e) => {
        if (e.type === "retry") events.push(e);
      },
    });
    expect(r.text()).toBe("fine");
    expect(calls).toBe(2);
    expect(events).toHaveLength(1);
    expect(server.sessions).toBe(1);
  });

  test("a gzip body is decoded, and Accept-Encoding was offered", async () => {
    let offered: string | undefined;
    const server = await h2((stream, headers) => {
      offered = headers["accept-encoding"] as string | undefined;
      stream.respond({ ":status": 200, "content-encoding": "gzip" });
      stream.end(gzipSync("hello over h2, compressed"));
    });
    const r = await client().get(`${server.url}/`);
    expect(r.version).toBe("2");
    expect(r.text()).toBe("hello over h2, compressed");
    expect(offered).toBe("gzip, deflate, br");
  });

  test("a cookie set on one h2 response is sent on the next", async () => {
    const seen: (string | undefined)[] = [];
    const server = await h2((stream, headers) => {
      seen.push(headers.cookie as string | undefined);
      stream.respond({ ":status": 200, "set-cookie": "session=abc; Path=/; Secure" });
      stream.end("ok");
    });
    const jar = new CookieJar();
    const c = client({ cookieJar: jar });
    await c.get(`${server.url}/login`);
    await c.get(`${server.url}/me`);
    expect(seen).toEqual([undefined, "session=abc"]);
  });
});
