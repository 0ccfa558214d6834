/**
 * Proxy fleet sizing (pure). MarchProxy's formula: required proxies =
 * ceil(peak traffic / per-proxy throughput), plus spares for N+1 — a node
 * lost at peak must not overload the rest.
 */
export interface CapacityInput {
  /** Peak traffic the fleet must carry, Gbit/s. */
  peakGbps: number;
  /** What one proxy node sustains, Gbit/s (measure it: `edgetune lab` or the bench stack). */
  perProxyGbps: number;
  /** Peak request rate, requests/s; sizes by rate too when given with `perProxyRps`. */
  peakRps?: number;
  /** Requests/s one proxy node sustains. */
  perProxyRps?: number;
  /** Spare proxies on top of the required count. @default 1 (N+1) */
  spares?: number;
}

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

export function estimateCapacity(c: CapacityInput): CapacityEstimate {
  const byThroughput = ceilDiv(c.peakGbps, c.perProxyGbps);
  const byRequestRate = c.peakRps !== undefined && c.perProxyRps !== undefined ? ceilDiv(c.peakRps, c.perProxyRps) : undefined;
  const required = Math.max(byThroughput, byRequestRate ?? 0, 1);
  const spares = c.spares ?? 1;
  return { byThroughput, ...(byRequestRate !== undefined ? { byRequestRate } : {}), required, spares, total: required + spares };
}
