import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { edgetuneLabels, privilegedNamespace } from "../../components/k8s-namespace";
import { KubernetesNodeTuner } from "../../components/nodes/kubernetes-node-tuner";
import { ProxyDaemonSet } from "../../components/proxy/proxy-daemonset";
import type { NamespacePlan, NodeGroupPlan, ProxyPlan, StackPlan } from "../../loader/stack-config";

/** Namespace name → its name as an Output that depends on its creation (when the stack creates it). */
export type OwnedNamespaces = ReadonlyMap<string, pulumi.Output<string>>;

const COMPONENT_TYPE = { tuner: "edgetune:nodes:KubernetesNodeTuner", proxy: "edgetune:proxy:ProxyDaemonSet" } as const;

/**
 * Creates every namespace the stack's deployed tuners, proxy and benchmark use, once each, named after
 * the namespace itself: renaming or adding a node group never replaces it. Until this release
 * each component created its namespace as its child `<component>-ns`; the aliases carry such a
 * namespace over instead of deleting and recreating it (with everything in it).
 */
export function ownNamespaces(plan: StackPlan, deployed: { proxy: boolean }): OwnedNamespaces {
  const out = new Map<string, pulumi.Output<string>>();
  for (const n of plan.namespaces) {
    const users = n.users.filter((u) => u.kind !== "proxy" || deployed.proxy);
    if (users.length) out.set(n.name, n.create ? createNamespace(n, users).metadata.name : pulumi.output(n.name));
  }
  return out;
}

function createNamespace(n: NamespacePlan, users: NamespacePlan["users"]): k8s.core.v1.Namespace {
  const spec = privilegedNamespace(n.name, edgetuneLabels("edgetune", "namespace", n.name), n.podSecurityVersion);
  return new k8s.core.v1.Namespace(
    n.name,
    { metadata: spec.metadata },
    // The benchmark never created its namespace itself: nothing to carry over.
    {
      aliases: users.flatMap((u) =>
        u.kind === "bench" ? [] : [{ name: `${u.name}-ns`, parent: pulumi.createUrn(u.name, COMPONENT_TYPE[u.kind]) }],
      ),
    },
  );
}

/** `kubernetes` node group: a tuner DaemonSet, or nothing when the proxy's tuning sidecar tunes these nodes. */
export function wireKubernetesGroup(g: NodeGroupPlan, namespaces: OwnedNamespaces, opts?: pulumi.CustomResourceOptions) {
  const t = g.kubernetes?.tuner;
  if (!t) return { tunedBy: "proxy tuning sidecar" };
  const { name: _name, ...options } = t;
  const c = new KubernetesNodeTuner(
    g.name,
    { profile: g.profile, ...options, namespace: namespaces.get(t.namespace)!, createNamespace: false },
    opts,
  );
  return { tunedBy: "tuner DaemonSet", namespace: c.namespace, daemonSet: c.daemonSetName, checksum: c.checksum, component: c };
}

/** The proxy as a hostNetwork DaemonSet whose tuning sidecar applies the proxy profile. */
export function wireKubernetesProxy(
  plan: StackPlan,
  proxy: ProxyPlan & { kubernetes: NonNullable<ProxyPlan["kubernetes"]> },
  namespaces: OwnedNamespaces,
) {
  const { name, ...options } = proxy.kubernetes;
  const c = new ProxyDaemonSet(name, {
    ...options,
    namespace: namespaces.get(options.namespace)!,
    createNamespace: false,
    profile: plan.profiles[proxy.profile],
    proxy: proxy.spec,
  });
  return {
    component: c,
    outputs: {
      namespace: c.namespace,
      daemonSet: c.daemonSetName,
      checksum: c.checksum,
      // hostNetwork: each listener is on every proxy node's address at this port.
      ports: Object.fromEntries([
        ...proxy.spec.listeners.map((l) => [l.name, l.port]),
        ["metrics", proxy.spec.metricsPort],
        ["health", proxy.spec.healthPort],
      ]),
    },
  };
}
