import { describe, expect, it } from "vitest";
import { parseBenchResult, type BenchResult } from "../../components/bench/result";
import { NOISE_FACTOR, pathComparisons, renderLabTable, variantComparisons, type LabReport } from "../../components/lab/analysis";

const res = (
  profile: string,
  scenario: BenchResult["scenario"],
  rate: Partial<Pick<BenchResult, "rps" | "gbps">>,
  o: { c?: number; p99?: number; valid?: boolean; proxyCpu?: number } = {},
): BenchResult =>
  parseBenchResult({
    schemaVersion: 1,
    scenario,
    profile,
    tool: scenario === "l4-throughput" ? "iperf3" : "wrk",
    durationSeconds: 10,
    concurrency: o.c ?? 1,
    ...rate,
    ...(o.p99 !== undefined ? { latency: { method: "closed-loop", p50Ms: 1, p90Ms: 1, p99Ms: o.p99, p999Ms: o.p99 } } : {}),
    errors: {},
    validity: {
      valid: o.valid ?? true,
      reasons: o.valid === false ? ["load generator CPU 95.0% >= 90%"] : [],
      ...(o.proxyCpu !== undefined ? { proxyCpuPercent: o.proxyCpu } : {}),
    },
  });

describe("lab variants against tuned", () => {
  const results = [
    ...[100, 110, 90].map((rps) => res("tuned", "http-throughput", { rps }, { c: 64, p99: 2 })),
    ...[60, 70, 65].map((rps) => res("rps-on", "http-throughput", { rps }, { c: 64, p99: 4 })),
    ...[40, 42].map((gbps) => res("tuned", "l4-throughput", { gbps })),
    ...[38, 41].map((gbps) => res("offloads-off", "l4-throughput", { gbps })),
    // An invalid run never counts, however large.
    res("offloads-off", "l4-throughput", { gbps: 400 }, { valid: false }),
  ];
  const v = variantComparisons(results, [{ label: "rps-on", why: "no spare core" }, { label: "offloads-off" }]);

  it("compares medians of valid runs and calls a difference beyond the noise factor", () => {
    expect(v.map((x) => [x.variant, x.scenario, x.concurrency, x.verdict])).toEqual([
      ["rps-on", "http-throughput", 64, "hurts"],
      ["offloads-off", "l4-throughput", 1, "within noise"],
    ]);
    expect(v[0].ratio).toBeCloseTo(65 / 100, 9);
    expect(v[0].p99RatioOverTuned).toBe(2);
    expect(v[0].why).toBe("no spare core");
    expect(v[1].ratio).toBeCloseTo(39.5 / 41, 9);
  });

  it("calls help and harm symmetrically at the noise factor", () => {
    const at = (ratio: number) =>
      variantComparisons([res("tuned", "conn-rate", { rps: 100 }), res("v", "conn-rate", { rps: 100 * ratio })], [{ label: "v" }])[0]
        .verdict;
    expect([at(NOISE_FACTOR), at(1.29), at(1 / 1.29), at(1 / NOISE_FACTOR)]).toEqual(["helps", "within noise", "within noise", "hurts"]);
  });

  it("prints one line per variant and scenario in the terminal table", () => {
    const report = { results, comparisons: [], paths: [], variants: v } as unknown as LabReport;
    expect(renderLabTable(report)).toContain("rps-on http-throughput c64: 0.65 × tuned (spread 20 %, p99 × 2.00) → hurts");
  });
});

describe("lab path ratios", () => {
  it("divides the tuned proxy's median by the references' and marks a client-bound reference as an upper bound", () => {
    const p = pathComparisons([
      ...[40, 44, 42].map((gbps) => res("tuned", "l4-throughput", { gbps }, { proxyCpu: 50 })),
      ...[20, 22].map((gbps) => res("no-splice", "l4-throughput", { gbps }, { proxyCpu: 100 })),
      // A slow reference run (scheduler placement) is the one its client did not saturate:
      // it must not become the reference on its own.
      ...[96, 98].map((gbps) => res("forward", "l4-throughput", { gbps }, { valid: false })),
      res("forward", "l4-throughput", { gbps: 49 }),
      res("direct", "l4-throughput", { gbps: 100 }),
      // A saturated proxied run is the client's figure, never the proxy's.
      res("tuned", "l4-throughput", { gbps: 400 }, { valid: false }),
    ]);
    expect(p).toHaveLength(1);
    expect(p[0].proxyOverForward).toBeCloseTo(42 / 96, 9);
    expect(p[0].proxyOverDirect).toBeCloseTo(0.42, 9);
    expect(p[0].referenceClientBound).toBe(true);
    expect(p[0].spliceOverCopy).toBeCloseTo(42 / 21, 9);
    // 50 % of a core moving 42 Gbit/s (5.25 GB/s): 0.5 / 5.25 CPU-s per GB.
    expect(p[0].proxyCpuSecondsPerGB?.splice).toBeCloseTo(0.5 / (42 / 8), 9);
  });
});
