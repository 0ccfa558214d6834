import { describe, expect, it } from "vitest";
import { estimateCapacity } from "../../components/proxy/capacity";

describe("estimateCapacity (MarchProxy's sizing formula)", () => {
  it("MarchProxy's example: 100 Gbit/s at 40 Gbit/s per proxy needs 3, plus 1 for N+1 is 4", () => {
    expect(estimateCapacity({ peakGbps: 100, perProxyGbps: 40 })).toEqual({ byThroughput: 3, required: 3, spares: 1, total: 4 });
  });

  it("an exact fit needs no extra proxy, despite floating point (0.3 / 0.1 is 2.9999999999999996)", () => {
    expect(estimateCapacity({ peakGbps: 80, perProxyGbps: 40 }).required).toBe(2);
    expect(estimateCapacity({ peakGbps: 0.3, perProxyGbps: 0.1 }).required).toBe(3);
  });

  it("the request rate decides when it needs more proxies than throughput", () => {
    const e = estimateCapacity({ peakGbps: 10, perProxyGbps: 40, peakRps: 1_000_000, perProxyRps: 300_000, spares: 2 });
    expect(e).toEqual({ byThroughput: 1, byRequestRate: 4, required: 4, spares: 2, total: 6 });
  });
});
