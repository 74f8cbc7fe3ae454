import { defineConfig } from "vitest/config";

// One root config: `pnpm test:run` runs every package's project in one vitest run (one summary);
// `pnpm --filter @hyperwire/<pkg> test` runs that package's own vitest.config.ts alone.
export default defineConfig({
  test: {
    projects: ["packages/*", "examples"],
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }]],
  },
});
