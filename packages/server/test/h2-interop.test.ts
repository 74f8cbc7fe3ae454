// Real HTTP/2 peers against the server: curl (TLS + ALPN, and h2c prior knowledge) and nghttp
// (Debian packages curl and nghttp2-client).
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type Request, Response } from "@hyperwire/core";
import { afterEach, describe, expect, it } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";
import { serve } from "../src/index.js";
import { Servers } from "./helpers.js";

const run = promisify(execFile);
const servers = new Servers();
afterEach(() => servers.closeAll());
const CA = fileURLToPath(new URL("../../../fixtures/tls/ca.pem", import.meta.url));

const handler = (req: Request) =>
  new Response(200, {
    headers: { "Content-Type": "text/plain" },
    body: `${req.method} over ${req.version}: ${(req.body as Uint8Array).byteLength}`,
  });

describe("interop", () => {
  it("curl --http2 over TLS negotiates h2 by ALPN", async () => {
    const server = servers.add(await serve(handler, { port: 0, tls: { key: tls.key, cert: tls.cert } }));
    const { stdout } = await run("curl", [
      "-sS",
      "--http2",
      "--cacert",
      CA,
      "-w",
      " %{http_version}",
      "-d",
      "abc",
      `https://localhost:${server.port}/`,
    ]);
    expect(stdout).toBe("POST over 2: 3 2");
  });

  it("curl --http2-prior-knowledge speaks h2c", async () => {
    const server = servers.add(await serve(handler, { port: 0 }));
    const { stdout } = await run("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "-w",
      " %{http_version}",
      `${server.url}/`,
    ]);
    expect(stdout).toBe("GET over 2: 0 2");
  });

  it("nghttp fetches over h2c and over TLS, several streams on one connection", async () => {
    const plain = servers.add(await serve(handler, { port: 0 }));
    const a = await run("nghttp", ["-n", "-s", `${plain.url}/a`, `${plain.url}/b`, `${plain.url}/c`]);
    expect(a.stdout).toMatch(/200/);
    expect((a.stdout.match(/\/[abc]\n?/g) ?? []).length).toBeGreaterThanOrEqual(3);
    const secure = servers.add(await serve(handler, { port: 0, tls: { key: tls.key, cert: tls.cert } }));
    const b = await run("nghttp", [`https://localhost:${secure.port}/x`]);
    expect(b.stdout).toBe("GET over 2: 0");
  });
});
