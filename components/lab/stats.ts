/**
 * The lab's statistics and CPU accounting (pure): a seeded bootstrap for ratios of paired
 * slices, /proc parsing for CPU time and placement, and CPU per unit of work. The runner reads
 * /proc; these functions only turn text and numbers into figures, so they are unit-tested.
 */

/** mulberry32: a small, well-known 32-bit PRNG; a seed gives the same interval on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RatioInterval {
  /** mean(numerator) / mean(denominator) of the measured samples */
  ratio: number;
  /** bootstrap percentile interval */
  lo: number;
  hi: number;
  /** samples (pairs when paired) */
  n: number;
  confidence: number;
}

export interface BootstrapOptions {
  /** @default 2000 */
  resamples?: number;
  /** @default 0.95 */
  confidence?: number;
  /** @default 1 */
  seed?: number;
  /**
   * Samples i of both sides were measured back to back (one slice): resample pairs, so drift
   * common to both sides cancels. Needs equal lengths. @default true
   */
  paired?: boolean;
}

const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;

/** The q-quantile (0..1) of sorted values, linear between neighbours. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Ratio of means with a bootstrap percentile interval. Paired by default: slice i of the
 * numerator ran next to slice i of the denominator, and resampling whole pairs keeps the drift
 * they share out of the interval.
 */
export function bootstrapRatio(numerator: readonly number[], denominator: readonly number[], o: BootstrapOptions = {}): RatioInterval {
  const paired = o.paired ?? true;
  const resamples = o.resamples ?? 2000;
  const confidence = o.confidence ?? 0.95;
  if (!numerator.length || !denominator.length) throw new Error("bootstrapRatio: both sides need at least one sample");
  if (paired && numerator.length !== denominator.length)
    throw new Error(`bootstrapRatio: paired samples need equal lengths, got ${numerator.length} and ${denominator.length}`);
  if (!(confidence > 0 && confidence < 1)) throw new Error(`bootstrapRatio: confidence ${confidence}; allowed: 0 < c < 1`);
  if (!Number.isInteger(resamples) || resamples < 100) throw new Error(`bootstrapRatio: resamples ${resamples}; allowed: an integer ≥ 100`);
  const ratioOf = (a: number, b: number) => (b === 0 ? (a === 0 ? 1 : Infinity) : a / b);
  const rand = seededRandom(o.seed ?? 1);
  const pick = (n: number) => Math.min(n - 1, Math.floor(rand() * n));
  const stats: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let sa = 0;
    let sb = 0;
    if (paired) {
      for (let k = 0; k < numerator.length; k++) {
        const i = pick(numerator.length);
        sa += numerator[i];
        sb += denominator[i];
      }
      stats.push(ratioOf(sa, sb));
    } else {
      for (let k = 0; k < numerator.length; k++) sa += numerator[pick(numerator.length)];
      for (let k = 0; k < denominator.length; k++) sb += denominator[pick(denominator.length)];
      stats.push(ratioOf(sa / numerator.length, sb / denominator.length));
    }
  }
  stats.sort((a, b) => a - b);
  const tail = (1 - confidence) / 2;
  return {
    ratio: ratioOf(mean(numerator), mean(denominator)),
    lo: quantile(stats, tail),
    hi: quantile(stats, 1 - tail),
    n: paired ? numerator.length : Math.min(numerator.length, denominator.length),
    confidence,
  };
}

/** A difference is a finding only when its interval excludes "no difference". */
export const isFinding = (i: Pick<RatioInterval, "lo" | "hi">): boolean => i.lo > 1 || i.hi < 1;

/** Half the interval's width relative to the ratio: "±x %". */
export const halfWidth = (i: Pick<RatioInterval, "lo" | "hi" | "ratio">): number => (i.ratio > 0 ? (i.hi - i.lo) / 2 / i.ratio : Infinity);

// ------------------------------------------------------------------ /proc ----

/** The machine-wide `cpu` line of /proc/stat, in clock ticks. */
export interface ProcStatCpu {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

export function parseProcStat(text: string): ProcStatCpu {
  const line = text.split("\n").find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error('/proc/stat: no aggregate "cpu" line');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  if (v.length < 8 || v.slice(0, 8).some((x) => !Number.isFinite(x)))
    throw new Error(`/proc/stat: "cpu" line has fewer than 8 numbers: ${JSON.stringify(line.slice(0, 80))}`);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
  return { user, nice, system, idle, iowait, irq, softirq, steal };
}

/** One task's /proc/<pid>/task/<tid>/stat (or a process's /proc/<pid>/stat). */
export interface TaskStat {
  comm: string;
  /** user + system, clock ticks */
  ticks: number;
  /** field 39: the CPU the task last ran on */
  processor: number;
}

export function parseTaskStat(text: string): TaskStat {
  // comm may hold spaces and parentheses: everything between the first "(" and the last ")".
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`stat: no "(comm)" in ${JSON.stringify(text.slice(0, 60))}`);
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is stat field 3 (state): field n is fields[n - 3].
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  const processor = Number(fields[39 - 3]);
  if (![utime, stime, processor].every(Number.isFinite))
    throw new Error(`stat: fields 14, 15 or 39 missing in ${JSON.stringify(text.slice(0, 80))}`);
  return { comm: text.slice(open + 1, close), ticks: utime + stime, processor };
}

/** CPU time the machine spent between two /proc/stat readings, seconds, by kind. */
export function machineCpuDelta(before: ProcStatCpu, after: ProcStatCpu, clkTck = 100) {
  const d = (k: keyof ProcStatCpu) => Math.max(0, after[k] - before[k]) / clkTck;
  return {
    /** user + nice + system: every process on the machine, ours and anyone else's */
    processSeconds: d("user") + d("nice") + d("system"),
    /** irq + softirq: packet work the kernel does not charge to a process (veth, forwarding) */
    interruptSeconds: d("irq") + d("softirq"),
    /** time the hypervisor ran someone else on our vCPUs */
    stealSeconds: d("steal"),
    idleSeconds: d("idle") + d("iowait"),
  };
}

/** CPU-seconds per GB (10^9 bytes) moved. */
export function cpuSecondsPerGB(cpuSeconds: number, gbps: number, seconds: number): number | undefined {
  const gb = (gbps * seconds) / 8;
  return gb > 0 ? cpuSeconds / gb : undefined;
}

/** CPU-seconds per 1,000 requests (or connections) served. */
export function cpuSecondsPer1kRequests(cpuSeconds: number, rps: number, seconds: number): number | undefined {
  const k = (rps * seconds) / 1000;
  return k > 0 ? cpuSeconds / k : undefined;
}

/** Below this fraction of its arm's median a slice ran in the slow mode (the two-speed behaviour). */
export const SLOW_MODE_FRACTION = 0.75;

/** Which values sit below `fraction` × the median of all: the slow mode of a two-speed machine. */
export function slowModeFlags(values: readonly number[], fraction = SLOW_MODE_FRACTION): boolean[] {
  if (!values.length) return [];
  const s = [...values].sort((a, b) => a - b);
  const m = quantile(s, 0.5);
  return values.map((v) => v < fraction * m);
}
