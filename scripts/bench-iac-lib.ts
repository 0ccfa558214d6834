// Pure helpers of scripts/bench-iac.ts (growth, medians, memory forecasts): no I/O, unit-tested.

/** The median of a non-empty list (the mean of the middle two for an even length). */
export function median(xs: number[]): number {
  if (xs.length === 0) throw new Error("median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * How much `value` grows per 10x `size` between two measurements, assuming a power law
 * (value ∝ size^k, so the factor is 10^k): 10 for linear growth, 1 for constant, 100 for
 * quadratic. Undefined when either point is unusable (non-positive or equal sizes).
 */
export function growthPer10x(a: { size: number; value: number }, b: { size: number; value: number }): number | undefined {
  if (a.size <= 0 || b.size <= 0 || a.value <= 0 || b.value <= 0 || a.size === b.size) return undefined;
  const k = Math.log(b.value / a.value) / Math.log(b.size / a.size);
  return Math.pow(10, k);
}

/** The growth factor per 10x between each consecutive pair of measured points (sorted by size). */
export function growthSeries(
  points: Array<{ size: number; value: number }>,
): Array<{ from: number; to: number; per10x: number | undefined }> {
  const s = [...points].sort((x, y) => x.size - y.size);
  const out: Array<{ from: number; to: number; per10x: number | undefined }> = [];
  for (let i = 1; i < s.length; i++) out.push({ from: s[i - 1].size, to: s[i].size, per10x: growthPer10x(s[i - 1], s[i]) });
  return out;
}

/**
 * The memory a larger size would need, extrapolated linearly from the last two measured
 * points (the per-host slope plus the fixed base); undefined with fewer than two points.
 */
export function forecastLinear(points: Array<{ size: number; value: number }>, size: number): number | undefined {
  const s = [...points].sort((x, y) => x.size - y.size);
  if (s.length < 2) return undefined;
  const [a, b] = s.slice(-2);
  if (b.size === a.size) return undefined;
  const slope = (b.value - a.value) / (b.size - a.size);
  return b.value + slope * (size - b.size);
}

/** Parses `--flag`, `--key value` and `--key=value` arguments (no positional arguments). */
export function parseFlags(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${a}`);
    const eq = a.indexOf("=");
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) out[a.slice(2)] = argv[++i];
    else out[a.slice(2)] = true;
  }
  return out;
}
