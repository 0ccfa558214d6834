import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderStack } from "../../render/render";
import { loadStack } from "../../loader/stack-config";

// `UPDATE_GOLDEN=1 npx vitest run test/unit/render-golden.test.ts` rewrites test/golden/ after an intended change; review the diff.
const ROOT = join(__dirname, "..", "..");
const GOLDEN = join(ROOT, "test", "golden");
const UPDATE = process.env.UPDATE_GOLDEN === "1";
const STACKS = readdirSync(join(ROOT, "stacks"))
  .flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? [])
  .sort();

const readTree = (dir: string): Record<string, string> =>
  existsSync(dir)
    ? Object.fromEntries(
        readdirSync(dir, { recursive: true, withFileTypes: true })
          .filter((d) => d.isFile())
          .map((d) => [join(d.parentPath, d.name).slice(dir.length + 1), readFileSync(join(d.parentPath, d.name), "utf8")]),
      )
    : {};

/** A machine of the kind the project runs on (LAB-NOTES): what the local stack's golden renders assume. */
const GOLDEN_MACHINE = { cpus: 2, nofileLimit: 20000, kernel: "6.18 (golden)" };

describe("edgetune render matches the committed golden files", () => {
  for (const stack of STACKS) {
    it(`${stack}`, () => {
      const files = renderStack(loadStack(stack, ROOT), { machine: GOLDEN_MACHINE });
      // Deterministic: a second render from a fresh load gives the same bytes.
      expect(renderStack(loadStack(stack, ROOT), { machine: GOLDEN_MACHINE })).toEqual(files);
      const dir = join(GOLDEN, stack);
      if (UPDATE) {
        rmSync(dir, { recursive: true, force: true });
        for (const [rel, content] of Object.entries(files)) {
          mkdirSync(dirname(join(dir, rel)), { recursive: true });
          writeFileSync(join(dir, rel), content);
        }
      }
      const golden = readTree(dir);
      expect(Object.keys(golden).length, `no golden files for ${stack}: run with UPDATE_GOLDEN=1`).toBeGreaterThan(0);
      expect(Object.keys(files).sort()).toEqual(Object.keys(golden).sort());
      for (const [rel, content] of Object.entries(files)) expect(content, `${stack}/${rel}`).toBe(golden[rel]);
    });
  }

  it("writes, per target, what that target puts on its nodes", () => {
    const keys = (s: string) => Object.keys(renderStack(loadStack(s, ROOT), { machine: GOLDEN_MACHINE }));
    expect(keys("prod")).toEqual(
      expect.arrayContaining([
        "edge-asg/cloud-init/user-data",
        "edge-hosts/remote/apply.sh",
        "edge-hosts/remote/restore.sh",
        "proxy/manifests.yaml",
        "proxy/haproxy.cfg",
      ]),
    );
    expect(keys("dev")).toEqual(expect.arrayContaining(["app-nodes/kubernetes/tuner.yaml", "proxy/manifests.yaml"]));
    expect(keys("local")).toEqual(
      expect.arrayContaining(["lab/lab/lab.sh", "lab/lab/create.sh", "lab/lab/delete.sh", "lab/lab/haproxy.cfg"]),
    );
    const plan = renderStack(loadStack("prod", ROOT), { machine: GOLDEN_MACHINE })["PLAN.md"];
    expect(plan).toMatch(/ceil\(100 Gbit\/s \/ 40 Gbit\/s\) = 3/);
    expect(plan).toMatch(/\*\*deploy 4 proxies\*\*/);
    // A host-global key goes to the node only and can never be set from a pod.
    expect(plan).toMatch(/\| fs\.nr_open \| [^|]+ \| [^|]+ \| host \| node sysctl\.d \| no: host-global \|/);
    // The ciphertext of the SSH key is not rendered anywhere.
    expect(Object.values(renderStack(loadStack("prod", ROOT), { machine: GOLDEN_MACHINE })).join("")).not.toContain(
      "ZWRnZXR1bmUgZXhhbXBsZSBjaXBoZXJ0ZXh0",
    );
  });
});
