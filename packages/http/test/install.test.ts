import { type ExecFileSyncOptions, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";

// What a user gets: the packages packed as they would be published, installed from their tarballs
// into projects outside the workspace, and used from plain JavaScript (ESM `import` and CJS
// `require`). One project has only @hyperwire/client (and what it depends on); the other the umbrella.

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SLOW = 240_000;

let tmp = "";
const tarballs = new Map<string, string>();

function run(cmd: string, args: string[], options: ExecFileSyncOptions = {}): string {
  return execFileSync(cmd, args, { encoding: "utf8", timeout: SLOW, stdio: "pipe", ...options }).toString();
}

/** Makes an empty npm project and installs the named packages' tarballs into it. */
function project(name: string, packages: string[]): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, version: "1.0.0", private: true }));
  writeFileSync(join(dir, "tls.json"), JSON.stringify({ key: tls.key, cert: tls.cert, ca: tls.ca }));
  const files = packages.map((p) => tarballs.get(p)!);
  run("npm", ["install", "--no-audit", "--no-fund", "--no-package-lock", ...files], { cwd: dir });
  return dir;
}

/** Runs a script file in a project; returns its stdout. */
function script(dir: string, file: string, source: string): string {
  writeFileSync(join(dir, file), source);
  return run(process.execPath, ["--no-warnings", file], { cwd: dir, timeout: 60_000 });
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "hyperwire-install-"));
  const packDir = join(tmp, "pack");
  mkdirSync(packDir);
  for (const p of ["core", "h2", "client", "server", "websockets", "http"]) {
    const before = new Set(readdirSync(packDir));
    run("pnpm", ["pack", "--pack-destination", packDir], { cwd: join(root, "packages", p) });
    const made = readdirSync(packDir).filter((f) => !before.has(f));
    expect(made).toHaveLength(1);
    tarballs.set(p, join(packDir, made[0]!));
  }
}, SLOW);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A raw node:http2 server in the script itself: h2 by ALPN (with HTTP/1.1 allowed) on TLS. */
const SERVER = `
  const tlsFiles = JSON.parse(fs.readFileSync("tls.json", "utf8"));
  const server = http2.createSecureServer({ key: tlsFiles.key, cert: tlsFiles.cert, allowHTTP1: true }, (req, res) => {
    res.end("over " + req.httpVersion);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = "https://localhost:" + server.address().port + "/";
`;

describe("@hyperwire/client installed alone", () => {
  let dir = "";
  beforeAll(() => {
    dir = project("client-alone", ["core", "h2", "client"]);
  }, SLOW);

  test(
    "requests over HTTP/1.1 and HTTP/2 from an ES module",
    () => {
      const out = script(
        dir,
        "esm.mjs",
        `import fs from "node:fs"; import http2 from "node:http2";
        import { Client, Transport } from "@hyperwire/client";
        ${SERVER}
        const tls = { ca: tlsFiles.ca };
        const auto = new Client({ transport: new Transport({ tls }) });
        const h1 = new Client({ transport: new Transport({ tls, preferHttp2: false }) });
        const a = await auto.get(url);
        const b = await h1.get(url);
        console.log(JSON.stringify([a.version, a.text(), b.version, b.text()]));
        // A Client given a transport leaves it open for others: close both.
        await auto.close(); await h1.close(); await auto.transport.close(); await h1.transport.close();
        server.close();`,
      );
      expect(JSON.parse(out)).toEqual(["2", "over 2.0", "1.1", "over 1.1"]);
    },
    SLOW,
  );

  test(
    "requests over HTTP/1.1 and HTTP/2 from CommonJS require()",
    () => {
      const out = script(
        dir,
        "cjs.cjs",
        `const fs = require("node:fs"); const http2 = require("node:http2");
        const { Client, Transport, HTTP2Settings } = require("@hyperwire/client");
        (async () => {
          ${SERVER}
          const tls = { ca: tlsFiles.ca };
          const auto = new Client({ transport: new Transport({ tls }), http2Settings: new HTTP2Settings() });
          const a = await auto.get(url);
          const b = await auto.get(url, { protocol: "h1" });
          console.log(JSON.stringify([a.version, b.version]));
          await auto.close(); await auto.transport.close(); server.close();
        })().catch((e) => { console.error(e); process.exit(1); });`,
      );
      expect(JSON.parse(out)).toEqual(["2", "1.1"]);
    },
    SLOW,
  );
});

describe("the umbrella @hyperwire/http installed", () => {
  let dir = "";
  beforeAll(() => {
    dir = project("umbrella", ["core", "h2", "client", "server", "websockets", "http"]);
  }, SLOW);

  const body = `
    const server = await HTTP.serve((req) => new HTTP.Response(200, { body: "v" + req.version }), { port: 0 });
    const base = "http://127.0.0.1:" + server.port + "/";
    const h1 = await HTTP.get(base);
    const h2 = await HTTP.get(base, { protocol: "h2" });
    const ws = await HTTP.WebSockets.listen(async (s) => { for await (const m of s) await s.send(String(m) + "!"); }, { port: 0 });
    const echoed = await HTTP.WebSockets.open("ws://" + HTTP.WebSockets.serverAddr(ws) + "/", async (s) => { await s.send("hi"); return s.receive(); });
    await HTTP.WebSockets.forceClose(ws);
    await server.close();
    await HTTP.closeIdleConnections();
    console.log(JSON.stringify([h1.text(), h2.text(), echoed]));
  `;

  test(
    "serves and requests over HTTP/1.1, h2c and WebSockets from an ES module",
    () => {
      const out = script(dir, "esm.mjs", `import * as HTTP from "@hyperwire/http";\n${body}`);
      expect(JSON.parse(out)).toEqual(["v1.1", "v2", "hi!"]);
    },
    SLOW,
  );

  test(
    "the same from CommonJS require()",
    () => {
      const out = script(
        dir,
        "cjs.cjs",
        `const HTTP = require("@hyperwire/http");
        (async () => {${body}})().catch((e) => { console.error(e); process.exit(1); });`,
      );
      expect(JSON.parse(out)).toEqual(["v1.1", "v2", "hi!"]);
    },
    SLOW,
  );

  test(
    "installs the hyperwire command",
    () => {
      const out = run(join(dir, "node_modules", ".bin", "hyperwire"), ["--help"], { cwd: dir });
      expect(out).toContain("usage: hyperwire <command>");
    },
    SLOW,
  );
});
