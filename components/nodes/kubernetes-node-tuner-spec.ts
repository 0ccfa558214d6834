/**
 * The spec of KubernetesNodeTuner: the one place its options, their defaults, bounds and
 * descriptions are written. The component, the stack loader (a `kubernetes` node group),
 * render and the generated reference all take them from here.
 */
import { z } from "zod";
import { managementIssues, managementSpec, type ResolvedManagement } from "../management";
import { SYSCTL_CATALOG } from "../tuning/catalog";
import { formatPath, grammar, resolveWith, withPending, type PathSegment, type ValidationIssue } from "../validation";

/** Tolerates every NoSchedule and NoExecute taint: "every selected node" means every one. */
export const TOLERATE_EVERY_TAINT: ReadonlyArray<{ operator: "Exists"; effect: "NoSchedule" | "NoExecute" }> = [
  { operator: "Exists", effect: "NoSchedule" },
  { operator: "Exists", effect: "NoExecute" },
];

export const READY_WHEN = ["applied", "no-failures"] as const;

/** The Prometheus endpoint of the tuner loop (tuner.sh serves it with socat). */
export const tunerMetricsSpec = z
  .strictObject({
    port: grammar
      .int(0, 65535)
      .default(9477)
      .describe("Port of the `edgetune_tuning_*` metrics (on the node's address with hostNetwork); 0: no endpoint."),
    podMonitor: z
      .boolean()
      .default(false)
      .describe("Create a PodMonitor (monitoring.coreos.com/v1; needs the Prometheus Operator's CRDs) that scrapes the port."),
  })
  .superRefine((v, ctx) => {
    if (v.podMonitor && v.port === 0)
      ctx.addIssue({ code: "custom", path: ["podMonitor"], message: "got true with port 0; allowed: a PodMonitor needs a metrics port" });
  });

/**
 * The tuner loop's options (tuner.sh), shared by the tuner DaemonSet and the proxy's tuning
 * sidecar: one container builder (tuner-pod.ts) turns them into the same environment for both.
 */
export const tunerLoopShape = {
  verifyIntervalSeconds: grammar.int(10, 86400).default(300).describe("Seconds between `tune.sh verify` runs."),
  reapplyOnDrift: z
    .boolean()
    .default(false)
    .describe(
      "Re-apply when verify finds a sysctl or file drifted; otherwise drift is only logged (NIC resets are handled by nicPollSeconds).",
    ),
  nicPollSeconds: grammar
    .int(0, 3600)
    .default(5)
    .describe(
      "Seconds between checks for an interface that appeared, was re-created or came back up; its NIC items (offloads, channels, rings, RSS, RPS/RFS/XPS, IRQ affinity) are then re-applied. 0: off.",
    ),
  restoreOnRemove: z
    .boolean()
    .default(true)
    .describe(
      "Run `tune.sh restore` when the tuning is removed from a node: `pulumi destroy`, the group removed, or the node no longer matching nodeSelector (the pod asks the API server on SIGTERM). A pod stopping for any other reason (roll, drain, eviction, node shutdown) never restores.",
    ),
  readyWhen: z
    .enum(READY_WHEN)
    .default("no-failures")
    .describe(
      "When the pod is ready: `applied`, every item applied; `no-failures`, applied or degraded by skipped items only (an absent key or NIC), none failed. Unready shows the reason in the probe event.",
    ),
  metrics: tunerMetricsSpec.prefault({}).describe("Prometheus endpoint of the tuner: `{ port, podMonitor }`."),
};

export const tunerLoopSpec = z.strictObject(tunerLoopShape);
/** The tuner loop's options, defaults applied. */
export type TunerLoopOptions = z.output<typeof tunerLoopSpec>;

export const kubernetesNodeTunerShape = {
  image: grammar.pinnedImage().describe("Tuner image (proxy-image/ `tuner` target), pinned by tag or digest; `latest` is refused."),
  namespace: grammar
    .dnsLabel()
    .default("edgetune-system")
    .describe("Namespace of the tuner; labelled Pod Security `enforce: privileged` when edgetune creates it."),
  createNamespace: z
    .boolean()
    .default(true)
    .describe("Create the namespace. false: it exists already; a stack creates each namespace once for every tuner and proxy in it."),
  nodeSelector: grammar.labels().optional().describe("Nodes to tune. Default: every node."),
  tolerations: z
    .array(grammar.toleration())
    .default(() => TOLERATE_EVERY_TAINT.map((t) => ({ ...t })))
    .describe(
      "Taints to tolerate. Default: every NoSchedule and NoExecute taint, so every selected node is tuned (dedicated, cordoned or not-ready nodes included); a list replaces it, `[]` tolerates none.",
    ),
  ...tunerLoopShape,
  maxUnavailable: grammar.countOrPercent().default(1).describe('Nodes that may be without a running tuner during a roll: a count or "N%".'),
  hostNetwork: z
    .boolean()
    .default(true)
    .describe("Share the node's network namespace: net.* sysctls and NICs are per namespace, so without it a pod tunes only itself."),
  podSysctls: z
    .array(z.strictObject({ name: sysctlName(), value: grammar.text(256) }))
    .optional()
    .describe(
      "Pod-level `securityContext.sysctls`; only without hostNetwork (kubelet rejects them on hostNetwork pods), and only per-namespace keys in kubelet's safe set or in allowedUnsafeSysctls.",
    ),
  allowedUnsafeSysctls: z
    .array(sysctlName())
    .optional()
    .describe(
      "Per-namespace sysctls the nodes' kubelet allows beyond its safe set (kubelet --allowed-unsafe-sysctls); podSysctls may use them.",
    ),
  management: managementSpec
    .prefault({})
    .describe(
      "Where the metrics endpoint binds and whom it answers: the node's internal address (status.hostIP with hostNetwork, else the pod IP) and private sources by default (docs/management.md). tuner.sh matches IPv4 sources only.",
    ),
  podSecurityVersion: grammar.podSecurityVersion(),
  terminationGracePeriodSeconds: grammar
    .int(5, 3600)
    .default(60)
    .describe(
      "Seconds a stopping pod gets before SIGKILL: the bound on the restore when the tuning is removed from a node (`pulumi destroy` waits for it).",
    ),
};

function sysctlName() {
  return z.string().regex(/^[a-z0-9._/-]{1,128}$/, "allowed: a sysctl name of [a-z0-9._/-]");
}

/** Why a pod cannot set this sysctl in its securityContext, or undefined when it can. */
export function podSysctlProblem(name: string, allowedUnsafe: readonly string[]): string | undefined {
  const meta = SYSCTL_CATALOG[name];
  if (meta && meta.scope !== "netns")
    return `${name} is ${meta.scope === "host" ? "host-global" : "read-only in a network namespace"}: no pod can set it (kubelet refuses); tune.sh sets it on the node`;
  if (allowedUnsafe.includes(name)) return undefined;
  if (!meta)
    return `${name} is not a sysctl edgetune knows as per-namespace: list it in allowedUnsafeSysctls if the nodes' kubelet allows it`;
  if (!meta.kubeletSafeSince)
    return `${name} is not in kubelet's safe set: list it in allowedUnsafeSysctls if the nodes' kubelet runs with --allowed-unsafe-sysctls=${name}`;
  return undefined;
}

/** Rules between fields, shared by the component's schema and the stack's `kubernetes` section. */
export function tunerRules<
  T extends z.ZodType<{
    hostNetwork?: boolean;
    podSysctls?: Array<{ name: string }>;
    allowedUnsafeSysctls?: string[];
    management?: ResolvedManagement;
  }>,
>(schema: T): T {
  return schema.superRefine((v, ctx) => {
    if (v.management)
      for (const issue of managementIssues(v.management, (key) => key))
        ctx.addIssue({ code: "custom", path: ["management", issue.path], message: issue.message });
    v.podSysctls?.forEach((s, i) => {
      const problem = podSysctlProblem(s.name, v.allowedUnsafeSysctls ?? []);
      if (problem) ctx.addIssue({ code: "custom", path: ["podSysctls", i, "name"], message: `got ${JSON.stringify(s.name)}; ${problem}` });
    });
    if (v.podSysctls?.length && v.hostNetwork !== false) {
      ctx.addIssue({
        code: "custom",
        path: ["podSysctls"],
        message:
          "kubelet rejects securityContext.sysctls on hostNetwork pods (net.* sysctls are per network namespace, and a hostNetwork pod shares the node's); the tuner sets them through tune.sh instead — remove podSysctls or set hostNetwork: false",
      });
    }
  });
}

export const kubernetesNodeTunerSpec = tunerRules(z.strictObject(kubernetesNodeTunerShape));

/** The options as a user writes them (defaults optional). */
export type KubernetesNodeTunerOptions = z.input<typeof kubernetesNodeTunerSpec>;
/** Resolved: every default applied, plus the instance name every object is named after. */
export type TunerOptions = z.output<typeof kubernetesNodeTunerSpec> & { name: string };

/** Object names are `edgetune-tuner-<name>`: a DNS label of at most 63 characters. */
const NAME_MAX = 63 - "edgetune-tuner-".length;

/**
 * The one resolution of a tuner's options: defaults applied, or every problem by path.
 * `pending`: fields given as Outputs not yet resolved, checked when they are.
 */
export function resolveTunerOptions(
  name: string,
  input: unknown,
  prefix: readonly PathSegment[] = [],
  pending: readonly string[] = [],
): { value: TunerOptions; issues: [] } | { value?: undefined; issues: ValidationIssue[] } {
  const schema = pending.length ? tunerRules(withPending(kubernetesNodeTunerShape, pending)) : kubernetesNodeTunerSpec;
  const r = resolveWith(schema, input, prefix);
  const issues = [...r.issues];
  if (!grammar.dnsLabel().safeParse(name).success || name.length > NAME_MAX)
    issues.push({
      path: formatPath([...prefix, "name"]),
      message: `got ${JSON.stringify(name)}; allowed: a DNS label of at most ${NAME_MAX} characters (objects are named edgetune-tuner-<name>)`,
    });
  if (issues.length || !r.value) return { issues };
  return { value: { ...(r.value as z.output<typeof kubernetesNodeTunerSpec>), name }, issues: [] };
}
