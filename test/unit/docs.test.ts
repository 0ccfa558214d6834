import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../helpers/system";
import { SYSCTL_CATALOG } from "../../components";

const ROOT = join(__dirname, "..", "..");
const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const profileDoc = readFileSync(join(ROOT, "docs", "profile.md"), "utf8");

describe("the README stays true", () => {
  it("documents every key of the sysctl catalog (docs/profile.md, linked from the README)", () => {
    expect(readme).toContain("(docs/profile.md)");
    const missing = Object.keys(SYSCTL_CATALOG).filter((k) => !profileDoc.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });

  it(".ci/run calls exactly the README's test command", () => {
    const row = readme.split("\n").find((l) => l.startsWith("| run the tests |"));
    const command = /`([^`]+)`/.exec(row ?? "")?.[1];
    expect(command).toBeDefined();
    const ci = readFileSync(join(ROOT, ".ci/run"), "utf8").split("\n");
    expect(ci).toContain(command);
  });

  it("the setup and CI scripts are shellcheck clean", () => {
    const r = run("shellcheck", [join(ROOT, "scripts/setup.sh"), join(ROOT, ".ci/run")]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});
