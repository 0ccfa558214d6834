import { LocalLab } from "../../components/lab/local-lab";
import type { NodeGroupPlan, ProxyPlan } from "../stack-config";

/** `local`: the lab topology on this machine; `pulumi destroy` runs the same step script's teardown. */
export function wireLocal(g: NodeGroupPlan, proxy: ProxyPlan) {
  const c = new LocalLab(g.name, { profile: g.profile, proxy: proxy.spec, ...(g.local?.labDir ? { labDir: g.local.labDir } : {}) });
  return { status: c.tuning, endpoints: c.endpoints, labDigest: c.digest };
}
