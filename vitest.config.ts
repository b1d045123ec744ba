import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Native engines use every core: run files one at a time so timings and memory stay sane.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    globalSetup: ["test/setup/models.ts"],
    // Memory tests force a collection before they measure.
    execArgv: ["--expose-gc"],
  },
});
