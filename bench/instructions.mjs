// Instructions per request of a server, counted by valgrind's callgrind, hyperwire's and the raw node
// one under the same load. A figure this VM's noise does not move: the same server and load give the
// same count within about half a percent, where req/s moves by ±10 % from one process to the next.
// It is not a speed. It counts neither system calls, nor cache misses, nor waiting, and the garbage
// collector runs in a world slowed down about fifty times. Read it next to the req/s benchmarks: a gap
// in req/s with no gap here lies outside the JavaScript the two servers run.
//
//   node bench/instructions.mjs [h1|h2c|tls] [route] [connections] [streams per connection]
//
// Defaults: h2c /tiny 64 10 (h1: 64 connections, one request at a time each). The servers are
// bench/server-h1/servers.mjs (h1) and bench/h2-server/run.mjs (h2c, tls), the load h2load (`--h1` for
// HTTP/1.1). Each server gets WARMUP requests uninstrumented, then REQUESTS counted. Env: REQUESTS
// (50000), WARMUP (30000), KINDS ("hyperwire,node"), ROUNDS (1; the kinds alternate),
// CALLGRIND_OUT (a file for callgrind_annotate; default none), CALLGRIND_FLAGS (more valgrind
// options, e.g. "--cache-sim=yes"), NODE_FLAGS (options for the server's node, e.g.
// "--perf-basic-prof" to name JIT code through /tmp/perf-PID.map).
// The counted window must hold several of V8's old-generation collections: with 10,000 requests, a
// mark-compact falls inside it or not from one process to the next, and the same server then counts
// anywhere from 98k to 118k instructions per h2c request.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { ensureDebian } from "./lib.mjs";

const [mode = "h2c", route = "/tiny", connsArg, streamsArg] = process.argv.slice(2);
if (!["h1", "h2c", "tls"].includes(mode)) {
  console.error("usage: node bench/instructions.mjs [h1|h2c|tls] [route] [connections] [streams]");
  process.exit(2);
}
const conns = Number(connsArg ?? 64);
const streams = Number(streamsArg ?? (mode === "h1" ? 1 : 10));
const REQUESTS = Number(process.env.REQUESTS ?? 50_000);
const WARMUP = Number(process.env.WARMUP ?? 30_000);
const KINDS = (process.env.KINDS ?? "hyperwire,node").split(",");
const ROUNDS = Number(process.env.ROUNDS ?? 1);
if (!ensureDebian({ valgrind: "valgrind", h2load: "nghttp2-client" })) {
  console.error("instructions: valgrind and h2load are needed (apt-get install valgrind nghttp2-client)");
  process.exit(1);
}
const here = new URL(".", import.meta.url).pathname;

function serverArgs(kind) {
  return mode === "h1"
    ? [`${here}server-h1/servers.mjs`, kind]
    : [`${here}h2-server/run.mjs`, "serve", kind, mode];
}

function load(port, n) {
  const scheme = mode === "tls" ? "https" : "http";
  const args = ["-t1", `-c${conns}`, `-m${streams}`, `-n${n}`, `${scheme}://127.0.0.1:${port}${route}`];
  const r = spawnSync("h2load", mode === "h1" ? ["--h1", ...args] : args, { encoding: "utf8" });
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(r.stdout);
  if (r.status !== 0 || done === null || Number(done[2]) !== n) {
    throw new Error(`h2load did not complete ${n} requests:\n${r.stdout}${r.stderr}`);
  }
}

/** Instructions the server ran for REQUESTS requests after the warm-up. */
async function count(kind) {
  const child = spawn(
    "valgrind",
    [
      "--tool=callgrind",
      "--instr-atstart=no",
      `--callgrind-out-file=${process.env.CALLGRIND_OUT ?? "/dev/null"}`,
      ...(process.env.CALLGRIND_FLAGS ? process.env.CALLGRIND_FLAGS.split(" ") : []),
      process.execPath,
      ...(process.env.NODE_FLAGS ? process.env.NODE_FLAGS.split(" ") : []),
      ...serverArgs(kind),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (c) => {
    stderr += c;
  });
  const exited = once(child, "exit");
  try {
    const lines = createInterface({ input: child.stdout });
    let port;
    for await (const line of lines) {
      const m = /^(?:\{"port":)?(\d+)\}?$/.exec(line.trim());
      if (m !== null) {
        port = Number(m[1]);
        break;
      }
    }
    if (port === undefined) throw new Error(`${kind}: the server printed no port\n${stderr}`);
    load(port, WARMUP);
    spawnSync("callgrind_control", ["-i", "on", String(child.pid)]);
    load(port, REQUESTS);
    spawnSync("callgrind_control", ["-i", "off", String(child.pid)]);
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
  const collected = /Collected : (\d+)/.exec(stderr);
  if (collected === null) throw new Error(`${kind}: callgrind reported no count\n${stderr}`);
  return Number(collected[1]) / REQUESTS;
}

const results = Object.fromEntries(KINDS.map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of r % 2 === 0 ? KINDS : [...KINDS].reverse()) results[kind].push(await count(kind));
}
const title = `${mode} ${route}, ${conns} connections × ${streams}, ${REQUESTS} requests after ${WARMUP}`;
console.log(`### instructions per request (callgrind), ${title}, Node ${process.version}\n`);
console.log("| server | instructions per request | each round |\n|---|---|---|");
const mid = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const kind of KINDS) {
  const each = results[kind].map((x) => Math.round(x).toLocaleString("en-US")).join(", ");
  console.log(`| ${kind} | ${Math.round(mid(results[kind])).toLocaleString("en-US")} | ${each} |`);
}
if (results.hyperwire && results.node) {
  console.log(
    `\nhyperwire/node: ${(mid(results.hyperwire) / mid(results.node)).toFixed(3)}× the instructions`,
  );
}
