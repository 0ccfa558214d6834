import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { describe, it } from "vitest";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000, ...opts });
  if (r.error) throw r.error;
  return { code: r.status ?? (r.signal ? 128 : 1), stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

export function have(tool: string): boolean {
  return run("sh", ["-c", `command -v ${tool}`]).code === 0;
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** Why tests needing root and these tools cannot run here, or undefined when they can. */
export function missingFor(tools: string[], needRoot = true): string | undefined {
  if (needRoot && !isRoot) return "needs root (network namespaces, /proc/sys writes)";
  const missing = tools.filter((t) => !have(t));
  return missing.length ? `missing tools: ${missing.join(", ")}` : undefined;
}

/**
 * Whether this is a CI run. CI systems spell it CI=true, CI=1, CI=yes...: any value
 * but empty, 0, false, no or off counts, so that no spelling quietly turns
 * kernel-test failures into skips.
 */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? "").trim().toLowerCase();
  return !["", "0", "false", "no", "off"].includes(v);
}

/**
 * describe() for tests that need the real kernel: skipped with the reason
 * locally, but under CI (isCI) a missing prerequisite is a failure, not a skip.
 */
export function describeSystem(name: string, tools: string[], body: () => void, needRoot = true): void {
  const reason = missingFor(tools, needRoot);
  if (!reason) {
    describe(name, body);
    return;
  }
  if (isCI()) {
    describe(name, () => {
      it("has its prerequisites (CI must not skip kernel tests)", () => {
        throw new Error(`${name}: ${reason}`);
      });
    });
    return;
  }
  describe.skip(`${name} (skipped: ${reason})`, body);
}
