// h2-server: hyperwire `serve` over HTTP/2 vs a raw node:http2 core-API server (`stream` event)
// doing the same work, h2c (prior knowledge) and TLS (ALPN h2), loopback. Load from h2load (Debian's
// nghttp2-client, installed if missing) with 64 connections × 10 streams. Each server runs in its own
// child process (this file with `serve <kind> <h2c|tls>`), pinned to the last core, h2load to core 0,
// as in server-h1; within each cell the contenders alternate round by round and the table shows
// each one's median.
// Each measurement is a fixed number of requests (h2load -n), not a duration: h2load 1.52's timed
// mode (-D) now and then never finishes over TLS with 100 KB responses in flight when time is up
// (against node's own server as well), which would hang the run.
// Env: BENCH_SCALE (request counts × this, default 1: 300 000 for /tiny, 60 000 for /large, 1.2–4 s
// each here; a third of that ran h2c /large in under half a second, and its rounds spread 36k–50k
// req/s for either server), BENCH_ROUNDS (default 5), BENCH_ROUTES ("/tiny,/large"), BENCH_MODES
// ("h2c,tls"), BENCH_PIN=none to not pin, BENCH_FRESH=1 to run every measurement on a fresh server
// process (warmed up first): as in server-h1, one process of the same server now and then runs 10–25 %
// slower than the next for its whole life, which a long-lived process turns into a column of low cells.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import os from "node:os";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { alternate, cpuSeconds, ensureDebian, LAST_CPU, PIN, pinned, printTable } from "../lib.mjs";

const TINY = Buffer.from("hello world");
const LARGE = Buffer.alloc(100 * 1024, "x");
const BACKLOG = 4096;
const fixtures = new URL("../../fixtures/tls/", import.meta.url);

async function startServer(kind, mode) {
  const secure = mode === "tls";
  const tlsOptions = secure
    ? {
        key: readFileSync(new URL("server.key", fixtures)),
        cert: readFileSync(new URL("server.pem", fixtures)),
      }
    : undefined;
  if (kind === "hyperwire") {
    const { serve } = await import("@hyperwire/server");
    const { Response } = await import("@hyperwire/core");
    const server = await serve(
      (req) => {
        switch (req.target) {
          case "/tiny":
            return new Response(200, { headers: { "Content-Type": "text/plain" }, body: TINY });
          case "/large":
            return new Response(200, {
              headers: { "Content-Type": "application/octet-stream" },
              body: LARGE,
            });
          default:
            return new Response(404);
        }
      },
      { host: "127.0.0.1", port: 0, backlog: BACKLOG, tls: tlsOptions, maxConcurrentStreams: 100 },
    );
    return server.port;
  }
  // The same work on node's core API: the stream event, respond, end.
  const settings = { maxConcurrentStreams: 100 };
  const server = secure
    ? http2.createSecureServer({ ...tlsOptions, settings })
    : http2.createServer({ settings });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    switch (headers[":path"]) {
      case "/tiny":
        stream.respond({ ":status": 200, "content-type": "text/plain", "content-length": TINY.length });
        stream.end(TINY);
        return;
      case "/large":
        stream.respond({
          ":status": 200,
          "content-type": "application/octet-stream",
          "content-length": LARGE.length,
        });
        stream.end(LARGE);
        return;
      default:
        stream.respond({ ":status": 404, "content-length": 0 }, { endStream: true });
    }
  });
  await new Promise((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: BACKLOG }, resolve));
  return server.address().port;
}

if (process.argv[2] === "serve") {
  const port = await startServer(process.argv[3], process.argv[4]);
  console.log(port);
} else {
  await main();
}

async function main() {
  const here = new URL(import.meta.url).pathname;
  const SCALE = Number(process.env.BENCH_SCALE ?? 1);
  const REQUESTS = { "/tiny": 300_000, "/large": 60_000 };
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
  const ROUTES = (process.env.BENCH_ROUTES ?? "/tiny,/large").split(",");
  const MODES = (process.env.BENCH_MODES ?? "h2c,tls").split(",");
  const KINDS = ["hyperwire", "node"];
  const FRESH = process.env.BENCH_FRESH === "1";
  const run = promisify(execFile);
  if (!ensureDebian({ h2load: "nghttp2-client" })) {
    console.error("h2-server: h2load is missing (apt-get install nghttp2-client)");
    process.exit(1);
  }

  async function spawnServer(kind, mode) {
    const [cmd, args] = pinned(LAST_CPU, process.execPath, [here, "serve", kind, mode]);
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    const [line] = await once(createInterface({ input: child.stdout }), "line");
    return { kind, mode, child, port: Number(line) };
  }

  async function load(server, route, scale = SCALE) {
    const scheme = server.mode === "tls" ? "https" : "http";
    const url = `${scheme}://127.0.0.1:${server.port}${route}`;
    const cpuBefore = cpuSeconds(server.child.pid);
    const n = String(Math.max(640, Math.round(REQUESTS[route] * scale)));
    const { stdout } = await run(...pinned(0, "h2load", ["-t1", "-c64", "-m10", "-n", n, url]), {
      maxBuffer: 1 << 20,
      timeout: 120_000,
    });
    const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout);
    const counts =
      /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
        stdout,
      );
    const ok = /status codes: (\d+) 2xx/.exec(stdout);
    if (!rate || !counts) throw new Error(`could not parse h2load output:\n${stdout}`);
    if (counts[4] !== "0" || counts[5] !== "0" || !ok || ok[1] !== counts[3] || counts[2] !== n) {
      throw new Error(`h2load saw failures on ${url}:\n${stdout}`);
    }
    if (!/Application protocol: h2/.test(stdout))
      throw new Error(`h2load did not speak h2 to ${url}:\n${stdout}`);
    return {
      perSecond: Number(rate[1]),
      perCpuSecond: Number(counts[2]) / (cpuSeconds(server.child.pid) - cpuBefore),
    };
  }

  const servers = [];
  try {
    const rows = [];
    const cpuRows = [];
    for (const mode of MODES) {
      const byKind = {};
      for (const kind of KINDS) {
        byKind[kind] = await spawnServer(kind, mode);
        servers.push(byKind[kind]);
      }
      for (const kind of KINDS) for (const route of ROUTES) await load(byKind[kind], route, 0.3);
      for (const route of ROUTES) {
        const perCpu = Object.fromEntries(KINDS.map((k) => [k, []]));
        const contenders = Object.fromEntries(
          KINDS.map((k) => [
            k,
            async () => {
              if (FRESH) {
                // A new process for this measurement, warmed up first.
                const old = byKind[k];
                old.child.kill("SIGTERM");
                await once(old.child, "exit");
                byKind[k] = await spawnServer(k, mode);
                servers[servers.indexOf(old)] = byKind[k];
                await load(byKind[k], route, 0.3);
              }
              const r = await load(byKind[k], route);
              perCpu[k].push(r.perCpuSecond);
              return r.perSecond;
            },
          ]),
        );
        const name = `${mode} ${route} c=64 m=10`;
        rows.push({ name, results: await alternate(contenders, ROUNDS) });
        cpuRows.push({ name, results: perCpu });
      }
    }
    printTable(
      `h2-server: requests/s, h2load -t1 -c64 -m10 -n (${REQUESTS["/tiny"] / 1000}k /tiny, ${REQUESTS["/large"] / 1000}k /large) × ${SCALE}, ${ROUNDS} rounds (median)${FRESH ? ", a fresh server process per measurement" : ""}, Node ${process.version}, ` +
        `${os.cpus().length} cores, ${PIN ? `servers on core ${LAST_CPU}, load on core 0` : "unpinned"}`,
      "req/s",
      rows,
    );
    // Every round's figure, in the order measured: the spread behind each median.
    const rounds = rows.map(
      (row) =>
        `${row.name}: ${KINDS.map((k) => `${k} ${row.results[k].map((x) => Math.round(x)).join(" ")}`).join("; ")}`,
    );
    console.log(`Each round (req/s): ${rounds.join(" | ")}\n`);
    if (cpuRows.every((row) => Object.values(row.results).flat().every(Number.isFinite))) {
      printTable(
        "h2-server: requests per second of server CPU time (same runs, median)",
        "req/CPU-s",
        cpuRows,
      );
    }
  } finally {
    for (const { child } of servers) child.kill("SIGTERM");
  }
}
