import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { ValidationError } from "../tuning/profile";
import type { ResolvedProfile } from "../tuning/types";
import { checkTunerOptions, renderTunerObjects, tunerOptions } from "./k8s-tuner";

export interface KubernetesNodeTunerArgs {
  /** The resolved profile to apply (see `resolveProfile`). */
  profile: ResolvedProfile;
  /** Tuner image from proxy-image/ pinned by tag or digest; `latest` is refused. */
  image: string;
  /** Namespace created for the tuner, labelled Pod Security `enforce: privileged`. @default "edgetune-system" */
  namespace?: string;
  /** Nodes to tune. @default every node */
  nodeSelector?: Record<string, string>;
  /** Taints to tolerate (e.g. dedicated proxy nodes). @default none */
  tolerations?: Array<Record<string, unknown>>;
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
  readonly checksum: string;

  constructor(name: string, args: KubernetesNodeTunerArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before super(): bad input must not register even the component.
    const o = tunerOptions(name, args);
    const issues = checkTunerOptions(o, []);
    if (issues.length) throw new ValidationError(issues, `KubernetesNodeTuner "${name}": invalid args`);
    super("edgetune:nodes:KubernetesNodeTuner", name, {}, opts);
    const objs = renderTunerObjects(args.profile, o);
    this.checksum = objs.checksum;
    const ns = new k8s.core.v1.Namespace(`${name}-ns`, objs.namespace as k8s.core.v1.NamespaceArgs, { parent: this });
    const cm = new k8s.core.v1.ConfigMap(`${name}-scripts`, objs.configMap as k8s.core.v1.ConfigMapArgs, { parent: this, dependsOn: [ns] });
    const ds = new k8s.apps.v1.DaemonSet(`${name}-tuner`, objs.daemonSet as unknown as k8s.apps.v1.DaemonSetArgs, { parent: this, dependsOn: [cm] });
    this.namespace = ns.metadata.name;
    this.daemonSetName = ds.metadata.name;
    this.registerOutputs({ namespace: this.namespace, daemonSetName: this.daemonSetName, checksum: this.checksum });
  }
}
