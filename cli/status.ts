/**
 * `edgetune status`: the fleet table (pure). The tuners annotate each node they tune with
 * `tuning.edgetune.io/<tuner>` = `status=… profile=… digest=… changed=N failed=N skipped=N at=…`;
 * this compares those annotations with what the stack renders now. Reading the cluster
 * (`kubectl get nodes -o json`) is the CLI's business, not this module's.
 */
import { z } from "zod";
import { profileDigest } from "../components/tuning/render";
import { deploysProxyToKubernetes, type StackPlan } from "../loader/stack-config";

export const TUNING_ANNOTATION_PREFIX = "tuning.edgetune.io/";

/** A tuner the stack deploys: what writes `tuning.edgetune.io/<name>` on which nodes. */
export interface StackTuner {
  /** The tuner's TUNER_NAME: its node group's name, or the proxy's instance name for the proxy's tuning container. */
  name: string;
  profile: string;
  /** The digest the stack renders for the profile now (tune.sh's EDGETUNE_DIGEST). */
  digest: string;
  /** Nodes it runs on; empty: every node. */
  nodeSelector: Record<string, string>;
}

/** Every tuner the stack deploys on Kubernetes: each tuner node group's, and the proxy's when it tunes its nodes. */
export function stackTuners(plan: StackPlan): StackTuner[] {
  const out: StackTuner[] = [];
  for (const g of plan.nodeGroups) {
    const t = g.kubernetes?.tuner;
    if (g.target === "kubernetes" && t)
      out.push({ name: t.name, profile: g.profile.name, digest: profileDigest(g.profile), nodeSelector: { ...t.nodeSelector } });
  }
  const k = plan.proxy?.kubernetes;
  if (plan.proxy && k?.tuneNodes && deploysProxyToKubernetes(plan)) {
    const profile = plan.profiles[plan.proxy.profile];
    out.push({ name: k.name, profile: profile.name, digest: profileDigest(profile), nodeSelector: { ...k.nodeSelector } });
  }
  return out;
}

export interface ClusterNode {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const nodeListSchema = z.object({
  items: z.array(
    z.object({
      metadata: z.object({
        name: z.string().min(1),
        labels: z.record(z.string(), z.string()).nullish(),
        annotations: z.record(z.string(), z.string()).nullish(),
      }),
    }),
  ),
});

/** The nodes of `kubectl get nodes -o json`; throws naming what is wrong with it. */
export function parseNodeList(json: unknown): ClusterNode[] {
  const r = nodeListSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`not a Kubernetes NodeList: ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  return r.data.items.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels ?? {}, annotations: n.metadata.annotations ?? {} }));
}

export interface TuningAnnotation {
  status: string;
  profile?: string;
  digest?: string;
  changed?: number;
  failed?: number;
  skipped?: number;
  /** RFC 3339 UTC: when the tuner last applied (or restored). */
  at?: string;
}

/** Reads an annotation value; undefined when it is not the tuner's `key=value …` line. */
export function parseTuningAnnotation(value: string): TuningAnnotation | undefined {
  const fields = new Map<string, string>();
  for (const word of value.trim().split(/\s+/)) {
    const m = /^([a-z]+)=(\S*)$/.exec(word);
    if (!m) return undefined;
    fields.set(m[1], m[2]);
  }
  const status = fields.get("status");
  if (!status) return undefined;
  const count = (k: string) => {
    const v = fields.get(k);
    return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : undefined;
  };
  const a: TuningAnnotation = { status };
  for (const k of ["profile", "digest", "at"] as const) if (fields.has(k)) a[k] = fields.get(k);
  for (const k of ["changed", "failed", "skipped"] as const) if (count(k) !== undefined) a[k] = count(k);
  return a;
}

export interface StatusRow {
  node: string;
  tuner: string;
  /** The profile the annotation names; the stack's when there is none. */
  profile: string;
  /** The annotation's status; `missing` without one on a selected node, `unreadable` when it cannot be read. */
  status: string;
  /** `ok` when the applied digest is the one the stack renders now, `stale` otherwise, `-` without one. */
  digest: "ok" | "stale" | "-";
  appliedDigest?: string;
  expectedDigest: string;
  at?: string;
  ageSeconds?: number;
  changed?: number;
  failed?: number;
  skipped?: number;
  /** Whether the node matches the tuner's nodeSelector (a node outside it is shown when it still carries an annotation). */
  selected: boolean;
  /** A selected node applied (or degraded without failures) with the current digest. */
  ok: boolean;
}

const matches = (labels: Record<string, string>, selector: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** One row per node and tuner, sorted by node then tuner. `now` is when the table is read. */
export function fleetStatus(tuners: StackTuner[], nodes: ClusterNode[], now: Date): StatusRow[] {
  const rows: StatusRow[] = [];
  for (const node of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    for (const t of [...tuners].sort((a, b) => a.name.localeCompare(b.name))) {
      const selected = matches(node.labels, t.nodeSelector);
      const raw = node.annotations[`${TUNING_ANNOTATION_PREFIX}${t.name}`];
      if (!selected && raw === undefined) continue;
      const base = { node: node.name, tuner: t.name, expectedDigest: t.digest, selected };
      if (raw === undefined) {
        rows.push({ ...base, profile: t.profile, status: "missing", digest: "-", ok: false });
        continue;
      }
      const a = parseTuningAnnotation(raw);
      if (!a) {
        rows.push({ ...base, profile: t.profile, status: "unreadable", digest: "-", ok: false });
        continue;
      }
      const atMs = a.at !== undefined && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(a.at) ? Date.parse(a.at) : NaN;
      const digest = a.digest === undefined ? "-" : a.digest === t.digest ? "ok" : "stale";
      const applied = a.status === "applied" || (a.status === "degraded" && a.failed === 0);
      rows.push({
        ...base,
        profile: a.profile ?? t.profile,
        status: a.status,
        digest,
        ...(a.digest !== undefined ? { appliedDigest: a.digest } : {}),
        ...(a.at !== undefined ? { at: a.at } : {}),
        ...(Number.isFinite(atMs) ? { ageSeconds: Math.max(0, Math.floor((now.getTime() - atMs) / 1000)) } : {}),
        ...(a.changed !== undefined ? { changed: a.changed } : {}),
        ...(a.failed !== undefined ? { failed: a.failed } : {}),
        ...(a.skipped !== undefined ? { skipped: a.skipped } : {}),
        ok: selected && applied && digest === "ok",
      });
    }
  }
  return rows;
}

/** 0 when every selected node is ok (and there is one), else 1. */
export function statusExitCode(rows: StatusRow[]): 0 | 1 {
  const selected = rows.filter((r) => r.selected);
  return selected.length > 0 && selected.every((r) => r.ok) ? 0 : 1;
}

/** kubectl's way: 45s, 12m, 5h, 3d. */
export function formatAge(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 120 * 60) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** The table, one row per node and tuner, columns padded like kubectl's. */
export function renderStatusTable(rows: StatusRow[]): string {
  const cells = [
    ["NODE", "TUNER", "PROFILE", "STATUS", "DIGEST", "AGE"],
    ...rows.map((r) => [
      r.node,
      r.tuner,
      r.profile,
      // A node outside the selector that still carries an annotation: shown, not judged.
      r.selected ? r.status : `${r.status} (not selected)`,
      r.digest,
      formatAge(r.ageSeconds),
    ]),
  ];
  const widths = cells[0].map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  return `${cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]))).join("   ")).join("\n")}\n`;
}
