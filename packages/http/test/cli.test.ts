import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Response } from "@hyperwire/core";
import { type Server, serve } from "@hyperwire/server";
import { type WebSocketServer, listen as wsListen } from "@hyperwire/websockets";
import { afterEach, beforeAll, describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { main } from "../src/cli/main.js";
import { progressLine } from "../src/cli/progress.js";
import type { CommandIO } from "../src/cli/request.js";
import { runServe } from "../src/cli/serve.js";

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, "..", "dist", "cli", "main.js");

/** Captured standard streams for one run of the command. */
class Captured implements CommandIO {
  readonly stdin = new PassThrough();
  readonly stdout = Object.assign(new PassThrough(), { isTTY: false });
  readonly stderr = Object.assign(new PassThrough(), { isTTY: false, columns: 100 });
  #out: Buffer[] = [];
  #err: Buffer[] = [];

  constructor() {
    this.stdout.on("data", (c: Buffer) => this.#out.push(c));
    this.stderr.on("data", (c: Buffer) => this.#err.push(c));
  }
  get out(): string {
    return Buffer.concat(this.#out).toString("utf8");
  }
  get err(): string {
    return Buffer.concat(this.#err).toString("utf8");
  }
}

const servers: (Server | WebSocketServer)[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.forceClose();
});

/** A server that echoes what it got as JSON: method, headers, body. */
async function echoServer(options: { tls?: boolean } = {}): Promise<Server> {
  const server = await serve(
    async (req) => {
      if (req.target === "/missing") return new Response(404, { body: "no such thing" });
      if (req.target === "/broken") return new Response(503, { body: "down" });
      if (req.target === "/big") return new Response(200, { body: new Uint8Array(300_000).fill(97) });
      const body = JSON.stringify({
        method: req.method,
        accept: req.headers.get("accept"),
        contentType: req.headers.get("content-type"),
        custom: req.headers.get("x-custom"),
        body: req.text(),
      });
      return new Response(200, { body, headers: { "Content-Type": "application/json" } });
    },
    {
      host: "127.0.0.1",
      port: 0,
      ...(options.tls ? { tls: { key: fixtures.key, cert: fixtures.cert } } : {}),
    },
  );
  servers.push(server);
  return server;
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = new Captured();
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

describe("hyperwire requests", () => {
  test("get prints the body and exits 0", async () => {
    const s = await echoServer();
    const { code, out } = await run("get", `${s.url}/x`, "-H", "X-Custom: yes");
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ method: "GET", custom: "yes" });
  });

  test("a bare URL is a GET", async () => {
    const s = await echoServer();
    const { code, out } = await run(`${s.url}/x`);
    expect(code).toBe(0);
    expect(JSON.parse(out).method).toBe("GET");
  });

  test("post -d sends the body; --json checks it, sets the types and pretty-prints", async () => {
    const s = await echoServer();
    const { code, out } = await run("post", `${s.url}/x`, "--json", "-d", '{"a":1}');
    expect(code).toBe(0);
    expect(out).toContain('\n  "method": "POST"');
    expect(JSON.parse(out)).toMatchObject({
      accept: "application/json",
      contentType: "application/json",
      body: '{"a":1}',
    });
    const bad = await run("post", `${s.url}/x`, "--json", "-d", "{nope");
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("not valid JSON");
  });

  test("-d @file sends a file with its length", async () => {
    const s = await echoServer();
    const dir = mkdtempSync(join(tmpdir(), "hw-cli-"));
    try {
      writeFileSync(join(dir, "body.txt"), "from a file");
      const { code, out } = await run("put", `${s.url}/x`, "-d", `@${join(dir, "body.txt")}`);
      expect(code).toBe(0);
      expect(JSON.parse(out)).toMatchObject({ method: "PUT", body: "from a file" });
      const missing = await run("put", `${s.url}/x`, "-d", `@${join(dir, "nope.txt")}`);
      expect(missing.code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("-i prints the status line and headers first", async () => {
    const s = await echoServer();
    const { out } = await run("get", `${s.url}/missing`, "-i");
    expect(out).toMatch(/^HTTP\/1\.1 404 Not Found\n/);
    expect(out).toMatch(/\n\nno such thing$/);
  });

  test("head prints nothing of a body", async () => {
    const s = await echoServer();
    const { code, out } = await run("head", `${s.url}/x`);
    expect(code).toBe(0);
    expect(out).toBe("");
  });

  test("4xx and 5xx statuses exit 4 and 5, with the body printed", async () => {
    const s = await echoServer();
    const notFound = await run("get", `${s.url}/missing`);
    expect(notFound.code).toBe(4);
    expect(notFound.out).toBe("no such thing");
    expect((await run("get", `${s.url}/broken`)).code).toBe(5);
  });

  test("-o writes the body to a file", async () => {
    const s = await echoServer();
    const dir = mkdtempSync(join(tmpdir(), "hw-cli-"));
    try {
      const file = join(dir, "out.bin");
      const { code, out } = await run("get", `${s.url}/big`, "-o", file);
      expect(code).toBe(0);
      expect(out).toBe("");
      expect(readFileSync(file).length).toBe(300_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a terminal stderr gets a progress bar when the body goes to a pipe", async () => {
    const s = await echoServer();
    const io = new Captured();
    io.stderr.isTTY = true;
    const code = await main(["get", `${s.url}/big`], io);
    expect(code).toBe(0);
    expect(io.out.length).toBe(300_000);
    expect(io.err).toContain("100%");
    expect(io.err).toContain("293.0 KiB / 293.0 KiB");
  });

  test("TLS: an untrusted server is exit 35; --cacert and --insecure get through", async () => {
    const s = await echoServer({ tls: true });
    const url = `https://127.0.0.1:${s.port}/x`;
    const refused = await run("get", url);
    expect(refused.code).toBe(35);
    expect(refused.err).toContain("TLSHandshakeError");
    const dir = mkdtempSync(join(tmpdir(), "hw-cli-"));
    try {
      writeFileSync(join(dir, "ca.pem"), fixtures.ca);
      expect((await run("get", url, "--cacert", join(dir, "ca.pem"))).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await run("get", url, "-k")).code).toBe(0);
  });

  test("a refused connection exits 7, a timeout 28", async () => {
    const s = await echoServer();
    const port = s.port;
    await s.close();
    const refused = await run("get", `http://127.0.0.1:${port}/`);
    expect(refused.code).toBe(7);
    expect(refused.err).toContain("ConnectError");
    const slow = await serve(() => new Promise<Response>(() => {}), { host: "127.0.0.1", port: 0 });
    servers.push(slow);
    const timedOut = await run("get", `${slow.url}/`, "--timeout", "100");
    expect(timedOut.code).toBe(28);
  });

  test("-v traces the exchange on stderr", async () => {
    const s = await echoServer();
    const io = new Captured();
    const stderrWrite = process.stderr.write.bind(process.stderr);
    const seen: string[] = [];
    // The client's verbose lines go to the process's stderr.
    process.stderr.write = ((chunk: string | Uint8Array) => {
      seen.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(await main(["get", `${s.url}/x`, "-v"], io)).toBe(0);
    } finally {
      process.stderr.write = stderrWrite;
    }
    expect(seen.join("")).toContain("request attempt 1 GET");
  });

  test("usage errors exit 2 and say what is wrong", async () => {
    const cases: [string[], string][] = [
      [["get"], "exactly one URL"],
      [["get", "http://a", "http://b"], "exactly one URL"],
      [["get", "http://127.0.0.1:1/", "-H", "no-colon"], "Name: value"],
      [["get", "http://127.0.0.1:1/", "--timeout", "soon"], "whole number"],
      [["get", "http://127.0.0.1:1/", "--http1", "--http2"], "exclude each other"],
      [["get", "http://127.0.0.1:1/", "--bogus"], "bogus"],
      [["frobnicate"], "unknown command"],
      [[], "usage: hyperwire"],
    ];
    for (const [argv, text] of cases) {
      const { code, out, err } = await run(...argv);
      expect(code, argv.join(" ")).toBe(2);
      expect(out + err, argv.join(" ")).toContain(text);
    }
  });

  test("--help of each command prints its options and exits 0", async () => {
    for (const [argv, text] of [
      [["--help"], "commands:"],
      [["get", "--help"], "--header"],
      [["serve", "--help"], "--tls-cert"],
      [["ws", "--help"], "--subprotocol"],
      [["help", "ws"], "--subprotocol"],
    ] as const) {
      const { code, out } = await run(...argv);
      expect(code).toBe(0);
      expect(out).toContain(text);
    }
  });
});

describe("hyperwire serve", () => {
  test("serves a directory until stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hw-serve-"));
    try {
      writeFileSync(join(dir, "hello.txt"), "hello from disk");
      const io = new Captured();
      let stop!: () => void;
      const stopped = new Promise<void>((r) => {
        stop = r;
      });
      const running = runServe([dir, "--port", "0"], io, stopped);
      const url = await new Promise<string>((resolve) => {
        io.stderr.on("data", () => {
          const m = /on (http:\/\/\S+)/.exec(io.err);
          if (m) resolve(m[1]!);
        });
      });
      const got = await run("get", `${url}/hello.txt`);
      expect(got.out).toBe("hello from disk");
      expect((await run("get", `${url}/nope.txt`)).code).toBe(4);
      stop();
      expect(await running).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refuses a missing directory and half a TLS pair", async () => {
    expect((await run("serve", "/no/such/dir")).code).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), "hw-serve-"));
    try {
      const half = await run("serve", dir, "--tls-cert", "x.pem");
      expect(half.code).toBe(2);
      expect(half.err).toContain("go together");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("hyperwire ws", () => {
  test("sends typed lines and prints what comes back; end of input closes normally", async () => {
    const server = await wsListen(
      async (ws) => {
        for await (const msg of ws) await ws.send(String(msg).toUpperCase());
      },
      { host: "127.0.0.1", port: 0 },
    );
    servers.push(server);
    const io = new Captured();
    const done = main(["ws", `${server.url}/`], io);
    io.stdin.write("hello\n");
    io.stdin.write("world\n");
    const seen = new Promise<void>((resolve) => {
      io.stdout.on("data", () => {
        if (io.out.includes("WORLD")) resolve();
      });
    });
    await seen;
    io.stdin.end();
    expect(await done).toBe(0);
    expect(io.out).toBe("HELLO\nWORLD\n");
  });

  test("an abnormal close code exits 1", async () => {
    const server = await wsListen(
      async (ws) => {
        await ws.close(4001, "go away");
      },
      { host: "127.0.0.1", port: 0 },
    );
    servers.push(server);
    const io = new Captured();
    const code = await main(["ws", `${server.url}/`], io);
    expect(code).toBe(1);
    expect(io.err).toContain("4001");
  });
});

describe("the installed command", () => {
  beforeAll(async () => {
    // The bin is dist/cli/main.js: the package's build made it.
    readFileSync(bin);
  });

  test("runs as a program, with the exit code of the status", async () => {
    const s = await echoServer();
    const exec = promisify(execFile);
    const ok = await exec(process.execPath, [bin, "get", `${s.url}/x`]);
    expect(JSON.parse(ok.stdout).method).toBe("GET");
    const failed = await exec(process.execPath, [bin, "get", `${s.url}/missing`]).catch((e: unknown) => e);
    expect((failed as { code: number }).code).toBe(4);
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node")).toBe(true);
  });
});

describe("progressLine", () => {
  test("shows the fraction, the sizes and the rate", () => {
    expect(progressLine(512, 1024, 1000)).toBe(
      `[${"#".repeat(15)}${"-".repeat(15)}]  50% 512 B / 1.0 KiB 512 B/s`,
    );
    expect(progressLine(3 * 1024 * 1024, undefined, 1000)).toBe("3.0 MiB 3.0 MiB/s");
    expect(progressLine(2048, 1024, 0)).toContain("100%");
  });
});
