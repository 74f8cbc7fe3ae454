// client-h1: hyperwire `Client` vs undici `Pool.request` vs node:http keep-alive Agent vs `fetch`,
// HTTP/1.1 over loopback, against one raw node:http server in its own process (server.mjs).
// Every measurement is a fresh child process running one client only (load.mjs): CONCURRENCY
// (default 50) requests in flight for WARMUP s uncounted then SECONDS s counted, bodies read in
// full. Contenders alternate within each cell; the tables show medians and ratios: requests per
// second, and requests per second of the client process's own CPU time (less skewed by other load).
// Env: SECONDS (default 2), WARMUP (default 0.5), ROUNDS (default 5), CELLS (e.g. "tiny,post"),
// CLIENTS (e.g. "hyperwire,undici"), CONCURRENCY (default 50).
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import os from "node:os";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { alternate, median, printTable } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
const SECONDS = Number(process.env.SECONDS ?? 2);
const WARMUP = Number(process.env.WARMUP ?? 0.5);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 50);
const CELL_NAMES = { tiny: "GET 11 B", large: "GET 100 KB", post: "POST 1 KB" };
const CELLS = (process.env.CELLS ?? "tiny,large,post").split(",");
const CLIENTS = (process.env.CLIENTS ?? "hyperwire,undici,node:http,fetch").split(",");
const run = promisify(execFile);

/** The raw node:http server, in its own process. */
async function startServer() {
  const child = spawn(process.execPath, [`${here}server.mjs`], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return { child, origin: `http://127.0.0.1:${Number(line)}` };
}

/** Connections the server accepted so far (this request's own one included). */
function acceptedConnections(origin) {
  return new Promise((resolve, reject) => {
    http
      .get(`${origin}/conns`, { agent: false }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (s) => {
          text += s;
        });
        res.on("end", () => resolve(Number(text)));
      })
      .on("error", reject);
  });
}

/**
 * One measurement in a fresh process. Returns req/s; records req per CPU-second and the number of
 * connections the client opened in `extra`.
 */
async function measure(origin, client, cell, seconds, warmup, extra) {
  const before = await acceptedConnections(origin);
  const { stdout } = await run(process.execPath, [`${here}load.mjs`, client, origin, cell, seconds, warmup], {
    env: { ...process.env, CONCURRENCY: String(CONCURRENCY) },
  });
  const after = await acceptedConnections(origin);
  const { rps, cpuRps } = JSON.parse(stdout);
  extra?.cpuRps.push(cpuRps);
  extra?.conns.push(after - before - 1);
  return rps;
}

function undiciVersion() {
  const require = createRequire(import.meta.url);
  return JSON.parse(readFileSync(require.resolve("undici/package.json"), "utf8")).version;
}

const loadAverage = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
const loadBefore = loadAverage();
const { child, origin } = await startServer();
try {
  // Warm the server up (JIT) on every cell before anything is counted.
  for (const cell of CELLS) await measure(origin, "undici", cell, 1, 0);
  const rows = [];
  const cpuRows = [];
  const spread = [];
  const conns = [];
  for (const cell of CELLS) {
    const label = CELL_NAMES[cell] ?? cell;
    const extra = Object.fromEntries(CLIENTS.map((c) => [c, { cpuRps: [], conns: [] }]));
    const contenders = Object.fromEntries(
      CLIENTS.map((c) => [c, () => measure(origin, c, cell, SECONDS, WARMUP, extra[c])]),
    );
    const results = await alternate(contenders, ROUNDS);
    rows.push({ name: label, results });
    cpuRows.push({ name: label, results: Object.fromEntries(CLIENTS.map((c) => [c, extra[c].cpuRps])) });
    const range = (xs) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    spread.push(`${label}: ${CLIENTS.map((c) => `${c} ${range(results[c])}`).join(", ")}`);
    conns.push(`${label}: ${CLIENTS.map((c) => `${c} ${median(extra[c].conns)}`).join(", ")}`);
  }
  const setup =
    `${CONCURRENCY} in flight, ${SECONDS} s after ${WARMUP} s warm-up × ${ROUNDS} rounds (median), ` +
    `Node ${process.version}, undici ${undiciVersion()}, ${os.cpus().length} cores`;
  printTable(`client-h1: requests/s, ${setup}`, "req/s", rows);
  printTable("client-h1: requests per second of client CPU time (user + system)", "req/CPU-s", cpuRows);
  console.log(`Lowest–highest req/s: ${spread.join("; ")}\n`);
  console.log(`Connections opened per measurement (median): ${conns.join("; ")}\n`);
  // Other work on the machine skews these numbers: show how busy it was.
  console.log(`Load average before: ${loadBefore}, after: ${loadAverage()}\n`);
} finally {
  child.kill("SIGTERM");
}
