import { Response, TLSHandshakeError } from "@hyperwire/core";
import { type Server, serve } from "@hyperwire/server";
import { afterEach, describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { Transport } from "../src/index.js";
import { Resources, rejectionOf } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

async function httpsServer(trusted = true): Promise<Server> {
  const server = await serve((req) => new Response(200, { body: `secure ${req.target}` }), {
    host: "127.0.0.1",
    port: 0,
    tls: trusted
      ? { cert: fixtures.cert, key: fixtures.key }
      : { cert: fixtures.untrustedCert, key: fixtures.untrustedKey },
  });
  res.add({ close: () => server.forceClose() });
  return server;
}

describe("https", () => {
  test("GET with the test CA on the Transport", async () => {
    const server = await httpsServer();
    const transport = res.add(new Transport({ tls: { ca: fixtures.ca } }));
    const client = res.client({ transport });
    const url = `https://127.0.0.1:${server.port}/a`;
    const r = await client.get(url);
    expect(r.status).toBe(200);
    expect(r.text()).toBe("secure /a");
    expect(r.url).toBe(url);
    // Pooled like plain HTTP, under the https origin key.
    expect(transport.idleConnectionCount(`https://127.0.0.1:${server.port}`)).toBe(1);
    expect((await client.get(`https://127.0.0.1:${server.port}/b`)).text()).toBe("secure /b");
    expect(transport.idleConnectionCount()).toBe(1);
  });

  test("GET by host name (SNI and name check against localhost)", async () => {
    const server = await httpsServer();
    const client = res.client({ transport: res.add(new Transport({ tls: { ca: fixtures.ca } })) });
    expect((await client.get(`https://localhost:${server.port}/n`)).text()).toBe("secure /n");
  });

  test("GET with the test CA per call", async () => {
    const server = await httpsServer();
    const client = res.client();
    const tls = { ca: fixtures.ca };
    const url = `https://127.0.0.1:${server.port}/c`;
    expect((await client.get(url, { tls })).text()).toBe("secure /c");
    // Without it, the default trust store does not know the test CA.
    expect(await rejectionOf(client.get(url))).toBeInstanceOf(TLSHandshakeError);
    // A pooled connection made with the call's TLS options is not lent to a call without them.
    expect(await rejectionOf(client.get(url))).toBeInstanceOf(TLSHandshakeError);
    expect((await client.get(url, { tls })).text()).toBe("secure /c");
  });

  test("rejectUnauthorized is on by default: an untrusted certificate is a TLSHandshakeError", async () => {
    const server = await httpsServer(false);
    const client = res.client({ transport: res.add(new Transport({ tls: { ca: fixtures.ca } })) });
    const err = await rejectionOf(client.get(`https://127.0.0.1:${server.port}/`));
    expect(err).toBeInstanceOf(TLSHandshakeError);
    expect((err as TLSHandshakeError).code).toBe("HW_TLS");
    expect((err as Error).cause).toBeDefined();
  });

  test("rejectUnauthorized: false accepts it (the caller's explicit choice)", async () => {
    const server = await httpsServer(false);
    const client = res.client();
    const r = await client.get(`https://127.0.0.1:${server.port}/x`, { tls: { rejectUnauthorized: false } });
    expect(r.text()).toBe("secure /x");
  });

  test("an https URL to a plain HTTP server is a TLSHandshakeError", async () => {
    const server = await res.serve(() => new Response(200, { body: "plain" }));
    const client = res.client();
    const err = await rejectionOf(client.get(`https://127.0.0.1:${server.port}/`));
    expect(err).toBeInstanceOf(TLSHandshakeError);
  });
});
