import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { knownNow } from "../inputs";
import { ValidationError } from "../tuning/profile";
import type { ResolvedProfile } from "../tuning/types";
import { validateProxySpec, type ProxySpec } from "./haproxy";
import { checkProxyK8sOptions, PROXY_DEFAULTS, renderProxyObjects, type ProxyK8sOptions, type ProxyObjects } from "./k8s-proxy";

/** Options that may be computed from other resources (an image from a registry, a shared namespace). */
type InputOptions = "image" | "tunerImage" | "namespace" | "nodeSelector" | "tolerations";

/**
 * Arguments of `ProxyDaemonSet`. Everything except `profile`, `proxy`,
 * `image` and `tunerImage` has a default (see `ProxyK8sOptions`).
 */
export interface ProxyDaemonSetArgs extends Omit<ProxyK8sOptions, "name" | InputOptions> {
  /** The node profile the init container applies and haproxy.cfg is derived from. */
  profile: ResolvedProfile;
  /** Listeners, backends and endpoints (see `ProxySpec`). */
  proxy: ProxySpec;
  /** CPUs and RLIMIT_NOFILE of the proxy nodes, when known; otherwise HAProxy picks threads and the profile's nofile is used. */
  nodeFacts?: { cpus?: number; nofileLimit?: number };
  /** Proxy image (proxy-image/ `proxy` target), pinned by tag or digest; e.g. an ECR repository URL output. */
  image: pulumi.Input<string>;
  /** Tuner image for the init container, pinned by tag or digest. Required unless `tuneNodes` is false. */
  tunerImage?: pulumi.Input<string>;
  /** @default "edgetune-proxy" */
  namespace?: pulumi.Input<string>;
  nodeSelector?: pulumi.Input<Record<string, string>>;
  tolerations?: pulumi.Input<Array<Record<string, unknown>>>;
}

/**
 * HAProxy as a hostNetwork DaemonSet whose privileged init container applies
 * the node profile (tune.sh apply) before the least-privilege proxy starts.
 * Bad arguments throw a `ValidationError` at construction: nothing is registered
 * (arguments given as Outputs are checked when they resolve).
 */
export class ProxyDaemonSet extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly daemonSetName: pulumi.Output<string>;
  /** Checksum of the rendered config in the pod template. */
  readonly checksum: pulumi.Output<string>;
  /** The namespace this component created; undefined with `createNamespace: false`. */
  readonly namespaceResource?: k8s.core.v1.Namespace;
  /** haproxy.cfg and tune.sh. */
  readonly configMap: k8s.core.v1.ConfigMap;
  readonly daemonSet: k8s.apps.v1.DaemonSet;
  /** The metrics Service; undefined with `metricsService: false`. */
  readonly service?: k8s.core.v1.Service;
  readonly podDisruptionBudget?: k8s.policy.v1.PodDisruptionBudget;

  constructor(name: string, args: ProxyDaemonSetArgs, opts?: pulumi.ComponentResourceOptions) {
    const { profile, proxy, nodeFacts, image, tunerImage, namespace, nodeSelector, tolerations, ...plain } = args;
    // Validate before super(): bad input must not register even the component. What is an
    // unresolved Output now is checked when it resolves.
    const now = { ...plain, name, image: knownNow(image), tunerImage: knownNow(tunerImage), namespace: knownNow(namespace), nodeSelector: knownNow(nodeSelector), tolerations: knownNow(tolerations) } as ProxyK8sOptions;
    const pending = (["image", "tunerImage"] as const).filter((k) => now[k] === undefined && args[k] !== undefined);
    const issues = checkProxyK8sOptions(now, ["proxy"], pending);
    if (issues.length) throw new ValidationError(issues, "invalid proxy options");
    validateProxySpec(proxy, { profile, ...nodeFacts });
    super("edgetune:proxy:ProxyDaemonSet", name, {}, opts);

    const objects: pulumi.Output<ProxyObjects> = pulumi
      .all([image, tunerImage, namespace ?? PROXY_DEFAULTS.namespace, nodeSelector, tolerations])
      .apply(([img, tuner, ns, sel, tol]) => {
        const o = { ...plain, name, image: img, tunerImage: tuner, namespace: ns, nodeSelector: sel, tolerations: tol as ProxyK8sOptions["tolerations"] };
        // Raised while the deployment runs: a ResourceError names the component, without a stack trace.
        const late = checkProxyK8sOptions(o, ["proxy"]);
        if (late.length) throw new pulumi.ResourceError(new ValidationError(late, `ProxyDaemonSet "${name}": invalid options`).message, this, true);
        return renderProxyObjects(proxy, profile, o, nodeFacts);
      });
    const child = { parent: this };
    const meta = (pick: (o: ProxyObjects) => Record<string, unknown> | undefined) => objects.apply((o) => pick(o)!.metadata as k8s.types.input.meta.v1.ObjectMeta);
    const spec = <T>(pick: (o: ProxyObjects) => Record<string, unknown> | undefined) => objects.apply((o) => pick(o)!.spec as T);

    if (args.createNamespace !== false) this.namespaceResource = new k8s.core.v1.Namespace(`${name}-ns`, { metadata: meta((o) => o.namespace) }, child);
    const nsDeps = this.namespaceResource ? [this.namespaceResource] : [];
    const inNs = { parent: this, dependsOn: nsDeps };
    this.configMap = new k8s.core.v1.ConfigMap(`${name}-config`, { metadata: meta((o) => o.configMap), data: objects.apply((o) => o.configMap.data as Record<string, string>) }, inNs);
    this.daemonSet = new k8s.apps.v1.DaemonSet(`${name}-ds`, { metadata: meta((o) => o.daemonSet), spec: spec<k8s.types.input.apps.v1.DaemonSetSpec>((o) => o.daemonSet) }, { parent: this, dependsOn: [...nsDeps, this.configMap] });
    // Known at construction: the options decide, not the rendering.
    if (args.metricsService !== false) this.service = new k8s.core.v1.Service(`${name}-metrics`, { metadata: meta((o) => o.service), spec: spec<k8s.types.input.core.v1.ServiceSpec>((o) => o.service) }, inNs);
    if (args.podDisruptionBudget) this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, { metadata: meta((o) => o.podDisruptionBudget), spec: spec<k8s.types.input.policy.v1.PodDisruptionBudgetSpec>((o) => o.podDisruptionBudget) }, inNs);

    this.namespace = this.namespaceResource ? this.namespaceResource.metadata.name : pulumi.output(namespace ?? PROXY_DEFAULTS.namespace);
    this.daemonSetName = this.daemonSet.metadata.name;
    this.checksum = objects.checksum;
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, checksum: this.checksum });
  }
}
