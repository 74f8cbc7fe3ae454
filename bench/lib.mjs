// Shared benchmark helpers: load tools, alternating rounds, medians and the ratio table.
import { execFileSync, spawnSync } from "node:child_process";

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
 * Prints a markdown table: one row per case, the median of each contender, and the ratio of
 * `ours` to each other contender's median.
 */
export function printTable(title, unit, rows, ours = "hyperwire") {
  const names = Object.keys(rows[0].results);
  const others = names.filter((n) => n !== ours);
  const head = ["case", ...names.map((n) => `${n} (${unit})`), ...others.map((n) => `${ours}/${n}`)];
  const lines = [`### ${title}`, "", `| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const row of rows) {
    const med = Object.fromEntries(names.map((n) => [n, median(row.results[n])]));
    const cells = [
      row.name,
      ...names.map((n) => fmt(med[n])),
      ...others.map((n) => `${(med[ours] / med[n]).toFixed(2)}×`),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  console.log(lines.join("\n") + "\n");
}

function fmt(x) {
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toFixed(2);
}
