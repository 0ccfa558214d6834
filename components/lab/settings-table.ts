/**
 * The settings table: every key any preset sets (sysctls and file limits) plus the HAProxy
 * options edgetune renders, each with the lab scenario that shows its effect here and the last
 * measured figure (baseline → tuned), or the measured reason it cannot show on this machine.
 * Pure: the scenarios' `settings` lists, a results file and the kernel checks come in as data.
 */
import type { BenchResult } from "../bench/result";
import { PRESETS } from "../tuning/presets";

export interface QdiscProbe {
  available: boolean;
  /** The tc command tried inside a scratch namespace. */
  command: string;
  output: string;
}

/** lab/kernel-checks.ts's findings: what this kernel can emulate, and fresh-namespace defaults. */
export interface KernelChecks {
  kernel: string;
  qdiscs: { netem: QdiscProbe; fq: QdiscProbe; fq_codel: QdiscProbe };
  namespaceDefaults: Record<string, string>;
}

/** A scenario (standard or proof) and the keys it shows. */
export interface SettingsSource {
  name: string;
  settings: readonly string[];
}

/** What the table reads from a results file. */
export interface MeasuredRun {
  machine?: { cpus: number; kernel: string; haproxy: string; nofile: number };
  results: readonly BenchResult[];
  /** The lab variants' verdicts against tuned (components/lab/analysis.ts). */
  variants?: readonly { variant: string; concurrency?: number; verdict: string }[];
}

/** HAProxy options edgetune renders (not preset keys): rows of their own, shown by the scenarios that list them. */
export const PROXY_OPTIONS = ["haproxy: splice", "haproxy: bind shards by-thread", "haproxy: bind backlog", "haproxy: clitcpka/srvtcpka"];

/** Every key any preset sets, in catalog order of first appearance, with the presets that set it. */
export function presetKeys(): { key: string; presets: string[] }[] {
  const out = new Map<string, string[]>();
  for (const [name, p] of Object.entries(PRESETS)) {
    const keys = [...Object.keys(p.sysctls ?? {}), ...Object.keys(p.limits ?? {}).map((k) => `limits.${k}`)];
    for (const k of keys) out.set(k, [...(out.get(k) ?? []), name]);
  }
  return [...out.entries()].map(([key, presets]) => ({ key, presets }));
}

const RTT_KEYS = [
  "net.core.rmem_max",
  "net.core.wmem_max",
  "net.ipv4.tcp_rmem",
  "net.ipv4.tcp_wmem",
  "net.ipv4.tcp_slow_start_after_idle",
  "net.ipv4.tcp_fastopen",
  "net.ipv4.tcp_congestion_control",
  "net.core.default_qdisc",
];

/**
 * Why a key cannot show here; `checks` and the results' machine make the reason measured
 * where they can. undefined: no reason known (the key needs a scenario).
 */
export function reasonFor(key: string, checks?: KernelChecks, run?: MeasuredRun): string | undefined {
  const ns = checks?.namespaceDefaults[key];
  if (RTT_KEYS.includes(key))
    return `needs round-trip time: ${delaySentence(checks)}${key === "net.core.default_qdisc" ? "; fq itself cannot be applied here" : ""}`;
  if (["net.ipv4.tcp_window_scaling", "net.ipv4.tcp_sack", "net.ipv4.tcp_timestamps"].includes(key))
    return `sets the kernel default: a fresh namespace already has ${ns ?? "1"}${ns === undefined ? " (not checked)" : ""}, so nothing changes`;
  if (key === "net.ipv4.tcp_mtu_probing")
    return `acts only on a path that drops large packets (an MTU black hole); the lab's veths carry every size${ns !== undefined ? ` (fresh namespace: ${ns})` : ""}`;
  if (key === "net.ipv4.tcp_max_tw_buckets")
    return `a ceiling: a fresh namespace allows ${ns ?? "(not checked)"} TIME_WAIT sockets and no lab scenario holds that many (port-churn's narrow port range keeps it to a few thousand)`;
  if (key === "net.core.optmem_max")
    return "ancillary (cmsg, zerocopy) socket memory: nothing HAProxy does in the lab uses it; not measured";
  if (key === "net.core.busy_poll" || key === "net.core.busy_read")
    return "host-wide, and only a NIC driver with NAPI busy polling honours it; veth pairs in namespaces have none; not measured";
  if (key === "fs.file-max" || key === "fs.nr_open" || key.startsWith("limits.nofile"))
    return `the limit that binds here is the process hard limit RLIMIT_NOFILE ${run?.machine?.nofile ?? 20000}, which root cannot raise on this machine (no CAP_SYS_RESOURCE): a higher system-wide or profile limit cannot take effect`;
  return undefined;
}

/** The no-delay-emulation reason, once, with the check that proves it. */
export function delaySentence(checks?: KernelChecks): string {
  if (!checks) return "the veths' RTT is ~0 and delay emulation was not checked in this run";
  const { netem, fq } = checks.qdiscs;
  if (netem.available) return "netem is available: a delay scenario could show it (none is built yet)";
  return `the veths' RTT is ~0 and this kernel (${checks.kernel}) has no netem${fq.available ? "" : " and no fq"} to add delay (see "No delay emulation" below)`;
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function fmt(n: number | undefined, unit = ""): string {
  if (n === undefined) return "–";
  const v = Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : String(Math.round(n * 100) / 100);
  return `${v}${unit}`;
}

function pick(run: MeasuredRun, scenario: string, profile: string, f: (r: BenchResult) => number | undefined): number | undefined {
  const rs = run.results.filter((r) => r.scenario === scenario && r.profile === profile);
  const top = Math.max(...rs.map((r) => r.concurrency ?? 0));
  return median(
    rs
      .filter((r) => (r.concurrency ?? 0) === top)
      .map(f)
      .filter((x): x is number => x !== undefined),
  );
}

const measure = (name: string) => (r: BenchResult) => r.measures?.[name];

/** The proof scenarios' deciding measure (others: their first measure). */
const DECIDING: Record<string, { measure: string; unit: string; label: string }> = {
  "fin-wait": { measure: "finWait2End", unit: "", label: "FIN-WAIT-2 sockets left at the end of the window" },
  "dead-peer": { measure: "backendDroppedSeconds", unit: " s", label: "backend side dropped after" },
  reuseport: { measure: "perThreadGainPercent", unit: " %", label: "per-thread sockets vs one (tuned)" },
  "conn-hold": { measure: "bytesPerConnection", unit: " B", label: "bytes per held connection" },
  softnet: { measure: "softnetDrops", unit: "", label: "softnet drops" },
};

/** The lab variant (stacks/Pulumi.local.yaml) that shows tcp_notsent_lowat: l4-throughput with it, against tuned without it. */
export const NOTSENT_VARIANT = "l4-throughput (variant notsent-lowat)";

/** The last measured figure of `scenario` for `key`, from a results file; undefined when it has none. */
export function figureFor(scenario: string, key: string, run: MeasuredRun): string | undefined {
  if (scenario === NOTSENT_VARIANT) {
    const g = (profile: string) => pick(run, "l4-throughput", profile, (r) => r.gbps);
    const w = g("notsent-lowat");
    if (w === undefined) return undefined;
    const verdicts = (run.variants ?? []).filter((v) => v.variant === "notsent-lowat").map((v) => `${v.verdict} at P${v.concurrency ?? 1}`);
    return `tuned without it ${fmt(g("tuned"))} → with it ${fmt(w)} Gbit/s${verdicts.length ? ` (${verdicts.join(", ")})` : ""}`;
  }
  const has = (profile: string) => run.results.some((r) => r.scenario === scenario && r.profile === profile);
  if (!has("tuned") && !has("baseline")) return undefined;
  const rate = (r: BenchResult) => r.gbps ?? r.connsPerSecond ?? r.rps;
  switch (scenario) {
    case "conn-burst": {
      const c = Math.max(...run.results.filter((r) => r.scenario === scenario).map((r) => r.concurrency ?? 0));
      return `ListenOverflows at c${c}: ${fmt(pick(run, scenario, "baseline", (r) => r.validity.listenOverflows))} → ${fmt(pick(run, scenario, "tuned", (r) => r.validity.listenOverflows))}; p99 ${fmt(
        pick(run, scenario, "baseline", (r) => r.latency?.p99Ms),
        " ms",
      )} → ${fmt(
        pick(run, scenario, "tuned", (r) => r.latency?.p99Ms),
        " ms",
      )}`;
    }
    case "port-churn":
      return `${fmt(pick(run, scenario, "baseline", rate))} → ${fmt(pick(run, scenario, "tuned", rate))} conn/s`;
    case "l4-throughput":
      if (key === "haproxy: splice")
        return `${fmt(pick(run, scenario, "no-splice", rate))} Gbit/s copying → ${fmt(pick(run, scenario, "tuned", rate))} Gbit/s splicing`;
      return `${fmt(pick(run, scenario, "baseline", rate))} → ${fmt(pick(run, scenario, "tuned", rate))} Gbit/s`;
    case "reuseport":
      return `one socket ${fmt(pick(run, scenario, "tuned", measure("connsPerSecondOneSocket")))} → per thread ${fmt(pick(run, scenario, "tuned", measure("connsPerSecondPerThread")))} conn/s (${fmt(pick(run, scenario, "tuned", measure("perThreadGainPercent")), " %")})`;
    case "dead-peer": {
      const b = pick(run, scenario, "baseline", measure("backendDroppedSeconds"));
      const t = pick(run, scenario, "tuned", measure("backendDroppedSeconds"));
      const w = pick(run, scenario, "baseline", measure("windowSeconds"));
      return `backend side dropped after: ${b === undefined ? `never within ${fmt(w, " s")}` : fmt(b, " s")} → ${t === undefined ? "never" : fmt(t, " s")} (expected ${fmt(pick(run, scenario, "tuned", measure("expectedSeconds")), " s")})`;
    }
  }
  const d = DECIDING[scenario];
  const first = run.results.find((r) => r.scenario === scenario && r.measures)?.measures;
  const name = d?.measure ?? (first ? Object.keys(first)[0] : undefined);
  if (!name) {
    return `${fmt(pick(run, scenario, "baseline", rate))} → ${fmt(pick(run, scenario, "tuned", rate))}`;
  }
  return `${d?.label ?? name}: ${fmt(pick(run, scenario, "baseline", measure(name)), d?.unit)} → ${fmt(pick(run, scenario, "tuned", measure(name)), d?.unit)}`;
}

export interface SettingRow {
  key: string;
  presets: string[];
  scenarios: string[];
  /** Per scenario, its last figure ("not in this results file" when it has none). */
  figures: string[];
  /** Why it cannot show here, when no scenario shows it. */
  reason?: string;
}

export function settingsRows(sources: readonly SettingsSource[], run?: MeasuredRun, checks?: KernelChecks): SettingRow[] {
  const keys = [...presetKeys(), ...PROXY_OPTIONS.map((key) => ({ key, presets: ["(rendered)"] }))];
  return keys.map(({ key, presets }) => {
    const scenarios = sources.filter((s) => s.settings.includes(key)).map((s) => s.name);
    const figures = scenarios.map((s) => (run ? (figureFor(s, key, run) ?? "not in this results file") : "not measured"));
    const reason = scenarios.length ? undefined : (reasonFor(key, checks, run) ?? "no lab scenario shows it yet");
    return { key, presets, scenarios, figures, ...(reason ? { reason } : {}) };
  });
}

const cell = (s: string) => s.replace(/\|/g, "\\|");

/** The table as Markdown, then the delay-emulation check once. */
export function renderSettingsTable(rows: readonly SettingRow[], checks?: KernelChecks, source = "this run"): string {
  const out = [
    `| setting | set by presets | shown by | last measured here (baseline → tuned, ${source}) or why it cannot show |`,
    "|---|---|---|---|",
  ];
  for (const r of rows) {
    const shown = r.scenarios.length ? r.scenarios.map((s) => `\`${s}\``).join(", ") : "—";
    const what = r.scenarios.length
      ? r.scenarios.map((s, i) => (r.scenarios.length > 1 ? `${s}: ${r.figures[i]}` : r.figures[i])).join("; ")
      : `cannot show: ${r.reason}`;
    out.push(`| \`${r.key}\` | ${r.presets.join(", ")} | ${shown} | ${cell(what)} |`);
  }
  out.push("", "**No delay emulation.** " + delayCheckText(checks));
  return `${out.join("\n")}\n`;
}

function delayCheckText(checks?: KernelChecks): string {
  if (!checks) return "Not checked in this run (lab/kernel-checks.ts needs root).";
  const q = checks.qdiscs;
  const line = (p: QdiscProbe) =>
    `\`${p.command}\` in a scratch namespace → ${p.available ? "accepted" : `refused: \`${p.output.split("\n")[0]}\``}`;
  return [
    `Settings whose effect depends on round-trip time (buffer sizes, slow start after idle, TFO, congestion control, fq) cannot show on kernel ${checks.kernel}: the veth RTT is ~0, and`,
    `${line(q.netem)}; ${line(q.fq)}; ${line(q.fq_codel)}.`,
  ].join(" ");
}
