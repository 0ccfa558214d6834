/**
 * What the lab records about each run beside its BenchResult (results.json `measurements`):
 * CPU of every process of the run and the kernel's packet work, steal, where threads ran, and
 * which paired slice the run was. A schema of its own, so the BenchResult shape the cluster Jobs
 * share (and normalize.cjs bundles) stays as it is.
 */
import { z } from "zod";

const nonNeg = z.number().finite().nonnegative();
const count = z.number().int().nonnegative();

export const placementSchema = z.strictObject({
  namespace: z.string(),
  comm: z.string(),
  threads: count,
  /** CPU → threads of this process that were on it (stat field 39) at the mid-run sample */
  cpus: z.record(z.string(), count),
  /** CPU → of those, the threads running or runnable (state R) at that moment */
  runningOn: z.record(z.string(), count),
});

export const runCpuSchema = z.strictObject({
  /** the load generator (its wrapper's cutime + cstime) */
  clientSeconds: nonNeg,
  /** every process of the proxy namespace (every proxy peer running there, busy or idle) */
  proxySeconds: nonNeg,
  /** every process of the backend namespace (nginx, iperf3) */
  backendSeconds: nonNeg,
  /**
   * machine-wide irq + softirq time plus the ksoftirqd threads: packet work no lab process is
   * charged for (veths, forwarding)
   */
  interruptSeconds: nonNeg,
  /** of interruptSeconds, the ksoftirqd threads' part (process time in /proc/stat) */
  softirqThreadSeconds: nonNeg.optional(),
  /** client + proxy + backend + interrupt: the CPU the run cost */
  totalSeconds: nonNeg,
  /** machine-wide user + nice + system, every process (including ones outside the lab) */
  machineProcessSeconds: nonNeg,
  /** the hypervisor running someone else on this machine's vCPUs during the run */
  stealSeconds: nonNeg,
});

export const runRecordSchema = z.strictObject({
  /** index into results */
  result: count,
  /** paired-slice round, when the run was one */
  slice: count.optional(),
  cpu: runCpuSchema.optional(),
  /** run CPU-seconds per GB moved (L4) */
  cpuSecondsPerGB: nonNeg.optional(),
  /** run CPU-seconds per 1,000 requests or connections (HTTP) */
  cpuSecondsPer1k: nonNeg.optional(),
  placement: z.array(placementSchema).optional(),
  /** the slice's rate is below SLOW_MODE_FRACTION of its arm's median: the slow mode */
  slowMode: z.boolean().optional(),
});

export type RunCpu = z.infer<typeof runCpuSchema>;
export type Placement = z.infer<typeof placementSchema>;
export type RunRecord = z.infer<typeof runRecordSchema>;

/** Validates the lab's run records before they are written; the error names the field. */
export function parseRunRecords(input: unknown): RunRecord[] {
  const r = z.array(runRecordSchema).safeParse(input);
  if (r.success) return r.data;
  const first = r.error.issues.slice(0, 5).map((i) => `measurements.${i.path.join(".")}: ${i.message}`);
  throw new Error(`lab run records are invalid: ${first.join("; ")}`);
}
