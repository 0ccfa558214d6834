import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ResolvedProfile } from "../tuning/types";
import type { ProxySpec } from "./haproxy";
import { renderProxyObjects, type ProxyK8sOptions } from "./k8s-proxy";

/**
 * Arguments of `ProxyDaemonSet`. Everything except `profile`, `proxy`,
 * `image` and `tunerImage` has a default (see `ProxyK8sOptions`).
 */
export interface ProxyDaemonSetArgs extends Omit<ProxyK8sOptions, "name"> {
  /** The node profile the init container applies and haproxy.cfg is derived from. */
  profile: ResolvedProfile;
  /** Listeners, backends and endpoints (see `ProxySpec`). */
  proxy: ProxySpec;
  /** CPUs and RLIMIT_NOFILE of the proxy nodes, when known; otherwise HAProxy picks threads and the profile's nofile is used. */
  nodeFacts?: { cpus?: number; nofileLimit?: number };
}

/**
 * HAProxy as a hostNetwork DaemonSet whose privileged init container applies
 * the node profile (tune.sh apply) before the least-privilege proxy starts.
 * Bad arguments throw a `ValidationError` at construction: nothing is registered.
 */
export class ProxyDaemonSet extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly daemonSetName: pulumi.Output<string>;
  /** Checksum of the rendered config in the pod template. */
  readonly checksum: string;

  constructor(name: string, args: ProxyDaemonSetArgs, opts?: pulumi.ComponentResourceOptions) {
    // Render (and validate) before super(): bad input must not register even the component.
    const { profile, proxy, nodeFacts, ...options } = args;
    const objects = renderProxyObjects(proxy, profile, { ...options, name }, nodeFacts);
    super("edgetune:proxy:ProxyDaemonSet", name, {}, opts);
    const child = { parent: this };
    const meta = (o: Record<string, unknown>) => o.metadata as k8s.types.input.meta.v1.ObjectMeta;
    const spec = <T>(o: Record<string, unknown>) => o.spec as T;

    const ns = new k8s.core.v1.Namespace(`${name}-ns`, { metadata: meta(objects.namespace) }, child);
    const inNs = { parent: this, dependsOn: [ns] };
    const cm = new k8s.core.v1.ConfigMap(`${name}-config`, { metadata: meta(objects.configMap), data: objects.configMap.data as Record<string, string> }, inNs);
    const ds = new k8s.apps.v1.DaemonSet(`${name}-ds`, { metadata: meta(objects.daemonSet), spec: spec<k8s.types.input.apps.v1.DaemonSetSpec>(objects.daemonSet) }, { parent: this, dependsOn: [ns, cm] });
    if (objects.service) new k8s.core.v1.Service(`${name}-metrics`, { metadata: meta(objects.service), spec: spec<k8s.types.input.core.v1.ServiceSpec>(objects.service) }, inNs);
    if (objects.podDisruptionBudget) new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, { metadata: meta(objects.podDisruptionBudget), spec: spec<k8s.types.input.policy.v1.PodDisruptionBudgetSpec>(objects.podDisruptionBudget) }, inNs);

    this.namespace = ns.metadata.name;
    this.daemonSetName = ds.metadata.name;
    this.checksum = objects.checksum;
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, checksum: this.checksum });
  }
}
