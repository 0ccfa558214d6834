import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closingLine, runProbe, writeProbe } from "../helpers/probe";

const PASSING = `it("passes", () => { expect(1 + 1).toBe(2); });\n`;

describe("summary reporter: the closing line CI reads", () => {
  let root = "";
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "edgetune-reporter-probe-"));
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("counts failing hooks, collection errors and unhandled errors as failures, and the run exits non-zero", async () => {
    const dir = join(root, "failing");
    writeProbe(dir, {
      "ok.test.ts": PASSING,
      // Its tests become skips: only the suite carries the failure.
      "before-all.test.ts": `describe("setup fails", () => {\n  beforeAll(() => { throw new Error("probe beforeAll"); });\n  it("a", () => {});\n  it("b", () => {});\n});\n`,
      // Its test passes: only the suite carries the failure.
      "after-all.test.ts": `describe("teardown fails", () => {\n  afterAll(() => { throw new Error("probe afterAll"); });\n  it("c", () => {});\n});\n`,
      "collect.test.ts": `throw new Error("probe collection");\n`,
      "unhandled.test.ts": `it("leaves a rejection behind", async () => {\n  void Promise.reject(new Error("probe rejection"));\n  await new Promise((r) => setImmediate(r));\n});\n`,
    });
    const r = await runProbe(dir);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const closing = closingLine(r.stdout);
    // Tests alone would read "3 passed, 0 failed, 2 skipped".
    expect(closing).toMatchObject({ passed: 3, failed: 4, skipped: 2 });
    expect(r.stdout).toContain("failed outside a test: before-all.test.ts > setup fails: Error: probe beforeAll");
    expect(r.stdout).toContain("failed outside a test: after-all.test.ts > teardown fails: Error: probe afterAll");
    expect(r.stdout).toContain("failed outside a test: collect.test.ts: Error: probe collection");
    expect(r.stdout).toContain("unhandled error: Error: probe rejection");
  });

  it("reports a throwing afterAll alone as a failure although every test passed", async () => {
    const dir = join(root, "after-all-only");
    writeProbe(dir, { "after-all.test.ts": `afterAll(() => { throw new Error("probe afterAll"); });\n${PASSING}` });
    const r = await runProbe(dir);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(closingLine(r.stdout)).toMatchObject({ passed: 1, failed: 1, skipped: 0 });
    expect(r.stdout).toContain("failed outside a test: after-all.test.ts: Error: probe afterAll");
  });

  it("fails a run that found no test files, as vitest does", async () => {
    const dir = join(root, "empty");
    writeProbe(dir, {});
    const r = await runProbe(dir);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(closingLine(r.stdout)).toMatchObject({ passed: 0, failed: 1, skipped: 0 });
  });

  it("reads 0 failed for a clean run that exits 0", async () => {
    const dir = join(root, "clean");
    writeProbe(dir, { "ok.test.ts": PASSING, "skipped.test.ts": `it.skip("not now", () => {});\n` });
    const r = await runProbe(dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(closingLine(r.stdout)).toMatchObject({ passed: 1, failed: 0, skipped: 1 });
  });
});
