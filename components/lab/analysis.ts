/**
 * The lab's analysis and reports (pure): ratios against the path without the proxy, the
 * variants against tuned, the report's Markdown and the terminal table. The lab runner
 * (lab/runner.ts) measures; this turns its results into findings.
 */
import type { KernelChecks } from "./settings-table";
import { compareProfiles, median, type BenchResult, type ScenarioName } from "../bench/result";
import { renderMarkdown, renderTable } from "../bench/report";
import { proofComparisons, renderProofMarkdown, renderProofTable, type ProofComparison } from "./proof-analysis";
import type { RunRecord } from "./run-record";
import { renderSliceMarkdown, type SliceReport } from "./slice-analysis";

export interface PathComparison {
  scenario: ScenarioName;
  concurrency?: number;
  /** median rate through the proxy (tuned profile) / median rate on the path without the proxy */
  proxyOverDirect?: number;
  /** l4 only: proxy / plain kernel forwarding through the proxy namespace */
  proxyOverForward?: number;
  /** The reference run saturated its load generator: the ratio is an upper bound. */
  referenceClientBound?: boolean;
  /** l4 only: spliced / copied through user space, same proxy and profile */
  spliceOverCopy?: number;
  /** l4 only: HAProxy CPU seconds per GB moved, spliced and copied */
  proxyCpuSecondsPerGB?: { splice?: number; copy?: number };
}

/** A lab variant against the tuned profile: does the setting it changes hurt here? */
export interface VariantComparison {
  variant: string;
  why?: string;
  scenario: ScenarioName;
  concurrency?: number;
  metric: "rps" | "gbps" | "connsPerSecond";
  tuned: number;
  value: number;
  /** variant / tuned, medians of valid runs */
  ratio: number;
  spread: number;
  p99RatioOverTuned?: number;
  /** ≥ 30 % either way (the lab notes' noise floor for rates), else within noise. */
  verdict: "hurts" | "helps" | "within noise";
}

/** Rate differences below this factor are this machine's noise (lab notes: ±20–30 %). */
export const NOISE_FACTOR = 1.3;

export interface LabReport {
  stack: string;
  machine: { cpus: number; kernel: string; haproxy: string; nofile: number };
  repeat: number;
  quick: boolean;
  results: BenchResult[];
  comparisons: ReturnType<typeof compareProfiles>;
  paths: PathComparison[];
  variants: VariantComparison[];
  /** The proof scenarios, baseline against tuned (proof-analysis.ts); absent in reports from before them. */
  proofs?: ProofComparison[];
  files: { json: string; markdown: string; svg: string };
  /** What this kernel can emulate (lab/kernel-checks.ts): the settings table's reasons. */
  kernelChecks?: KernelChecks;
  /** Per run, by index into results: CPU, steal, placement, slice (components/lab/run-record.ts). */
  measurements?: RunRecord[];
  /** The paired slices: arms, ratios with 95 % intervals, findings. */
  slices?: SliceReport;
  /** Wall time of the whole lab run, seconds. */
  wallSeconds?: number;
}

function rateOf(r: BenchResult): number | undefined {
  return r.gbps ?? r.connsPerSecond ?? r.rps;
}

/** proxy/direct and proxy/forward ratios of medians, per scenario and concurrency. */
export function pathComparisons(results: readonly BenchResult[]): PathComparison[] {
  const out: PathComparison[] = [];
  const keys = new Set(
    results.filter((r) => r.profile === "direct" || r.profile === "forward").map((r) => `${r.scenario}|${r.concurrency ?? ""}`),
  );
  for (const key of keys) {
    const [scenario, c] = key.split("|");
    const pick = (label: string): { value?: number; clientBound: boolean } => {
      const all = results.filter((r) => r.scenario === scenario && `${r.concurrency ?? ""}` === c && r.profile === label);
      const valid = all.filter((r) => r.validity.valid);
      // The proxied runs count only when valid. A reference without the proxy is often limited
      // by its load generator (iperf3 is single-threaded) and then bounds the path's limit from
      // below: every run counts, and the ratio becomes an upper bound. Keeping only the
      // references' "valid" runs would keep the slow outliers (on 2 vCPUs the scheduler's
      // placement halves a run now and then, and a slow run is the one below 90 % client CPU)
      // and overstate the ratio.
      const reference = label !== "tuned" && label !== "no-splice";
      const use = reference ? all : valid;
      const v = use.map(rateOf).filter((x): x is number => x !== undefined);
      return { value: v.length ? median(v) : undefined, clientBound: reference && valid.length < all.length };
    };
    const tuned = pick("tuned");
    const direct = pick("direct");
    const forward = pick("forward");
    const copy = pick("no-splice");
    // CPU-s per GB = (CPU % / 100) × seconds / (Gbit/s × seconds / 8)
    const cpuPerGB = (label: string) => {
      const v = results
        .filter(
          (r) =>
            r.scenario === scenario &&
            `${r.concurrency ?? ""}` === c &&
            r.profile === label &&
            r.gbps &&
            r.validity.proxyCpuPercent !== undefined,
        )
        .map((r) => r.validity.proxyCpuPercent! / 100 / (r.gbps! / 8));
      return v.length ? median(v) : undefined;
    };
    const cpu = scenario === "l4-throughput" ? { splice: cpuPerGB("tuned"), copy: cpuPerGB("no-splice") } : undefined;
    out.push({
      scenario: scenario as ScenarioName,
      ...(c ? { concurrency: Number(c) } : {}),
      ...(tuned.value !== undefined && direct.value ? { proxyOverDirect: tuned.value / direct.value } : {}),
      ...(tuned.value !== undefined && forward.value ? { proxyOverForward: tuned.value / forward.value } : {}),
      ...(direct.clientBound || forward.clientBound ? { referenceClientBound: true } : {}),
      ...(tuned.value !== undefined && copy.value ? { spliceOverCopy: tuned.value / copy.value } : {}),
      ...(cpu && (cpu.splice !== undefined || cpu.copy !== undefined) ? { proxyCpuSecondsPerGB: cpu } : {}),
    });
  }
  return out;
}

/** Each variant against the tuned profile, per scenario and concurrency it ran. */
export function variantComparisons(
  results: readonly BenchResult[],
  variants: readonly { label: string; why?: string }[],
): VariantComparison[] {
  return variants.flatMap((v) =>
    compareProfiles(results, "tuned", v.label).map((c) => ({
      variant: v.label,
      ...(v.why ? { why: v.why } : {}),
      scenario: c.scenario,
      ...(c.concurrency !== undefined ? { concurrency: c.concurrency } : {}),
      metric: c.metric,
      tuned: c.baseline,
      value: c.tuned,
      ratio: c.ratio,
      spread: c.spread,
      ...(c.p99RatioTunedOverBaseline !== undefined ? { p99RatioOverTuned: c.p99RatioTunedOverBaseline } : {}),
      verdict: c.ratio <= 1 / NOISE_FACTOR ? "hurts" : c.ratio >= NOISE_FACTOR ? "helps" : "within noise",
    })),
  );
}

function variantLine(v: VariantComparison): string {
  const p99 = v.p99RatioOverTuned !== undefined ? `, p99 × ${v.p99RatioOverTuned.toFixed(2)}` : "";
  return `${v.variant} ${v.scenario}${v.concurrency ? ` c${v.concurrency}` : ""}: ${v.ratio.toFixed(2)} × tuned (spread ${(v.spread * 100).toFixed(0)} %${p99}) → ${v.verdict}`;
}

export function renderLabMarkdown(report: LabReport): string {
  const m = report.machine;
  const lines = [
    renderMarkdown(report.results, { title: `edgetune lab — stack \`${report.stack}\``, chartPath: "chart.svg" }),
    "",
    `Machine: ${m.cpus} CPUs, Linux ${m.kernel}, HAProxy ${m.haproxy}, nofile ${m.nofile}; ${report.repeat} repeat(s)${report.quick ? ", quick mode (figures for smoke testing, not conclusions)" : ""}.`,
    "",
    "| scenario | conc. | proxy / direct | proxy / kernel forwarding | splice / no splice | HAProxy CPU-s per GB (splice / no splice) |",
    "|---|---|---|---|---|---|",
    ...report.paths.map(
      (p) =>
        `| ${p.scenario} | ${p.concurrency ?? ""} | ${p.proxyOverDirect?.toFixed(2) ?? "–"}${p.referenceClientBound ? " ≤" : ""} | ${p.proxyOverForward?.toFixed(2) ?? "–"}${p.referenceClientBound ? " ≤" : ""} | ${p.spliceOverCopy?.toFixed(2) ?? "–"} | ${p.proxyCpuSecondsPerGB ? `${p.proxyCpuSecondsPerGB.splice?.toFixed(2) ?? "–"} / ${p.proxyCpuSecondsPerGB.copy?.toFixed(2) ?? "–"}` : "–"} |`,
    ),
    "",
    "≤: the reference run without the proxy was limited by its load generator (client CPU ≥ 90 %), so the true ratio is at most this.",
    "",
    "Spread is the relative spread of the repeats; differences below ~30 % on rates are within this machine's noise unless drop or error counters differ (lab notes).",
  ];
  if (report.slices) lines.push("", renderSliceMarkdown(report.slices));
  if (report.wallSeconds !== undefined) lines.push("", `Wall time of this lab run: ${(report.wallSeconds / 60).toFixed(1)} min.`);
  if (report.variants.length) {
    lines.push(
      "",
      "### Variants: the tuned profile with one setting changed",
      "",
      "| variant | why | scenario | conc. | variant / tuned | spread | p99 variant / tuned | verdict |",
      "|---|---|---|---|---|---|---|---|",
    );
    for (const v of report.variants)
      lines.push(
        `| ${v.variant} | ${v.why ?? ""} | ${v.scenario} | ${v.concurrency ?? ""} | ${v.ratio.toFixed(2)} | ${(v.spread * 100).toFixed(0)} % | ${v.p99RatioOverTuned?.toFixed(2) ?? "–"} | ${v.verdict} |`,
      );
    lines.push("", `Verdict: a ratio beyond ${NOISE_FACTOR} either way; anything closer is within this machine's noise.`);
  }
  lines.push(...renderProofMarkdown(report.proofs ?? proofComparisons(report.results)));
  return `${lines.join("\n")}\n`;
}

export function renderLabTable(report: LabReport): string {
  const lines = [renderTable(report.results)];
  const cmp = report.comparisons;
  if (cmp.length)
    lines.push(
      "tuned / baseline (medians of valid runs):",
      ...cmp.map(
        (c) =>
          `  ${c.scenario.padEnd(16)} ${c.concurrency ? `c${c.concurrency}`.padEnd(7) : "".padEnd(7)} ${c.ratio.toFixed(2)}  (spread ${(c.spread * 100).toFixed(0)} %${c.p99RatioTunedOverBaseline !== undefined ? `, p99 ratio ${c.p99RatioTunedOverBaseline.toFixed(2)}` : ""})`,
      ),
      "",
    );
  if (report.paths.length)
    lines.push(
      "proxy (tuned) / path without the proxy:",
      ...report.paths.map(
        (p) =>
          `  ${p.scenario.padEnd(16)} ${p.concurrency ? `c${p.concurrency}`.padEnd(7) : "".padEnd(7)} direct ${p.proxyOverDirect?.toFixed(2) ?? "–"}${p.proxyOverForward !== undefined ? `  kernel forwarding ${p.proxyOverForward.toFixed(2)}` : ""}${p.referenceClientBound ? "  (reference client-bound: upper bound)" : ""}${p.spliceOverCopy !== undefined ? `  splice/no-splice ${p.spliceOverCopy.toFixed(2)}` : ""}${p.proxyCpuSecondsPerGB ? `  HAProxy CPU-s/GB ${p.proxyCpuSecondsPerGB.splice?.toFixed(2) ?? "–"} vs ${p.proxyCpuSecondsPerGB.copy?.toFixed(2) ?? "–"}` : ""}`,
      ),
      "",
    );
  if (report.slices?.comparisons.length)
    lines.push(
      "edgetune (tuned) / each arm, paired slices, 95 % intervals (a finding when the interval excludes 1):",
      ...report.slices.comparisons
        .filter((c) => c.quantity !== "cpuPerUnit")
        .map(
          (c) =>
            `  ${c.scenario.padEnd(16)} ${c.concurrency ? `c${c.concurrency}`.padEnd(7) : "".padEnd(7)} ${`${c.quantity === "p99" ? "p99 " : ""}/ ${c.denominator}`.padEnd(18)} ${c.ratio.toFixed(2)} [${c.lo.toFixed(2)}, ${c.hi.toFixed(2)}]${c.finding ? "  finding" : ""}`,
        ),
      "",
    );
  if (report.variants.length)
    lines.push("variants (the tuned profile with one setting changed) / tuned:", ...report.variants.map((v) => `  ${variantLine(v)}`), "");
  lines.push(...renderProofTable(report.proofs ?? proofComparisons(report.results)));
  return lines.join("\n");
}
