// h2-client: 100 concurrent GETs multiplexed on ONE HTTP/2 connection, hyperwire `Client` vs raw
// node:http2 `session.request` vs undici `Client` with `allowH2`, against a raw node:http2 server
// (core stream API) in its own process, over h2c (prior knowledge) and TLS (ALPN h2). Every
// measurement is a fresh process running one client only (load.mjs). Contenders alternate within each
// cell; the tables show medians and ratios of requests per second and per second of client CPU time.
// Goal: hyperwire ≥ 0.95× raw. Env: SECONDS (default 3), WARMUP (1.5), ROUNDS (9), CELLS
// ("h2c,tls"), CLIENTS ("hyperwire,raw,undici"), CONCURRENCY (100), BENCH_PIN ("none" to not pin).
// Pinning (when taskset is there), as the server benchmarks do: the server on the last core, the
// client on core 0. Unpinned, the scheduler sometimes puts both on one core: the same contender then
// read 32k–42k req/s from one process to the next, a spread larger than the gap being measured.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { alternate, LAST_CPU, PIN, pinned, printTable } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
// 9 rounds of 3 s after 1.5 s of warm-up (until session 13: 5 rounds of 2 s after 0.5 s). One
// process's rate differs from the next one's by up to ±5 % for the same client (which functions V8
// optimises when, and where), more than the gap being measured: the median needs the rounds. A short
// warm-up also measures the optimising compiler at work on the contender with the most code to
// compile (0.88× after 0.5 s; see bench/README.md).
const SECONDS = Number(process.env.SECONDS ?? 3);
const WARMUP = Number(process.env.WARMUP ?? 1.5);
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 100);
const CELLS = (process.env.CELLS ?? "h2c,tls").split(",");
const CLIENTS = (process.env.CLIENTS ?? "hyperwire,raw,undici").split(",");
const CELL_NAMES = { h2c: "GET 11 B, h2c", tls: "GET 11 B, TLS" };
const run = promisify(execFile);

async function startServer(mode) {
  const [cmd, args] = pinned(LAST_CPU, process.execPath, [`${here}server.mjs`, mode]);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return { child, origin: `${mode === "tls" ? "https" : "http"}://127.0.0.1:${Number(line)}` };
}

/** One measurement in a fresh process: req/s; records req per CPU-second. A client that fails counts 0. */
async function measure(origin, client, extra) {
  try {
    const [cmd, args] = pinned(0, process.execPath, [`${here}load.mjs`, client, origin, SECONDS, WARMUP]);
    const { stdout } = await run(cmd, args, { env: { ...process.env, CONCURRENCY: String(CONCURRENCY) } });
    const { rps, cpuRps } = JSON.parse(stdout);
    extra?.cpuRps.push(cpuRps);
    return rps;
  } catch (err) {
    extra?.failures.push(
      String(err.stderr ?? err.message)
        .split("\n")
        .find((l) => l.trim()) ?? "failed",
    );
    extra?.cpuRps.push(0);
    return 0;
  }
}

function undiciVersion() {
  const require = createRequire(import.meta.url);
  return JSON.parse(readFileSync(require.resolve("undici/package.json"), "utf8")).version;
}

const rows = [];
const cpuRows = [];
const notes = [];
for (const cell of CELLS) {
  const { child, origin } = await startServer(cell);
  try {
    // Warm the server up (JIT) before anything is counted.
    await measure(origin, "raw");
    const extra = Object.fromEntries(CLIENTS.map((c) => [c, { cpuRps: [], failures: [] }]));
    // undici does not speak h2c (prior knowledge): its cells stay empty there ("—").
    const running = cell === "h2c" ? CLIENTS.filter((c) => c !== "undici") : CLIENTS;
    const contenders = Object.fromEntries(running.map((c) => [c, () => measure(origin, c, extra[c])]));
    const results = {
      ...Object.fromEntries(CLIENTS.map((c) => [c, []])),
      ...(await alternate(contenders, ROUNDS)),
    };
    const label = CELL_NAMES[cell] ?? cell;
    rows.push({ name: label, results });
    cpuRows.push({ name: label, results: Object.fromEntries(CLIENTS.map((c) => [c, extra[c].cpuRps])) });
    const range = (xs) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    notes.push(`${label}: ${running.map((c) => `${c} ${range(results[c])}`).join(", ")}`);
    for (const c of CLIENTS) {
      if (extra[c].failures.length > 0) notes.push(`${label}: ${c} failed: ${extra[c].failures[0]}`);
    }
  } finally {
    child.kill("SIGTERM");
  }
}
const setup =
  `${CONCURRENCY} in flight on one connection, ${SECONDS} s after ${WARMUP} s warm-up × ${ROUNDS} rounds (median), ` +
  `Node ${process.version}, undici ${undiciVersion()}, ${os.cpus().length} cores, ` +
  `${PIN ? `server on core ${LAST_CPU}, client on core 0` : "unpinned"}`;
printTable(`h2-client: requests/s, ${setup}`, "req/s", rows);
printTable("h2-client: requests per second of client CPU time (user + system)", "req/CPU-s", cpuRows);
console.log(`Lowest–highest req/s and failures: ${notes.join("; ")}\n`);
