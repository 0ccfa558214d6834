import { z } from "zod";

/**
 * The one result shape every scenario, tool and target produces. Rates and
 * latencies are what the proxy did; `validity` says whether the figure is
 * the proxy's at all (a saturated load generator measures itself).
 */

export const RESULT_SCHEMA_VERSION = 1 as const;

export const SCENARIO_NAMES = ["http-throughput", "http-latency", "l4-throughput", "conn-rate", "conn-burst", "port-churn"] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/**
 * Lab-only scenarios (lab/proofs/): each proves one setting's effect with its own driver and
 * reports scenario-specific figures in `measures`. They need namespaces and tools a cluster Job
 * does not have, so the Kubernetes suite never runs them.
 */
export const PROOF_SCENARIO_NAMES = [
  "conn-hold",
  "softnet",
  "syn-flood",
  "fin-wait",
  "dead-peer",
  "reuseport",
  "change-under-load",
] as const;
export type ProofScenarioName = (typeof PROOF_SCENARIO_NAMES)[number];
export const LAB_SCENARIO_NAMES = [...SCENARIO_NAMES, ...PROOF_SCENARIO_NAMES] as const;
export type LabScenarioName = (typeof LAB_SCENARIO_NAMES)[number];

/**
 * tcp-churn: components/bench/churn-client.js, short connections the client closes first, at a fixed rate.
 * lab-driver: a proof scenario's own driver (lab/proofs/), which names what it ran in `measures`' keys.
 */
export const TOOLS = ["wrk", "wrk-paced", "iperf3", "tcp-churn", "lab-driver"] as const;
export type ToolName = (typeof TOOLS)[number];
/** The load tools a Scenario (components/bench/scenarios.ts) can be run with, in the lab and in a cluster Job. */
export type LoadToolName = Exclude<ToolName, "lab-driver">;

/**
 * How latency was measured. `closed-loop`: from the moment a request left
 * (wrk): under a stall the generator stops sending, so tails are understated
 * (coordinated omission). `schedule-corrected`: from the request's slot on a
 * constant-rate schedule (wrk-paced.lua, wrk2-style).
 */
export const LATENCY_METHODS = ["closed-loop", "schedule-corrected"] as const;

const finite = z.number().finite();
const nonNeg = finite.nonnegative();
const count = z.number().int().nonnegative();

export const latencySchema = z.strictObject({
  method: z.enum(LATENCY_METHODS),
  p50Ms: nonNeg,
  p90Ms: nonNeg,
  p99Ms: nonNeg,
  p999Ms: nonNeg,
  maxMs: nonNeg.optional(),
  meanMs: nonNeg.optional(),
});

export const validitySchema = z.strictObject({
  valid: z.boolean(),
  /** Why the run is not the proxy's number; empty when valid. */
  reasons: z.array(z.string()),
  /** Load generator CPU as a percentage of the cores it can use (100 = saturated). */
  clientCpuPercent: nonNeg.optional(),
  /** Proxy CPU as a percentage of one core (may exceed 100 with several threads). */
  proxyCpuPercent: nonNeg.optional(),
  retransmits: count.optional(),
  listenOverflows: count.optional(),
  listenDrops: count.optional(),
  /** Proxy node: sockets that left TIME_WAIT (TcpExtTW), a measure of the churn it carried. */
  timeWait: count.optional(),
  /** Proxy node: failed connection attempts (TcpAttemptFails): its connects to the backend failing. */
  attemptFails: count.optional(),
});

export const benchResultSchema = z.strictObject({
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  scenario: z.enum(LAB_SCENARIO_NAMES),
  /** Profile label of the run, e.g. "baseline" or "tuned". */
  profile: z.string().min(1).optional(),
  /** 0-based repetition index within one scenario and profile. */
  run: count.optional(),
  tool: z.enum(TOOLS),
  durationSeconds: finite.positive(),
  concurrency: z.number().int().positive().optional(),
  target: z.string().optional(),
  rps: nonNeg.optional(),
  gbps: nonNeg.optional(),
  connsPerSecond: nonNeg.optional(),
  latency: latencySchema.optional(),
  /** Failed operations by kind (connect, read, write, status, timeout, ...). */
  errors: z.record(z.string(), count),
  validity: validitySchema,
  /** A proof scenario's own figures (e.g. heldConnections, softnetDrops), named in camelCase with their unit. */
  measures: z.record(z.string(), finite).optional(),
});

export type BenchLatency = z.infer<typeof latencySchema>;
export type BenchValidity = z.infer<typeof validitySchema>;
export type BenchResult = z.infer<typeof benchResultSchema>;

/** Validates unknown JSON as a BenchResult; the error names the field. */
export function parseBenchResult(input: unknown, where = "result"): BenchResult {
  const r = benchResultSchema.safeParse(input);
  if (r.success) return r.data;
  const first = r.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new Error(`${where} is not a valid edgetune BenchResult: ${first.join("; ")}`);
}

export function totalErrors(r: Pick<BenchResult, "errors">): number {
  return Object.values(r.errors).reduce((a, b) => a + b, 0);
}

/** The figure a scenario is judged by: rps for HTTP, Gbps for L4, conns/s for connection scenarios. */
export function primaryRate(r: BenchResult): { metric: "rps" | "gbps" | "connsPerSecond"; value: number } | undefined {
  if (r.gbps !== undefined) return { metric: "gbps", value: r.gbps };
  if (r.connsPerSecond !== undefined) return { metric: "connsPerSecond", value: r.connsPerSecond };
  if (r.rps !== undefined) return { metric: "rps", value: r.rps };
  return undefined;
}

export interface ValidityInputs {
  clientCpuPercent?: number;
  proxyCpuPercent?: number;
  retransmits?: number;
  listenOverflows?: number;
  listenDrops?: number;
  timeWait?: number;
  attemptFails?: number;
}

/** At or above this the generator, not the proxy, is the bottleneck. */
export const DEFAULT_CLIENT_CPU_SATURATED_PERCENT = 90;

/**
 * Validity of one run. Listen drops and retransmits are data, not reasons to
 * discard: conn-burst exists to show them. Only a saturated client and a run
 * that completed nothing make the figure meaningless.
 */
export function assessValidity(
  inputs: ValidityInputs,
  completedOps: number,
  saturatedAtPercent = DEFAULT_CLIENT_CPU_SATURATED_PERCENT,
): BenchValidity {
  const reasons: string[] = [];
  if (inputs.clientCpuPercent !== undefined && inputs.clientCpuPercent >= saturatedAtPercent) {
    reasons.push(
      `load generator CPU ${inputs.clientCpuPercent.toFixed(1)}% >= ${saturatedAtPercent}%: the client was the bottleneck, not the proxy`,
    );
  }
  if (completedOps === 0) reasons.push("no request or transfer completed");
  const out: BenchValidity = { valid: reasons.length === 0, reasons };
  for (const k of [
    "clientCpuPercent",
    "proxyCpuPercent",
    "retransmits",
    "listenOverflows",
    "listenDrops",
    "timeWait",
    "attemptFails",
  ] as const) {
    if (inputs[k] !== undefined) out[k] = inputs[k];
  }
  return out;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** (max - min) / median: the relative spread the lab notes judge noise by (±20–30 % is normal here). */
export function relativeSpread(values: readonly number[]): number {
  const m = median(values);
  if (m === 0) return 0;
  return (Math.max(...values) - Math.min(...values)) / m;
}

export interface Comparison {
  scenario: ScenarioName;
  /** Connections or streams of the compared runs: l4-throughput -P 1 and -P 4 are separate comparisons. */
  concurrency?: number;
  metric: "rps" | "gbps" | "connsPerSecond";
  baseline: number;
  tuned: number;
  /** tuned / baseline of the medians of valid runs. */
  ratio: number;
  baselineRuns: number;
  tunedRuns: number;
  /** Largest relative spread of either side; a ratio inside it is noise. */
  spread: number;
  p99RatioTunedOverBaseline?: number;
}

/**
 * tuned/baseline per scenario and concurrency from the medians of valid runs.
 * Groups lacking a valid run on either side are left out rather than
 * compared against nothing.
 */
export function compareProfiles(results: readonly BenchResult[], baseline = "baseline", tuned = "tuned"): Comparison[] {
  const out: Comparison[] = [];
  for (const scenario of SCENARIO_NAMES) {
    const levels = [...new Set(results.filter((r) => r.scenario === scenario).map((r) => r.concurrency))].sort(
      (a, b) => (a ?? 0) - (b ?? 0),
    );
    for (const concurrency of levels) {
      const pick = (profile: string) =>
        results.filter((r) => r.scenario === scenario && r.concurrency === concurrency && r.profile === profile && r.validity.valid);
      const b = pick(baseline);
      const t = pick(tuned);
      if (!b.length || !t.length) continue;
      const metric = primaryRate(b[0])?.metric;
      if (!metric) continue;
      const rates = (rs: BenchResult[]) => rs.map((r) => r[metric]).filter((v): v is number => v !== undefined);
      const [br, tr] = [rates(b), rates(t)];
      if (!br.length || !tr.length) continue;
      const bm = median(br);
      const tm = median(tr);
      const c: Comparison = {
        scenario,
        metric,
        baseline: bm,
        tuned: tm,
        ratio: bm === 0 ? Infinity : tm / bm,
        baselineRuns: br.length,
        tunedRuns: tr.length,
        spread: Math.max(relativeSpread(br), relativeSpread(tr)),
      };
      if (concurrency !== undefined) c.concurrency = concurrency;
      const p99 = (rs: BenchResult[]) => rs.flatMap((r) => (r.latency ? [r.latency.p99Ms] : []));
      const [bp, tp] = [p99(b), p99(t)];
      if (bp.length && tp.length && median(bp) > 0) c.p99RatioTunedOverBaseline = median(tp) / median(bp);
      out.push(c);
    }
  }
  return out;
}
