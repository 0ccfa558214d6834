/**
 * The spec of ProxyDaemonSet's Kubernetes options (the `kubernetes` part of `edgetune:proxy`):
 * the one place their defaults, bounds and descriptions are written.
 */
import { z } from "zod";
import { NODE_CRITICAL_PRIORITY } from "../k8s-namespace";
import { tunerLoopSpec } from "../nodes/kubernetes-node-tuner-spec";
import { formatPath, grammar, resolveWith, withPending, type PathSegment, type ValidationIssue } from "../validation";

const resourceNames = z.enum(["cpu", "memory", "ephemeral-storage", "hugepages-2Mi", "hugepages-1Gi"]);
const resources = z.strictObject({
  requests: z.partialRecord(resourceNames, grammar.quantity()).optional(),
  limits: z.partialRecord(resourceNames, grammar.quantity()).optional(),
});

export const proxyDaemonSetShape = {
  namespace: grammar
    .dnsLabel()
    .default("edgetune-proxy")
    .describe("Namespace of the proxy; labelled Pod Security `enforce: privileged` when edgetune creates it (the tuning sidecar)."),
  createNamespace: z
    .boolean()
    .default(true)
    .describe("Create the namespace. false: it exists already; a stack creates each namespace once for every tuner and proxy in it."),
  image: grammar.pinnedImage().describe("Proxy image (proxy-image/ `proxy` target), pinned by tag or digest."),
  tunerImage: grammar
    .pinnedImage()
    .optional()
    .describe("Tuner image for the tuning sidecar, pinned by tag or digest. Required unless `tuneNodes` is false."),
  tuneNodes: z
    .boolean()
    .default(true)
    .describe(
      "Tune the node from the proxy pod: a privileged sidecar (a native sidecar, Kubernetes >= 1.29) runs the tuner loop, and HAProxy starts after its first apply. false: something else tunes the nodes (a tuner DaemonSet, e.g. a benchmark that measures the baseline first); the pod then has no privileged container.",
    ),
  onTuningFailure: z
    .enum(["fail", "continue"])
    .default("fail")
    .describe(
      "`fail`: HAProxy starts only once the tuning is ready under `tuning.readyWhen` (the sidecar's startup probe, `tuner.sh ready`; until then the pod is not ready and the probe event says why); `continue`: HAProxy starts once the first apply has finished, whatever its result, and the entrypoint's check warns about every parameter below the profile.",
    ),
  resources: resources
    .default({ requests: { cpu: "500m", memory: "256Mi" }, limits: { memory: "1Gi" } })
    .describe("The proxy container's resources."),
  minReadySeconds: grammar.int(0, 3600).default(10).describe("Seconds a new pod must be ready before the roll moves on."),
  maxUnavailable: grammar
    .countOrPercent()
    .optional()
    .describe(
      'Nodes whose proxy may be down at once during a roll with `handover: replace`: a count or "N%". Default: 1. Not with `handover: surge`, which rolls with maxSurge 1 and maxUnavailable 0.',
    ),
  handover: z
    .enum(["replace", "surge"])
    .default("replace")
    .describe(
      "How a node's proxy pod is replaced when the pod template changes (image, tuning; config changes reload in place). `replace`: the old pod drains (`drainSeconds`) and stops, then the new one starts (maxSurge 0): the node is out of service in between. `surge`: the new pod starts beside the old one and binds the same ports with SO_REUSEPORT (hostNetwork), and the old one is stopped once the new one is ready (maxSurge 1, maxUnavailable 0): no gap. Needs `hostPorts: false` (declared hostPorts make the scheduler refuse the second pod on the node), no tuning sidecar metrics port, and Kubernetes >= 1.25 (DaemonSet maxSurge GA).",
    ),
  hostPorts: z
    .boolean()
    .default(true)
    .describe(
      "Declare the listener, metrics and health ports as hostPorts of the proxy container (the scheduler then knows them, and a second pod binding them cannot land on the node). false: HAProxy binds them on the node's network (hostNetwork) undeclared; required by `handover: surge`.",
    ),
  drainSeconds: grammar
    .int(0, 3600)
    .default(15)
    .describe(
      "Seconds a stopping proxy answers 503 on its health endpoint while still serving, before the soft stop (the pod's preStop hook), so a load balancer that health-checks the node stops sending new connections first. The default covers a check every 5 s with 2 failures to mark down plus 5 s for requests already sent; slower checks need interval x unhealthy threshold. 0: stop at once. terminationGracePeriodSeconds must hold it plus the config's timeouts.hardStopAfterSeconds.",
    ),
  configPollSeconds: grammar
    .int(0, 3600)
    .default(5)
    .describe(
      "How often the proxy container checks its mounted haproxy.cfg (kubelet updates a ConfigMap volume within about a minute): a changed, valid config is loaded with a hitless reload (SIGUSR2, listening sockets handed over), an invalid one is refused and logged while the running one keeps serving; config-only changes then do not roll the pods. 0: no watch; a config change rolls the pods instead.",
    ),
  podDisruptionBudget: z
    .strictObject({ maxUnavailable: grammar.countOrPercent() })
    .optional()
    .describe("Create a PodDisruptionBudget with this maxUnavailable (drains). Default: none."),
  priorityClassName: z
    .string()
    .refine(
      (v) => v === "" || grammar.dnsSubdomain().safeParse(v).success,
      'allowed: a DNS subdomain (a PriorityClass name), or "" for none',
    )
    .default(NODE_CRITICAL_PRIORITY)
    .describe(
      'Priority class of the proxy pods: by default the last to be evicted or preempted on a node under pressure, like the tuner. "": none (the cluster\'s default priority).',
    ),
  nodeSelector: grammar.labels().optional().describe("Nodes that run the proxy. Default: every node."),
  tolerations: z.array(grammar.toleration()).optional().describe("Taints to tolerate. Default: none."),
  metricsService: z.boolean().default(true).describe("Create a ClusterIP Service for the metrics port."),
  prometheusScrapeAnnotations: z.boolean().default(false).describe("Add prometheus.io/* scrape annotations to the pods and the Service."),
  podSecurityVersion: grammar.podSecurityVersion(),
  terminationGracePeriodSeconds: z
    .number()
    .int()
    .min(1, "allowed: an integer >= 1")
    .default(60)
    .describe(
      "Seconds a stopping pod gets before SIGKILL: the preStop drain (`drainSeconds`), then HAProxy's soft stop, which its config's timeouts.hardStopAfterSeconds bounds; must be at least their sum. When the proxy is removed, the tuning sidecar restores the node after HAProxy has exited, within the same bound.",
    ),
  tuning: tunerLoopSpec
    .optional()
    .describe(
      "The tuning sidecar's loop (with tuneNodes): the tuner's verifyIntervalSeconds, reapplyOnDrift, nicPollSeconds, restoreOnRemove, readyWhen and metrics, with the tuner's defaults.",
    ),
};

export function proxyDaemonSetRules<T extends z.ZodType<{ tuneNodes?: boolean; tunerImage?: unknown; tuning?: unknown }>>(schema: T): T {
  return schema.superRefine((v, ctx) => {
    if (v.tuneNodes === false && v.tuning !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["tuning"],
        message: "given with tuneNodes: false, where no tuning sidecar runs; remove it or set tuneNodes: true",
      });
    if (v.tuneNodes !== false && v.tunerImage === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["tunerImage"],
        message: "required: the tuning sidecar runs it (or set tuneNodes: false when something else tunes the nodes)",
      });
  });
}

export const proxyDaemonSetSpec = proxyDaemonSetRules(z.strictObject(proxyDaemonSetShape));

/** The options as a user writes them (defaults optional). */
export type ProxyDaemonSetOptions = z.input<typeof proxyDaemonSetSpec>;
/** Resolved, plus the instance name every object is named after. */
export type ProxyK8sOptions = z.output<typeof proxyDaemonSetSpec> & { name: string };
export type TuningFailurePolicy = ProxyK8sOptions["onTuningFailure"];

/** Object names are `edgetune-proxy-<name>` plus suffixes such as "-metrics": at most 40. */
const NAME_MAX = 40;

/** The one resolution of the proxy's Kubernetes options. `pending`: Outputs checked when they resolve. */
export function resolveProxyDaemonSetOptions(
  name: string,
  input: unknown,
  prefix: readonly PathSegment[] = [],
  pending: readonly string[] = [],
): { value: ProxyK8sOptions; issues: [] } | { value?: undefined; issues: ValidationIssue[] } {
  const schema = pending.length ? proxyDaemonSetRules(withPending(proxyDaemonSetShape, pending)) : proxyDaemonSetSpec;
  const r = resolveWith(schema, input, prefix);
  const issues = [...r.issues];
  if (!grammar.dnsLabel().safeParse(name).success || name.length > NAME_MAX)
    issues.push({
      path: formatPath([...prefix, "name"]),
      message: `got ${JSON.stringify(name)}; allowed: a DNS label of at most ${NAME_MAX} characters`,
    });
  if (issues.length || !r.value) return { issues };
  return { value: { ...(r.value as z.output<typeof proxyDaemonSetSpec>), name }, issues: [] };
}
