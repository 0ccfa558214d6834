import { z } from "zod";
import { grammar } from "../validation";

/**
 * Proxy fleet sizing (pure). MarchProxy's formula: required proxies =
 * ceil(peak traffic / per-proxy throughput), plus spares for N+1 — a node
 * lost at peak must not overload the rest.
 */
/** The spec of the capacity estimate (a stack's `edgetune:capacity`). */
export const capacitySpec = z
  .strictObject({
    peakGbps: z.number().positive().describe("Peak traffic the fleet must carry, Gbit/s."),
    perProxyGbps: z.number().positive().describe("What one proxy node sustains, Gbit/s (measure it: `edgetune lab` or the bench stack)."),
    peakRps: z.number().positive().optional().describe("Peak request rate, requests/s; sizes by rate too, with perProxyRps."),
    perProxyRps: z.number().positive().optional().describe("Requests/s one proxy node sustains."),
    spares: grammar
      .int(0, 1000)
      .default(1)
      .describe("Spare proxies on top of the required count (N+1: one node lost at peak must not overload the rest)."),
  })
  .superRefine((c, ctx) => {
    if ((c.peakRps === undefined) !== (c.perProxyRps === undefined))
      ctx.addIssue({ code: "custom", path: ["perProxyRps"], message: "allowed: peakRps and perProxyRps together, or neither" });
  });

export type CapacityInput = z.input<typeof capacitySpec>;

export interface CapacityEstimate {
  /** ceil(peakGbps / perProxyGbps). */
  byThroughput: number;
  /** ceil(peakRps / perProxyRps), when both are given. */
  byRequestRate?: number;
  /** The larger of the two: the count that carries the peak with nothing failed. */
  required: number;
  spares: number;
  /** required + spares: the count to deploy. */
  total: number;
}

// 100 / 40 in floating point is exactly 2.5, but e.g. 0.3 / 0.1 is 2.9999999999999996:
// round to 1e-9 first so an exact fit does not become a spurious extra proxy or a missing one.
const ceilDiv = (a: number, b: number) => Math.ceil(Math.round((a / b) * 1e9) / 1e9);

export function estimateCapacity(input: CapacityInput): CapacityEstimate {
  const c = capacitySpec.parse(input);
  const byThroughput = ceilDiv(c.peakGbps, c.perProxyGbps);
  const byRequestRate = c.peakRps !== undefined && c.perProxyRps !== undefined ? ceilDiv(c.peakRps, c.perProxyRps) : undefined;
  const required = Math.max(byThroughput, byRequestRate ?? 0, 1);
  const spares = c.spares;
  return { byThroughput, ...(byRequestRate !== undefined ? { byRequestRate } : {}), required, spares, total: required + spares };
}
