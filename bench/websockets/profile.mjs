// Profiles one contender: `node profile.mjs [hyperwire|ws] [scenario] [seconds] [client]` (default:
// hyperwire echo1 3; the client is of the same kind unless named, to look at one side alone). Runs server.mjs and load.mjs under `node --cpu-prof`, both on one core like run.mjs, and
// prints for each process the functions with the most self time, then hyperwire's own (dist of
// packages/*) by self and inclusive time. The .cpuprofile files stay in a temporary folder (printed).
// `node profile.mjs --summarize file.cpuprofile` summarises an existing profile.
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { have, reportProfile } from "../lib.mjs";

const here = new URL(".", import.meta.url).pathname;
const TOP = Number(process.env.TOP ?? 20);

if (process.argv[2] === "--summarize") {
  reportProfile(process.argv[3], TOP);
} else {
  const [impl = "hyperwire", scenario = "echo1", seconds = "3", client = impl] = process.argv.slice(2);
  const dir = mkdtempSync(path.join(os.tmpdir(), "websockets-prof-"));
  mkdirSync(`${dir}/server`);
  mkdirSync(`${dir}/client`);
  const cpu = String(os.cpus().length - 1);
  const pinned = (args) => (have("taskset") ? ["taskset", ["-c", cpu, ...args]] : [args[0], args.slice(1)]);
  const node = (sub, args) => [process.execPath, "--cpu-prof", `--cpu-prof-dir=${dir}/${sub}`, ...args];
  const [scmd, sargs] = pinned(node("server", [`${here}server.mjs`, impl]));
  const server = spawn(scmd, sargs, { stdio: ["pipe", "pipe", "inherit"] });
  try {
    const [line] = await once(createInterface({ input: server.stdout }), "line");
    const url = `ws://127.0.0.1:${JSON.parse(line).port}`;
    const [ccmd, cargs] = pinned(node("client", [`${here}load.mjs`, client, scenario, url, seconds, "1"]));
    const { stdout } = await promisify(execFile)(ccmd, cargs);
    console.log(`server ${impl}, client ${client}, ${scenario} under the profiler: ${stdout.trim()}`);
  } finally {
    const exited = once(server, "exit");
    server.kill("SIGTERM");
    await exited;
  }
  for (const sub of ["server", "client"]) {
    const file = readdirSync(`${dir}/${sub}`).find((f) => f.endsWith(".cpuprofile"));
    if (file) reportProfile(path.join(dir, sub, file), TOP);
  }
}
