// websockets: hyperwire (`listen` + `open` of @hyperwire/websockets) vs raw `ws` (WebSocketServer +
// WebSocket), client and server of the same kind, each in its own fresh process per measurement
// (server.mjs, load.mjs), over loopback. Scenarios after HTTP.jl's: echo 16 B round trips on one
// connection and on 8 in parallel (msgs/s), send 4 KB and 1 MiB client → server (MB/s counted by the
// server), push 16 B server → client (msgs/s), latency p50/p99 of the one-connection echo (µs); each
// with ws's bufferutil addon and without it (WS_NO_BUFFER_UTIL=1, for both contenders). The two
// contenders alternate within each cell; tables show medians and ratios, then the same per second of
// CPU time of client + server (less skewed by other load). Memory: server RSS growth (after GC) for
// IDLE idle connections opened by IDLE_CLIENTS client processes, IDLE_BATCH handshakes at a time each.
// Pinning: by default the server and the client of a speed measurement share one core (taskset). On
// this VM a wake-up across cores costs ~50 µs of latency and as much accounted CPU, and the scheduler
// places the two processes either way at random, so unpinned results are bimodal (16 B echo 9k–32k
// msgs/s for the same contender). One shared core measures the software's own cost and is stable.
// Env: SECONDS (default 3), WARMUP (2), ROUNDS (5), SCENARIOS (echo1,echo8,send4k,send1m,push),
// BUFFERUTIL (on,off), PIN (same: one core, the last; split: server on core 0, client on core 1;
// none), IDLE (10000; 0 skips the memory part), IDLE_CLIENTS (4), IDLE_BATCH (100), MEM_ROUNDS (2),
// HEAP_MB (64: the live heap every speed-measurement process keeps, as an application's data would;
// see ballast in ../lib.mjs for why a bare process measures where V8's heuristics fall instead).
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { alternate, have, median, printTable } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
// A measurement is 3 s of a process's steady state, after 2 s of warm-up. Until session 13 it was 1 s
// after 0.5 s: a window that still held the young process's optimising compiler and first
// collections, which run on the one core the two processes share. Its p99 latency read 1.05–1.15×
// from one run to the next; in the longer window, 1.01–1.06× (bench/README.md, session 13).
const SECONDS = Number(process.env.SECONDS ?? 3);
const WARMUP = Number(process.env.WARMUP ?? 2);
// 5 rounds (until session 13: 3): the 1 MiB send moves ±15 % from one process to the next (ws read
// 1,631–2,224 MB/s within one run), and a median of 3 followed two lucky processes (0.80×, then 1.08×
// over 7 rounds).
const ROUNDS = Number(process.env.ROUNDS ?? 5);
// SCENARIOS="" runs only the memory part.
const SCENARIOS = (process.env.SCENARIOS ?? "echo1,echo8,send4k,send1m,push").split(",").filter(Boolean);
const MODES = (process.env.BUFFERUTIL ?? "on,off").split(",");
const IDLE = Number(process.env.IDLE ?? 10_000);
const IDLE_CLIENTS = Number(process.env.IDLE_CLIENTS ?? 4);
const IDLE_BATCH = Number(process.env.IDLE_BATCH ?? 100);
const MEM_ROUNDS = Number(process.env.MEM_ROUNDS ?? 2);
// Live heap each speed-measurement process keeps, as an application would (see ballast in ../lib.mjs).
// 64 MB since session 13: with 32 our client of the 1 MiB send landed in V8's band of back-to-back
// mark-compacts (17 in one measurement, against 1 for ws's), with 16 ws's client did; with 48 or 64
// neither.
const HEAP_MB = Number(process.env.HEAP_MB ?? 64);
const PIN = have("taskset") ? (process.env.PIN ?? "same") : "none";
const LAST_CPU = os.cpus().length - 1;
const CPUS = { same: [LAST_CPU, LAST_CPU], split: [0, Math.min(1, LAST_CPU)] }[PIN];
const IMPLS = ["hyperwire", "ws"];
const NAMES = {
  echo1: "echo 16 B, 1 conn",
  echo8: "echo 16 B, 8 conns",
  send4k: "send 4 KB",
  send1m: "send 1 MiB",
  push: "push 16 B",
};
const UNITS = { echo1: "msgs", echo8: "msgs", push: "msgs", send4k: "MB", send1m: "MB" };
const run = promisify(execFile);
const started = performance.now();

/** The environment of both processes: ws with its bufferutil addon ("on") or without ("off"). */
function envFor(mode) {
  const env = { ...process.env };
  delete env.WS_NO_BUFFER_UTIL;
  if (mode === "off") env.WS_NO_BUFFER_UTIL = "1";
  env.BENCH_HEAP_MB = String(HEAP_MB);
  return env;
}

/** Node with the open-files limit raised to the hard limit (10,000 sockets need it), maybe pinned. */
function nodeArgs(args, cpu) {
  const pin = cpu === undefined ? "" : `taskset -c ${cpu} `;
  return ["-c", `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${pin}"$0" "$@"`, process.execPath, ...args];
}

/** A server in its own process; `ask(line)` writes a line to it and reads its answer line. */
async function startServer(impl, env, { gc = false, cpu } = {}) {
  const args = [...(gc ? ["--expose-gc"] : []), `${here}server.mjs`, impl];
  const child = spawn("bash", nodeArgs(args, cpu), { env, stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`server ${impl} did not start`);
  const { port } = JSON.parse(first.value);
  return {
    url: `ws://127.0.0.1:${port}`,
    async ask(line) {
      child.stdin.write(`${line}\n`);
      return JSON.parse((await lines.next()).value);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, "exit");
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

/** One measurement: a fresh server and a fresh client process. Returns the rate; records the rest. */
async function measure(impl, scenario, mode, extra) {
  const env = envFor(mode);
  const server = await startServer(impl, env, { cpu: CPUS?.[0] });
  try {
    const args = [`${here}load.mjs`, impl, scenario, server.url, String(SECONDS), String(WARMUP)];
    const [cmd, argv] =
      CPUS === undefined
        ? [process.execPath, args]
        : ["taskset", ["-c", String(CPUS[1]), process.execPath, ...args]];
    const { stdout } = await run(cmd, argv, { env, timeout: (SECONDS + WARMUP) * 1000 + 60_000 });
    const r = JSON.parse(stdout);
    extra.cpuRate.push(r.cpuRate);
    if (r.p50 !== undefined) {
      extra.p50.push(r.p50);
      extra.p99.push(r.p99);
    }
    return r.rate;
  } finally {
    await server.stop();
  }
}

/** Server (and clients') memory growth for IDLE idle connections. */
async function memory(impl, extra) {
  // No ballast here: the growth per connection is measured from a bare process, as before.
  const env = { ...envFor("on"), BENCH_HEAP_MB: "0" };
  const server = await startServer(impl, env, { gc: true });
  const clients = [];
  try {
    const base = await server.ask("mem");
    const per = Math.ceil(IDLE / IDLE_CLIENTS);
    for (let i = 0; i < IDLE_CLIENTS; i++) {
      const conns = Math.min(per, IDLE - i * per);
      const child = spawn("bash", nodeArgs(["--expose-gc", `${here}load.mjs`, impl, "idle", server.url]), {
        env: { ...env, IDLE_CONNS: String(conns), IDLE_BATCH: String(IDLE_BATCH) },
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = once(child, "exit").then(([code]) => {
        throw new Error(`idle client ${impl} exited with ${code}`);
      });
      exited.catch(() => {});
      const line = once(createInterface({ input: child.stdout }), "line").then(([l]) => JSON.parse(l));
      clients.push({ child, report: Promise.race([line, exited]) });
    }
    const reports = await Promise.all(clients.map((c) => c.report));
    let now = await server.ask("mem");
    for (let i = 0; i < 50 && now.sessions < IDLE; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      now = await server.ask("mem");
    }
    if (now.sessions !== IDLE) throw new Error(`${impl}: ${now.sessions} sessions, expected ${IDLE}`);
    extra.heap.push((now.heapUsed - base.heapUsed) / 2 ** 20);
    extra.client.push(reports.reduce((s, r) => s + r.rssAfter - r.rssBefore, 0) / 2 ** 20);
    extra.open.push(Math.max(...reports.map((r) => r.seconds)));
    return (now.rss - base.rss) / 2 ** 20;
  } finally {
    for (const { child } of clients) child.kill("SIGKILL");
    await Promise.all(
      clients.map(({ child }) =>
        child.exitCode === null && child.signalCode === null ? once(child, "exit") : 0,
      ),
    );
    await server.stop();
  }
}

function versions() {
  const require = createRequire(import.meta.url);
  const wsVersion = JSON.parse(readFileSync(require.resolve("ws/package.json"), "utf8")).version;
  // ws loads bufferutil from its own folder: check that it resolves and loads there.
  const fromWs = createRequire(require.resolve("ws"));
  let bufferutil = "not loadable";
  try {
    fromWs("bufferutil");
    bufferutil = JSON.parse(readFileSync(fromWs.resolve("bufferutil/package.json"), "utf8")).version;
  } catch {
    // Reported below: the "on" rows then run without it.
  }
  return { wsVersion, bufferutil };
}

const loadAverage = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
const loadBefore = loadAverage();
const { wsVersion, bufferutil } = versions();
const modeName = (mode) => (mode === "off" ? "no bufferutil" : "bufferutil");
const label = (scenario, mode) => `${NAMES[scenario] ?? scenario}, ${modeName(mode)}`;

const cells = [];
for (const scenario of SCENARIOS) {
  for (const mode of MODES) {
    const extra = Object.fromEntries(IMPLS.map((i) => [i, { cpuRate: [], p50: [], p99: [] }]));
    const contenders = Object.fromEntries(IMPLS.map((i) => [i, () => measure(i, scenario, mode, extra[i])]));
    cells.push({ scenario, mode, results: await alternate(contenders, ROUNDS), extra });
  }
}

const setup =
  `${SECONDS} s after ${WARMUP} s warm-up × ${ROUNDS} rounds (median), Node ${process.version}, ` +
  `ws ${wsVersion}, bufferutil ${bufferutil}, ${os.cpus().length} cores, ` +
  (CPUS === undefined ? "unpinned" : `server on core ${CPUS[0]}, client on core ${CPUS[1]}`);
const pick = (f) => cells.filter(f);
const msgs = pick((c) => UNITS[c.scenario] === "msgs");
const mb = pick((c) => UNITS[c.scenario] === "MB");
const row = (c, results, suffix = "") => ({ name: `${label(c.scenario, c.mode)}${suffix}`, results });
const byImpl = (c, key) => Object.fromEntries(IMPLS.map((i) => [i, c.extra[i][key]]));
if (msgs.length)
  printTable(
    `websockets: messages/s, ${setup}`,
    "msgs/s",
    msgs.map((c) => row(c, c.results)),
  );
if (mb.length)
  printTable(
    "websockets: MB/s (10^6 B) counted by the server",
    "MB/s",
    mb.map((c) => row(c, c.results)),
  );
const echo1 = pick((c) => c.scenario === "echo1");
if (echo1.length) {
  printTable(
    "websockets: round-trip latency of the 1-connection 16 B echo, µs (lower is better: goal ≤ 1.05×)",
    "µs",
    echo1.flatMap((c) => [row(c, byImpl(c, "p50"), ", p50"), row(c, byImpl(c, "p99"), ", p99")]),
  );
}
if (cells.length) {
  printTable(
    "websockets: per second of CPU time of client + server (msgs or MB per CPU-s)",
    "/CPU-s",
    cells.map((c) => row(c, byImpl(c, "cpuRate"), ` (${UNITS[c.scenario]})`)),
  );
  const range = (xs) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
  const spread = cells.map(
    (c) => `${label(c.scenario, c.mode)}: ${IMPLS.map((i) => `${i} ${range(c.results[i])}`).join(", ")}`,
  );
  console.log(`Lowest–highest: ${spread.join("; ")}\n`);
}

if (IDLE > 0) {
  const extra = Object.fromEntries(IMPLS.map((i) => [i, { heap: [], client: [], open: [] }]));
  const contenders = Object.fromEntries(IMPLS.map((i) => [i, () => memory(i, extra[i])]));
  const results = await alternate(contenders, MEM_ROUNDS);
  const n = IDLE.toLocaleString("en-US");
  printTable(
    `websockets: memory for ${n} idle connections, MiB after GC (lower is better: goal ≤ 1.1×), ` +
      `${IDLE_CLIENTS} client processes, ${MEM_ROUNDS} rounds (median)`,
    "MiB",
    [
      { name: "server RSS growth", results },
      { name: "server heap used growth", results: Object.fromEntries(IMPLS.map((i) => [i, extra[i].heap])) },
      {
        name: `client RSS growth (sum of ${IDLE_CLIENTS})`,
        results: Object.fromEntries(IMPLS.map((i) => [i, extra[i].client])),
      },
    ],
  );
  const perConn = IMPLS.map((i) => `${i} ${((median(results[i]) * 1024) / IDLE).toFixed(1)} KiB`).join(", ");
  const open = IMPLS.map((i) => `${i} ${median(extra[i].open).toFixed(1)} s`).join(", ");
  console.log(`Server RSS per connection: ${perConn}. Time to open them (median): ${open}.\n`);
}

// Other work on the machine skews these numbers: show how busy it was.
console.log(
  `Load average before: ${loadBefore}, after: ${loadAverage()}; took ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
);

function fmt(x) {
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(2);
}
