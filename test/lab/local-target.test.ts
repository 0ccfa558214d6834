import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { labAddresses, localLabEnvironment, parseApplySummary, renderLocalLabSteps } from "../../components";
import { loadStack } from "../../loader/stack-config";
import { readMachineFacts } from "../../loader/machine-facts";
import { hostSysctls, labNamespaces, processesUnder } from "../helpers/lab";
import { describeSystem, run } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");

describeSystem("the local target's commands (what pulumi up / destroy -s local run)", ["ip", "haproxy", "nginx", "iperf3", "curl"], () => {
  it("create builds, tunes and starts the lab; delete leaves the machine exactly as before", () => {
    expect(labNamespaces()).toEqual([]);
    const plan = loadStack("local", ROOT);
    const labDir = mkdtempSync(join(tmpdir(), "edgetune-local-target-"));
    const steps = renderLocalLabSteps({
      profile: plan.nodeGroups[0].profile,
      proxy: plan.proxy!.spec,
      labDir,
      machine: readMachineFacts(),
    });
    const env = { ...process.env, ...localLabEnvironment(steps, labDir) };
    const before = hostSysctls();
    const a = labAddresses();
    try {
      const create = run("/bin/sh", ["-c", steps.create], { env });
      expect(create.code, create.stderr).toBe(0);
      // The output command.local.Command keeps as stdout: the proxy namespace's apply summary.
      expect(parseApplySummary(create.stdout)?.status).toMatch(/^(applied|degraded)$/);
      expect(labNamespaces().sort()).toEqual(Object.values(a.namespaces).sort());
      expect(run("ip", ["netns", "exec", a.namespaces.proxy, "cat", "/proc/sys/net/core/somaxconn"]).stdout.trim()).toBe("65535");
      const http = run("ip", ["netns", "exec", a.namespaces.client, "curl", "-fsS", "--max-time", "3", `http://${a.proxy}:80/`]);
      expect(http.code, http.stderr).toBe(0);
      expect(http.stdout).toMatch(/^x+\n$/);
    } finally {
      const del = run("/bin/sh", ["-c", steps.delete], { env });
      expect(del.code, del.stderr).toBe(0);
    }
    expect(labNamespaces()).toEqual([]);
    expect(processesUnder(labDir)).toBe("");
    expect(hostSysctls()).toEqual(before);
    // A second destroy (e.g. after a failed one) is harmless.
    expect(run("/bin/sh", ["-c", steps.delete], { env }).code).toBe(0);
  }, 120_000);
});
