import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const VITEST = join(ROOT, "node_modules", "vitest", "vitest.mjs");
const REPORTER = join(ROOT, "test", "helpers", "summary-reporter.ts");
const CLOSING = /^(\d+) passed, (\d+) failed, (\d+) skipped$/;

/**
 * A probe run: a separate vitest, with the project's reporters, on test files written to
 * `dir` (under the run's temp root, outside every include pattern of the project's config).
 * globals: a probe directory has no node_modules to import "vitest" from.
 */
export function writeProbe(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  const config = { test: { globals: true, include: ["*.test.ts"], reporters: ["default", REPORTER], fileParallelism: false } };
  writeFileSync(join(dir, "vitest.config.mjs"), `export default ${JSON.stringify(config)};\n`);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

export interface ProbeResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runProbe(dir: string, env: Record<string, string> = {}): Promise<ProbeResult> {
  // The worker's own VITEST_* variables would make the probe believe it runs inside this run.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VITEST")));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITEST, "run", "--root", dir, "--config", join(dir, "vitest.config.mjs")], {
      cwd: dir,
      env: { ...base, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The summary reporter's closing line, which must be the last line of the output. */
export function closingLine(stdout: string): { passed: number; failed: number; skipped: number } {
  const line = stdout.trimEnd().split("\n").pop() ?? "";
  const m = CLOSING.exec(line);
  if (!m) throw new Error(`no closing line at the end of the output:\n${stdout}`);
  return { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3]) };
}
