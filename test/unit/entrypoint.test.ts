/**
 * `pulumi up` must run the program, never the package's library entry. The Node.js language
 * host passes Pulumi.yaml's `main` as a working directory and an entry point; with a directory
 * (`main: infra/`) the entry point is "." and the SDK takes package.json's `exports["."]` —
 * edgetune's library barrel once `npm ci` has built dist/ — which registers nothing, so an
 * existing stack would be planned for deletion (pulumi/pulumi#13916).
 *
 * Both cases run the SDK's own `cmd/run` (test/helpers/sdk-program-child.cjs) on a copy of the
 * project that has dist/ built, as after the README's setup.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStackConfig } from "../../loader/stack-config";
import { engineConfigFor, ROOT, runProgram } from "../helpers/program";

let project: string;
const config = engineConfigFor(readStackConfig("local", ROOT));

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), "edgetune-entry-"));
  for (const p of ["Pulumi.yaml", "package.json", "tsconfig.json", "infra", "loader", "components", "stacks"])
    cpSync(join(ROOT, p), join(project, p), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(project, "node_modules"));
  // What package.json's exports["."] points at after `npm ci` (prepare builds dist/).
  const libraryEntry = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).exports["."].default as string;
  mkdirSync(join(project, libraryEntry, ".."), { recursive: true });
  writeFileSync(
    join(project, libraryEntry),
    "// the library barrel: exports components, registers nothing\nexports.resolveProfile = () => undefined;\n",
  );
});
afterAll(() => rmSync(project, { recursive: true, force: true }));

describe("the program Pulumi runs", () => {
  it("is infra/index.ts, resolved by the SDK from Pulumi.yaml's main with dist/ present", () => {
    const run = runProgram({ root: project, stack: "local", ...config });
    expect([run.pwd, run.entry]).toEqual([join(project, "infra"), "index.ts"]);
    expect(run.program).toBe(join(project, "infra", "index.ts"));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.registered.map((r) => r.type)).toEqual(expect.arrayContaining(["edgetune:lab:LocalLab", "command:local:Command"]));
    expect(Object.keys(run.outputs ?? {})).toEqual(expect.arrayContaining(["nodeGroups", "proxy"]));
  }, 60_000);

  it("would be the library barrel with `main: infra/` — the case the first test guards against", () => {
    const yaml = join(project, "Pulumi.yaml");
    const real = readFileSync(yaml, "utf8");
    writeFileSync(yaml, real.replace(/^main: .*$/m, "main: infra/"));
    try {
      const run = runProgram({ root: project, stack: "local", ...config });
      expect(run.program).toBe(join(project, "dist", "components", "index.js"));
      // Nothing but the root stack: on an existing stack, a plan to delete everything.
      expect(run.registered.map((r) => r.type)).toEqual(["pulumi:pulumi:Stack"]);
    } finally {
      writeFileSync(yaml, real);
    }
  }, 60_000);
});
