import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(__dirname, "..", "..");

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, any>;
  /** URN of the parent resource (the root Stack for top-level resources). */
  parent: string | null;
  /** The aliases the engine gets, as the SDK serialized them. */
  aliases: any[];
}

export interface ProgramRun {
  exitCode: number;
  /** What the language host would pass: the program's working directory and entry point. */
  pwd: string;
  entry: string;
  /** The module the SDK loaded as the program. */
  program: string | null;
  /** Every resource registered, the root Stack first. */
  registered: Registered[];
  /** The stack outputs as the engine would record them (null when the program failed). */
  outputs: Record<string, any> | null;
  stderr: string;
}

/** Stands in for the engine's decryption: distinct from the ciphertext, so a test can tell which one a resource got. */
export const decrypt = (ciphertext: string) => `decrypted(${ciphertext})`;

/**
 * What the Pulumi CLI hands the program for a stack's config (as `readStackConfig` returns it):
 * `edgetune:key` → text (objects and lists as JSON), `secure:` leaves decrypted, and every key
 * holding one listed as secret.
 */
export function engineConfigFor(config: Record<string, unknown>): { config: Record<string, string>; secretKeys: string[] } {
  const secretKeys: string[] = [];
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    let secret = false;
    const walk = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (Object.keys(o).length === 1 && typeof o.secure === "string") return ((secret = true), decrypt(o.secure));
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
      }
      return v;
    };
    const plain = walk(value);
    const full = key.includes(":") ? key : `edgetune:${key}`;
    values[full] = typeof plain === "string" ? plain : JSON.stringify(plain);
    if (secret) secretKeys.push(full);
  }
  return { config: values, secretKeys };
}

/**
 * Runs the program through the SDK's own `cmd/run` (test/helpers/sdk-program-child.cjs) in a
 * child process, with the config the engine would hand it. `preview` is `pulumi preview`.
 */
export function runProgram(opts: {
  stack: string;
  config: Record<string, string>;
  secretKeys?: string[];
  root?: string;
  preview?: boolean;
}): ProgramRun {
  const dir = mkdtempSync(join(tmpdir(), "edgetune-program-"));
  try {
    const request = join(dir, "request.json");
    const result = join(dir, "result.json");
    writeFileSync(
      request,
      JSON.stringify({
        root: opts.root ?? ROOT,
        stack: opts.stack,
        preview: opts.preview ?? true,
        config: opts.config,
        secretKeys: opts.secretKeys ?? [],
      }),
    );
    const r = spawnSync(process.execPath, [join(__dirname, "sdk-program-child.cjs"), request, result], {
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, PULUMI_CONFIG: undefined, PULUMI_CONFIG_SECRET_KEYS: undefined },
    });
    if (r.error) throw r.error;
    let parsed: Omit<ProgramRun, "stderr">;
    try {
      parsed = JSON.parse(readFileSync(result, "utf8"));
    } catch {
      throw new Error(`the program run wrote no result (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
    return { ...parsed, stderr: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resources of a type, in registration order. */
export const ofType = (run: ProgramRun, type: string) => run.registered.filter((r) => r.type === type);

export const countByType = (run: ProgramRun) =>
  run.registered.reduce<Record<string, number>>((m, r) => ((m[r.type] = (m[r.type] ?? 0) + 1), m), {});

/**
 * Runs a small Pulumi program (TypeScript source; import edgetune's components by absolute
 * path from ROOT) through the same SDK loader, for what only a running program shows: an
 * error raised while an Output resolves fails the deployment, it is not a test's exception.
 */
export function runInlineProgram(
  source: string,
  opts: { stack?: string; config?: Record<string, string>; secretKeys?: string[] } = {},
): ProgramRun {
  const project = mkdtempSync(join(tmpdir(), "edgetune-inline-"));
  try {
    writeFileSync(
      join(project, "Pulumi.yaml"),
      "name: edgetune\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n",
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({ extends: join(ROOT, "tsconfig.json"), compilerOptions: { noCheck: true }, include: ["index.ts"] }),
    );
    writeFileSync(join(project, "index.ts"), source);
    symlinkSync(join(ROOT, "node_modules"), join(project, "node_modules"));
    return runProgram({ root: project, stack: opts.stack ?? "test", config: opts.config ?? {}, secretKeys: opts.secretKeys });
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
}
