import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { normalizeJobLog, resultLine, type JobLogContext } from "./job-log";
import { SCENARIO_NAMES, type ScenarioName } from "./result";

/**
 * The normalizer a benchmark Job runs last: its script's log on stdin, one JSON
 * line on stdout (results, or the reason there are none). Bundled with the
 * parsers into normalize.cjs by scripts/bundle-normalizer.js, so the loadgen
 * image needs node and nothing else from edgetune.
 *
 * Exit status: 0 results, 1 no results (the line says why), 2 bad arguments.
 */
export function normalizeMain(argv: string[], input: string): { stdout: string; stderr: string; code: number } {
  let ctx: JobLogContext;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { scenario: { type: "string" }, profile: { type: "string" }, target: { type: "string" } },
      strict: true,
    });
    if (!values.scenario || !(SCENARIO_NAMES as readonly string[]).includes(values.scenario))
      throw new Error(`--scenario ${JSON.stringify(values.scenario ?? "")}: allowed: ${SCENARIO_NAMES.join(", ")}`);
    if (!values.profile) throw new Error("--profile is required");
    ctx = { scenario: values.scenario as ScenarioName, profile: values.profile, ...(values.target ? { target: values.target } : {}) };
  } catch (e) {
    return {
      stdout: "",
      stderr: `edgetune normalize: ${(e as Error).message}\nusage: node normalize.cjs --scenario NAME --profile NAME [--target HOST] < job.log\n`,
      code: 2,
    };
  }
  try {
    return { stdout: `${resultLine(ctx, { results: normalizeJobLog(input, ctx) })}\n`, stderr: "", code: 0 };
  } catch (e) {
    const message = (e as Error).message;
    return { stdout: `${resultLine(ctx, { error: message })}\n`, stderr: `edgetune normalize: ${message}\n`, code: 1 };
  }
}

/** The bundle's entry point. */
export function runFromStdin(): void {
  const r = normalizeMain(process.argv.slice(2), readFileSync(0, "utf8"));
  // stderr first: the result line must be the last line of the Job's log.
  if (r.stderr) process.stderr.write(r.stderr);
  process.stdout.write(r.stdout);
  process.exitCode = r.code;
}
