// files: hyperwire `fileServer` vs a raw node:http server doing `fs.stat` + `fs.createReadStream(file)
// .pipe(res)`, HTTP/1.1 keep-alive over loopback, 64 connections. Cells: a 1 MB file (the goal:
// ≥ 0.9× raw) and a 1 KB file (per-request overhead: realpath, stat, open, fstat, close).
// Each server runs in its own child process (servers.mjs) pinned to the last core, wrk (Debian's
// package, installed if missing) on core 0; the contenders alternate round by round and the table
// shows medians, then requests per second of each server's own CPU time (less skewed by other load).
// A full run (2 cells × 2 servers × 5 rounds × 3 s, plus warm-up) takes about 70 s.
// Env: BENCH_SECONDS (per measurement, default 3), BENCH_ROUNDS (default 5), BENCH_CONNS (default 64),
// BENCH_PIN=none to not pin.
import { execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { alternate, cpuSeconds, ensureDebian, LAST_CPU, PIN, pinned, printTable } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNS ?? 64);
const KINDS = ["hyperwire", "node"];
const FILES = { "/1mb.bin": 1 << 20, "/1kb.bin": 1024 };
const run = promisify(execFile);

if (!ensureDebian({ wrk: "wrk" })) {
  console.error("files: wrk is needed (apt-get install wrk)");
  process.exit(1);
}

async function startServer(kind, root) {
  const [cmd, args] = pinned(LAST_CPU, process.execPath, [`${here}servers.mjs`, kind, root]);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return { kind, child, port: Number(line) };
}

/** One GET: the server must answer 200 with the file's exact bytes. */
function check(server, route, want) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port: server.port, path: route, agent: false }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          if (res.statusCode === 200 && body.equals(want)) resolve();
          else
            reject(
              new Error(`${server.kind} answered ${route} with ${res.statusCode}, ${body.length} bytes`),
            );
        });
      })
      .on("error", reject);
  });
}

/** Loads one server; returns requests/s and requests per second of the server's CPU time. */
async function load(server, route, seconds = SECONDS) {
  const url = `http://127.0.0.1:${server.port}${route}`;
  const cpuBefore = cpuSeconds(server.child.pid);
  const { stdout } = await run(...pinned(0, "wrk", ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, url]), {
    maxBuffer: 1 << 20,
  });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const total = /(\d+) requests in/.exec(stdout);
  if (!m || !total) throw new Error(`could not parse wrk output:\n${stdout}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? "0";
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  if (non2xx !== "0" || errors?.slice(1, 4).some((n) => n !== "0")) {
    throw new Error(`wrk saw errors on ${url}:\n${stdout}`);
  }
  return {
    perSecond: Number(m[1]),
    perCpuSecond: Number(total[1]) / (cpuSeconds(server.child.pid) - cpuBefore),
  };
}

const root = mkdtempSync(path.join(os.tmpdir(), "hw-bench-files-"));
const contents = {};
for (const [route, size] of Object.entries(FILES)) {
  contents[route] = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + (i >> 10)) & 0xff));
  writeFileSync(path.join(root, route.slice(1)), contents[route]);
}
const loadAtStart = os.loadavg()[0];
const servers = {};
try {
  for (const kind of KINDS) servers[kind] = await startServer(kind, root);
  for (const kind of KINDS)
    for (const route of Object.keys(FILES)) await check(servers[kind], route, contents[route]);
  for (const kind of KINDS) for (const route of Object.keys(FILES)) await load(servers[kind], route, 1);
  const rows = [];
  const cpuRows = [];
  for (const route of Object.keys(FILES)) {
    const perCpu = Object.fromEntries(KINDS.map((k) => [k, []]));
    const contenders = Object.fromEntries(
      KINDS.map((k) => [
        k,
        async () => {
          const r = await load(servers[k], route);
          perCpu[k].push(r.perCpuSecond);
          return r.perSecond;
        },
      ]),
    );
    const name = `GET ${route.slice(1)} c=${CONNECTIONS}`;
    rows.push({ name, results: await alternate(contenders, ROUNDS) });
    cpuRows.push({ name, results: perCpu });
  }
  const version = /wrk (\S+)/.exec(spawnSync("wrk", ["-v"], { encoding: "utf8" }).stdout)?.[1] ?? "";
  printTable(
    `files: requests/s, wrk ${version} -t1, ${SECONDS} s × ${ROUNDS} rounds (median), Node ${process.version}, ` +
      `${os.cpus().length} cores, ${PIN ? `servers on core ${LAST_CPU}, load on core 0` : "unpinned"}`,
    "req/s",
    rows,
  );
  if (cpuRows.every((row) => Object.values(row.results).flat().every(Number.isFinite))) {
    printTable("files: requests per second of server CPU time (same runs, median)", "req/CPU-s", cpuRows);
  }
  for (const row of rows) {
    const spread = KINDS.map(
      (k) => `${k} ${Math.round(Math.min(...row.results[k]))}–${Math.round(Math.max(...row.results[k]))}`,
    );
    console.log(`${row.name} lowest–highest: ${spread.join(", ")}`);
  }
  console.log(
    `load average (1 min): ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end`,
  );
} finally {
  for (const { child } of Object.values(servers)) child.kill("SIGTERM");
  rmSync(root, { recursive: true, force: true });
}
