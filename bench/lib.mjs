// Shared benchmark helpers: load tools, alternating rounds, medians and the ratio table.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

/** True when `cmd` is on PATH. */
export function have(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/**
 * Installs Debian packages when their command is missing (as root, with apt-get). Returns true when
 * every command is there afterwards.
 */
export function ensureDebian(commands) {
  const missing = Object.entries(commands).filter(([cmd]) => !have(cmd));
  if (missing.length === 0) return true;
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
    execFileSync("apt-get", ["install", "-y", "-qq", ...missing.map(([, pkg]) => pkg)], {
      stdio: "ignore",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  } catch {
    // Fall through: the caller decides what to use instead.
  }
  return Object.keys(commands).every(have);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs `rounds` rounds; each round runs every contender once, in an order that rotates each round
 * so no contender always goes first. `contenders` maps a name to an async function returning a
 * number (higher is better, e.g. req/s). Returns { name: [values...] }.
 */
export async function alternate(contenders, rounds) {
  const names = Object.keys(contenders);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length];
      results[name].push(await contenders[name]());
    }
  }
  return results;
}

/**
 * The median over rounds of `ours[r] / other[r]`: measurements of one round ran back to back, so
 * this ratio follows the machine's drift over a run (which moves both), where the ratio of the two
 * medians can pair a fast stretch of one column with a slow stretch of the other. `NaN` when the
 * rounds do not pair up or a value is missing.
 */
export function pairedRatio(oursValues, otherValues) {
  if (oursValues.length !== otherValues.length || oursValues.length === 0) return Number.NaN;
  const ratios = oursValues.map((x, i) => x / otherValues[i]);
  return ratios.every((r) => r > 0 && Number.isFinite(r)) ? median(ratios) : Number.NaN;
}

/**
 * Prints a markdown table: one row per case, the median of each contender, the ratio of `ours` to
 * each other contender's median, and the same ratio taken round by round (see {@link pairedRatio}).
 */
export function printTable(title, unit, rows, ours = "hyperwire") {
  const names = Object.keys(rows[0].results);
  const others = names.filter((n) => n !== ours);
  const head = [
    "case",
    ...names.map((n) => `${n} (${unit})`),
    ...others.map((n) => `${ours}/${n}`),
    ...others.map((n) => `${ours}/${n} per round`),
  ];
  const lines = [`### ${title}`, "", `| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const row of rows) {
    const med = Object.fromEntries(names.map((n) => [n, median(row.results[n])]));
    const cells = [
      row.name,
      ...names.map((n) => fmt(med[n])),
      // A contender that could not run a cell (undici has no h2c, say) has no number and no ratio.
      ...others.map((n) => (med[n] > 0 && med[ours] > 0 ? `${(med[ours] / med[n]).toFixed(2)}×` : "—")),
      ...others.map((n) => {
        const r = pairedRatio(row.results[ours], row.results[n]);
        return Number.isNaN(r) ? "—" : `${r.toFixed(2)}×`;
      }),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  console.log(lines.join("\n") + "\n");
}

function fmt(x) {
  if (!(x > 0)) return "—";
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(2);
}

/** Self and inclusive ms per function (name + file + line), from a V8 .cpuprofile. */
export function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n) => {
    const f = n.callFrame;
    const file = f.url ? f.url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\/\.pnpm\//, "") : "";
    return `${f.functionName || "(anonymous)"} ${file}${file ? `:${f.lineNumber + 1}` : ""}`;
  };
  const self = new Map();
  const total = new Map();
  let all = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    all += dt;
    let id = profile.samples[i];
    const k0 = key(byId.get(id));
    self.set(k0, (self.get(k0) ?? 0) + dt);
    const seen = new Set();
    while (id !== undefined) {
      const k = key(byId.get(id));
      if (!seen.has(k)) {
        seen.add(k);
        total.set(k, (total.get(k) ?? 0) + dt);
      }
      id = parent.get(id);
    }
  }
  return { self, total, all };
}

/** Whether benchmarks pin processes to cores: taskset is there, more than one core, BENCH_PIN is not "none". */
export const LAST_CPU = os.cpus().length - 1;
export const PIN = LAST_CPU > 0 && have("taskset") && process.env.BENCH_PIN !== "none";

/** `[command, args]` that run `cmd args` on core `cpu` when pinning, as they are otherwise. */
export function pinned(cpu, cmd, args) {
  return PIN ? ["taskset", ["-c", String(cpu), cmd, ...args]] : [cmd, args];
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** CPU seconds (user + system) used so far by process `pid`, or NaN where /proc cannot tell. */
export function cpuSeconds(pid) {
  try {
    // Fields after "pid (comm)": state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

function printTop(title, entries, all, top) {
  console.log(`\n${title}`);
  for (const [k, ms] of entries.slice(0, top)) {
    console.log(`${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / all).toFixed(1).padStart(5)}%  ${k}`);
  }
}

/**
 * Prints a .cpuprofile's summary: the functions with the most self time, then hyperwire's own (dist of
 * packages/*) by self and inclusive time, `top` lines each.
 */
export function reportProfile(file, top = 20) {
  const { self, total, all } = summarize(JSON.parse(readFileSync(file, "utf8")));
  const sorted = (m, f = () => true) => [...m].filter(([k]) => f(k)).sort((a, b) => b[1] - a[1]);
  const ours = (k) => /\/packages\/[^/]+\/dist\//.test(k);
  const idle = (k) => /^\((idle|program|garbage collector)\)/.test(k);
  console.log(`\n=== profile ${file}: ${all.toFixed(0)} ms sampled`);
  printTop("Top self time:", sorted(self), all, top);
  printTop("hyperwire functions, self time:", sorted(self, ours), all, top);
  printTop("hyperwire functions, inclusive time:", sorted(total, ours), all, top);
  const ownSelf = sorted(self, ours).reduce((s, [, ms]) => s + ms, 0);
  const busy = sorted(self, (k) => !idle(k)).reduce((s, [, ms]) => s + ms, 0);
  console.log(
    `\nhyperwire-owned self time: ${ownSelf.toFixed(0)} ms of ${busy.toFixed(0)} ms busy ` +
      `(${((100 * ownSelf) / busy).toFixed(1)}%)`,
  );
}

/**
 * Runs `concurrency` loops of `one()` for `warmup` s uncounted, then `seconds` s counted, checking
 * the body size of every result (`sizeOf(result)`; by default the result is the size) against
 * `expect`, and writes one JSON line `{rps, cpuRps, count, seconds}` on stdout: what every load
 * process of a client benchmark reports. Exits the process with 1 (after printing the error) when a
 * request fails or reads the wrong size.
 */
export async function measureLoad({
  one,
  sizeOf = (size) => size,
  expect,
  seconds,
  warmup,
  concurrency,
  label,
}) {
  let measuring = false;
  let stopped = false;
  let count = 0;
  let t0 = 0;
  let t1 = 0;
  let cpu0 = process.cpuUsage();
  let cpu = { user: 0, system: 0 };
  async function loop() {
    while (!stopped) {
      const size = sizeOf(await one());
      if (size !== expect) throw new Error(`${label}: read ${size} bytes, expected ${expect}`);
      if (measuring) count++;
    }
  }
  setTimeout(() => {
    measuring = true;
    t0 = performance.now();
    cpu0 = process.cpuUsage();
    setTimeout(() => {
      t1 = performance.now();
      cpu = process.cpuUsage(cpu0);
      measuring = false;
      stopped = true;
    }, seconds * 1000);
  }, warmup * 1000);
  try {
    await Promise.all(Array.from({ length: concurrency }, loop));
  } catch (err) {
    console.error(err);
    process.exit(1);
  }
  const elapsed = (t1 - t0) / 1000;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(
    `${JSON.stringify({ rps: count / elapsed, cpuRps: count / cpuSeconds, count, seconds: elapsed })}\n`,
  );
}

/**
 * Keeps about `mb` MB of small live objects on the heap, as an application's own data would. V8 reacts
 * to external memory (large Buffers) differently in a heap of a few MB: one whose size falls in a
 * narrow band starts an incremental mark-compact every ~14 ms when large messages stream through it,
 * whichever library it runs (measured with raw ws: about 4 MB of extra heap put it in that band, 60
 * mark-compacts in 2 s and 35 % less throughput). There is more than one such band: with 16 MB here
 * the raw ws client of a 1 MiB send still lands in one (12 mark-compacts in 5 s, against 1), with
 * 32 MB the hyperwire client does (17 against 1); with 48 or 64 MB neither (session 13).
 * A benchmark process with a realistic heap measures the library, not where its import size lands.
 */
export function ballast(mb) {
  const keep = [];
  const start = process.memoryUsage().heapUsed;
  let i = 0;
  while (process.memoryUsage().heapUsed - start < mb * 1e6) {
    const chunk = new Array(10_000);
    for (let j = 0; j < chunk.length; j++, i++) chunk[j] = { id: i, name: `item ${i}` };
    keep.push(chunk);
  }
  globalThis.__benchBallast = keep;
}
