import * as pulumi from "@pulumi/pulumi";
import { BenchmarkSuite } from "../components/bench/benchmark-suite";
import { profileDigest } from "../components/tuning/render";
import { ValidationError } from "../components/validation";
import { readEngineConfig } from "./engine-config";
import { abSwitchProfile, deploysProxyToKubernetes, parseStack, type NodeGroupPlan } from "../loader/stack-config";
import { wireAws } from "./targets/aws";
import { ownNamespaces, wireKubernetesGroup, wireKubernetesProxy } from "./targets/kubernetes";
import { wireLocal } from "./targets/local";
import { wireSsh } from "./targets/ssh";

// The config the engine hands over (the stack file merged with Pulumi.yaml's defaults, `-c`,
// `--config-file` and ESC environments), validated once before anything is registered: a bad
// stack fails with every problem listed and registers nothing. `edgetune render` reads the
// stack file through the same parseStack, so what it shows is what this program applies.
const plan = (() => {
  try {
    const engine = readEngineConfig();
    return parseStack(pulumi.getStack(), engine.config, { secretKeys: engine.secretKeys });
  } catch (e) {
    // A RunError: Pulumi prints the message (every problem by path) without a stack trace.
    if (e instanceof ValidationError) throw new pulumi.RunError(e.message);
    throw e;
  }
})();
for (const w of plan.warnings) void pulumi.log.warn(w);

const deployProxy = deploysProxyToKubernetes(plan);
// Each namespace once, whatever number of tuners and proxies run in it.
const namespaces = ownNamespaces(plan, { proxy: deployProxy });
const k8sProxy =
  deployProxy && plan.proxy?.kubernetes
    ? wireKubernetesProxy(plan, { ...plan.proxy, kubernetes: plan.proxy.kubernetes }, namespaces)
    : undefined;

// A/B on one set of nodes: the groups on the benchmark's last profile are tuned only after the
// earlier profiles' runs are collected (see BenchmarkSuite.beforeProfile below).
const abProfile = abSwitchProfile(plan.benchmark);
const deferred = (g: NodeGroupPlan) =>
  abProfile !== undefined && g.target === "kubernetes" && g.kubernetes?.tuner !== undefined && g.profile.name === abProfile;
const deferredOutputs: Record<string, Record<string, unknown>> = {};

function wire(g: NodeGroupPlan): Record<string, unknown> {
  if (deferred(g)) return { tunedBy: "tuner DaemonSet, after the baseline runs" };
  switch (g.target) {
    case "aws":
      return g.aws ? wireAws({ ...g, aws: g.aws }) : {};
    case "ssh":
      return g.ssh ? wireSsh({ ...g, ssh: g.ssh }) : {};
    case "kubernetes": {
      const { component: _tuner, ...outputs } = wireKubernetesGroup(g, namespaces);
      return outputs;
    }
    case "local":
      return plan.proxy ? wireLocal(g, plan.proxy) : {};
  }
}

/** Per node group: target, profile, the digest tune.sh reports, and the target's status. */
export const nodeGroups = Object.fromEntries(
  plan.nodeGroups.map((g) => [g.name, { target: g.target, profile: g.profile.name, digest: profileDigest(g.profile), ...wire(g) }]),
);

const localGroup = plan.nodeGroups.find((g) => g.target === "local");
/** Where the proxy listens: the lab's URLs on the local stack, the DaemonSet and its host ports on Kubernetes. */
export const proxy = plan.proxy
  ? {
      profile: plan.proxy.profile,
      ...(k8sProxy ? { kubernetes: k8sProxy.outputs } : {}),
      ...(localGroup ? { endpoints: (nodeGroups[localGroup.name] as { endpoints?: Record<string, string> }).endpoints } : {}),
    }
  : undefined;

// Benchmark stacks: run the suite against the deployed proxy and export its verdict for scripts/check-bench.js.
const benchSuite = plan.benchmark
  ? new BenchmarkSuite(
      "bench",
      {
        ...plan.benchmark,
        namespaceReady: namespaces.get(plan.benchmark.namespace),
        beforeProfile: (profile, finishedSoFar) =>
          profile !== abProfile
            ? []
            : plan.nodeGroups.filter(deferred).map((g) => {
                const { component, ...outputs } = wireKubernetesGroup(g, namespaces, { dependsOn: finishedSoFar });
                deferredOutputs[g.name] = outputs;
                return component!;
              }),
      },
      k8sProxy ? { dependsOn: [k8sProxy.component] } : undefined,
    )
  : undefined;
export const benchmark = benchSuite
  ? {
      passed: benchSuite.passed,
      violations: benchSuite.violations,
      results: benchSuite.results,
      ...(abProfile ? { switchedTo: abProfile, tuners: deferredOutputs } : {}),
    }
  : undefined;
