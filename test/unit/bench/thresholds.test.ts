import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseIperf3, parseWrk } from "../../../components/bench/parsers";
import { renderMarkdown, renderSvgChart, renderTable } from "../../../components/bench/report";
import { compareProfiles, median, relativeSpread, type BenchResult } from "../../../components/bench/result";
import { evaluateThresholds, thresholdsSchema } from "../../../components/bench/thresholds";

const fixture = (name: string) => readFileSync(join(__dirname, "../../fixtures/bench", name), "utf8");
const root = join(__dirname, "../../..");

// Recorded runs from this machine, labelled as an A/B pair: the backlog-16 burst as
// "baseline", the default-backlog Connection: close run as "tuned".
const baseline = parseWrk(fixture("wrk-burst.txt"), {
  scenario: "conn-burst",
  profile: "baseline",
  run: 0,
  concurrency: 2000,
  connectionClose: true,
  validity: { listenOverflows: 12665 },
});
const tuned = parseWrk(fixture("wrk-connclose.txt"), {
  scenario: "conn-burst",
  profile: "tuned",
  run: 0,
  concurrency: 2000,
  connectionClose: true,
  validity: { listenOverflows: 0 },
});
const l4 = parseIperf3(fixture("iperf3-p1.json"), { scenario: "l4-throughput", profile: "tuned" });

describe("evaluateThresholds", () => {
  it("passes when every limit holds and fails naming the limit and the actual value", () => {
    expect(
      evaluateThresholds([baseline, tuned], {
        "conn-burst": { minConnsPerSecond: 50_000, maxP99Ms: 10, maxListenOverflows: 0, maxErrors: 0 },
      }),
    ).toEqual({ passed: true, violations: [] });
    const v = evaluateThresholds([baseline, tuned], { "conn-burst": { maxP99Ms: 1, minConnsPerSecond: 200_000 } });
    expect(v.passed).toBe(false);
    expect(v.violations.map((x) => x.threshold)).toEqual(["minConnsPerSecond", "maxP99Ms"]);
    expect(v.violations[1]).toMatchObject({ limit: 1, actual: 4.754 });
    expect(v.violations[1].message).toBe("conn-burst: 4.754 ms p99 > maxP99Ms 1");
  });

  it("judges the tuned profile, and the tuned/baseline ratio against the baseline", () => {
    // The baseline alone would fail maxP99Ms (469 ms); only the tuned runs are judged.
    expect(evaluateThresholds([baseline, tuned], { "conn-burst": { maxP99Ms: 10 } }).passed).toBe(true);
    const ratio = tuned.connsPerSecond! / baseline.connsPerSecond!;
    expect(evaluateThresholds([baseline, tuned], { "conn-burst": { minTunedOverBaseline: 1.05 } }).passed).toBe(true);
    const v = evaluateThresholds([baseline, tuned], { "conn-burst": { minTunedOverBaseline: 1.2 } });
    expect(v.violations[0]).toMatchObject({ threshold: "minTunedOverBaseline", actual: ratio });
    expect(evaluateThresholds([tuned], { "conn-burst": { minTunedOverBaseline: 1 } }).violations[0].message).toMatch(
      /no valid "baseline" and "tuned" pair/,
    );
  });

  it("never passes a scenario whose only runs are invalid or missing", () => {
    // iperf3 on loopback saturates its own single thread: the run is invalid.
    const v = evaluateThresholds([l4], { "l4-throughput": { minGbps: 1 }, "http-latency": { maxP99Ms: 5 } });
    expect(v.passed).toBe(false);
    expect(v.violations.map((x) => [x.scenario, x.threshold])).toEqual([
      ["http-latency", "validRuns"],
      ["l4-throughput", "validRuns"],
    ]);
    expect(v.violations[1].message).toMatch(/load generator CPU 9\d\.\d%/);
  });

  it("validates threshold config keys strictly", () => {
    expect(thresholdsSchema.safeParse({ "conn-burst": { maxP99: 5 } }).success).toBe(false);
    expect(thresholdsSchema.safeParse({ "no-such-scenario": { maxP99Ms: 5 } }).success).toBe(false);
  });
});

describe("median, spread and comparison", () => {
  it("computes medians and relative spread", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(relativeSpread([80, 100, 120])).toBeCloseTo(0.4);
    expect(() => median([])).toThrow(/no values/);
  });

  it("compares medians of valid runs only", () => {
    const fast: BenchResult = { ...tuned, run: 1, connsPerSecond: 1e9, validity: { valid: false, reasons: ["client saturated"] } };
    const [c] = compareProfiles([baseline, tuned, fast]);
    expect(c.tunedRuns).toBe(1);
    expect(c.tuned).toBe(tuned.connsPerSecond);
    expect(c.p99RatioTunedOverBaseline).toBeCloseTo(4.754 / 469.499, 6);
  });
});

describe("reports", () => {
  it("render the comparison as table, Markdown and a well-formed SVG", () => {
    const results = [baseline, tuned];
    expect(renderTable(results)).toMatch(/conn-burst\s+baseline\s+2000\s+1\s+94,356 conn\/s/);
    const md = renderMarkdown(results, { verdict: evaluateThresholds(results, { "conn-burst": { maxP99Ms: 1 } }) });
    expect(md).toContain("**Thresholds: FAILED** (1 violation)");
    expect(md).toMatch(/\| conn-burst \| 2000 \| conn\/s \| 94,356 \| 99,960 \| 1\.06/);
    const svg = renderSvgChart(results);
    expect(svg.startsWith("<svg ")).toBe(true);
    expect(svg).toContain(">106 % (99,960 conn/s)<");
    expect(svg).toContain("p99 469 · p99.9 1,452 ms");
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    expect(renderSvgChart(results, { title: "<&>" })).toContain("&lt;&amp;&gt;");
  });
});

describe("scripts/check-bench.js on recorded results", () => {
  const dir = mkdtempSync(join(tmpdir(), "check-bench-"));
  const runCheck = (doc: unknown) => {
    const file = join(dir, `out-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, typeof doc === "string" ? doc : JSON.stringify(doc));
    return spawnSync(process.execPath, [join(root, "scripts/check-bench.js"), file], { encoding: "utf8" });
  };
  const results = [baseline, tuned];

  it("exits 0 when passed", () => {
    const r = runCheck({ benchmark: { ...evaluateThresholds(results, { "conn-burst": { maxP99Ms: 10 } }), results } });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("check-bench: passed (2 results)");
  });

  it("exits 1 and prints every violation when not passed", () => {
    const r = runCheck({
      benchmark: { ...evaluateThresholds(results, { "conn-burst": { maxP99Ms: 1, minTunedOverBaseline: 2 } }), results },
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("FAILED, 2 violations");
    expect(r.stdout).toContain("conn-burst: 4.754 ms p99 > maxP99Ms 1");
    expect(r.stdout).toContain("conn-burst at concurrency 2000: tuned/baseline connsPerSecond ratio 1.059 < 2");
  });

  it("exits 2 when the input has no passed flag or is not JSON", () => {
    expect(runCheck({ benchmark: { violations: [] } }).status).toBe(2);
    expect(runCheck("not json").stderr).toContain("input is not JSON");
  });
});
