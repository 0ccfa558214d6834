/**
 * The paired slices' analysis (pure): per arm (baseline, tuned, the peers, the limits) rate,
 * latency, errors and CPU per unit of work; ratios with bootstrap 95 % intervals; findings in
 * words; and the chart panel that draws them. The lab runner (lab/slices.ts) measures.
 */
import { median, totalErrors, type BenchResult } from "../bench/result";

type ScenarioName = BenchResult["scenario"];
import type { RunRecord } from "./run-record";
import { bootstrapRatio, halfWidth, isFinding, slowModeFlags } from "./stats";

/** Arms whose runs have no proxy: their rate bounds the path (a saturated client still counts). */
export const LIMIT_ARMS = ["direct", "forward"] as const;
/** Fewer paired slices than this never make a finding: a bootstrap of 3 pairs has too few distinct resamples. */
export const MIN_PAIRS_FOR_FINDING = 5;

/** Arms measured in the slices, in report order. */
export const ARM_ORDER = ["tuned", "baseline", "haproxy-stock", "nginx", "no-splice", "direct", "forward"];

export type RateMetric = "rps" | "gbps" | "connsPerSecond";
const UNIT: Record<RateMetric, string> = { rps: "req/s", gbps: "Gbit/s", connsPerSecond: "conn/s" };

export interface ArmSummary {
  scenario: ScenarioName;
  concurrency?: number;
  arm: string;
  metric: RateMetric;
  slices: number;
  valid: number;
  /** mean rate over the slices */
  rate: number;
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  /** errors of all slices together */
  errors: number;
  /** median run CPU-seconds per GB (L4) */
  cpuSecondsPerGB?: number;
  /** median run CPU-seconds per 1,000 requests or connections (HTTP) */
  cpuSecondsPer1k?: number;
  /** slices below SLOW_MODE_FRACTION of the arm's median rate */
  slowSlices: number;
  stealSeconds: number;
  /**
   * CPU-seconds of processes outside the run (machine user+system minus the run's processes),
   * over all slices: other work on the machine competing with the run.
   */
  otherSeconds: number;
}

export interface IntervalComparison {
  scenario: ScenarioName;
  concurrency?: number;
  /** what is compared: the rate, the p99 latency, or the run's CPU per unit of work */
  quantity: "rate" | "p99" | "cpuPerUnit";
  numerator: string;
  denominator: string;
  kind: "profile" | "peer" | "limit" | "splice";
  ratio: number;
  lo: number;
  hi: number;
  pairs: number;
  /** the 95 % interval excludes 1 */
  finding: boolean;
}

export interface SliceReport {
  rounds: number;
  sliceSeconds: number;
  /** how the slices' processes were placed on CPUs ("none": by the scheduler) */
  placement?: string;
  arms: ArmSummary[];
  comparisons: IntervalComparison[];
}

const rateOf = (r: BenchResult): { metric: RateMetric; value: number } | undefined =>
  r.gbps !== undefined
    ? { metric: "gbps", value: r.gbps }
    : r.connsPerSecond !== undefined
      ? { metric: "connsPerSecond", value: r.connsPerSecond }
      : r.rps !== undefined
        ? { metric: "rps", value: r.rps }
        : undefined;

const groupKey = (r: BenchResult) => `${r.scenario}|${r.concurrency ?? ""}`;

/** Marks each slice run's record with slowMode (rate below the fraction of its arm's median). */
export function markSlowMode(results: readonly BenchResult[], records: RunRecord[]): void {
  const groups = new Map<string, number[]>();
  results.forEach((r, i) => {
    if (records[i]?.slice === undefined) return;
    const k = `${groupKey(r)}|${r.profile}`;
    groups.set(k, [...(groups.get(k) ?? []), i]);
  });
  for (const idx of groups.values()) {
    const flags = slowModeFlags(idx.map((i) => rateOf(results[i])?.value ?? 0));
    idx.forEach((i, j) => (records[i].slowMode = flags[j]));
  }
}

/** The comparisons the lab reports: tuned against each other arm of the same scenario. */
function kindOf(arm: string): IntervalComparison["kind"] {
  if (arm === "baseline") return "profile";
  if (arm === "no-splice") return "splice";
  return (LIMIT_ARMS as readonly string[]).includes(arm) ? "limit" : "peer";
}

export function analyzeSlices(
  results: readonly BenchResult[],
  records: readonly RunRecord[],
  plan: { rounds: number; sliceSeconds: number },
  seed = 1,
): SliceReport {
  const idx = results.map((_, i) => i).filter((i) => records[i]?.slice !== undefined);
  const groups = new Map<string, number[]>();
  for (const i of idx) groups.set(groupKey(results[i]), [...(groups.get(groupKey(results[i])) ?? []), i]);
  const arms: ArmSummary[] = [];
  const comparisons: IntervalComparison[] = [];
  for (const members of groups.values()) {
    const first = results[members[0]];
    const byArm = new Map<string, number[]>();
    for (const i of members) byArm.set(results[i].profile ?? "", [...(byArm.get(results[i].profile ?? "") ?? []), i]);
    const armNames = [...byArm.keys()].sort((x, y) => rank(x) - rank(y));
    for (const arm of armNames) {
      const ii = byArm.get(arm)!;
      const rs = ii.map((i) => results[i]);
      const metric = rateOf(rs[0])?.metric;
      if (!metric) continue;
      const med = (f: (i: number) => number | undefined) => {
        const v = ii.map(f).filter((x): x is number => x !== undefined);
        return v.length ? median(v) : undefined;
      };
      const summary: ArmSummary = {
        scenario: first.scenario,
        ...(first.concurrency !== undefined ? { concurrency: first.concurrency } : {}),
        arm,
        metric,
        slices: rs.length,
        valid: rs.filter((r) => r.validity.valid).length,
        rate: rs.reduce((s, r) => s + (rateOf(r)?.value ?? 0), 0) / rs.length,
        errors: rs.reduce((s, r) => s + totalErrors(r), 0),
        slowSlices: ii.filter((i) => records[i]?.slowMode).length,
        stealSeconds: ii.reduce((s, i) => s + (records[i]?.cpu?.stealSeconds ?? 0), 0),
        otherSeconds: ii.reduce((s, i) => {
          const c = records[i]?.cpu;
          return (
            s +
            (c
              ? Math.max(0, c.machineProcessSeconds - c.clientSeconds - c.proxySeconds - c.backendSeconds - (c.softirqThreadSeconds ?? 0))
              : 0)
          );
        }, 0),
      };
      const p = (k: "p50Ms" | "p99Ms" | "p999Ms") => med((i) => results[i].latency?.[k]);
      for (const k of ["p50Ms", "p99Ms", "p999Ms"] as const) {
        const v = p(k);
        if (v !== undefined) summary[k] = v;
      }
      const gb = med((i) => records[i]?.cpuSecondsPerGB);
      const k1 = med((i) => records[i]?.cpuSecondsPer1k);
      if (gb !== undefined) summary.cpuSecondsPerGB = gb;
      if (k1 !== undefined) summary.cpuSecondsPer1k = k1;
      arms.push(summary);
    }
    // tuned against every other arm, paired by round.
    const tuned = byArm.get("tuned");
    if (!tuned) continue;
    for (const other of armNames.filter((a) => a !== "tuned")) {
      const limit = (LIMIT_ARMS as readonly string[]).includes(other);
      const pairs: [number, number][] = [];
      for (const i of tuned) {
        const j = byArm.get(other)!.find((k) => records[k].slice === records[i].slice);
        if (j === undefined || !results[i].validity.valid || (!limit && !results[j].validity.valid)) continue;
        pairs.push([i, j]);
      }
      if (!pairs.length) continue;
      const base = {
        scenario: first.scenario,
        ...(first.concurrency !== undefined ? { concurrency: first.concurrency } : {}),
        numerator: "tuned",
        denominator: other,
        kind: kindOf(other),
      };
      const push = (quantity: IntervalComparison["quantity"], f: (i: number) => number | undefined) => {
        const xs = pairs
          .map(([i, j]) => [f(i), f(j)] as const)
          .filter((x): x is readonly [number, number] => x[0] !== undefined && x[1] !== undefined);
        if (!xs.length) return;
        const ci = bootstrapRatio(
          xs.map((x) => x[0]),
          xs.map((x) => x[1]),
          { seed },
        );
        comparisons.push({
          ...base,
          quantity,
          ratio: ci.ratio,
          lo: ci.lo,
          hi: ci.hi,
          pairs: ci.n,
          finding: isFinding(ci) && ci.n >= MIN_PAIRS_FOR_FINDING,
        });
      };
      push("rate", (i) => rateOf(results[i])?.value);
      if (first.scenario === "http-latency") push("p99", (i) => results[i].latency?.p99Ms);
      push("cpuPerUnit", (i) => records[i]?.cpuSecondsPerGB ?? records[i]?.cpuSecondsPer1k);
    }
  }
  return { rounds: plan.rounds, sliceSeconds: plan.sliceSeconds, arms, comparisons };
}

const rank = (arm: string) => (ARM_ORDER.includes(arm) ? ARM_ORDER.indexOf(arm) : ARM_ORDER.length);

function num(n: number | undefined, digits = 3): string {
  if (n === undefined) return "–";
  if (n >= 1000) return Math.round(n).toLocaleString("en-US");
  return Number(n.toPrecision(digits)).toString();
}

const label = (c: { scenario: string; concurrency?: number }) => `${c.scenario}${c.concurrency !== undefined ? ` ×${c.concurrency}` : ""}`;
const QUANTITY = { rate: "rate", p99: "p99 latency", cpuPerUnit: "CPU per unit of work" } as const;
const NAMES: Record<string, string> = {
  tuned: "edgetune (tuned)",
  baseline: "edgetune's HAProxy on the baseline profile",
  "haproxy-stock": "stock HAProxy",
  nginx: "NGINX",
  "no-splice": "edgetune without splice",
  direct: "the direct path (no proxy)",
  forward: "kernel forwarding (no proxy)",
};

/** One sentence per comparison, saying whether it is a finding and what it means. */
export function findingSentence(c: IntervalComparison): string {
  const what = `${QUANTITY[c.quantity]} of ${NAMES[c.numerator] ?? c.numerator} / ${NAMES[c.denominator] ?? c.denominator} on ${label(c)}`;
  const ci = `${c.ratio.toFixed(2)} (95 % interval ${c.lo.toFixed(2)}–${c.hi.toFixed(2)}, ${c.pairs} paired slices)`;
  if (!c.finding)
    return c.pairs < MIN_PAIRS_FOR_FINDING && isFinding(c)
      ? `Not a finding: ${what} is ${ci}; fewer than ${MIN_PAIRS_FOR_FINDING} paired slices are too few to call it.`
      : `Not a finding: ${what} is ${ci}; the interval includes 1, so this run cannot tell them apart.`;
  const higher = c.lo > 1;
  const dir =
    c.quantity === "rate"
      ? higher
        ? "higher"
        : "lower"
      : c.quantity === "p99"
        ? higher
          ? "slower (higher p99)"
          : "faster (lower p99)"
        : higher
          ? "more CPU per unit of work"
          : "less CPU per unit of work";
  return `Finding: ${what} is ${ci}: ${dir}, and the interval excludes 1.`;
}

/** The target of issue 16: tuned/baseline within ±10 % on http-throughput and l4-throughput. */
export const TARGET_HALF_WIDTH = 0.1;

export function renderSliceMarkdown(s: SliceReport): string {
  const out = [
    "## Peers, limits and intervals (paired slices)",
    "",
    `Every arm ran each scenario in ${s.rounds} rounds of ${s.sliceSeconds} s, interleaved (ABCD… then …DCBA) in one set of namespaces, with all proxies running at once; only the namespace's sysctls change for the baseline arm. CPU placement: ${s.placement ?? "none"}. The peers run under the tuned profile. CPU is the run's: the load generator, every process of the proxy and backend namespaces, and the machine's irq/softirq time (packet work no process is charged for), from /proc.`,
    "",
    "| scenario | arm | rate (mean) | p50 ms | p99 ms | p99.9 ms | errors | CPU-s per GB | CPU-s per 1k req | slow slices | steal s | other load CPU-s |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...s.arms.map(
      (a) =>
        `| ${label(a)} | ${a.arm} | ${num(a.rate)} ${UNIT[a.metric]} | ${num(a.p50Ms)} | ${num(a.p99Ms)} | ${num(a.p999Ms)} | ${a.errors} | ${num(a.cpuSecondsPerGB)} | ${num(a.cpuSecondsPer1k)} | ${a.slowSlices}/${a.slices} | ${num(a.stealSeconds)} | ${num(a.otherSeconds)} |`,
    ),
    "",
    "| scenario | compared | ratio | 95 % interval | ± | finding |",
    "|---|---|---|---|---|---|",
    ...s.comparisons.map(
      (c) =>
        `| ${label(c)} | ${QUANTITY[c.quantity]}: tuned / ${c.denominator} | ${c.ratio.toFixed(2)} | ${c.lo.toFixed(2)}–${c.hi.toFixed(2)} | ${(halfWidth(c) * 100).toFixed(0)} % | ${c.finding ? "**yes**" : "no"} |`,
    ),
    "",
    "A ratio is a finding only when its bootstrap 95 % interval (paired slices resampled, seeded) excludes 1; otherwise this run cannot tell the two apart, whatever the ratio. Slow slices: a slice below 0.75 × its arm's median rate (this machine's slow mode). Steal: time the hypervisor gave these vCPUs to someone else; other load: CPU of processes outside the run (anything else on the machine) during the slices — both widen intervals.",
    "",
    "### Findings",
    "",
  ];
  const rate = s.comparisons.filter((c) => c.quantity !== "cpuPerUnit");
  const found = rate.filter((c) => c.finding);
  const open = rate.filter((c) => !c.finding);
  for (const c of found) out.push(`- ${findingSentence(c)}`);
  if (!found.length) out.push("- No rate or latency difference in this run is a finding.");
  for (const c of open) out.push(`- ${findingSentence(c)}`);
  // How far the proxy's CPU per unit of work is above the path without a proxy.
  for (const c of s.comparisons.filter((x) => x.quantity === "cpuPerUnit" && x.kind === "limit"))
    out.push(
      `- CPU per ${c.scenario.startsWith("l4") ? "GB" : "1,000 requests"}: edgetune (tuned) on ${label(c)} costs ${c.ratio.toFixed(2)} × ${NAMES[c.denominator]} (95 % interval ${c.lo.toFixed(2)}–${c.hi.toFixed(2)}).`,
    );
  for (const sc of ["http-throughput", "l4-throughput"]) {
    for (const c of s.comparisons.filter((x) => x.scenario === sc && x.denominator === "baseline" && x.quantity === "rate")) {
      const hw = halfWidth(c);
      out.push(
        `- Interval width, tuned / baseline on ${label(c)}: ±${(hw * 100).toFixed(1)} % (target ±${TARGET_HALF_WIDTH * 100} %): ${hw <= TARGET_HALF_WIDTH ? "met" : "not met"}.`,
      );
    }
  }
  out.push("");
  return out.join("\n");
}

// ---------------------------------------------------------------- SVG ----

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const KIND_COLOR: Record<IntervalComparison["kind"], string> = { profile: "#2f6fdf", peer: "#7b3fb5", limit: "#555", splice: "#2a9d8f" };

/**
 * The intervals panel: tuned / each other arm per scenario, a dot at the ratio and a whisker
 * over the 95 % interval on a log scale; a filled dot is a finding, a hollow one is not.
 */
export function renderIntervalPanel(s: SliceReport, width = 820): { svg: string; height: number } {
  const rates = s.comparisons.filter((c) => c.quantity === "rate");
  const left = 300;
  const plotW = width - left - 120;
  const parts: string[] = [
    `<text x="10" y="20" font-size="13" font-weight="bold">Paired slices: edgetune (tuned) / each arm, rate, 95 % intervals (log scale)</text>`,
  ];
  let y = 32;
  if (!rates.length) {
    parts.push(`<text x="${left}" y="${y + 20}" font-size="12" fill="#555">no paired slices</text>`);
    return { svg: parts.join("\n"), height: y + 40 };
  }
  const ext = Math.max(2, ...rates.flatMap((c) => [c.hi, 1 / Math.max(c.lo, 1e-3)]).filter(Number.isFinite));
  const span = Math.pow(2, Math.ceil(Math.log2(ext)));
  const x = (r: number) => left + ((Math.log2(Math.min(Math.max(r, 1 / span), span)) + Math.log2(span)) / (2 * Math.log2(span))) * plotW;
  const top = y;
  for (const c of rates) {
    const color = KIND_COLOR[c.kind];
    parts.push(
      `<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="11">${esc(`${label(c)}: tuned / ${c.denominator}`)}</text>`,
    );
    parts.push(
      `<line x1="${x(c.lo).toFixed(1)}" y1="${y + 10}" x2="${x(c.hi).toFixed(1)}" y2="${y + 10}" stroke="${color}" stroke-width="2"><title>${esc(`${c.lo.toFixed(2)}–${c.hi.toFixed(2)}`)}</title></line>`,
    );
    parts.push(
      `<circle cx="${x(c.ratio).toFixed(1)}" cy="${y + 10}" r="4" fill="${c.finding ? color : "#fff"}" stroke="${color}" stroke-width="1.5"/>`,
    );
    parts.push(
      `<text x="${(left + plotW + 8).toFixed(1)}" y="${y + 14}" font-size="10">${c.ratio.toFixed(2)} [${c.lo.toFixed(2)}, ${c.hi.toFixed(2)}]${c.finding ? " finding" : ""}</text>`,
    );
    y += 20;
  }
  for (let e = -Math.log2(span); e <= Math.log2(span); e++) {
    const r = Math.pow(2, e);
    parts.push(
      `<line x1="${x(r).toFixed(1)}" y1="${top}" x2="${x(r).toFixed(1)}" y2="${y}" stroke="${e === 0 ? "#333" : "#ddd"}" stroke-dasharray="${e === 0 ? "" : "2,3"}"/>`,
    );
    parts.push(`<text x="${x(r).toFixed(1)}" y="${y + 14}" text-anchor="middle" font-size="10" fill="#555">${num(r)}×</text>`);
  }
  y += 30;
  parts.push(
    `<text x="10" y="${y}" font-size="10" fill="#555">filled: the interval excludes 1 (a finding); hollow: it does not. Colours: blue baseline, purple peers, teal no splice, grey the path without a proxy.</text>`,
  );
  return { svg: parts.join("\n"), height: y + 12 };
}

/** Puts the intervals panel under an existing chart (nested SVG: the chart's bytes are kept). */
export function appendIntervalPanel(chart: string, s: SliceReport): string {
  const m = /<svg [^>]*width="(\d+)" height="(\d+)"/.exec(chart);
  if (!m) throw new Error("appendIntervalPanel: the chart has no width/height");
  const [w, h] = [Number(m[1]), Number(m[2])];
  const panel = renderIntervalPanel(s, w);
  const H = h + panel.height;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${H}" viewBox="0 0 ${w} ${H}" font-family="system-ui, sans-serif" role="img">`,
    `<rect width="${w}" height="${H}" fill="#fff"/>`,
    chart.trim().replace(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" /, '<svg x="0" y="0" '),
    `<g transform="translate(0,${h})">`,
    panel.svg,
    "</g>",
    "</svg>",
    "",
  ].join("\n");
}
