/**
 * The spec of BenchmarkSuite (a stack's `edgetune:benchmark`): the one place its options,
 * defaults, bounds and descriptions are written. The component, the Job builder (k8s-jobs.ts),
 * the stack loader and the reference take them from here.
 */
import { z } from "zod";
import { grammar, resolveWith, withPending, type PathSegment, type ValidationIssue } from "../validation";
import { SCENARIO_NAMES } from "./result";
import { thresholdsSchema } from "./thresholds";

export const benchImagesSpec = z.strictObject({
  loadgen: grammar
    .pinnedImage()
    .describe("Runs every Job: wrk, iperf3, node, nstat (iproute2), curl, jq and a POSIX sh; proxy-image/Dockerfile's `loadgen` target."),
  backend: grammar
    .pinnedImage()
    .optional()
    .describe("The backend's image: nginx (HTTP echo on :8080) and iperf3 -s (:5201). Default: `loadgen`, which has both."),
});

export const benchmarkSuiteShape = {
  namespace: grammar
    .dnsLabel()
    .describe(
      "Namespace of the backend and the Jobs; labelled Pod Security `enforce: privileged` when edgetune creates it (the counters pods are hostNetwork).",
    ),
  createNamespace: z
    .boolean()
    .default(true)
    .describe("Create the namespace. false: it exists already and admits hostNetwork pods (Pod Security privileged)."),
  podSecurityVersion: grammar.podSecurityVersion(),
  profiles: z
    .array(z.string())
    .min(1)
    .max(2)
    .default(["tuned"])
    .describe(
      "Profile labels to run, in order; with [baseline, tuned] the baseline Jobs finish before the tuned ones start, on the same nodes.",
    ),
  scenarios: z.array(z.enum(SCENARIO_NAMES)).min(1).describe("Scenarios to run, in this order, one Job each."),
  quick: z.boolean().default(false).describe("Short durations (the scenarios' `--quick` variants)."),
  proxyHost: grammar
    .host()
    .optional()
    .describe(
      "Where the load generator reaches the proxy. Default: discovered per Job, the node of that Job's counters pod (a node running a proxy pod), so the load and the counters are on one node.",
    ),
  proxyNamespace: grammar
    .dnsLabel()
    .optional()
    .describe("Namespace of the proxy pods (`proxyPodLabels`). Default: the stack's `proxy.kubernetes.namespace`, else edgetune-proxy."),
  httpPort: grammar.port().default(80).describe("HTTP listener port."),
  l4Port: grammar.port().default(5201).describe("L4 (TCP) listener port, for iperf3."),
  churnPort: grammar
    .port()
    .default(81)
    .describe(
      "TCP-mode listener to the HTTP backend, for port-churn: the client closes first, so the proxy holds its backend connections' TIME_WAIT.",
    ),
  proxyPodLabels: grammar
    .labels()
    .describe("The proxy DaemonSet's pod labels: load generators never share a node with them, counters pods always do."),
  images: benchImagesSpec.describe("Images of the Jobs and the backend, pinned."),
  httpLatencyRateRps: z
    .number()
    .positive()
    .optional()
    .describe("Offered rate for http-latency, requests/s; required when it is in `scenarios` (e.g. half a measured http-throughput)."),
  thresholds: thresholdsSchema.default({}).describe("Pass/fail limits per scenario (see Thresholds)."),
  kubeconfigPath: grammar
    .absolutePath()
    .optional()
    .describe("Kubeconfig path for kubectl in the collect steps. Default: kubectl's own ($KUBECONFIG or ~/.kube/config)."),
};

export function benchmarkRules<T extends z.ZodType<{ scenarios?: readonly string[]; httpLatencyRateRps?: number }>>(schema: T): T {
  return schema.superRefine((v, ctx) => {
    if (v.scenarios?.includes("http-latency") && v.httpLatencyRateRps === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["httpLatencyRateRps"],
        message: "required when scenarios include http-latency (the offered rate, e.g. half the measured http-throughput)",
      });
    }
  });
}

export const benchmarkSuiteSpec = benchmarkRules(z.strictObject(benchmarkSuiteShape));

/** The options as a user writes them (defaults optional). */
export type BenchmarkSuiteOptions = z.input<typeof benchmarkSuiteSpec>;
/** Every default applied. */
export type BenchmarkConfig = z.output<typeof benchmarkSuiteSpec>;
export type BenchImages = z.output<typeof benchImagesSpec>;
export type BenchImagesInput = z.input<typeof benchImagesSpec>;

/** The one resolution of the suite's options. `pending`: Outputs checked when they resolve. */
export function resolveBenchmarkSuiteOptions(
  input: unknown,
  prefix: readonly PathSegment[] = [],
  pending: readonly string[] = [],
): { value: BenchmarkConfig; issues: [] } | { value?: undefined; issues: ValidationIssue[] } {
  const schema = pending.length ? benchmarkRules(withPending(benchmarkSuiteShape, pending)) : benchmarkSuiteSpec;
  return resolveWith(schema, input, prefix) as ReturnType<typeof resolveBenchmarkSuiteOptions>;
}
