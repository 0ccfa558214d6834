import type * as pulumi from "@pulumi/pulumi";
import { KubernetesNodeTuner } from "../../components/nodes/kubernetes-node-tuner";
import { ProxyDaemonSet } from "../../components/proxy/proxy-daemonset";
import type { NodeGroupPlan, ProxyPlan, StackPlan } from "../stack-config";

/** `kubernetes` node group: a tuner DaemonSet, or nothing when the proxy's init container tunes these nodes. */
export function wireKubernetesGroup(g: NodeGroupPlan, opts?: pulumi.CustomResourceOptions) {
  const t = g.kubernetes?.tuner;
  if (!t) return { tunedBy: "proxy init container" };
  const c = new KubernetesNodeTuner(g.name, { profile: g.profile, ...t }, opts);
  return { tunedBy: "tuner DaemonSet", namespace: c.namespace, daemonSet: c.daemonSetName, checksum: c.checksum, component: c };
}

/** The proxy as a hostNetwork DaemonSet whose init container applies the proxy profile. */
export function wireKubernetesProxy(plan: StackPlan, proxy: ProxyPlan & { kubernetes: NonNullable<ProxyPlan["kubernetes"]> }) {
  const { name, ...options } = proxy.kubernetes;
  const c = new ProxyDaemonSet(name, { ...options, profile: plan.profiles[proxy.profile], proxy: proxy.spec });
  return {
    component: c,
    outputs: {
      namespace: c.namespace,
      daemonSet: c.daemonSetName,
      checksum: c.checksum,
      // hostNetwork: each listener is on every proxy node's address at this port.
      ports: Object.fromEntries([...proxy.spec.listeners.map((l) => [l.name, l.port]), ["metrics", proxy.spec.metricsPort ?? 8404], ["health", proxy.spec.healthPort ?? 8405]]),
    },
  };
}
