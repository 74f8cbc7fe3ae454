// Runs every test project in one vitest run and ends with the line CI reads:
// "N passed, N failed" (totals across packages). Exits non-zero when anything failed.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";

const results = ".vitest-results.json";
rmSync(results, { force: true });
const run = spawnSync("pnpm", ["exec", "vitest", "run", ...process.argv.slice(2)], { stdio: "inherit" });
let passed = 0;
let failed = 0;
if (existsSync(results)) {
  const json = JSON.parse(readFileSync(results, "utf8"));
  passed = json.numPassedTests ?? 0;
  // A suite that fails to load has no tests in it; count it as one failure so it cannot pass silently.
  failed =
    (json.numFailedTests ?? 0) +
    (json.testResults ?? []).filter((r) => r.status === "failed" && (r.assertionResults ?? []).length === 0)
      .length;
} else {
  failed = 1;
}
if (run.status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
