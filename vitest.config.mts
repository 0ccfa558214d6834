import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Kernel and lab tests share the machine's network stack: run files one at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
    globalSetup: ["./test/helpers/global-setup.ts"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts", "examples/**/test/**/*.test.ts"] } },
      { extends: true, test: { name: "kernel", include: ["test/kernel/**/*.test.ts"] } },
      { extends: true, test: { name: "lab", include: ["test/lab/**/*.test.ts"] } },
      // Builds the images (scripts/build-images.sh) and runs each from its exported root filesystem.
      { extends: true, test: { name: "image", include: ["test/image/**/*.test.ts"] } },
    ],
  },
});
