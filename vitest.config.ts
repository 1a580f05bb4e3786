import { defineConfig } from "vitest/config";

// Test tiers run as separate projects so each can run alone (`npm run test:sim`, ...).
export default defineConfig({
  test: {
    // The JSON report lets .ci/run print the plain "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: ".vitest-report.json" }]],
    // fast-check runs on a fixed seed under npm test (FC_SEED=random explores; see the file).
    setupFiles: ["test/support/fc-seed.ts"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 30_000 } },
      { extends: true, test: { name: "property", include: ["test/property/**/*.test.ts"], testTimeout: 120_000 } },
      { extends: true, test: { name: "sim", include: ["test/sim/**/*.test.ts"], testTimeout: 300_000 } },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // Real processes: one file at a time so they do not fight over 2 cores.
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: "jepsen-lite",
          include: ["test/jepsen-lite/**/*.test.ts"],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // Real processes and fixed ports: run these files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
