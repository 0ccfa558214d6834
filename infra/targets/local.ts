import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { LocalLab } from "../../components/lab/local-lab";
import type { NodeGroupPlan, ProxyPlan } from "../stack-config";

/** This machine's RLIMIT_NOFILE hard limit: HAProxy's maxconn and maxpipes must fit it. */
function hardNofile(): number | undefined {
  const n = Number(spawnSync("/bin/sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim());
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** `local`: the lab topology on this machine; `pulumi destroy` runs the same step script's teardown. */
export function wireLocal(g: NodeGroupPlan, proxy: ProxyPlan) {
  // The program runs on the machine it configures, so HAProxy gets this machine's facts.
  const nofileLimit = hardNofile();
  const c = new LocalLab(g.name, { profile: g.profile, proxy: proxy.spec, cpus: cpus().length, ...(nofileLimit ? { nofileLimit } : {}), ...(g.local?.labDir ? { labDir: g.local.labDir } : {}) });
  return { status: c.tuning, endpoints: c.endpoints, labDigest: c.digest };
}
