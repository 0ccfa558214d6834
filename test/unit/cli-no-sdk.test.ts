import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..", "..");
const HOOK = join(ROOT, "test", "fixtures", "report-pulumi-loads.cjs");

/** Runs the CLI as users do (bin/edgetune.js) and returns the @pulumi modules it loaded. */
function pulumiModulesLoadedBy(args: string[]): { code: number | null; modules: string[]; stderr: string } {
  const r = spawnSync(process.execPath, ["--require", HOOK, join(ROOT, "bin", "edgetune.js"), ...args], { cwd: ROOT, encoding: "utf8" });
  const line = /^edgetune-test pulumi-modules=(.*)$/m.exec(r.stderr)?.[1];
  if (line === undefined) throw new Error(`no report from the hook: ${r.stderr}`);
  return { code: r.status, modules: line ? line.split(",") : [], stderr: r.stderr };
}

// The offline side must not pay for the SDK and the providers (loading @pulumi/aws alone took
// render from ~0.5 s to ~2.5 s), and must work where they are not installed.
describe("render and the lab's planning load no Pulumi module", () => {
  for (const stack of ["prod", "dev", "bench", "eks", "local"]) {
    it(`render --stack ${stack}`, () => {
      const out = mkdtempSync(join(tmpdir(), "edgetune-nosdk-"));
      try {
        const r = pulumiModulesLoadedBy(["render", "--stack", stack, "--out", out]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.modules).toEqual([]);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }

  it("lab and status: the CLI's modules (imported statically by cli/main.ts) load none either", () => {
    for (const cmd of ["lab", "status"]) {
      const r = pulumiModulesLoadedBy([cmd, "--help"]);
      expect(r.modules, cmd).toEqual([]);
    }
  });

  it("the hook does report a module that loads the SDK (the test can fail)", () => {
    const r = spawnSync(process.execPath, ["--require", HOOK, "-e", 'require("@pulumi/pulumi")'], { cwd: ROOT, encoding: "utf8" });
    expect(r.stderr).toMatch(/pulumi-modules=@pulumi\/pulumi/);
  });
});
