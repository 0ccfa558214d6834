import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { knownNow } from "../inputs";
import { ValidationError } from "../tuning/profile";
import type { ResolvedProfile } from "../tuning/types";
import { checkTunerOptions, renderTunerObjects, TUNER_DEFAULTS, tunerOptions, type TunerObjects } from "./k8s-tuner";

export interface KubernetesNodeTunerArgs {
  /** The resolved profile to apply (see `resolveProfile`). */
  profile: ResolvedProfile;
  /** Tuner image from proxy-image/ pinned by tag or digest (e.g. an ECR repository URL output); `latest` is refused. */
  image: pulumi.Input<string>;
  /** Namespace of the tuner, labelled Pod Security `enforce: privileged` when created here. @default "edgetune-system" */
  namespace?: pulumi.Input<string>;
  /**
   * Create the namespace. false: it exists already, e.g. created once for several tuners
   * (two components creating one namespace fail with AlreadyExists). @default true
   */
  createNamespace?: boolean;
  /** Nodes to tune. @default every node */
  nodeSelector?: pulumi.Input<Record<string, string>>;
  /** Taints to tolerate (e.g. dedicated proxy nodes). @default none */
  tolerations?: pulumi.Input<Array<Record<string, unknown>>>;
  /** Seconds between `tune.sh verify` runs. @default 300 */
  verifyIntervalSeconds?: number;
  /** Re-apply when verify finds drift (otherwise drift is only logged). @default false */
  reapplyOnDrift?: boolean;
  /** Run `tune.sh restore` when the pod is stopped, as NTO rolls back a removed profile. @default true */
  restoreOnDelete?: boolean;
  /** Nodes that may be without a tuner during a roll: an integer or "N%". @default 1 */
  maxUnavailable?: number | string;
  /** Share the node's network namespace (needed for net.* sysctls and NICs). @default true */
  hostNetwork?: boolean;
  /** Pod-level safe sysctls; refused together with hostNetwork (kubelet rejects the pod). @default none */
  podSysctls?: Array<{ name: string; value: string }>;
  /** Pod Security Standards version pinned on the namespace labels. @default "v1.33" */
  podSecurityVersion?: string;
}

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
    const { profile, image, namespace, nodeSelector, tolerations, ...plain } = args;
    // Validate before super(): bad input must not register even the component. What is known
    // now is checked now; values given as Outputs once they resolve.
    const now = { ...plain, image: knownNow(image), namespace: knownNow(namespace), nodeSelector: knownNow(nodeSelector), tolerations: knownNow(tolerations) };
    const issues = checkTunerOptions(tunerOptions(name, now), [], now.image === undefined && image !== undefined ? ["image"] : []);
    if (issues.length) throw new ValidationError(issues, `KubernetesNodeTuner "${name}": invalid args`);
    super("edgetune:nodes:KubernetesNodeTuner", name, {}, opts);
    const objs: pulumi.Output<TunerObjects> = pulumi.all([image, namespace ?? TUNER_DEFAULTS.namespace, nodeSelector, tolerations]).apply(([img, ns, sel, tol]) => {
      const o = tunerOptions(name, { ...plain, image: img, namespace: ns, nodeSelector: sel, tolerations: tol as Array<Record<string, unknown>> | undefined });
      const late = checkTunerOptions(o, []);
      // Raised while the deployment runs: a ResourceError names the component, without a stack trace.
      if (late.length) throw new pulumi.ResourceError(new ValidationError(late, `KubernetesNodeTuner "${name}": invalid args`).message, this, true);
      return renderTunerObjects(profile, o);
    });
    this.checksum = objs.checksum;
    const createNamespace = args.createNamespace ?? TUNER_DEFAULTS.createNamespace;
    if (createNamespace) this.namespaceResource = new k8s.core.v1.Namespace(`${name}-ns`, { metadata: objs.apply((o) => o.namespace!.metadata as k8s.types.input.meta.v1.ObjectMeta) }, { parent: this });
    const inNs = { parent: this, dependsOn: this.namespaceResource ? [this.namespaceResource] : [] };
    this.configMap = new k8s.core.v1.ConfigMap(`${name}-scripts`, { metadata: objs.apply((o) => o.configMap.metadata as k8s.types.input.meta.v1.ObjectMeta), data: objs.apply((o) => o.configMap.data as Record<string, string>) }, inNs);
    this.daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-tuner`,
      { metadata: objs.apply((o) => o.daemonSet.metadata as k8s.types.input.meta.v1.ObjectMeta), spec: objs.apply((o) => o.daemonSet.spec as k8s.types.input.apps.v1.DaemonSetSpec) },
      { parent: this, dependsOn: [...inNs.dependsOn, this.configMap] },
    );
    this.namespace = this.namespaceResource ? this.namespaceResource.metadata.name : pulumi.output(namespace ?? TUNER_DEFAULTS.namespace);
    this.daemonSetName = this.daemonSet.metadata.name;
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, checksum: this.checksum });
  }
}
