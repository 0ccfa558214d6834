import { z } from "zod";
import { compareProfiles, median, SCENARIO_NAMES, totalErrors, type BenchResult, type ScenarioName } from "./result";

/**
 * Per-stack pass/fail limits. Each limit is checked against the median of the
 * judged profile's valid runs, so one noisy run neither passes nor fails a
 * stack (the lab notes measure ±20–30 % drift on a busy 2-vCPU node).
 */
export const scenarioThresholdsSchema = z.strictObject({
  minRps: z.number().nonnegative().optional(),
  minGbps: z.number().nonnegative().optional(),
  minConnsPerSecond: z.number().nonnegative().optional(),
  maxP99Ms: z.number().positive().optional(),
  maxP999Ms: z.number().positive().optional(),
  /** Errors of all kinds, summed over one run (median across runs). */
  maxErrors: z.number().int().nonnegative().optional(),
  /** Proxy-side ListenOverflows during one run. */
  maxListenOverflows: z.number().int().nonnegative().optional(),
  /** tuned/baseline of the primary rate; needs both profiles' results. */
  minTunedOverBaseline: z.number().positive().optional(),
});

export const thresholdsSchema = z.partialRecord(z.enum(SCENARIO_NAMES), scenarioThresholdsSchema);

export type ScenarioThresholds = z.infer<typeof scenarioThresholdsSchema>;
export type Thresholds = z.infer<typeof thresholdsSchema>;

export interface Violation {
  scenario: ScenarioName;
  /** The threshold key, e.g. "maxP99Ms", or "validRuns" when nothing could be judged. */
  threshold: keyof ScenarioThresholds | "validRuns";
  limit?: number;
  actual?: number;
  message: string;
}

export interface ThresholdVerdict {
  passed: boolean;
  violations: Violation[];
}

export interface EvaluateOptions {
  /** Profile whose runs the absolute limits judge; default "tuned", or every result when none carries a profile. */
  profile?: string;
  baselineProfile?: string;
}

/** Every threshold checked; a scenario with thresholds but no valid run is a violation, never a pass. */
export function evaluateThresholds(results: readonly BenchResult[], thresholds: Thresholds, opts: EvaluateOptions = {}): ThresholdVerdict {
  const judged = opts.profile ?? "tuned";
  const baseline = opts.baselineProfile ?? "baseline";
  const anyProfile = results.some((r) => r.profile !== undefined);
  const violations: Violation[] = [];
  const comparisons = compareProfiles(results, baseline, judged);

  for (const scenario of SCENARIO_NAMES) {
    const t = thresholds[scenario];
    if (!t) continue;
    const mine = results.filter((r) => r.scenario === scenario && (!anyProfile || r.profile === judged));
    const valid = mine.filter((r) => r.validity.valid);
    if (!valid.length) {
      const why = mine.flatMap((r) => r.validity.reasons);
      violations.push({
        scenario,
        threshold: "validRuns",
        actual: 0,
        message: `${scenario}: no valid ${anyProfile ? `"${judged}" ` : ""}run to judge${why.length ? ` (${[...new Set(why)].join("; ")})` : ""}`,
      });
      continue;
    }
    const med = (f: (r: BenchResult) => number | undefined): number | undefined => {
      const v = valid.map(f).filter((x): x is number => x !== undefined);
      return v.length ? median(v) : undefined;
    };
    const atLeast = (key: keyof ScenarioThresholds, unit: string, actual: number | undefined) => {
      const limit = t[key];
      if (limit === undefined) return;
      if (actual === undefined)
        violations.push({ scenario, threshold: key, limit, message: `${scenario}: ${key} ${limit} set but the runs report no ${unit}` });
      else if (actual < limit)
        violations.push({ scenario, threshold: key, limit, actual, message: `${scenario}: ${fmt(actual)} ${unit} < ${key} ${limit}` });
    };
    const atMost = (key: keyof ScenarioThresholds, unit: string, actual: number | undefined) => {
      const limit = t[key];
      if (limit === undefined) return;
      if (actual === undefined)
        violations.push({ scenario, threshold: key, limit, message: `${scenario}: ${key} ${limit} set but the runs report no ${unit}` });
      else if (actual > limit)
        violations.push({ scenario, threshold: key, limit, actual, message: `${scenario}: ${fmt(actual)} ${unit} > ${key} ${limit}` });
    };
    atLeast(
      "minRps",
      "requests/s",
      med((r) => r.rps),
    );
    atLeast(
      "minGbps",
      "Gbit/s",
      med((r) => r.gbps),
    );
    atLeast(
      "minConnsPerSecond",
      "connections/s",
      med((r) => r.connsPerSecond),
    );
    atMost(
      "maxP99Ms",
      "ms p99",
      med((r) => r.latency?.p99Ms),
    );
    atMost(
      "maxP999Ms",
      "ms p99.9",
      med((r) => r.latency?.p999Ms),
    );
    atMost("maxErrors", "errors", med(totalErrors));
    atMost(
      "maxListenOverflows",
      "listen overflows",
      med((r) => r.validity.listenOverflows),
    );
    if (t.minTunedOverBaseline !== undefined) {
      const cs = comparisons.filter((c) => c.scenario === scenario);
      if (!cs.length) {
        violations.push({
          scenario,
          threshold: "minTunedOverBaseline",
          limit: t.minTunedOverBaseline,
          message: `${scenario}: minTunedOverBaseline set but there is no valid "${baseline}" and "${judged}" pair to compare`,
        });
      }
      for (const c of cs) {
        if (c.ratio < t.minTunedOverBaseline) {
          const at = c.concurrency !== undefined ? ` at concurrency ${c.concurrency}` : "";
          violations.push({
            scenario,
            threshold: "minTunedOverBaseline",
            limit: t.minTunedOverBaseline,
            actual: c.ratio,
            message: `${scenario}${at}: ${judged}/${baseline} ${c.metric} ratio ${fmt(c.ratio)} < ${t.minTunedOverBaseline}`,
          });
        }
      }
    }
  }
  return { passed: violations.length === 0, violations };
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toPrecision(4);
}
