import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { knownNow, pendingKeys, refuseResolved, type WithInputs } from "../inputs";
import type { ResolvedProfile } from "../tuning/types";
import { kubernetesPortProblem } from "../tuning/ports";
import { ValidationError } from "../validation";
import { validateProxySpec, type ProxySpec } from "./haproxy";
import { kubernetesManagementIssues, proxyTuningIssues, proxyTuningLoop, renderProxyObjects, type ProxyObjects } from "./k8s-proxy";
import { resolveProxyDaemonSetOptions, type ProxyDaemonSetOptions } from "./proxy-daemonset-spec";
import { podDependencies, registerPodMonitor, registerTunerAccess } from "../nodes/tuner-resources";

/**
 * Arguments of ProxyDaemonSet: the Kubernetes options of its spec (proxy-daemonset-spec.ts,
 * where every default and bound is written; docs/config-reference.md lists them), with the
 * images, namespace, node selector and tolerations also accepted as Outputs.
 */
export type ProxyDaemonSetArgs = WithInputs<
  ProxyDaemonSetOptions,
  "image" | "tunerImage" | "namespace" | "nodeSelector" | "tolerations"
> & {
  /** The node profile the tuning sidecar applies and haproxy.cfg is derived from. */
  profile: ResolvedProfile;
  /** Listeners, backends and endpoints (see `ProxySpec`). */
  proxy: ProxySpec;
  /** CPUs and RLIMIT_NOFILE of the proxy nodes, when known; otherwise HAProxy picks threads and the profile's nofile is used. */
  nodeFacts?: { cpus?: number; nofileLimit?: number };
};

/**
 * HAProxy as a hostNetwork DaemonSet whose privileged tuning sidecar applies the node
 * profile before the least-privilege proxy starts and keeps it applied while it runs.
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
  /** With tuneNodes: the tuning sidecar's identity (only that container mounts its token) and roles. */
  readonly serviceAccount?: k8s.core.v1.ServiceAccount;
  /** nodes: get, patch (the node annotation, the node's labels on SIGTERM). */
  readonly clusterRole?: k8s.rbac.v1.ClusterRole;
  readonly clusterRoleBinding?: k8s.rbac.v1.ClusterRoleBinding;
  /** daemonsets: get, on this DaemonSet only. */
  readonly role?: k8s.rbac.v1.Role;
  readonly roleBinding?: k8s.rbac.v1.RoleBinding;
  /** With tuneNodes and `tuning.metrics.podMonitor`: a monitoring.coreos.com/v1 PodMonitor. */
  readonly podMonitor?: k8s.apiextensions.CustomResource;

  constructor(name: string, args: ProxyDaemonSetArgs, opts?: pulumi.ComponentResourceOptions) {
    const { profile, proxy, nodeFacts, ...options } = args;
    // Validate before super(): bad input must not register even the component. What is an
    // unresolved Output now is checked when it resolves.
    const pending = pendingKeys(options).map(String);
    const now = resolveProxyDaemonSetOptions(
      name,
      Object.fromEntries(Object.entries(options).filter(([k]) => !pending.includes(k))),
      ["proxy"],
      pending,
    );
    const ports = now.value?.tuneNodes && kubernetesPortProblem(profile, `ProxyDaemonSet "${name}"'s tuning init container`);
    if (!now.value || ports)
      throw new ValidationError([...now.issues, ...(ports ? [{ path: "profile", message: ports }] : [])], "invalid proxy options");
    const { spec } = validateProxySpec(proxy, { profile, ...nodeFacts });
    const clash = [...kubernetesManagementIssues(spec, ["proxy"]), ...proxyTuningIssues(spec, now.value, ["proxy"])];
    if (clash.length) throw new ValidationError(clash, "invalid proxy options");
    super("edgetune:proxy:ProxyDaemonSet", name, {}, opts);

    const objects: pulumi.Output<ProxyObjects> = pulumi.output(options).apply((resolved) => {
      const late = resolveProxyDaemonSetOptions(name, resolved, ["proxy"]);
      if (!late.value) return refuseResolved(late.issues, `ProxyDaemonSet "${name}": invalid options`);
      return renderProxyObjects(proxy, profile, late.value, nodeFacts);
    });
    const child = { parent: this };
    if (now.value.createNamespace)
      this.namespaceResource = new k8s.core.v1.Namespace(`${name}-ns`, { metadata: objects.apply((o) => o.namespace!.metadata) }, child);
    const nsDeps = this.namespaceResource ? [this.namespaceResource] : [];
    const inNs = { parent: this, dependsOn: nsDeps };
    this.configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: objects.configMap.metadata, data: objects.configMap.data },
      inNs,
    );
    // Known at construction: tuneNodes and tuning are not Inputs.
    const access = now.value.tuneNodes
      ? registerTunerAccess(
          name,
          objects.apply((o) => o.tuningAccess!),
          this,
          nsDeps,
        )
      : undefined;
    if (access) {
      this.serviceAccount = access.serviceAccount;
      this.clusterRole = access.clusterRole;
      this.clusterRoleBinding = access.clusterRoleBinding;
      this.role = access.role;
      this.roleBinding = access.roleBinding;
    }
    // What the pods use is deleted after the DaemonSet, whose deletion waits for them (foreground).
    this.daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-ds`,
      { metadata: objects.daemonSet.metadata, spec: objects.daemonSet.spec },
      { parent: this, dependsOn: [...nsDeps, this.configMap, ...(access ? podDependencies(access) : [])] },
    );
    if (access && proxyTuningLoop(now.value).metrics.podMonitor)
      this.podMonitor = registerPodMonitor(
        name,
        objects.apply((o) => o.podMonitor!),
        inNs,
      );
    // Known at construction: the options decide which objects exist, not the rendering.
    if (now.value.metricsService)
      this.service = new k8s.core.v1.Service(
        `${name}-metrics`,
        { metadata: objects.apply((o) => o.service!.metadata), spec: objects.apply((o) => o.service!.spec!) },
        inNs,
      );
    if (now.value.podDisruptionBudget) {
      this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        { metadata: objects.apply((o) => o.podDisruptionBudget!.metadata), spec: objects.apply((o) => o.podDisruptionBudget!.spec!) },
        inNs,
      );
    }

    this.namespace = this.namespaceResource
      ? this.namespaceResource.metadata.name
      : pulumi.output(knownNow(args.namespace) ?? objects.configMap.metadata.namespace);
    this.daemonSetName = this.daemonSet.metadata.name;
    this.checksum = objects.checksum;
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, checksum: this.checksum });
  }
}
