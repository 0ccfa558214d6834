import type { Reporter, SerializedError, TestModule, TestRunEndReason, TestSuite, Vitest } from "vitest/node";

const firstLine = (e: SerializedError) => `${e.name ?? "Error"}: ${String(e.message).split("\n")[0]}`;

/**
 * Prints the plain closing line CI reads: "N passed, N failed, N skipped".
 *
 * Failures are counted wherever vitest finds them, not only in tests: a failing beforeAll
 * turns its tests into skips and a failing afterAll leaves them passed, so a suite or file
 * with errors of its own (hooks, collection) counts as one failure, and so does every
 * unhandled error. Each of those is named on a line of its own above the closing line.
 */
export default class SummaryReporter implements Reporter {
  private ignoreUnhandled = false;

  onInit(vitest: Vitest): void {
    // With this option set vitest exits 0 despite unhandled errors; the line must agree.
    this.ignoreUnhandled = vitest.config.dangerouslyIgnoreUnhandledErrors === true;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const outside: string[] = [];
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      const suites: Array<TestModule | TestSuite> = [mod, ...mod.children.allSuites()];
      for (const suite of suites) {
        const errors = suite.errors();
        if (!errors.length) continue;
        failed++;
        const where = suite.type === "module" ? mod.relativeModuleId : `${mod.relativeModuleId} > ${suite.fullName}`;
        outside.push(`failed outside a test: ${where}: ${errors.map(firstLine).join("; ")}`);
      }
    }
    if (!this.ignoreUnhandled) {
      for (const e of unhandledErrors) {
        failed++;
        outside.push(`unhandled error: ${firstLine(e)}`);
      }
    }
    // vitest has already set the exit status (see its TestRun.end): whatever made it non-zero
    // without a failure counted above (no test files, an interrupted run, ...) still fails the line.
    const exitsNonZero = reason !== "passed" || (process.exitCode !== undefined && Number(process.exitCode) !== 0);
    if (exitsNonZero && failed === 0) {
      failed = 1;
      outside.push(`the run failed (vitest: ${reason}) without a failing test`);
    }
    const details = outside.map((l) => `${l}\n`).join("");
    process.stdout.write(`\n${details}${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
