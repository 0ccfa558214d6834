import { LocalLab } from "../../components/lab/local-lab";
import { readMachineFacts } from "../../loader/machine-facts";
import type { NodeGroupPlan, ProxyPlan } from "../../loader/stack-config";

/** `local`: the lab topology on this machine; `pulumi destroy` runs the same step script's teardown. */
export function wireLocal(g: NodeGroupPlan, proxy: ProxyPlan) {
  // The program runs on the machine it configures, so HAProxy gets this machine's facts.
  const c = new LocalLab(g.name, { profile: g.profile, proxy: proxy.spec, machine: readMachineFacts(), ...g.local });
  return { status: c.tuning, endpoints: c.endpoints, labDigest: c.digest };
}
