import { spawnSync } from "node:child_process";
import { availableParallelism, release } from "node:os";

/**
 * What HAProxy will really get on the machine that runs it, read once: the one source every
 * haproxy.cfg rendered for this machine (the local target, the lab, `edgetune render` of a
 * local stack) is derived from, so all three are the same bytes.
 */
export interface MachineFacts {
  /** CPUs this process may run on (its affinity), HAProxy's nbthread. */
  cpus: number;
  /** RLIMIT_NOFILE hard limit (`ulimit -Hn`): maxconn and maxpipes must fit it. */
  nofileLimit: number;
  /** `uname -r`, for the record. */
  kernel: string;
}

/** Reads this machine's facts. */
export function readMachineFacts(): MachineFacts {
  // Through a shell: the hard limit a child process (HAProxy) inherits, not node's own view.
  const hard = spawnSync("/bin/sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim();
  const nofile = hard === "unlimited" ? 1048576 : Number(hard);
  if (!Number.isInteger(nofile) || nofile <= 0)
    throw new Error(`cannot read this machine's RLIMIT_NOFILE (ulimit -Hn said ${JSON.stringify(hard)})`);
  return { cpus: availableParallelism(), nofileLimit: nofile, kernel: release() };
}

/** One line for people: what a rendering assumed. */
export function describeFacts(f: MachineFacts): string {
  return `${f.cpus} CPU${f.cpus === 1 ? "" : "s"}, RLIMIT_NOFILE ${f.nofileLimit} (hard), Linux ${f.kernel}`;
}
