import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";

// The release flow as a maintainer runs it: `pnpm changeset version` writes per-package CHANGELOGs
// and one version for the fixed group, and `pnpm publish -r --dry-run` packs every package.

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const PACKAGES = ["core", "h2", "client", "server", "websockets", "http"];
const SLOW = 180_000;

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: "pipe", timeout: SLOW });
}

describe("release flow", () => {
  test(
    "changeset version writes a CHANGELOG per package and moves the fixed group together",
    () => {
      const pending = readdirSync(join(root, ".changeset")).filter(
        (f) => f.endsWith(".md") && f !== "README.md",
      );
      expect(pending.length).toBeGreaterThan(0);
      // A copy of what changesets reads (manifests, the workspace and .changeset), so the checkout is untouched.
      const scratch = mkdtempSync(join(tmpdir(), "hyperwire-release-"));
      try {
        for (const f of ["package.json", "pnpm-workspace.yaml"]) cpSync(join(root, f), join(scratch, f));
        cpSync(join(root, ".changeset"), join(scratch, ".changeset"), { recursive: true });
        for (const dir of [...PACKAGES.map((p) => `packages/${p}`), "examples", "bench"]) {
          mkdirSync(join(scratch, dir), { recursive: true });
          cpSync(join(root, dir, "package.json"), join(scratch, dir, "package.json"));
        }
        run(
          process.execPath,
          [join(root, "node_modules", "@changesets", "cli", "bin.js"), "version"],
          scratch,
        );
        const versions = new Set<string>();
        for (const p of PACKAGES) {
          const changelog = join(scratch, "packages", p, "CHANGELOG.md");
          expect(existsSync(changelog), `${p}/CHANGELOG.md`).toBe(true);
          expect(readFileSync(changelog, "utf8")).toContain(`# @hyperwire/${p}`);
          const manifest = JSON.parse(readFileSync(join(scratch, "packages", p, "package.json"), "utf8"));
          versions.add(manifest.version);
        }
        expect(versions.size).toBe(1);
        const [version] = versions;
        const before = JSON.parse(
          readFileSync(join(root, "packages", "core", "package.json"), "utf8"),
        ).version;
        expect(version).not.toBe(before);
        // Only a changeset that says "major" may move the major version: internal dependencies are
        // plain dependencies, so a bump of core does not force its dependents to a new major.
        const saysMajor = pending.some((f) =>
          /:\s*major\s*$/m.test(readFileSync(join(root, ".changeset", f), "utf8")),
        );
        if (!saysMajor) expect(version!.split(".")[0]).toBe(before.split(".")[0]);
        // The changesets were consumed.
        const left = readdirSync(join(scratch, ".changeset")).filter(
          (f) => f.endsWith(".md") && f !== "README.md",
        );
        expect(left).toEqual([]);
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    },
    SLOW,
  );

  test(
    "a dry-run publish packs every package with its built entry point",
    () => {
      // npm prints the tarball contents on stderr.
      const r = spawnSync("pnpm", ["publish", "-r", "--dry-run", "--no-git-checks"], {
        cwd: root,
        encoding: "utf8",
        timeout: SLOW,
      });
      expect(r.status).toBe(0);
      const out = `${r.stdout}${r.stderr}`;
      for (const p of PACKAGES) expect(out).toMatch(new RegExp(`^\\+ @hyperwire/${p}@`, "m"));
      expect(out.match(/dist\/index\.js/g)?.length ?? 0).toBeGreaterThanOrEqual(PACKAGES.length);
      expect(out).not.toMatch(/ERR_PNPM/);
    },
    SLOW,
  );
});
