import { z } from "zod";
import { BenchParseError, nstatValidity, parseNstat, parseToolOutput } from "./parsers";
import { benchResultSchema, RESULT_SCHEMA_VERSION, SCENARIO_NAMES, type BenchResult, type ScenarioName } from "./result";
import { SCENARIOS, type Invocation } from "./scenarios";
import { shqWord } from "../shell";

/**
 * The benchmark Job's log contract, shared by three places: the Job's shell
 * script (jobScript), the normalizer the Job runs at its end (normalizeJobLog,
 * bundled with its parsers into normalize.cjs and shipped in the Job's
 * ConfigMap), and the collect step that reads the log back (readResultLine).
 *
 * The log carries the tools' own output between markers, for a person reading
 * `kubectl logs`, and ends with one JSON line: the normalized BenchResults of
 * every run, or the reason there are none.
 */

export const MARK = "### edgetune";
export const RESULTS_KIND = "edgetune-bench-results";
export const ERROR_KIND = "edgetune-bench-error";
/** Where the Job mounts its ConfigMap: the Lua scripts and normalize.cjs. */
export const BENCH_SCRIPT_DIR = "/etc/edgetune-bench";
export const NORMALIZER_FILE = "normalize.cjs";

export interface JobLogContext {
  scenario: ScenarioName;
  profile: string;
  /** What the Job loaded, for the result (e.g. the proxy's Service name). */
  target?: string;
}

export interface JobScriptOptions extends JobLogContext {
  /** Directory holding normalize.cjs; default BENCH_SCRIPT_DIR. */
  scriptDir?: string;
  /** The node binary; default `node` from PATH (the loadgen image has it). */
  node?: string;
  /** Where the run's stdout is kept for the normalizer; default /tmp/edgetune-bench.log. */
  logFile?: string;
}

/**
 * The Job's POSIX sh script. Each run's stdout is framed by markers and the
 * shell's `times` (client CPU), teed to a file, and the normalizer's single
 * line comes last; the Job's exit status is the normalizer's, which fails
 * when a run failed or its output does not parse.
 */
export function jobScript(invocations: Invocation[], o: JobScriptOptions): string {
  const log = o.logFile ?? "/tmp/edgetune-bench.log";
  const normalizer = [
    o.node ?? "node",
    `${o.scriptDir ?? BENCH_SCRIPT_DIR}/${NORMALIZER_FILE}`,
    "--scenario",
    o.scenario,
    "--profile",
    o.profile,
    ...(o.target ? ["--target", o.target] : []),
  ];
  const lines = ["set -u", "{", `echo "${MARK}-nproc $(nproc)"`, "rc=0"];
  for (const inv of invocations) {
    const meta = JSON.stringify({
      scenario: inv.scenario,
      tool: inv.tool,
      run: inv.run,
      concurrency: inv.concurrency,
      durationSeconds: inv.durationSeconds,
    });
    lines.push(`echo ${shqWord(`${MARK}-run ${meta}`)}`, `${inv.argv.map(shqWord).join(" ")} || rc=$?`, `echo "${MARK}-times"`, "times");
  }
  // The group runs in the pipeline's subshell: its exit status reaches the normalizer through this marker.
  lines.push(`echo "${MARK}-end $rc"`, `} | tee ${shqWord(log)}`, `exec ${normalizer.map(shqWord).join(" ")} < ${shqWord(log)}`);
  return lines.join("\n");
}

/**
 * The tools' output in a Job log (markers from jobScript) → one BenchResult per
 * run. Client CPU comes from `times` deltas over each run's wall time. Throws
 * BenchParseError when the log is cut short, a run failed or does not parse.
 */
export function normalizeJobLog(log: string, ctx: JobLogContext): BenchResult[] {
  const scenario = SCENARIOS[ctx.scenario];
  const nproc = Number(/^### edgetune-nproc (\d+)$/m.exec(log)?.[1] ?? NaN);
  const sections = log.split(`${MARK}-run `).slice(1);
  if (!sections.length) throw new BenchParseError("job log", `no "${MARK}-run" marker: the Job did not run the benchmark script`);
  const end = new RegExp(`^${MARK}-end (\\d+)$`, "m").exec(sections[sections.length - 1]);
  if (!end)
    throw new BenchParseError("job log", `no "${MARK}-end" marker: the script was cut short (deadline, OOM kill or a crashed tool)`);
  let prevChildCpu = 0;
  const results = sections.map((section) => {
    const nl = section.indexOf("\n");
    const meta = JSON.parse(section.slice(0, nl)) as { run: number; concurrency: number; durationSeconds: number; tool: string };
    const [out, after = ""] = section.slice(nl + 1).split(`${MARK}-times\n`);
    // `times` prints the shell's user/sys, then its children's, cumulative: "0m1.50s 0m2.25s".
    const child = after.split("\n")[1]?.match(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/);
    const validity: Record<string, number> = {};
    if (child && Number.isFinite(nproc)) {
      const cpu = Number(child[1]) * 60 + Number(child[2]) + Number(child[3]) * 60 + Number(child[4]);
      const cores = meta.tool === "iperf3" ? 1 : Math.min(nproc, scenario.threads, meta.concurrency);
      validity.clientCpuPercent = ((cpu - prevChildCpu) / (meta.durationSeconds * cores)) * 100;
      prevChildCpu = cpu;
    }
    const pctx = {
      scenario: ctx.scenario,
      profile: ctx.profile,
      run: meta.run,
      target: ctx.target,
      concurrency: meta.concurrency,
      connectionClose: scenario.connectionClose,
      validity,
    };
    try {
      return parseToolOutput(meta.tool, out, pctx);
    } catch (e) {
      throw new BenchParseError("job log", `run ${meta.run} (${meta.tool}, concurrency ${meta.concurrency}): ${(e as Error).message}`);
    }
  });
  // Parsed but failed: e.g. wrk exits 1 after printing its report when it cannot resolve the host.
  if (end[1] !== "0")
    throw new BenchParseError("job log", `a load generator exited with status ${end[1]} (its stderr is in the Job log above)`);
  return results;
}

const resultsLineSchema = z.strictObject({
  kind: z.literal(RESULTS_KIND),
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  scenario: z.enum(SCENARIO_NAMES),
  profile: z.string(),
  results: z.array(benchResultSchema).min(1),
});
const errorLineSchema = z.strictObject({ kind: z.literal(ERROR_KIND), scenario: z.string(), profile: z.string(), message: z.string() });

/** The normalizer's last line: results, or why there are none. */
export function resultLine(ctx: JobLogContext, outcome: { results: BenchResult[] } | { error: string }): string {
  if ("error" in outcome) return JSON.stringify({ kind: ERROR_KIND, scenario: ctx.scenario, profile: ctx.profile, message: outcome.error });
  return JSON.stringify({
    kind: RESULTS_KIND,
    schemaVersion: RESULT_SCHEMA_VERSION,
    scenario: ctx.scenario,
    profile: ctx.profile,
    results: outcome.results,
  });
}

/**
 * The collect step: the Job log's last line → typed results, checked against the
 * schema and against the Job it should come from. `counters` is the conn-burst
 * counter Job's `nstat -j` output: the proxy node's listen drops, merged into
 * every run's validity data.
 */
export function readResultLine(log: string, ctx: { scenario: ScenarioName; profile: string; counters?: string }): BenchResult[] {
  const last = log.trimEnd().split("\n").pop() ?? "";
  const shown = JSON.stringify(last.length > 200 ? `${last.slice(0, 200)}…` : last);
  let doc: unknown;
  try {
    doc = JSON.parse(last);
  } catch {
    throw new BenchParseError(
      "job log",
      `the last line is not edgetune's result JSON: ${shown} (did the Job run the edgetune loadgen image's script to the end?)`,
    );
  }
  const err = errorLineSchema.safeParse(doc);
  if (err.success) throw new BenchParseError("job log", `the ${err.data.profile} ${err.data.scenario} Job reported: ${err.data.message}`);
  const r = resultsLineSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new BenchParseError("job log", `the last line is not a valid result line: ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  if (r.data.scenario !== ctx.scenario || r.data.profile !== ctx.profile) {
    throw new BenchParseError(
      "job log",
      `expected the ${ctx.profile} ${ctx.scenario} Job's results, got ${r.data.profile} ${r.data.scenario}`,
    );
  }
  if (ctx.counters === undefined) return r.data.results;
  // Counters are data, not a validity reason (conn-burst exists to show them): merged as is.
  const proxy = nstatValidity(parseNstat(ctx.counters));
  return r.data.results.map((res) => ({ ...res, validity: { ...res.validity, ...proxy } }));
}
