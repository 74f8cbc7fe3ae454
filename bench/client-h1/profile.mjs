// Profiles one client alone: `node profile.mjs [client] [cell] [seconds]` (default: hyperwire tiny 5).
// Starts the server (server.mjs), runs load.mjs for that client under `node --cpu-prof`, and prints
// the functions with the most self time, then hyperwire's own functions (dist of packages/*) by
// self and inclusive time. The .cpuprofile is left in a temporary folder, printed at the end.
// `node profile.mjs --summarize file.cpuprofile` summarises an existing profile.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { summarize } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
const TOP = Number(process.env.TOP ?? 25);

function print(title, entries, all) {
  console.log(`\n${title}`);
  for (const [k, ms] of entries.slice(0, TOP)) {
    console.log(`${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / all).toFixed(1).padStart(5)}%  ${k}`);
  }
}

function report(file) {
  const { self, total, all } = summarize(JSON.parse(readFileSync(file, "utf8")));
  const sorted = (m, f = () => true) => [...m].filter(([k]) => f(k)).sort((a, b) => b[1] - a[1]);
  const ours = (k) => /\/packages\/[^/]+\/dist\//.test(k);
  const idle = (k) => /^\((idle|program|garbage collector)\)/.test(k);
  console.log(`profile ${file}: ${all.toFixed(0)} ms sampled`);
  print("Top self time:", sorted(self), all);
  print("hyperwire functions, self time:", sorted(self, ours), all);
  print("hyperwire functions, inclusive time:", sorted(total, ours), all);
  const ownSelf = sorted(self, ours).reduce((s, [, ms]) => s + ms, 0);
  const busy = sorted(self, (k) => !idle(k)).reduce((s, [, ms]) => s + ms, 0);
  console.log(
    `\nhyperwire-owned self time: ${ownSelf.toFixed(0)} ms of ${busy.toFixed(0)} ms busy ` +
      `(${((100 * ownSelf) / busy).toFixed(1)}%)`,
  );
}

if (process.argv[2] === "--summarize") {
  report(process.argv[3]);
} else {
  const [client = "hyperwire", cell = "tiny", seconds = "5"] = process.argv.slice(2);
  const server = spawn(process.execPath, [`${here}server.mjs`], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const [line] = await once(createInterface({ input: server.stdout }), "line");
    const dir = mkdtempSync(path.join(os.tmpdir(), "client-h1-prof-"));
    const { stdout } = await promisify(execFile)(process.execPath, [
      "--cpu-prof",
      `--cpu-prof-dir=${dir}`,
      `${here}load.mjs`,
      client,
      `http://127.0.0.1:${Number(line)}`,
      cell,
      seconds,
      "1",
    ]);
    console.log(`${client} ${cell}: ${Math.round(JSON.parse(stdout).rps)} req/s under the profiler`);
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    report(path.join(dir, file));
  } finally {
    server.kill("SIGTERM");
  }
}
