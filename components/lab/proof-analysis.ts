/**
 * The proof scenarios' comparison (pure): per proof, the medians of each measure for baseline
 * and tuned, and a verdict in words decided by counters (held connections, drops, queue-full
 * events), not by rates. The lab report (analysis.ts) prints it; results.json carries it.
 */
import { median, PROOF_SCENARIO_NAMES, type BenchResult, type ProofScenarioName } from "../bench/result";

export interface ProofComparison {
  scenario: ProofScenarioName;
  baselineRuns: number;
  tunedRuns: number;
  /** measure → median of each profile's runs (absent on a side that did not report it). */
  measures: Record<string, { baseline?: number; tuned?: number }>;
  verdict: string;
}

type Medians = Record<string, number>;
/** A scenario's verdict from the medians of its measures, baseline and tuned. */
type Verdict = (b: Medians, t: Medians) => string;

const n = (v: number | undefined) => (v === undefined ? "–" : Math.round(v).toLocaleString("en-US"));

/** Verdicts by scenario; a proof without one gets its medians and no verdict of its own. */
export const PROOF_VERDICTS: Partial<Record<ProofScenarioName, Verdict>> = {
  "conn-hold": (b, t) => {
    const held = `baseline held ${n(b.heldWithoutErrors)} without errors (at most ${n(b.heldMax)}), tuned ${n(t.heldWithoutErrors)} (at most ${n(t.heldMax)})`;
    const limit =
      b.heldMax === t.heldMax
        ? b.haproxyMaxconn !== undefined && b.heldMax === b.haproxyMaxconn
          ? `: the same — both stop at HAProxy's maxconn ${n(b.haproxyMaxconn)}, which the lab derives from this machine's RLIMIT_NOFILE for every profile, so file limits cannot differ here`
          : ": the same"
        : (t.heldMax ?? 0) > (b.heldMax ?? 0)
          ? ": file limits decide"
          : ": tuned held fewer";
    const bytes =
      t.bytesPerConnection !== undefined
        ? `; ${n(t.bytesPerConnection)} bytes per idle connection (HAProxy RSS ${n(t.haproxyRssBytesPerConnection)} + the proxy's kernel sockets ${n(t.kernelBytesPerConnection)}), i.e. ${((t.bytesPerConnection * 1000) / 1e6).toFixed(1)} MB per 1,000`
        : "";
    return `${held}${limit}${bytes}`;
  },
  softnet: (b, t) => {
    const [bd, td] = [b.softnetDrops ?? 0, t.softnetDrops ?? 0];
    const values = `netdev_max_backlog ${n(b.netdevMaxBacklog)} → ${n(bd)} backlog drops, ${n(t.netdevMaxBacklog)} → ${n(td)}`;
    if (bd > 0 && td === 0) return `${values}: netdev_max_backlog decides`;
    if (bd === 0 && td === 0)
      return `${values}: no backlog drops at either value (${n(b.softnetProcessed)} and ${n(t.softnetProcessed)} packets processed): not shown on this machine`;
    if (bd > 0 && td > 0) return `${values}: both overflowed; the flood outran even the tuned backlog`;
    return `${values}: only tuned dropped — not the setting's effect`;
  },
  "syn-flood": (b, t) => {
    const ok = (m: Medians) => `${(m.legitSuccessPercent ?? 0).toFixed(1)} % (p99 ${m.legitP99Ms?.toFixed(1) ?? "–"} ms)`;
    const queue = (m: Medians) =>
      `${n(m.reqQueueFullCookies)} SYN-queue-full cookies, ${n(m.reqQueueFullDrops)} queue-full drops, ${n(m.synRecvSockets)} half-open`;
    const decides =
      (b.reqQueueFullCookies ?? 0) + (b.reqQueueFullDrops ?? 0) > 0 && (t.reqQueueFullCookies ?? 0) + (t.reqQueueFullDrops ?? 0) === 0
        ? "the larger SYN queue held the whole flood"
        : (b.reqQueueFullDrops ?? 0) > (t.reqQueueFullDrops ?? 0)
          ? "queue-full drops decide"
          : "the queue counters do not separate the profiles";
    return `legitimate connections: baseline ${ok(b)}, tuned ${ok(t)}; baseline ${queue(b)}, tuned ${queue(t)}: ${decides}`;
  },
};

/** Medians of every measure per proof scenario, baseline against tuned, with the verdict. */
export function proofComparisons(results: readonly BenchResult[], baseline = "baseline", tuned = "tuned"): ProofComparison[] {
  const out: ProofComparison[] = [];
  for (const scenario of PROOF_SCENARIO_NAMES) {
    const pick = (profile: string) => results.filter((r) => r.scenario === scenario && r.profile === profile && r.measures);
    const [b, t] = [pick(baseline), pick(tuned)];
    if (!b.length && !t.length) continue;
    const medians = (rs: BenchResult[]): Medians => {
      const keys = [...new Set(rs.flatMap((r) => Object.keys(r.measures!)))];
      return Object.fromEntries(
        keys.map((k) => [k, median(rs.flatMap((r) => (r.measures![k] !== undefined ? [r.measures![k]] : [])))] as const),
      );
    };
    const [bm, tm] = [medians(b), medians(t)];
    const measures: ProofComparison["measures"] = {};
    for (const k of new Set([...Object.keys(bm), ...Object.keys(tm)]))
      measures[k] = { ...(k in bm ? { baseline: bm[k] } : {}), ...(k in tm ? { tuned: tm[k] } : {}) };
    const verdict =
      b.length && t.length ? (PROOF_VERDICTS[scenario]?.(bm, tm) ?? "") : `ran for ${b.length ? baseline : tuned} only: nothing to compare`;
    out.push({ scenario, baselineRuns: b.length, tunedRuns: t.length, measures, verdict });
  }
  return out;
}

const fmt = (v: number | undefined) => (v === undefined ? "–" : Number.isInteger(v) ? n(v) : v.toFixed(2));

/** The report's section: one table per proof (measure, baseline, tuned) and its verdict. */
export function renderProofMarkdown(proofs: readonly ProofComparison[]): string[] {
  if (!proofs.length) return [];
  const lines = ["", "### Proof scenarios: baseline against tuned (medians of each measure)"];
  for (const p of proofs) {
    lines.push("", `#### ${p.scenario} (${p.baselineRuns} baseline, ${p.tunedRuns} tuned run(s))`, "");
    if (p.verdict) lines.push(`**Verdict:** ${p.verdict}`, "");
    lines.push("| measure | baseline | tuned |", "|---|---|---|");
    for (const [k, v] of Object.entries(p.measures)) lines.push(`| ${k} | ${fmt(v.baseline)} | ${fmt(v.tuned)} |`);
  }
  return lines;
}

/** The terminal's lines: each proof's verdict, then its measures baseline → tuned. */
export function renderProofTable(proofs: readonly ProofComparison[]): string[] {
  if (!proofs.length) return [];
  const lines = ["proof scenarios (medians, baseline → tuned):"];
  for (const p of proofs) {
    lines.push(`  ${p.scenario}: ${p.verdict || "(no verdict)"}`);
    for (const [k, v] of Object.entries(p.measures)) lines.push(`    ${k.padEnd(30)} ${fmt(v.baseline).padStart(12)} → ${fmt(v.tuned)}`);
  }
  lines.push("");
  return lines;
}
