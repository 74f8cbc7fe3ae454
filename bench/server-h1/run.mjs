// server-h1: hyperwire `serve` vs raw node:http vs fastify, HTTP/1.1 keep-alive, loopback.
// Each server runs in its own child process (servers.mjs); the load comes from wrk (Debian's package,
// installed if missing), or autocannon when wrk cannot be had. Contenders alternate within each cell.
// Env: SECONDS (per measurement, default 2), ROUNDS (default 3), ROUTES (e.g. "/tiny,/json"),
// CONNS (e.g. "64,512") to run a subset.
import { execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { alternate, ensureDebian, have, printTable } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
const SECONDS = Number(process.env.SECONDS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const ROUTES = (process.env.ROUTES ?? "/tiny,/json,/large").split(",");
const CONNECTIONS = (process.env.CONNS ?? "1,64,512").split(",").map(Number);
const KINDS = ["hyperwire", "node", "fastify"];
const run = promisify(execFile);

const useWrk = ensureDebian({ wrk: "wrk" });
if (!useWrk && !have("autocannon")) {
  console.error("server-h1: neither wrk (apt-get install wrk) nor autocannon is available");
  process.exit(1);
}

async function startServer(kind) {
  const child = spawn(process.execPath, [`${here}servers.mjs`, kind], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return { child, port: Number(line) };
}

async function load(port, route, connections) {
  const url = `http://127.0.0.1:${port}${route}`;
  if (useWrk) {
    const { stdout } = await run("wrk", ["-t1", `-c${connections}`, `-d${SECONDS}s`, url], {
      maxBuffer: 1 << 20,
    });
    const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
    if (!m) throw new Error(`could not parse wrk output:\n${stdout}`);
    return Number(m[1]);
  }
  const { stdout } = await run("autocannon", ["-j", "-c", String(connections), "-d", String(SECONDS), url], {
    maxBuffer: 16 << 20,
  });
  return JSON.parse(stdout).requests.average;
}

const servers = {};
for (const kind of KINDS) servers[kind] = await startServer(kind);
try {
  // Warm every server up (JIT, connection setup) before measuring.
  for (const kind of KINDS) for (const route of ROUTES) await load(servers[kind].port, route, 64);
  const rows = [];
  for (const route of ROUTES) {
    for (const c of CONNECTIONS) {
      const contenders = Object.fromEntries(KINDS.map((k) => [k, () => load(servers[k].port, route, c)]));
      rows.push({ name: `${route} c=${c}`, results: await alternate(contenders, ROUNDS) });
    }
  }
  const version = useWrk ? /wrk (\S+)/.exec(spawnSync("wrk", ["-v"], { encoding: "utf8" }).stdout)?.[1] : "";
  const tool = useWrk ? `wrk ${version ?? ""}`.trim() : "autocannon";
  printTable(
    `server-h1: requests/s, ${tool} -t1, ${SECONDS} s × ${ROUNDS} rounds (median), Node ${process.version}`,
    "req/s",
    rows,
  );
} finally {
  for (const { child } of Object.values(servers)) child.kill("SIGTERM");
}
