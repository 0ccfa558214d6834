import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { normalizeJobLog, resultLine } from "../../../components/bench/job-log";
import { collectCommand } from "../../../components/bench/k8s-jobs";
import { SCENARIO_NAMES } from "../../../components/bench/result";
import { mocksSettled, until } from "../../helpers/wait";

const fixture = (name: string) => readFileSync(join(__dirname, "../../fixtures/bench", name), "utf8");
const created: { type: string; name: string; inputs: any }[] = [];
/** Names in the order their registration reached the mock, held or not. */
const requested: string[] = [];
/** Resources whose registration the test completes by hand (to see what waits for them). */
const held = new Map<string, Promise<void>>();

// Mocks first, then the component: it must bind to the mocked runtime.
pulumi.runtime.setMocks(
  {
    newResource: async (a) => {
      requested.push(a.name);
      await held.get(a.name);
      created.push({ type: a.type, name: a.name, inputs: a.inputs });
      const state = { ...a.inputs } as Record<string, unknown>;
      if (a.type === "command:local:Command") {
        // Stand in for kubectl logs: a recorded run in the Job log format, ending with the normalizer's line.
        const burst = a.name.includes("counters");
        const profile = a.name.includes("baseline") ? "baseline" : "tuned";
        const log = `### edgetune-nproc 2\n### edgetune-run {"scenario":"conn-burst","tool":"wrk","run":0,"concurrency":2000,"durationSeconds":3}\n${fixture(profile === "baseline" ? "wrk-burst.txt" : "wrk-connclose.txt")}### edgetune-times\n0m0.00s 0m0.00s\n0m1.00s 0m2.00s\n### edgetune-end 0\n`;
        const ctx = { scenario: SCENARIO_NAMES.find((n) => a.name.endsWith(`-${n}-collect`)) ?? "conn-burst", profile };
        state.stdout = burst ? fixture("nstat-burst.json") : `${log}${resultLine(ctx, { results: normalizeJobLog(log, ctx) })}\n`;
      }
      if (a.type === "kubernetes:batch/v1:Job") state.metadata = { ...(a.inputs.metadata ?? {}), uid: `uid-${a.name}` };
      return { id: `${a.name}-id`, state };
    },
    call: () => ({}),
  },
  "edgetune",
  "bench",
  true,
);

const out = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));

describe("BenchmarkSuite", () => {
  let suite: import("../../../components/bench/benchmark-suite").BenchmarkSuite;
  beforeAll(async () => {
    const { BenchmarkSuite } = await import("../../../components/bench/benchmark-suite");
    suite = new BenchmarkSuite("bench", {
      namespace: "bench",
      scenarios: ["conn-burst"],
      profiles: ["baseline", "tuned"],
      proxyHost: "edgetune-proxy",
      proxyPodLabels: { "app.kubernetes.io/name": "edgetune-proxy" },
      images: { loadgen: "registry.example/edgetune-loadgen:2025.1" },
      thresholds: { "conn-burst": { maxP99Ms: 10, minTunedOverBaseline: 1.2 } },
      kubeconfigPath: "/home/ci/.kube/config",
    });
  });

  it("parses collected logs into typed results and judges the tuned runs against the baseline", async () => {
    const results = await out(suite.results);
    expect(results.map((r) => [r.scenario, r.profile])).toEqual([
      ["conn-burst", "baseline"],
      ["conn-burst", "tuned"],
    ]);
    expect(results[0].validity.listenOverflows).toBe(15333);
    expect(await out(suite.passed)).toBe(false);
    const v = await out(suite.violations);
    expect(v.map((x) => x.threshold)).toEqual(["minTunedOverBaseline"]);
  });

  it("records pinned, deadline-bound, anti-affine Jobs and kubectl collect commands", async () => {
    await out(suite.results);
    const jobs = created.filter((c) => c.type === "kubernetes:batch/v1:Job");
    expect(jobs.map((j) => j.name).sort()).toEqual([
      "edgetune-bench-baseline-conn-burst",
      "edgetune-bench-baseline-conn-burst-counters",
      "edgetune-bench-tuned-conn-burst",
      "edgetune-bench-tuned-conn-burst-counters",
    ]);
    for (const j of jobs) {
      expect(j.inputs.spec.activeDeadlineSeconds).toBeGreaterThan(0);
      expect(j.inputs.spec.backoffLimit).toBe(0);
      expect(j.inputs.spec.template.spec.containers[0].image).toBe("registry.example/edgetune-loadgen:2025.1");
    }
    const load = jobs.find((j) => j.name === "edgetune-bench-tuned-conn-burst")!;
    expect(
      load.inputs.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels,
    ).toEqual({ "app.kubernetes.io/name": "edgetune-proxy" });
    const cmd = created.find((c) => c.name === "edgetune-bench-tuned-conn-burst-collect")!;
    expect(cmd.type).toBe("command:local:Command");
    expect(cmd.inputs.create).toBe(collectCommand("bench", "edgetune-bench-tuned-conn-burst", 200));
    expect(cmd.inputs.environment).toEqual({ KUBECONFIG: "/home/ci/.kube/config" });
    expect(
      created
        .filter((c) => c.type === "kubernetes:apps/v1:Deployment")
        .map((c) => c.inputs.spec.template.spec.containers.map((x: any) => x.image)),
    ).toEqual([["registry.example/edgetune-loadgen:2025.1", "registry.example/edgetune-loadgen:2025.1"]]);
    // The load Jobs' identity, to find their counters pod.
    expect(
      created
        .filter((c) => c.type.startsWith("kubernetes:rbac") || c.type === "kubernetes:core/v1:ServiceAccount")
        .map((c) => c.type)
        .sort(),
    ).toEqual([
      "kubernetes:core/v1:ServiceAccount",
      "kubernetes:rbac.authorization.k8s.io/v1:Role",
      "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    ]);
  });
});

describe("BenchmarkSuite A/B gate", () => {
  it("asks for each profile's gates with every collect step so far, and the tuned Jobs come after the gate", async () => {
    const { BenchmarkSuite } = await import("../../../components/bench/benchmark-suite");
    const calls: Array<{ profile: string; finished: string[] }> = [];
    const names = (rs: pulumi.Resource[]) => Promise.all(rs.map((r) => out((r as pulumi.CustomResource).urn)));
    let gate: pulumi.CustomResource | undefined;
    const pending: Promise<void>[] = [];
    let release!: () => void;
    held.set("ab-node-tuning", new Promise<void>((res) => (release = res)));
    const first = created.length;
    const firstRequested = requested.length;
    new BenchmarkSuite("ab", {
      namespace: "bench",
      scenarios: ["conn-rate", "conn-burst"],
      profiles: ["baseline", "tuned"],
      proxyHost: "edgetune-proxy",
      proxyPodLabels: { "app.kubernetes.io/name": "edgetune-proxy" },
      images: { loadgen: "registry.example/edgetune-loadgen:2025.1" },
      beforeProfile: (profile, finished) => {
        const entry = { profile, finished: [] as string[] };
        calls.push(entry);
        pending.push(names(finished).then((urns) => void entry.finished.push(...urns.map((u) => u.split("::").pop()!))));
        if (profile !== "tuned") return [];
        // Stands in for the node tuner: any resource works as a gate.
        class Gate extends pulumi.CustomResource {
          constructor(n: string) {
            super("test:index:Gate", n, {});
          }
        }
        gate = new Gate("ab-node-tuning");
        return [gate];
      },
    });
    await Promise.all(pending);
    expect(calls.map((c) => c.profile)).toEqual(["baseline", "tuned"]);
    expect(calls[0].finished).toEqual([]);
    // The tuning gate waits for every baseline run and its counters to be collected.
    expect(calls[1].finished).toEqual([
      "edgetune-bench-baseline-conn-rate-collect",
      "edgetune-bench-baseline-conn-rate-counters-collect",
      "edgetune-bench-baseline-conn-burst-collect",
      "edgetune-bench-baseline-conn-burst-counters-collect",
    ]);
    // Nothing of the tuned profile is registered while the gate is not. Hold the gate until it
    // was asked for and every baseline resource is registered, then until the mocks have
    // settled: a tuned Job that did not wait for the gate would have reached the mock by then.
    const names2 = () => created.slice(first).map((c) => c.name);
    const asked = () => requested.slice(firstRequested);
    const baseline = [
      "conn-rate-counters",
      "conn-rate",
      "conn-rate-collect",
      "conn-rate-counters-collect",
      "conn-burst-counters",
      "conn-burst",
      "conn-burst-collect",
      "conn-burst-counters-collect",
    ].map((n) => `edgetune-bench-baseline-${n}`);
    await until(
      "the gate's registration and every baseline Job and collect step",
      () => asked().includes("ab-node-tuning") && baseline.every((n) => names2().includes(n)),
    );
    await mocksSettled();
    expect(asked().filter((n) => n.includes("-tuned-"))).toEqual([]);
    release();
    await until("the tuned Jobs once the gate is registered", () => names2().includes("edgetune-bench-tuned-conn-rate"));
    expect(gate).toBeDefined();
  });
});
