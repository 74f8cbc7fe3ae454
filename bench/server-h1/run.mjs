// server-h1: hyperwire `serve` vs raw node:http vs fastify, HTTP/1.1 keep-alive, loopback.
// Each server runs in its own child process (servers.mjs); the load comes from wrk (Debian's package,
// installed if missing), or autocannon when wrk cannot be had. Within each cell (route × connections)
// the contenders alternate, round by round, and the table shows each one's median.
// Loopback numbers on a small shared machine swing by ±20% from one measurement to the next, so it
// takes several short rounds rather than a few long ones (but not under 2 s: with 512 connections a
// 1 s run is mostly ramp-up); a full run (9 cells × 3 servers × 5 rounds × 2 s, plus warm-up) takes
// under 5 minutes.
// Besides requests/s it reports requests per second of the server process's own CPU time (user +
// system, from /proc), which other load on the machine skews much less.
// Pinning (when taskset is there): every server on the last core, wrk on core 0. Unpinned, the
// scheduler puts wrk and the server on one core or on two at random, and a wake-up across cores on
// this VM costs tens of µs: the same server then measures 20–30 % apart from one process to the next.
// BENCH_FRESH=1 runs every measurement on a fresh server process (checked and warmed up first):
// on this VM one process of the same server now and then runs 10–25 % slower than the next for its
// whole life, which a long-lived process per server turns into a whole column of low cells.
// Env: BENCH_SECONDS (per measurement, default 2), BENCH_ROUNDS (default 5), BENCH_ROUTES (e.g.
// "/tiny,/json") and BENCH_CONNS (e.g. "64,512") to run a subset, BENCH_PIN=none to not pin,
// BENCH_FRESH=1.
import { execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import os from "node:os";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { alternate, cpuSeconds, ensureDebian, have, LAST_CPU, PIN, pinned, printTable } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUTES = (process.env.BENCH_ROUTES ?? "/tiny,/json,/large").split(",");
const CONNECTIONS = (process.env.BENCH_CONNS ?? "1,64,512").split(",").map(Number);
const KINDS = ["hyperwire", "node", "fastify"];
const FRESH = process.env.BENCH_FRESH === "1";
/** What each route must answer, checked on every server before measuring. */
const EXPECTED_BYTES = { "/tiny": 11, "/json": [900, 1300], "/large": 100 * 1024 };
const run = promisify(execFile);

const useWrk = ensureDebian({ wrk: "wrk" });
if (!useWrk && !have("autocannon")) {
  console.error("server-h1: neither wrk (apt-get install wrk) nor autocannon is available");
  process.exit(1);
}

async function startServer(kind) {
  const [cmd, args] = pinned(LAST_CPU, process.execPath, [`${here}servers.mjs`, kind]);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return { kind, child, port: Number(line) };
}

/** One GET, to check that a server answers a route with 200 and a body of the right size. */
function fetchOnce(port, route) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: route, agent: false }, (res) => {
        let size = 0;
        res.on("data", (c) => {
          size += c.length;
        });
        res.on("end", () => resolve({ status: res.statusCode, size }));
      })
      .on("error", reject);
  });
}

async function check(kind, port, route) {
  const { status, size } = await fetchOnce(port, route);
  const want = EXPECTED_BYTES[route];
  const fits = Array.isArray(want) ? size >= want[0] && size <= want[1] : size === want;
  if (status !== 200 || !fits) {
    throw new Error(`${kind} answered ${route} with ${status} and ${size} bytes; expected 200 and ${want}`);
  }
}

/** Loads one server; returns requests/s and requests per second of the server's CPU time. */
async function load(server, route, connections, seconds = SECONDS) {
  const url = `http://127.0.0.1:${server.port}${route}`;
  const cpuBefore = cpuSeconds(server.child.pid);
  let perSecond;
  let requests;
  if (useWrk) {
    const { stdout } = await run(...pinned(0, "wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, url]), {
      maxBuffer: 1 << 20,
    });
    const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
    const total = /(\d+) requests in/.exec(stdout);
    if (!m || !total) throw new Error(`could not parse wrk output:\n${stdout}`);
    // A server that fails requests must not look fast.
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? "0";
    const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    if (non2xx !== "0" || errors?.slice(1, 4).some((n) => n !== "0")) {
      throw new Error(`wrk saw errors on ${url}:\n${stdout}`);
    }
    // A response slower than wrk's 2 s timeout is a latency outlier, not an error: counted and shown.
    timeouts[server.kind] += Number(errors?.[4] ?? 0);
    perSecond = Number(m[1]);
    requests = Number(total[1]);
  } else {
    const { stdout } = await run(
      ...pinned(0, "autocannon", ["-j", "-c", String(connections), "-d", String(seconds), url]),
      { maxBuffer: 16 << 20 },
    );
    const result = JSON.parse(stdout);
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`autocannon saw errors on ${url}`);
    perSecond = result.requests.average;
    requests = result.requests.total;
  }
  return { perSecond, perCpuSecond: requests / (cpuSeconds(server.child.pid) - cpuBefore) };
}

const loadAtStart = os.loadavg()[0];
const timeouts = Object.fromEntries(KINDS.map((k) => [k, 0]));
const servers = {};
for (const kind of KINDS) servers[kind] = await startServer(kind);
try {
  for (const kind of KINDS) for (const route of ROUTES) await check(kind, servers[kind].port, route);
  // Warm every server up (JIT, connection setup) before measuring.
  for (const kind of KINDS) for (const route of ROUTES) await load(servers[kind], route, 64, 1);
  const rows = [];
  const cpuRows = [];
  for (const route of ROUTES) {
    for (const c of CONNECTIONS) {
      const perCpu = Object.fromEntries(KINDS.map((k) => [k, []]));
      const contenders = Object.fromEntries(
        KINDS.map((k) => [
          k,
          async () => {
            let server = servers[k];
            if (FRESH) {
              // A new process for this measurement: checked, warmed up, then measured.
              server.child.kill("SIGTERM");
              await once(server.child, "exit");
              server = await startServer(k);
              servers[k] = server;
              await check(k, server.port, route);
              await load(server, route, c, 1);
            }
            const r = await load(server, route, c);
            perCpu[k].push(r.perCpuSecond);
            return r.perSecond;
          },
        ]),
      );
      const name = `${route} c=${c}`;
      rows.push({ name, results: await alternate(contenders, ROUNDS) });
      cpuRows.push({ name, results: perCpu });
    }
  }
  const version = useWrk ? /wrk (\S+)/.exec(spawnSync("wrk", ["-v"], { encoding: "utf8" }).stdout)?.[1] : "";
  const tool = useWrk ? `wrk ${version ?? ""}`.trim() : "autocannon";
  printTable(
    `server-h1: requests/s, ${tool} -t1, ${SECONDS} s × ${ROUNDS} rounds (median)${FRESH ? ", a fresh server process per measurement" : ""}, Node ${process.version}, ` +
      `${os.cpus().length} cores, ${PIN ? `servers on core ${LAST_CPU}, load on core 0` : "unpinned"}`,
    "req/s",
    rows,
  );
  if (cpuRows.every((row) => Object.values(row.results).flat().every(Number.isFinite))) {
    printTable("server-h1: requests per second of server CPU time (same runs, median)", "req/CPU-s", cpuRows);
  }
  if (Object.values(timeouts).some((n) => n > 0)) {
    console.log(
      `responses slower than 2 s (wrk timeouts): ${KINDS.map((k) => `${k} ${timeouts[k]}`).join(", ")}`,
    );
  }
  // Other work on the machine shows up as noise; say how busy it was.
  console.log(
    `load average (1 min): ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end`,
  );
} finally {
  for (const { child } of Object.values(servers)) child.kill("SIGTERM");
}
