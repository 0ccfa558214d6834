import { describe, expect, it } from "vitest";
import {
  bootstrapRatio,
  cpuSecondsPer1kRequests,
  cpuSecondsPerGB,
  halfWidth,
  isFinding,
  machineCpuDelta,
  parseProcStat,
  parseTaskStat,
  seededRandom,
  slowModeFlags,
} from "../../components/lab/stats";
import { aggregatePlacement, runCpu } from "../../lab/accounting";

describe("bootstrap interval of a ratio", () => {
  it("is the same for the same seed and differs for another", () => {
    const a = [10, 12, 9, 11, 13, 10, 12, 11, 9, 10];
    const b = [9, 10, 9, 10, 11, 9, 11, 10, 9, 9];
    expect(bootstrapRatio(a, b, { seed: 7 })).toEqual(bootstrapRatio(a, b, { seed: 7 }));
    expect(bootstrapRatio(a, b, { seed: 7 }).lo).not.toBe(bootstrapRatio(a, b, { seed: 8 }).lo);
  });

  it("reports the ratio of means and an interval around it", () => {
    const a = [10, 12, 9, 11, 13, 10, 12, 11, 9, 10];
    const b = [9, 10, 9, 10, 11, 9, 11, 10, 9, 9];
    const ci = bootstrapRatio(a, b);
    expect(ci.ratio).toBeCloseTo(107 / 97, 12);
    expect(ci.lo).toBeLessThan(ci.ratio);
    expect(ci.hi).toBeGreaterThan(ci.ratio);
    expect(ci.n).toBe(10);
    expect(ci.confidence).toBe(0.95);
  });

  it("pairs cancel drift both sides share: the paired interval is narrower than the unpaired one", () => {
    // Both sides drift from 50 to 150 together; the numerator is always 10 % above.
    const b = Array.from({ length: 12 }, (_, i) => 50 + i * 9);
    const a = b.map((x) => x * 1.1);
    const paired = bootstrapRatio(a, b);
    const unpaired = bootstrapRatio(a, b, { paired: false });
    expect(paired.lo).toBeCloseTo(1.1, 9);
    expect(paired.hi).toBeCloseTo(1.1, 9);
    expect(isFinding(paired)).toBe(true);
    expect(unpaired.hi - unpaired.lo).toBeGreaterThan(0.3);
    expect(isFinding(unpaired)).toBe(false);
  });

  it("is a finding only when the interval excludes 1", () => {
    expect(isFinding({ lo: 1.01, hi: 1.2 })).toBe(true);
    expect(isFinding({ lo: 0.8, hi: 0.99 })).toBe(true);
    expect(isFinding({ lo: 0.95, hi: 1.05 })).toBe(false);
    expect(halfWidth({ lo: 0.9, hi: 1.1, ratio: 1 })).toBeCloseTo(0.1, 12);
  });

  it("covers the true ratio about 95 % of the time (seeded simulation)", () => {
    const rand = seededRandom(42);
    const noisy = () => 1 + (rand() - 0.5) * 0.4;
    let covered = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) {
      const b = Array.from({ length: 10 }, () => 100 * noisy());
      const a = Array.from({ length: 10 }, () => 120 * noisy());
      const ci = bootstrapRatio(a, b, { seed: t + 1, resamples: 500 });
      if (ci.lo <= 1.2 && 1.2 <= ci.hi) covered++;
    }
    // Percentile bootstrap with 10 samples undercovers a little; far from 95 % would be a bug.
    expect(covered / trials).toBeGreaterThan(0.85);
    expect(covered / trials).toBeLessThanOrEqual(1);
  });

  it("refuses what it cannot compute, naming the value", () => {
    expect(() => bootstrapRatio([], [1])).toThrow(/at least one sample/);
    expect(() => bootstrapRatio([1, 2], [1])).toThrow(/equal lengths, got 2 and 1/);
    expect(() => bootstrapRatio([1], [1], { confidence: 1 })).toThrow(/confidence 1; allowed: 0 < c < 1/);
    expect(() => bootstrapRatio([1], [1], { resamples: 10 })).toThrow(/resamples 10/);
  });
});

describe("CPU accounting from /proc", () => {
  const STAT = (user: number, system: number, idle: number, softirq: number, steal: number) =>
    `cpu  ${user} 0 ${system} ${idle} 0 0 ${softirq} ${steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n`;

  it("reads the aggregate cpu line and splits process, interrupt and steal time", () => {
    const before = parseProcStat(STAT(1000, 500, 9000, 100, 10));
    const after = parseProcStat(STAT(1150, 600, 9100, 130, 15));
    expect(machineCpuDelta(before, after)).toEqual({ processSeconds: 2.5, interruptSeconds: 0.3, stealSeconds: 0.05, idleSeconds: 1 });
    expect(() => parseProcStat("intr 1\n")).toThrow(/no aggregate "cpu" line/);
  });

  it("reads utime, stime and the last CPU (field 39) of a task whose name has spaces and parentheses", () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[14 - 3] = "120";
    fields[15 - 3] = "30";
    fields[39 - 3] = "1";
    const t = parseTaskStat(`4242 (wrk (x) y) ${fields.join(" ")}`);
    expect(t).toEqual({ comm: "wrk (x) y", ticks: 150, processor: 1 });
    expect(() => parseTaskStat("garbage")).toThrow(/no "\(comm\)"/);
  });

  it("adds the load generator, the namespaces' processes and the kernel's packet work (ksoftirqd included)", () => {
    const names = { client: "c", proxy: "p", backend: "b" };
    const before = { stat: parseProcStat(STAT(0, 0, 0, 0, 0)), ns: { c: 0, p: 100, b: 50 }, softirqThreads: 10 };
    const after = { stat: parseProcStat(STAT(400, 300, 0, 40, 2)), ns: { c: 0, p: 250, b: 80 }, softirqThreads: 35 };
    expect(runCpu(before, after, names, 120)).toEqual({
      clientSeconds: 1.2,
      proxySeconds: 1.5,
      backendSeconds: 0.3,
      interruptSeconds: 0.4 + 0.25,
      softirqThreadSeconds: 0.25,
      totalSeconds: 1.2 + 1.5 + 0.3 + 0.4 + 0.25,
      machineProcessSeconds: 7,
      stealSeconds: 0.02,
    });
  });

  it("turns CPU into seconds per GB and per 1,000 requests", () => {
    // 8 Gbit/s for 10 s = 10 GB; 3 CPU-s → 0.3 per GB.
    expect(cpuSecondsPerGB(3, 8, 10)).toBeCloseTo(0.3, 12);
    // 20,000 req/s for 5 s = 100k requests; 2 CPU-s → 0.02 per 1k.
    expect(cpuSecondsPer1kRequests(2, 20_000, 5)).toBeCloseTo(0.02, 12);
    expect(cpuSecondsPerGB(3, 0, 10)).toBeUndefined();
    expect(cpuSecondsPer1kRequests(3, 0, 10)).toBeUndefined();
  });

  it("groups threads per namespace and command with the CPUs they were on and ran on", () => {
    const line = (comm: string, state: string, cpu: number) => {
      const f = Array.from({ length: 50 }, () => "0");
      f[0] = state;
      f[39 - 3] = String(cpu);
      return `1 (${comm}) ${f.join(" ")}`;
    };
    const p = aggregatePlacement([
      `edgetune-proxy\t${line("haproxy", "R", 0)}`,
      `edgetune-proxy\t${line("haproxy", "S", 1)}`,
      `edgetune-client\t${line("wrk", "R", 0)}`,
      "not a sample",
    ]);
    expect(p).toEqual([
      { namespace: "edgetune-client", comm: "wrk", threads: 1, cpus: { 0: 1 }, runningOn: { 0: 1 } },
      { namespace: "edgetune-proxy", comm: "haproxy", threads: 2, cpus: { 0: 1, 1: 1 }, runningOn: { 0: 1 } },
    ]);
  });

  it("flags slices in the slow mode: below 0.75 × their arm's median", () => {
    expect(slowModeFlags([100, 98, 52, 101, 99])).toEqual([false, false, true, false, false]);
    expect(slowModeFlags([])).toEqual([]);
  });
});
