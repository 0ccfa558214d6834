import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderRemoteCommands } from "../../components/nodes/remote-script";
import {
  batchSizeFor,
  hostResourceNames,
  planBatches,
  renderGateCommand,
  renderRebootCommand,
  renderRebootedCheck,
} from "../../components/nodes/rollout";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem, run } from "../helpers/system";

describe("rollout planning", () => {
  it("batches in stack order; maxUnavailable percentages round down to at least one host", () => {
    expect(planBatches([1, 2, 3, 4, 5, 6, 7], { batchSize: 3 })).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(batchSizeFor(10, { maxUnavailable: "25%" })).toBe(2);
    expect(batchSizeFor(3, { maxUnavailable: "25%" })).toBe(1);
    expect(batchSizeFor(4, { maxUnavailable: "100%" })).toBe(4);
    expect(batchSizeFor(4, {})).toBe(1);
    // A batch larger than the group is the whole group at once.
    expect(planBatches(["a", "b"], { batchSize: 5 })).toEqual([["a", "b"]]);
  });

  it("gives every host a distinct, stable name; names that lost characters carry a digest of the host", () => {
    const n = hostResourceNames(["a.b", "a-b", "a:b", "edge1"]);
    expect(new Set(Object.values(n)).size).toBe(4);
    expect(n["a-b"]).toBe("a-b");
    expect(n.edge1).toBe("edge1");
    expect(n["a.b"]).toMatch(/^a-b-[0-9a-f]{8}$/);
    // The same host gets the same name whatever else the group lists.
    expect(hostResourceNames(["a.b"])["a.b"]).toBe(n["a.b"]);
  });
});

describeSystem(
  "rollout scripts are portable POSIX sh",
  ["shellcheck", "dash"],
  () => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-rollout-sh-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const profile = resolveProfile("roll", {
      extends: "recommended",
      hugepages: { pages1GiB: 2 },
      nics: [{ match: "ens*", rps: { cpus: "0" } }],
    });
    const remote = renderRemoteCommands(profile, {
      stagingDir: "/var/tmp/edgetune",
      installPath: "/usr/local/lib/edgetune/tune.sh",
      sudo: true,
    });
    const scripts = {
      apply: remote.apply,
      restore: remote.restore,
      gate: renderGateCommand({ host: "edge-1.example", installPath: "/usr/local/lib/edgetune/tune.sh", sudo: true, stopOnFailure: true }),
      reboot: renderRebootCommand({ host: "edge-1.example", sudo: true, delaySeconds: 5, kernelArgs: profile.kernelArgs }),
      rebooted: renderRebootedCheck("edge-1.example", "0f1e2d3c-0000-4000-8000-000000000001"),
    };
    for (const [name, text] of Object.entries(scripts))
      it(`${name}: shellcheck clean and parsed by dash`, () => {
        const path = join(dir, `${name}.sh`);
        writeFileSync(path, text);
        const sc = run("shellcheck", ["-s", "sh", "-S", "style", path]);
        expect(sc.stdout + sc.stderr, "shellcheck").toBe("");
        expect(run("dash", ["-n", path]).code).toBe(0);
      });
  },
  false,
);
