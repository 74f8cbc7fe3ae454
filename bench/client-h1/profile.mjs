// Profiles one client alone: `node profile.mjs [client] [cell] [seconds]` (default: hyperwire tiny 5).
// Starts the server (server.mjs), runs load.mjs for that client under `node --cpu-prof`, and prints
// the functions with the most self time, then hyperwire's own functions (dist of packages/*) by
// self and inclusive time. The .cpuprofile is left in a temporary folder, printed at the end.
// `node profile.mjs --summarize file.cpuprofile` summarises an existing profile.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { reportProfile } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
const TOP = Number(process.env.TOP ?? 25);

if (process.argv[2] === "--summarize") {
  reportProfile(process.argv[3], TOP);
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
    reportProfile(path.join(dir, file), TOP);
  } finally {
    server.kill("SIGTERM");
  }
}
