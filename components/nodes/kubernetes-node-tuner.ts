import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { knownNow, pendingKeys, refuseResolved, type WithInputs } from "../inputs";
import type { ResolvedProfile } from "../tuning/types";
import { ValidationError } from "../validation";
import { kubernetesPortProblem } from "../tuning/ports";
import { renderTunerObjects, type TunerObjects } from "./k8s-tuner";
import { resolveTunerOptions, type KubernetesNodeTunerOptions } from "./kubernetes-node-tuner-spec";
import { podDependencies, registerPodMonitor, registerTunerAccess } from "./tuner-resources";

/**
 * Arguments of KubernetesNodeTuner: the options of its spec (kubernetes-node-tuner-spec.ts,
 * where every default and bound is written; docs/config-reference.md lists them), with the
 * image, namespace, node selector and tolerations also accepted as Outputs of other resources.
 */
export type KubernetesNodeTunerArgs = WithInputs<KubernetesNodeTunerOptions, "image" | "namespace" | "nodeSelector" | "tolerations"> & {
  /** The resolved profile to apply (see `resolveProfile`). */
  profile: ResolvedProfile;
  /**
   * @deprecated `restoreOnRemove`. It restored on every pod stop; `restoreOnRemove` restores
   * only when the tuning is removed from a node. Accepted, with a warning, until the next release.
   */
  restoreOnDelete?: boolean;
};

/**
 * A privileged tuner DaemonSet that applies a profile on every selected node and keeps it
 * applied (NIC poll, verify), with its status on a node annotation, a readiness probe and
 * metrics; it restores a node only when the tuning is removed from it.
 */
export class KubernetesNodeTuner extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly daemonSetName: pulumi.Output<string>;
  /** Checksum of what the pods run; in the pod template, so a change rolls the DaemonSet. */
  readonly checksum: pulumi.Output<string>;
  /** The namespace this component created; undefined with `createNamespace: false`. */
  readonly namespaceResource?: k8s.core.v1.Namespace;
  /** tune.sh and the tuner loop. */
  readonly configMap: k8s.core.v1.ConfigMap;
  readonly daemonSet: k8s.apps.v1.DaemonSet;
  /** The pods' identity: only the tuner container mounts its token. */
  readonly serviceAccount: k8s.core.v1.ServiceAccount;
  /** nodes: get, patch (the node annotation, the node's labels on SIGTERM). */
  readonly clusterRole: k8s.rbac.v1.ClusterRole;
  readonly clusterRoleBinding: k8s.rbac.v1.ClusterRoleBinding;
  /** daemonsets: get, on this DaemonSet only (is it being deleted?). */
  readonly role: k8s.rbac.v1.Role;
  readonly roleBinding: k8s.rbac.v1.RoleBinding;
  /** With `metrics.podMonitor`: a monitoring.coreos.com/v1 PodMonitor. */
  readonly podMonitor?: k8s.apiextensions.CustomResource;

  constructor(name: string, args: KubernetesNodeTunerArgs, opts?: pulumi.ComponentResourceOptions) {
    const { profile, restoreOnDelete, ...rest } = args;
    if (restoreOnDelete !== undefined && rest.restoreOnRemove !== undefined)
      throw new ValidationError(
        [{ path: "restoreOnDelete", message: "set together with restoreOnRemove, its new name; allowed: only restoreOnRemove" }],
        `KubernetesNodeTuner "${name}": invalid args`,
      );
    const options = restoreOnDelete === undefined ? rest : { ...rest, restoreOnRemove: restoreOnDelete };
    // Validate before super(): bad input must not register even the component. What is known
    // now is checked now; values given as Outputs once they resolve.
    const pending = pendingKeys(options).map(String);
    const now = resolveTunerOptions(name, Object.fromEntries(Object.entries(options).filter(([k]) => !pending.includes(k))), [], pending);
    const ports = kubernetesPortProblem(profile, `KubernetesNodeTuner "${name}"`);
    if (!now.value || ports)
      throw new ValidationError(
        [...now.issues, ...(ports ? [{ path: "profile", message: ports }] : [])],
        `KubernetesNodeTuner "${name}": invalid args`,
      );
    super("edgetune:nodes:KubernetesNodeTuner", name, {}, opts);
    if (restoreOnDelete !== undefined)
      void pulumi.log.warn(
        "restoreOnDelete is deprecated: name it restoreOnRemove. It now restores only when the tuning is removed from a node, never on a pod stop.",
        this,
      );
    const objs: pulumi.Output<TunerObjects> = pulumi.output(options).apply((resolved) => {
      const late = resolveTunerOptions(name, resolved);
      if (!late.value) return refuseResolved(late.issues, `KubernetesNodeTuner "${name}": invalid args`);
      return renderTunerObjects(profile, late.value);
    });
    this.checksum = objs.checksum;
    if (now.value.createNamespace)
      this.namespaceResource = new k8s.core.v1.Namespace(
        `${name}-ns`,
        { metadata: objs.apply((o) => o.namespace!.metadata) },
        { parent: this },
      );
    const inNs = { parent: this, dependsOn: this.namespaceResource ? [this.namespaceResource] : [] };
    const access = registerTunerAccess(name, objs, this, inNs.dependsOn);
    this.serviceAccount = access.serviceAccount;
    this.clusterRole = access.clusterRole;
    this.clusterRoleBinding = access.clusterRoleBinding;
    this.role = access.role;
    this.roleBinding = access.roleBinding;
    this.configMap = new k8s.core.v1.ConfigMap(`${name}-scripts`, { metadata: objs.configMap.metadata, data: objs.configMap.data }, inNs);
    // What the pods use is deleted after the DaemonSet, whose deletion waits for them (foreground).
    this.daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-tuner`,
      { metadata: objs.daemonSet.metadata, spec: objs.daemonSet.spec },
      { parent: this, dependsOn: [...inNs.dependsOn, this.configMap, ...podDependencies(access)] },
    );
    // Known at construction (metrics is not an Input): the options decide which objects exist.
    if (now.value.metrics.podMonitor)
      this.podMonitor = registerPodMonitor(
        name,
        objs.apply((o) => o.podMonitor!),
        inNs,
      );
    this.namespace = this.namespaceResource
      ? this.namespaceResource.metadata.name
      : pulumi.output(knownNow(args.namespace) ?? objs.configMap.metadata.namespace);
    this.daemonSetName = this.daemonSet.metadata.name;
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, checksum: this.checksum });
  }
}
