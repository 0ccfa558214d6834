import { compareProfiles, LAB_SCENARIO_NAMES, median, SCENARIO_NAMES, totalErrors, type BenchResult, type Comparison } from "./result";
import type { ThresholdVerdict } from "./thresholds";

/**
 * Human-facing renderings of results: a plain table, Markdown and an SVG chart.
 * The SVG is written by hand rather than with vega/vega-lite: vega 6 is ESM-only
 * (this package is CommonJS for Node >= 20.0), vega 5 pulls ~30 packages and needs
 * node-canvas for text metrics; two bar panels do not justify either.
 */

const UNIT = { rps: "req/s", gbps: "Gbit/s", connsPerSecond: "conn/s" } as const;

function num(n: number | undefined, digits = 3): string {
  if (n === undefined) return "–";
  if (n >= 1000) return Math.round(n).toLocaleString("en-US");
  return Number(n.toPrecision(digits)).toString();
}

interface Row {
  scenario: string;
  profile: string;
  concurrency: string;
  runs: string;
  rate: string;
  p50: string;
  p99: string;
  p999: string;
  errors: string;
  overflows: string;
  valid: string;
}

function rows(results: readonly BenchResult[]): Row[] {
  const groups = new Map<string, BenchResult[]>();
  for (const r of results) {
    const key = JSON.stringify([LAB_SCENARIO_NAMES.indexOf(r.scenario), r.scenario, r.profile ?? "", r.concurrency ?? 0]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, rs]) => {
      const valid = rs.filter((r) => r.validity.valid);
      const use = valid.length ? valid : rs;
      const m = (f: (r: BenchResult) => number | undefined) => {
        const v = use.map(f).filter((x): x is number => x !== undefined);
        return v.length ? median(v) : undefined;
      };
      const first = rs[0];
      const metric = first.gbps !== undefined ? "gbps" : first.connsPerSecond !== undefined ? "connsPerSecond" : "rps";
      return {
        scenario: first.scenario,
        profile: first.profile ?? "",
        concurrency: first.concurrency === undefined ? "" : String(first.concurrency),
        runs: String(rs.length),
        rate: `${num(m((r) => r[metric]))} ${UNIT[metric]}`,
        p50: num(m((r) => r.latency?.p50Ms)),
        p99: num(m((r) => r.latency?.p99Ms)),
        p999: num(m((r) => r.latency?.p999Ms)),
        errors: num(m(totalErrors)),
        overflows: num(m((r) => r.validity.listenOverflows)),
        valid: `${valid.length}/${rs.length}`,
      };
    });
}

const HEAD: [keyof Row, string][] = [
  ["scenario", "scenario"],
  ["profile", "profile"],
  ["concurrency", "conc."],
  ["runs", "runs"],
  ["rate", "rate (median)"],
  ["p50", "p50 ms"],
  ["p99", "p99 ms"],
  ["p999", "p99.9 ms"],
  ["errors", "errors"],
  ["overflows", "listen overflows"],
  ["valid", "valid"],
];

/** Fixed-width table for a terminal. */
export function renderTable(results: readonly BenchResult[]): string {
  const rs = rows(results);
  const width = HEAD.map(([k, h]) => Math.max(h.length, ...rs.map((r) => r[k].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(width[i]))
      .join("  ")
      .trimEnd();
  return (
    [line(HEAD.map(([, h]) => h)), line(width.map((w) => "-".repeat(w))), ...rs.map((r) => line(HEAD.map(([k]) => r[k])))].join("\n") + "\n"
  );
}

const mdCell = (s: string) => s.replace(/\|/g, "\\|");

export function renderMarkdown(
  results: readonly BenchResult[],
  opts: { title?: string; verdict?: ThresholdVerdict; chartPath?: string } = {},
): string {
  const out = [`# ${opts.title ?? "edgetune benchmark"}`, ""];
  if (opts.verdict) {
    out.push(
      opts.verdict.passed
        ? "**Thresholds: passed.**"
        : `**Thresholds: FAILED** (${opts.verdict.violations.length} violation${opts.verdict.violations.length === 1 ? "" : "s"})`,
      "",
    );
    for (const v of opts.verdict.violations) out.push(`- ${mdCell(v.message)}`);
    if (opts.verdict.violations.length) out.push("");
  }
  if (opts.chartPath) out.push(`![tuned vs baseline](${opts.chartPath})`, "");
  out.push("## Results (medians of valid runs)", "");
  out.push(`| ${HEAD.map(([, h]) => h).join(" | ")} |`, `|${HEAD.map(() => "---").join("|")}|`);
  for (const r of rows(results)) out.push(`| ${HEAD.map(([k]) => mdCell(r[k])).join(" | ")} |`);
  out.push("");
  const cmp = compareProfiles(results);
  if (cmp.length) {
    out.push(
      "## Tuned vs baseline",
      "",
      "| scenario | conc. | metric | baseline | tuned | tuned/baseline | spread | p99 tuned/baseline |",
      "|---|---|---|---|---|---|---|---|",
    );
    for (const c of cmp) {
      out.push(
        `| ${c.scenario} | ${c.concurrency ?? ""} | ${UNIT[c.metric]} | ${num(c.baseline)} | ${num(c.tuned)} | ${c.ratio.toFixed(2)}${Math.abs(c.ratio - 1) <= c.spread ? " (within noise)" : ""} | ${(c.spread * 100).toFixed(0)} % | ${c.p99RatioTunedOverBaseline?.toFixed(2) ?? "–"} |`,
      );
    }
    out.push("");
  }
  const invalid = results.filter((r) => !r.validity.valid);
  if (invalid.length) {
    out.push("## Invalid runs (not counted)", "");
    for (const r of invalid)
      out.push(
        `- ${r.scenario}${r.profile ? ` (${r.profile}${r.run !== undefined ? ` run ${r.run}` : ""})` : ""}: ${mdCell(r.validity.reasons.join("; "))}`,
      );
    out.push("");
  }
  const methods = [...new Set(results.flatMap((r) => (r.latency ? [r.latency.method] : [])))];
  if (methods.includes("closed-loop"))
    out.push(
      "Latency marked closed-loop comes from wrk and understates tails under stalls (coordinated omission); http-latency uses a constant-rate schedule.",
      "",
    );
  return out.join("\n");
}

// ---------------------------------------------------------------- SVG ----

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const COLORS = { baseline: "#9aa5b1", tuned: "#2f6fdf", worse: "#d9822b" } as const;

/**
 * Two panels: primary rate per scenario as tuned vs baseline (baseline = 100 %,
 * since scenarios have different units), and latency percentiles on a log
 * scale. Deterministic output: the same results give the same bytes.
 */
export function renderSvgChart(results: readonly BenchResult[], opts: { baseline?: string; tuned?: string; title?: string } = {}): string {
  const baseline = opts.baseline ?? "baseline";
  const tuned = opts.tuned ?? "tuned";
  const cmp: Comparison[] = compareProfiles(results, baseline, tuned);
  const W = 820;
  const left = 215;
  // Room on the right for the value labels, so the longest bar's label stays inside.
  const plotW = W - left - 165;
  const parts: string[] = [];
  let y = 40;
  parts.push(
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(opts.title ?? "edgetune: tuned vs baseline")}</text>`,
  );
  parts.push(legend(W - 300, 40, baseline, tuned));
  y += 30;

  // Panel 1: tuned / baseline on a log scale around 100 %: 2x better and 2x worse are the
  // same length, and one scenario at 70x does not flatten every other bar.
  parts.push(
    `<text x="10" y="${y}" font-size="13" font-weight="bold">Throughput, ${esc(tuned)} / ${esc(baseline)} (log scale, 100 % = no change)</text>`,
  );
  y += 12;
  if (!cmp.length) {
    parts.push(
      `<text x="${left}" y="${y + 20}" font-size="12" fill="#555">no scenario has valid ${esc(baseline)} and ${esc(tuned)} runs</text>`,
    );
    y += 40;
  } else {
    const ratios = cmp.map((c) => Math.max(c.ratio, 1e-3));
    const span = Math.max(2, ...ratios.map((r) => Math.pow(2, Math.ceil(Math.abs(Math.log2(r))))));
    const x = (ratio: number) =>
      left + ((Math.log2(Math.min(Math.max(ratio, 1 / span), span)) + Math.log2(span)) / (2 * Math.log2(span))) * plotW;
    const top = y;
    for (const [i, c] of cmp.entries()) {
      const label = `${c.scenario}${c.concurrency !== undefined ? ` ×${c.concurrency}` : ""}`;
      parts.push(`<text x="${left - 8}" y="${y + 17}" text-anchor="end" font-size="12">${esc(label)}</text>`);
      const x0 = x(1);
      const x1 = x(ratios[i]);
      const better = ratios[i] >= 1;
      parts.push(
        `<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 6}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="14" fill="${better ? COLORS.tuned : COLORS.worse}"><title>${esc(`${baseline}: ${num(c.baseline)} ${UNIT[c.metric]}; ${tuned}: ${num(c.tuned)} ${UNIT[c.metric]}; spread ${(c.spread * 100).toFixed(0)} %`)}</title></rect>`,
      );
      const tx = better ? Math.max(x0, x1) + 4 : Math.min(x0, x1) - 4;
      parts.push(
        `<text x="${tx.toFixed(1)}" y="${y + 17}" font-size="11" text-anchor="${better ? "start" : "end"}">${(c.ratio * 100).toFixed(0)} % (${esc(num(c.tuned))} ${UNIT[c.metric]})</text>`,
      );
      y += 28;
    }
    // At most ~9 labelled gridlines: every power of two while they fit, then every k-th.
    const stepE = Math.max(1, Math.ceil((2 * Math.log2(span) + 1) / 9));
    for (let e = -Math.log2(span); e <= Math.log2(span); e++) {
      if (e % stepE !== 0) continue;
      const r = Math.pow(2, e);
      parts.push(
        `<line x1="${x(r).toFixed(1)}" y1="${top}" x2="${x(r).toFixed(1)}" y2="${y}" stroke="${e === 0 ? "#333" : "#ddd"}" stroke-dasharray="${e === 0 ? "" : "2,3"}"/>`,
      );
      parts.push(`<text x="${x(r).toFixed(1)}" y="${y + 14}" text-anchor="middle" font-size="10" fill="#555">${num(r * 100)} %</text>`);
    }
    y += 34;
  }

  // Panel 2: latency percentiles, log scale (p50 and p99.9 differ by orders of magnitude under a burst).
  const PCTS = [
    ["p50Ms", "p50"],
    ["p90Ms", "p90"],
    ["p99Ms", "p99"],
    ["p999Ms", "p99.9"],
  ] as const;
  const lat = SCENARIO_NAMES.flatMap((s) => {
    // One row per concurrency: a burst at 8000 and at 2000 are different experiments.
    const levels = [...new Set(results.filter((r) => r.scenario === s).map((r) => r.concurrency))].sort((a, b) => (a ?? 0) - (b ?? 0));
    return levels.flatMap((c) =>
      [baseline, tuned].flatMap((profile) => {
        const rs = results.filter((r) => r.scenario === s && r.concurrency === c && r.profile === profile && r.validity.valid && r.latency);
        if (!rs.length) return [];
        const name = levels.length > 1 && c !== undefined ? `${s} ×${c}` : s;
        return [{ scenario: name, profile, values: PCTS.map(([k]) => median(rs.map((r) => r.latency![k]))) }];
      }),
    );
  });
  parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Latency percentiles, ms (log scale)</text>`);
  y += 12;
  if (!lat.length) {
    parts.push(`<text x="${left}" y="${y + 20}" font-size="12" fill="#555">no valid run reports latency</text>`);
    y += 40;
  } else {
    const all = lat.flatMap((l) => l.values).filter((v) => v > 0);
    const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...all))));
    const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
    const decades = Math.max(1, Math.log10(hi / lo));
    const x = (ms: number) => left + (Math.log10(Math.max(ms, lo) / lo) / decades) * plotW;
    const top = y;
    for (const l of lat) {
      parts.push(`<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="12">${esc(`${l.scenario} (${l.profile})`)}</text>`);
      const color = l.profile === tuned ? COLORS.tuned : COLORS.baseline;
      l.values.forEach((v, i) => {
        parts.push(
          `<rect x="${left}" y="${y + 2 + i * 5}" width="${Math.max(1, x(v) - left).toFixed(1)}" height="4" fill="${color}" fill-opacity="${(1 - i * 0.2).toFixed(1)}"><title>${esc(`${PCTS[i][1]}: ${num(v)} ms`)}</title></rect>`,
        );
      });
      parts.push(
        `<text x="${(left + plotW + 10).toFixed(1)}" y="${y + 14}" font-size="10">p99 ${esc(num(l.values[2]))} · p99.9 ${esc(num(l.values[3]))} ms</text>`,
      );
      y += 26;
    }
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
      parts.push(`<line x1="${x(d).toFixed(1)}" y1="${top}" x2="${x(d).toFixed(1)}" y2="${y}" stroke="#ddd" stroke-dasharray="2,3"/>`);
      parts.push(`<text x="${x(d).toFixed(1)}" y="${y + 14}" text-anchor="middle" font-size="10" fill="#555">${num(d)}</text>`);
    }
    y += 24;
    parts.push(`<text x="${left}" y="${y}" font-size="10" fill="#555">bars per row, top to bottom: p50, p90, p99, p99.9</text>`);
    y += 10;
  }
  const H = y + 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" role="img">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

function legend(x: number, y: number, baseline: string, tuned: string): string {
  return [
    `<rect x="${x}" y="${y - 9}" width="12" height="10" fill="${COLORS.baseline}"/>`,
    `<text x="${x + 16}" y="${y}" font-size="12">${esc(baseline)}</text>`,
    `<rect x="${x + 100}" y="${y - 9}" width="12" height="10" fill="${COLORS.tuned}"/>`,
    `<text x="${x + 116}" y="${y}" font-size="12">${esc(tuned)}</text>`,
    `<rect x="${x + 170}" y="${y - 9}" width="12" height="10" fill="${COLORS.worse}"/>`,
    `<text x="${x + 186}" y="${y}" font-size="12">${esc(tuned)}, lower</text>`,
  ].join("\n");
}
