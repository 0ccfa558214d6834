/** What the proof scenarios share: their parse error, HAProxy's workers, nstat deltas in the proxy namespace. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ProofContext } from "./types";

/** A proof's tool printed something its parser cannot read; names the tool and the problem. */
export class ProofOutputError extends Error {
  constructor(what: string, message: string) {
    super(`${what}: ${message}`);
    this.name = "ProofOutputError";
  }
}

/** HAProxy's worker PIDs: the children of the master whose PID lab.sh proxy-start recorded. */
export function haproxyWorkers(labDir: string): number[] {
  const master = readFileSync(join(labDir, "haproxy.pid"), "utf8").trim().split(/\s+/)[0];
  const children = readFileSync(`/proc/${master}/task/${master}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  if (!children.length) throw new ProofOutputError("haproxy", `master ${master} has no worker`);
  return children;
}

/**
 * nstat deltas in the proxy namespace from now until after(), with a history file of its own
 * (the lab notes: a shared one mixes namespaces).
 */
export function proxyNstat(ctx: ProofContext): { after(): string } {
  const env = ["env", `NSTAT_HISTORY=${join(ctx.labDir, "nstat-proof.history")}`, "nstat"];
  ctx.exec(ctx.a.namespaces.proxy, [...env, "-n"]);
  return { after: () => ctx.exec(ctx.a.namespaces.proxy, [...env, "-z"]).stdout };
}

/** The p-th percentile (nearest rank) of values; undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!values.length) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
