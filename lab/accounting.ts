/**
 * Reads /proc around a lab run: CPU of every process in the lab's namespaces, the machine's
 * irq/softirq and steal time (/proc/stat), and where every thread ran at mid-run (stat field
 * 39). The arithmetic is components/lab/stats.ts's; this module only reads.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { machineCpuDelta, parseProcStat, parseTaskStat, type ProcStatCpu } from "../components/lab/stats";
import type { Placement, RunCpu } from "../components/lab/run-record";

const CLK_TCK = 100;

function pidsOf(ns: string): string[] {
  const r = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n").filter((p) => /^\d+$/.test(p));
}

/** CPU ticks (user + system, all threads) of every process in a namespace. */
export function namespaceTicks(ns: string): number {
  let ticks = 0;
  for (const pid of pidsOf(ns)) {
    try {
      ticks += parseTaskStat(readFileSync(`/proc/${pid}/stat`, "utf8")).ticks;
    } catch {
      // exited between the listing and the read
    }
  }
  return ticks;
}

export interface CpuSnapshot {
  stat: ProcStatCpu;
  ns: Record<string, number>;
  /** ksoftirqd threads: packet work deferred out of interrupt context runs there, in no lab namespace */
  softirqThreads?: number;
}

let ksoftirqdPids: string[] | undefined;
function ksoftirqdTicks(): number {
  ksoftirqdPids ??= readdirSync("/proc").filter((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      return readFileSync(`/proc/${p}/comm`, "utf8").startsWith("ksoftirqd/");
    } catch {
      return false;
    }
  });
  let ticks = 0;
  for (const pid of ksoftirqdPids) {
    try {
      ticks += parseTaskStat(readFileSync(`/proc/${pid}/stat`, "utf8")).ticks;
    } catch {
      // CPU went offline
    }
  }
  return ticks;
}

export function cpuSnapshot(namespaces: readonly string[]): CpuSnapshot {
  return {
    stat: parseProcStat(readFileSync("/proc/stat", "utf8")),
    ns: Object.fromEntries(namespaces.map((n) => [n, namespaceTicks(n)])),
    softirqThreads: ksoftirqdTicks(),
  };
}

/** The run's CPU from two snapshots and the load generator's own ticks. */
export function runCpu(
  before: CpuSnapshot,
  after: CpuSnapshot,
  names: { client: string; proxy: string; backend: string },
  clientToolTicks: number,
): RunCpu {
  const d = (ns: string) => Math.max(0, (after.ns[ns] ?? 0) - (before.ns[ns] ?? 0)) / CLK_TCK;
  const m = machineCpuDelta(before.stat, after.stat, CLK_TCK);
  const ksoftirqd = Math.max(0, (after.softirqThreads ?? 0) - (before.softirqThreads ?? 0)) / CLK_TCK;
  const clientSeconds = (Number.isFinite(clientToolTicks) ? clientToolTicks : 0) / CLK_TCK + d(names.client);
  const proxySeconds = d(names.proxy);
  const backendSeconds = d(names.backend);
  return {
    clientSeconds,
    proxySeconds,
    backendSeconds,
    interruptSeconds: m.interruptSeconds + ksoftirqd,
    softirqThreadSeconds: ksoftirqd,
    totalSeconds: clientSeconds + proxySeconds + backendSeconds + m.interruptSeconds + ksoftirqd,
    machineProcessSeconds: m.processSeconds,
    stealSeconds: m.stealSeconds,
  };
}

/**
 * Starts a sampler that, `delaySeconds` from now, lists the namespaces' processes and copies
 * every thread's stat line (the load generator is alive then, unlike after the run). It runs
 * beside the synchronous tool; collect() waits for it briefly and parses what it wrote.
 */
export function startPlacementSampler(namespaces: readonly string[], delaySeconds: number, outFile: string): { collect(): Placement[] } {
  rmSync(outFile, { force: true });
  const script = `sleep "$1"; shift; out=$1; shift
for ns in "$@"; do for p in $(ip netns pids "$ns"); do for t in /proc/$p/task/*/stat; do
  line=$(cat "$t" 2>/dev/null) && printf '%s\\t%s\\n' "$ns" "$line"; done; done; done > "$out.tmp"; mv "$out.tmp" "$out"`;
  const child = spawn("sh", ["-c", script, "sh", String(delaySeconds), outFile, ...namespaces], { stdio: "ignore" });
  child.on("error", () => {});
  return {
    collect() {
      for (let i = 0; i < 40 && !existsSync(outFile); i++) spawnSync("sleep", ["0.05"]);
      if (!existsSync(outFile)) {
        if (child.exitCode === null) child.kill();
        return [];
      }
      const lines = readFileSync(outFile, "utf8").split("\n").filter(Boolean);
      rmSync(outFile, { force: true });
      return aggregatePlacement(lines);
    },
  };
}

/** "<ns>\t<stat line>" lines → per namespace and command: threads, CPUs they were on, and running. */
export function aggregatePlacement(lines: readonly string[]): Placement[] {
  const by = new Map<string, Placement>();
  for (const line of lines) {
    const tab = line.indexOf("\t");
    if (tab < 0) continue;
    const ns = line.slice(0, tab);
    const text = line.slice(tab + 1);
    let t;
    try {
      t = parseTaskStat(text);
    } catch {
      continue;
    }
    const state = text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3);
    const key = `${ns}\u0000${t.comm}`;
    const p = by.get(key) ?? { namespace: ns, comm: t.comm, threads: 0, cpus: {}, runningOn: {} };
    p.threads++;
    const cpu = String(t.processor);
    p.cpus[cpu] = (p.cpus[cpu] ?? 0) + 1;
    if (state === "R") p.runningOn[cpu] = (p.runningOn[cpu] ?? 0) + 1;
    by.set(key, p);
  }
  return [...by.values()].sort((a, b) => (a.namespace + a.comm < b.namespace + b.comm ? -1 : 1));
}
