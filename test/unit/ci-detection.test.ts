import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closingLine, runProbe, writeProbe } from "../helpers/probe";
import { isCI } from "../helpers/system";

describe("CI detection (kernel and lab tests must not skip under CI)", () => {
  it("treats any set CI value as CI, except the spellings of off", () => {
    for (const v of ["true", "1", "yes", "TRUE", "on", "woodpecker"]) expect(isCI({ CI: v }), `CI=${v}`).toBe(true);
    for (const v of [undefined, "", " ", "0", "false", "FALSE", "no", "off"]) expect(isCI({ CI: v }), `CI=${v}`).toBe(false);
  });

  describe("describeSystem with a missing prerequisite", () => {
    let dir = "";
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "edgetune-ci-probe-"));
      const system = join(__dirname, "..", "helpers", "system.ts");
      writeProbe(dir, {
        "needs-tool.test.ts": `import { describeSystem } from ${JSON.stringify(system)};\ndescribeSystem("needs a tool", ["edgetune-no-such-tool"], () => { it("uses the tool", () => {}); }, false);\n`,
      });
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("fails the run under CI=1", async () => {
      const r = await runProbe(dir, { CI: "1" });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(closingLine(r.stdout)).toEqual({ passed: 0, failed: 1, skipped: 0 });
      expect(r.stdout + r.stderr).toMatch(/needs a tool: missing tools: edgetune-no-such-tool/);
    });

    it("is skipped with its reason when CI is off", async () => {
      const r = await runProbe(dir, { CI: "false" });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(closingLine(r.stdout)).toEqual({ passed: 0, failed: 0, skipped: 1 });
    });
  });
});
