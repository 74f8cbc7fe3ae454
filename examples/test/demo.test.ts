import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const demo = fileURLToPath(new URL("../dist/demo.js", import.meta.url));

test("the README demo runs, and every exchange behaves as it says", async () => {
  expect(existsSync(demo), "build the examples first (pnpm build)").toBe(true);
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(process.execPath, [demo], { timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
  expect(stdout).toContain("demo: every exchange behaved as expected");
  expect(stdout).toContain("TimeoutError(readIdle)");
  expect(stdout).toContain("StatusError(404)");
  expect(stdout).toMatch(/HTTP\/2/);
  expect(stdout).toContain("WebSocket wss://");
  expect(stdout).toContain("WebSocket/h2");
  expect(code).toBe(0);
}, 40_000);
