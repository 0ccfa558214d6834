// Turns a benchmark stack's outputs into the files a person reads, as the lab writes them:
//
//   pulumi stack output --json --stack bench > outputs.json
//   npx tsx scripts/bench-report.ts outputs.json bench-results [--summary "$GITHUB_STEP_SUMMARY"]
//
// writes bench-results/results.json (passed, violations, every BenchResult), report.md and
// chart.svg, and with --summary appends the report (without the chart, which a job summary
// cannot show) to that file. The results are checked against the result schema first: a
// report is never drawn from output that is not a benchmark's. Exit 0 written, 2 when the
// input is not a benchmark output (check-bench.js decides pass or fail, not this).
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseBenchResult, type BenchResult } from "../components/bench/result";
import { renderMarkdown, renderSvgChart } from "../components/bench/report";
import type { ThresholdVerdict, Violation } from "../components/bench/thresholds";

export interface BenchReport {
  verdict: ThresholdVerdict;
  results: BenchResult[];
}

/** The `benchmark` stack output (or those keys at the top level), validated. */
export function readBenchOutputs(doc: unknown): BenchReport {
  const top = doc && typeof doc === "object" ? (doc as Record<string, unknown>) : {};
  const out = (top.benchmark && typeof top.benchmark === "object" ? top.benchmark : top) as Record<string, unknown>;
  if (typeof out.passed !== "boolean") throw new Error('no boolean "passed": not the outputs of a stack with a benchmark section');
  if (!Array.isArray(out.results)) throw new Error('no "results" array in the benchmark output');
  const results = out.results.map((r, i) => parseBenchResult(r, `results[${i}]`));
  const violations = (Array.isArray(out.violations) ? out.violations : []) as Violation[];
  return { verdict: { passed: out.passed, violations }, results };
}

export function writeBenchReport(
  report: BenchReport,
  dir: string,
  title = "edgetune benchmark",
): Record<"json" | "markdown" | "svg", string> {
  mkdirSync(dir, { recursive: true });
  const files = { json: join(dir, "results.json"), markdown: join(dir, "report.md"), svg: join(dir, "chart.svg") };
  writeFileSync(files.json, `${JSON.stringify({ ...report.verdict, results: report.results }, null, 2)}\n`);
  writeFileSync(files.markdown, renderMarkdown(report.results, { title, verdict: report.verdict, chartPath: "chart.svg" }));
  writeFileSync(files.svg, renderSvgChart(report.results, { title }));
  return files;
}

function main(argv: string[]): number {
  try {
    const { positionals, values } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { summary: { type: "string" }, title: { type: "string" } },
    });
    const [input, dir] = positionals;
    if (!input || !dir || positionals.length > 2)
      throw new Error("usage: bench-report <outputs.json|-> <dir> [--summary FILE] [--title T]");
    const report = readBenchOutputs(JSON.parse(readFileSync(input === "-" ? 0 : input, "utf8")));
    const title = values.title ?? "edgetune benchmark";
    const files = writeBenchReport(report, dir, title);
    if (values.summary) appendFileSync(values.summary, `${renderMarkdown(report.results, { title, verdict: report.verdict })}\n`);
    process.stdout.write(`bench-report: ${report.results.length} results -> ${Object.values(files).join(", ")}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`bench-report: ${(e as Error).message}\n`);
    return 2;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
