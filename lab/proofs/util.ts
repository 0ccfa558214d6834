/**
 * What the proof scenarios share: a blocking sleep (run() is synchronous, like the lab's
 * steps), a background process in a namespace stopped by its PID, and the result shape.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { RESULT_SCHEMA_VERSION, type BenchResult, type ProofScenarioName } from "../../components/bench/result";
import { proxySpecSchema } from "../../components/proxy/haproxy";
import type { ProofContext } from "./types";

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface Background {
  pid: number;
  /** What it wrote so far (stdout and stderr, interleaved). */
  output(): string;
  /** SIGKILL by PID; idempotent. */
  stop(): void;
}

/** argv inside namespace ns, in the background, its output to logFile. */
export function startInNamespace(ns: string, argv: string[], logFile: string): Background {
  const fd = openSync(logFile, "w");
  const child = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  child.unref();
  let stopped = false;
  if (child.pid === undefined) throw new Error(`could not start ${argv.join(" ")} in ${ns}`);
  const pid = child.pid;
  return {
    pid,
    output: () => readFileSync(logFile, "utf8"),
    stop: () => {
      if (stopped) return;
      stopped = true;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}

/** Waits (bounded) until check() holds; false when it never did. */
export function waitFor(check: () => boolean, timeoutMs: number, everyMs = 100): boolean {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= end) return false;
    sleepMs(everyMs);
  }
}

/** HAProxy answers its health endpoint (from the client namespace), bounded to 5 s. */
export function proxyAnswers(ctx: ProofContext): boolean {
  const port = proxySpecSchema.parse(ctx.spec).healthPort;
  return waitFor(
    () =>
      ctx.exec(ctx.a.namespaces.client, ["curl", "-fsS", "-o", "/dev/null", "--max-time", "1", `http://${ctx.a.proxy}:${port}/healthz`], {
        timeoutMs: 3000,
      }).code === 0,
    5000,
  );
}

/** A sysctl's value inside namespace ns, read back (what took, not what was asked). */
export function readSysctl(ctx: ProofContext, ns: string, key: string): string | undefined {
  const r = ctx.exec(ns, ["cat", `/proc/sys/${key.replace(/\./g, "/")}`], { timeoutMs: 5000 });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

export function proofResult(
  scenario: ProofScenarioName,
  ctx: ProofContext,
  o: { durationSeconds: number; measures: Record<string, number>; errors?: Record<string, number>; reasons?: string[]; target?: string },
): BenchResult {
  const reasons = o.reasons ?? [];
  return {
    schemaVersion: RESULT_SCHEMA_VERSION,
    scenario,
    profile: ctx.label,
    run: ctx.run,
    tool: "lab-driver",
    durationSeconds: o.durationSeconds,
    ...(o.target ? { target: o.target } : {}),
    errors: o.errors ?? {},
    validity: { valid: reasons.length === 0, reasons },
    measures: o.measures,
  };
}
