import { z } from "zod";
import { formatPath, show, type ValidationIssue } from "../tuning/profile";
import { SCENARIO_NAMES } from "./result";
import { thresholdsSchema } from "./thresholds";
import type { BenchmarkSuiteArgs } from "./benchmark-suite";

/** A stack's `edgetune:benchmark` section: BenchmarkSuite's arguments as plain config. */
export const benchmarkConfigSchema = z.strictObject({
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "a Kubernetes namespace name"),
  profiles: z.array(z.string()).min(1).max(2).default(["tuned"]),
  scenarios: z.array(z.enum(SCENARIO_NAMES)).min(1),
  quick: z.boolean().default(false),
  proxyHost: z.string().min(1),
  httpPort: z.number().int().min(1).max(65535).default(80),
  l4Port: z.number().int().min(1).max(65535).default(5201),
  proxyPodLabels: z.record(z.string(), z.string()),
  images: z.strictObject({ loadgen: z.string(), fortio: z.string().optional() }),
  httpLatencyRateRps: z.number().positive().optional(),
  backendClusterIP: z.ipv4().optional(),
  thresholds: thresholdsSchema.default({}),
  kubeconfigPath: z.string().optional(),
});

export type BenchmarkConfig = z.infer<typeof benchmarkConfigSchema>;

/** Validates the section; every problem becomes an issue naming `benchmark.<key>`. */
export function checkBenchmarkConfig(input: unknown, profileNames: string[], issues: ValidationIssue[]): BenchmarkConfig | undefined {
  if (input === undefined) return undefined;
  const r = benchmarkConfigSchema.safeParse(input);
  if (!r.success) {
    for (const i of r.error.issues) issues.push({ path: formatPath(["benchmark", ...i.path.filter((p): p is string | number => typeof p !== "symbol")]), message: i.message });
    return undefined;
  }
  r.data.profiles.forEach((p, i) => {
    if (!profileNames.includes(p)) issues.push({ path: formatPath(["benchmark", "profiles", i]), message: `got ${show(p)}; allowed: one of the profiles ${profileNames.join(", ")}` });
  });
  if (r.data.scenarios.includes("http-latency") && r.data.httpLatencyRateRps === undefined) {
    issues.push({ path: "benchmark.httpLatencyRateRps", message: "required when scenarios include http-latency (the offered rate, e.g. half the measured http-throughput)" });
  }
  return r.data;
}

/** The config as BenchmarkSuite arguments (the same shape; kept as one place to map). */
export function benchmarkSuiteArgs(c: BenchmarkConfig): BenchmarkSuiteArgs {
  return { ...c };
}
