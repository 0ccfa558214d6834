import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { knownNow, pendingKeys, refuseResolved, type WithInputs } from "../inputs";
import type { ResolvedProfile } from "../tuning/types";
import { ValidationError } from "../validation";
import { kubernetesPortProblem } from "../tuning/ports";
import { renderTunerObjects, type TunerObjects } from "./k8s-tuner";
import { resolveTunerOptions, type KubernetesNodeTunerOptions } from "./kubernetes-node-tuner-spec";

/**
 * Arguments of KubernetesNodeTuner: the options of its spec (kubernetes-node-tuner-spec.ts,
 * where every default and bound is written; docs/config-reference.md lists them), with the
 * image, namespace, node selector and tolerations also accepted as Outputs of other resources.
 */
export type KubernetesNodeTunerArgs = WithInputs<KubernetesNodeTunerOptions, "image" | "namespace" | "nodeSelector" | "tolerations"> & {
  /** The resolved profile to apply (see `resolveProfile`). */
  profile: ResolvedProfile;
};

/** A privileged tuner DaemonSet that applies a profile on every selected node and keeps verifying it. */
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

  constructor(name: string, args: KubernetesNodeTunerArgs, opts?: pulumi.ComponentResourceOptions) {
    const { profile, ...options } = args;
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
    this.configMap = new k8s.core.v1.ConfigMap(`${name}-scripts`, { metadata: objs.configMap.metadata, data: objs.configMap.data }, inNs);
    this.daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-tuner`,
      { metadata: objs.daemonSet.metadata, spec: objs.daemonSet.spec },
      { parent: this, dependsOn: [...inNs.dependsOn, this.configMap] },
    );
    this.namespace = this.namespaceResource
      ? this.namespaceResource.metadata.name
      : pulumi.output(knownNow(args.namespace) ?? objs.configMap.metadata.namespace);
    this.daemonSetName = this.daemonSet.metadata.name;
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, checksum: this.checksum });
  }
}
