// `pnpm bench [name...]`: runs every benchmark folder (or the named ones), one after the other.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";

const here = new URL(".", import.meta.url).pathname;
const wanted = process.argv.slice(2);
const all = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== "node_modules" && existsSync(`${here}${d.name}/run.mjs`))
  .map((d) => d.name);
let failed = 0;
for (const name of wanted.length ? wanted : all) {
  console.log(`\n## ${name}\n`);
  const r = spawnSync(process.execPath, [`${here}${name}/run.mjs`], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
