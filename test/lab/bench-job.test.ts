import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { labAddresses, localLabEnvironment, renderLocalLabSteps } from "../../components";
import { jobScript, readResultLine } from "../../components/bench/job-log";
import type { ScenarioName } from "../../components/bench/result";
import { SCENARIOS, scenarioInvocations } from "../../components/bench/scenarios";
import { loadStack } from "../../loader/stack-config";
import { readMachineFacts } from "../../loader/machine-facts";
import { labNamespaces, processesUnder } from "../helpers/lab";
import { describeSystem, run } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");
const BENCH = join(ROOT, "components", "bench");

// A benchmark Job's script, exactly as BenchmarkSuite ships it, run with the real
// wrk and iperf3 against the lab's HAProxy from the client namespace, under dash
// (/bin/sh in the loadgen image): the log it prints must end with results the
// collect step accepts.
describeSystem(
  "a benchmark Job's script with the real tools (the cluster path, on the lab)",
  ["ip", "haproxy", "nginx", "iperf3", "wrk", "dash"],
  () => {
    it("prints the tools' output and ends with normalized results for every run", () => {
      expect(labNamespaces()).toEqual([]);
      const plan = loadStack("local", ROOT);
      const labDir = mkdtempSync(join(tmpdir(), "edgetune-bench-job-"));
      // What the Job's ConfigMap mounts at /etc/edgetune-bench.
      for (const f of ["wrk-report.lua", "normalize.cjs"]) copyFileSync(join(BENCH, f), join(labDir, f));
      const steps = renderLocalLabSteps({
        profile: plan.nodeGroups[0].profile,
        proxy: plan.proxy!.spec,
        labDir,
        machine: readMachineFacts(),
      });
      const env = { ...process.env, ...localLabEnvironment(steps, labDir) };
      const a = labAddresses();
      const ports: Partial<Record<ScenarioName, number>> = { "conn-rate": 80, "l4-throughput": 443 };
      try {
        const create = run("/bin/sh", ["-c", steps.create], { env });
        expect(create.code, create.stderr).toBe(0);
        for (const [scenario, port] of Object.entries(ports) as [ScenarioName, number][]) {
          const invocations = scenarioInvocations(SCENARIOS[scenario], {
            environment: "cluster",
            host: a.proxy,
            port,
            luaDir: labDir,
            quick: true,
          });
          const script = jobScript(invocations, {
            scenario,
            profile: "tuned",
            target: `proxy ${a.proxy}:${port}`,
            scriptDir: labDir,
            node: process.execPath,
            logFile: join(labDir, `${scenario}.log`),
          });
          const job = run("ip", ["netns", "exec", a.namespaces.client, "dash", "-c", script], { timeout: 60_000 });
          expect(job.code, `${job.stderr}\n${job.stdout}`).toBe(0);
          expect(job.stdout).toContain(`### edgetune-run {"scenario":"${scenario}"`);
          const results = readResultLine(job.stdout, { scenario, profile: "tuned" });
          expect(results.map((r) => r.concurrency)).toEqual(invocations.map((i) => i.concurrency));
          for (const r of results) {
            expect(r.target).toBe(`proxy ${a.proxy}:${port}`);
            expect(r.validity.clientCpuPercent).toBeGreaterThan(0);
            expect(r.gbps ?? r.connsPerSecond ?? 0).toBeGreaterThan(0);
            expect(Object.values(r.errors).reduce((x, y) => x + y, 0)).toBe(0);
          }
        }
      } finally {
        const del = run("/bin/sh", ["-c", steps.delete], { env });
        expect(del.code, del.stderr).toBe(0);
      }
      expect(labNamespaces()).toEqual([]);
      expect(processesUnder(labDir)).toBe("");
    }, 180_000);
  },
);
