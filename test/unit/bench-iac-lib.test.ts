// The pure helpers of `npm run bench:iac` (scripts/bench-iac.ts). No timings are asserted here.
import { describe, expect, it } from "vitest";
import { forecastLinear, growthPer10x, growthSeries, median, parseFlags } from "../../scripts/bench-iac-lib";

describe("bench:iac helpers", () => {
  it("median: odd and even lengths, input left unsorted", () => {
    const xs = [5, 1, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(/empty/);
  });

  it("growth per 10x: 10 for linear, 1 for constant, 100 for quadratic, whatever the size step", () => {
    expect(growthPer10x({ size: 10, value: 1 }, { size: 100, value: 10 })).toBeCloseTo(10);
    expect(growthPer10x({ size: 500, value: 5 }, { size: 2000, value: 20 })).toBeCloseTo(10);
    expect(growthPer10x({ size: 10, value: 7 }, { size: 1000, value: 7 })).toBeCloseTo(1);
    expect(growthPer10x({ size: 10, value: 1 }, { size: 20, value: 4 })).toBeCloseTo(100);
    expect(growthPer10x({ size: 10, value: 0 }, { size: 100, value: 1 })).toBeUndefined();
    expect(growthPer10x({ size: 10, value: 1 }, { size: 10, value: 2 })).toBeUndefined();
  });

  it("growth series pairs consecutive sizes after sorting", () => {
    const s = growthSeries([
      { size: 100, value: 10 },
      { size: 10, value: 1 },
      { size: 1000, value: 100 },
    ]);
    expect(s.map((g) => [g.from, g.to])).toEqual([
      [10, 100],
      [100, 1000],
    ]);
    for (const g of s) expect(g.per10x).toBeCloseTo(10);
  });

  it("forecast extrapolates the last two points linearly", () => {
    expect(forecastLinear([{ size: 10, value: 200 }], 100)).toBeUndefined();
    expect(
      forecastLinear(
        [
          { size: 10, value: 100 },
          { size: 500, value: 600 },
          { size: 2000, value: 2100 },
        ],
        10_000,
      ),
    ).toBeCloseTo(10_100);
  });

  it("parses --flag, --key value and --key=value", () => {
    expect(parseFlags(["--quick", "--out", "x.json", "--mem-cap=2048"])).toEqual({ quick: true, out: "x.json", "mem-cap": "2048" });
    expect(() => parseFlags(["stray"])).toThrow(/unexpected/);
  });
});
