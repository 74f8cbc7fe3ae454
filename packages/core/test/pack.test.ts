import { type ExecFileSyncOptions, execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

// Packs @hyperwire/core as it would be published, installs the tarball into an empty project and
// uses it from there: what a user gets, not what the workspace sees.

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = join(pkgDir, "..", "..");
const SLOW = 120_000;

let tmp = "";
let appDir = "";
let tarball = "";

function run(cmd: string, args: string[], options: ExecFileSyncOptions = {}): string {
  return execFileSync(cmd, args, { encoding: "utf8", timeout: SLOW, stdio: "pipe", ...options }).toString();
}

/** Runs an ES module snippet in the installed project; returns stdout. */
function node(script: string): string {
  return run(process.execPath, ["--input-type=module", "-e", script], { cwd: appDir, timeout: 30_000 });
}

/** True when dist is missing or older than a source file, so the tarball would not match src. */
function distIsStale(): boolean {
  const built = join(pkgDir, "dist", "index.js");
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  const srcDir = join(pkgDir, "src");
  return readdirSync(srcDir).some((f) => statSync(join(srcDir, f)).mtimeMs > builtAt);
}

beforeAll(() => {
  if (distIsStale()) run("pnpm", ["--filter", "@hyperwire/core", "build"], { cwd: repoRoot });
  tmp = mkdtempSync(join(tmpdir(), "hyperwire-core-pack-"));
  const packDir = join(tmp, "pack");
  mkdirSync(packDir);
  run("pnpm", ["pack", "--pack-destination", packDir], { cwd: pkgDir });
  const tgz = readdirSync(packDir).filter((f) => f.endsWith(".tgz"));
  expect(tgz).toHaveLength(1);
  tarball = join(packDir, tgz[0]!);

  appDir = join(tmp, "app");
  mkdirSync(appDir);
  run("npm", ["init", "-y"], { cwd: appDir });
  const install = ["install", "--no-audit", "--no-fund", "--no-package-lock", tarball];
  try {
    run("npm", [...install, "--offline"], { cwd: appDir });
  } catch {
    // core has no runtime dependencies, so offline should do; fall back to a normal install.
    run("npm", install, { cwd: appDir });
  }
}, SLOW);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the published tarball", () => {
  test(
    "holds the built JavaScript and declarations, and nothing from src, test or source maps",
    () => {
      const files = run("tar", ["-tzf", tarball])
        .split("\n")
        .filter(Boolean)
        .map((f) => f.replace(/^package\//, ""));
      for (const f of [
        "package.json",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/headers.js",
        "dist/headers.d.ts",
      ]) {
        expect(files).toContain(f);
      }
      expect(files.filter((f) => f.startsWith("src/") || f.startsWith("test/"))).toEqual([]);
      expect(files.filter((f) => f.endsWith(".map"))).toEqual([]);
      expect(files.filter((f) => f.endsWith(".tsbuildinfo"))).toEqual([]);
    },
    SLOW,
  );

  test(
    "installs and works from a plain ESM project",
    () => {
      const out = node(`
        import { Headers, parseQuery, statusText, TimeoutError, HTTPError, ProtocolError } from "@hyperwire/core";
        const h = new Headers({ "Content-Type": "text/plain" });
        h.append("Set-Cookie", "a=1");
        h.append("set-cookie", "b=2");
        let injected = "accepted";
        try { h.set("X", "a\\r\\nEvil: 1"); } catch (e) { injected = e instanceof ProtocolError ? e.code : String(e); }
        console.log(JSON.stringify({
          type: h.get("content-type"),
          cookies: h.getAll("Set-Cookie"),
          query: { ...parseQuery("?a=1&a=2") },
          text: statusText(413),
          timeout: new TimeoutError("connect", 1, 2) instanceof HTTPError,
          injected,
        }));
      `);
      expect(JSON.parse(out)).toEqual({
        type: "text/plain",
        cookies: ["a=1", "b=2"],
        query: { a: "2" },
        text: "Content Too Large",
        timeout: true,
        injected: "HW_INVALID_HEADER",
      });
    },
    SLOW,
  );

  test(
    "is the same package from require() resolution: package.json is exported, main and types exist",
    () => {
      const require = createRequire(join(appDir, "package.json"));
      const manifestPath = require.resolve("@hyperwire/core/package.json");
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as {
        name: string;
        types: string;
        main: string;
        exports: Record<string, unknown>;
      };
      expect(manifest.name).toBe("@hyperwire/core");
      const installed = dirname(manifestPath);
      expect(existsSync(join(installed, manifest.types))).toBe(true);
      expect(existsSync(join(installed, manifest.main))).toBe(true);
      const dot = manifest.exports["."] as { types: string; default: string };
      expect(existsSync(join(installed, dot.types))).toBe(true);
      expect(existsSync(join(installed, dot.default))).toBe(true);
    },
    SLOW,
  );

  test(
    "deep imports are blocked by the exports map",
    () => {
      const out = node(`
        const codes = [];
        for (const spec of ["@hyperwire/core/internal/x", "@hyperwire/core/dist/headers.js", "@hyperwire/core/src/index.ts"]) {
          try { await import(spec); codes.push("imported"); } catch (e) { codes.push(e.code); }
        }
        const ok = await import("@hyperwire/core/package.json", { with: { type: "json" } });
        codes.push(ok.default.name);
        console.log(JSON.stringify(codes));
      `);
      expect(JSON.parse(out)).toEqual([
        "ERR_PACKAGE_PATH_NOT_EXPORTED",
        "ERR_PACKAGE_PATH_NOT_EXPORTED",
        "ERR_PACKAGE_PATH_NOT_EXPORTED",
        "@hyperwire/core",
      ]);
    },
    SLOW,
  );

  test(
    "its types resolve for a TypeScript user (nodenext), and are real types, not any",
    () => {
      writeFileSync(
        join(appDir, "check.mts"),
        [
          'import { Headers, type TimeoutPhase, TimeoutError } from "@hyperwire/core";',
          'const h: Headers = new Headers({ a: "1" });',
          'const value: string | null = h.get("a");',
          'const phase: TimeoutPhase = new TimeoutError("connect", 1, 1).phase;',
          "// @ts-expect-error get() returns string | null, so this must not compile",
          'const wrong: number = h.get("a");',
          "console.log(value, phase, wrong);",
          "",
        ].join("\n"),
      );
      const tsc = createRequire(join(repoRoot, "package.json")).resolve("typescript/bin/tsc");
      const args = [
        tsc,
        "--noEmit",
        "--strict",
        "--skipLibCheck",
        "false",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--target",
        "es2022",
        "--lib",
        "es2023,esnext.disposable",
        "--types",
        "node",
        "--typeRoots",
        join(repoRoot, "node_modules", "@types"),
        "check.mts",
      ];
      let output = "";
      try {
        run(process.execPath, args, { cwd: appDir });
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string };
        output = `${err.stdout ?? ""}${err.stderr ?? ""}` || String(e);
      }
      expect(output).toBe("");
    },
    SLOW,
  );
});
