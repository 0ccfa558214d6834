import {
  edgetuneLabels,
  NODE_CRITICAL_PRIORITY,
  privilegedNamespace,
  type ClusterRoleBindingObject,
  type ClusterRoleObject,
  type ConfigMapObject,
  type DaemonSetObject,
  type NamespaceObject,
  type PodMonitorObject,
  type RoleBindingObject,
  type RoleObject,
  type ServiceAccountObject,
} from "../k8s-namespace";
import { createHash } from "node:crypto";
import { readAsset } from "../shell";
import { renderTuneSh } from "../tuning/render";
import type { ResolvedProfile } from "../tuning/types";
import { resolveTunerOptions, type KubernetesNodeTunerOptions, type TunerOptions } from "./kubernetes-node-tuner-spec";
import { READY_COMMAND, tunerPod } from "./tuner-pod";
import { ValidationError } from "../validation";

export { NODE_ANNOTATION_PREFIX, READY_COMMAND, STATUS_FILE, TOKEN_DIR, TUNER_METRICS_PORT } from "./tuner-pod";
export const CHECKSUM_ANNOTATION = "edgetune.io/artifacts-checksum";
/**
 * On the DaemonSets that run a tuner. Foreground deletion keeps the DaemonSet (with its
 * deletionTimestamp) until its pods are gone, and pulumi-kubernetes (>= 4.12) waits for that:
 * `pulumi destroy` returns only once every pod has decided to restore and done so, and the
 * ServiceAccount and roles the pods ask with are deleted after it.
 */
export const DELETION_POLICY_ANNOTATIONS = { "pulumi.com/deletionPropagationPolicy": "foreground" } as const;

/**
 * The container's entrypoint (tuner.sh beside this module, POSIX sh): apply, then keep the
 * node tuned (NIC poll, verify), serve metrics and annotate the node; on SIGTERM restore only
 * when the API server says the tuning was removed. `tuner.sh ready` is the probe.
 */
export function renderTunerLoop(): string {
  return readAsset(__dirname, "tuner.sh");
}

/** The Kubernetes objects of one tuner, as plain specs (apiVersion, kind, metadata, ...). */
export interface TunerObjects {
  /** undefined when `createNamespace` is false. */
  namespace?: NamespaceObject;
  serviceAccount: ServiceAccountObject;
  clusterRole: ClusterRoleObject;
  clusterRoleBinding: ClusterRoleBindingObject;
  role: RoleObject;
  roleBinding: RoleBindingObject;
  configMap: ConfigMapObject;
  daemonSet: DaemonSetObject;
  /** With `metrics.podMonitor`. */
  podMonitor?: PodMonitorObject;
  /** The checksum in the pod template: changes exactly when what the pods run changes. */
  checksum: string;
}

/** Renders the tuner's objects; throws a ValidationError naming every bad option. */
export function renderTunerObjects(profile: ResolvedProfile, options: KubernetesNodeTunerOptions & { name: string }): TunerObjects {
  const { name: instance, ...given } = options;
  const r = resolveTunerOptions(instance, given);
  if (!r.value) throw new ValidationError(r.issues, `tuner "${instance}": invalid options`);
  const o: TunerOptions = r.value;
  const name = `edgetune-tuner-${o.name}`;
  const labels = edgetuneLabels("edgetune-tuner", "node-tuner", o.name);
  const selector = { "app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": o.name };
  const data = { "tune.sh": renderTuneSh(profile), "tuner.sh": renderTunerLoop() };
  const nodeSelector = o.nodeSelector ?? {};
  const tuner = tunerPod({
    name: o.name,
    namespace: o.namespace,
    daemonSetName: name,
    labels,
    selector,
    image: o.image,
    containerName: "tuner",
    scriptsVolume: "scripts",
    nodeSelector,
    hostNetwork: o.hostNetwork,
    loop: o,
    management: o.management,
  });
  const checksum = `sha256:${createHash("sha256")
    .update(JSON.stringify({ data, env: tuner.env, image: o.image }))
    .digest("hex")}`;
  const namespace = o.createNamespace ? privilegedNamespace(o.namespace, labels, o.podSecurityVersion) : undefined;
  const configMap: ConfigMapObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: o.namespace, labels }, data };
  const daemonSet: DaemonSetObject = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: o.namespace, labels, annotations: { ...DELETION_POLICY_ANNOTATIONS } },
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: o.maxUnavailable } },
      template: {
        metadata: { labels, annotations: { [CHECKSUM_ANNOTATION]: checksum, "edgetune.io/profile": profile.name } },
        spec: {
          ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
          ...(o.tolerations.length ? { tolerations: o.tolerations } : {}),
          // net.* sysctls and NICs belong to a network namespace: without the node's, the pod tunes only itself.
          hostNetwork: o.hostNetwork,
          dnsPolicy: o.hostNetwork ? "ClusterFirstWithHostNet" : "ClusterFirst",
          priorityClassName: NODE_CRITICAL_PRIORITY,
          serviceAccountName: tuner.serviceAccountName,
          automountServiceAccountToken: false,
          // A pod being removed restores in its TERM handler: this bounds it.
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds,
          ...(o.podSysctls?.length ? { securityContext: { sysctls: o.podSysctls } } : {}),
          containers: [{ ...tuner.container, readinessProbe: { exec: { command: READY_COMMAND }, periodSeconds: 10, timeoutSeconds: 5 } }],
          volumes: [{ name: "scripts", configMap: { name, defaultMode: 0o555 } }, ...tuner.volumes],
        },
      },
    },
  };
  return {
    ...(namespace ? { namespace } : {}),
    ...tuner.access,
    configMap,
    daemonSet,
    ...(tuner.podMonitor ? { podMonitor: tuner.podMonitor } : {}),
    checksum,
  };
}
