import { edgetuneLabels, privilegedNamespace, type ConfigMapObject, type DaemonSetObject, type NamespaceObject } from "../k8s-namespace";
import { createHash } from "node:crypto";
import { readAsset } from "../shell";
import { renderTuneSh } from "../tuning/render";
import type { ResolvedProfile } from "../tuning/types";
import { resolveTunerOptions, type KubernetesNodeTunerOptions, type TunerOptions } from "./kubernetes-node-tuner-spec";
import { ValidationError } from "../validation";

export const CHECKSUM_ANNOTATION = "edgetune.io/artifacts-checksum";
export const STATUS_FILE = "/run/edgetune/status";

/**
 * The container's entrypoint: apply once, then verify every interval; on
 * SIGTERM restore when asked. POSIX sh (tuner.sh beside this module). `sleep & wait`
 * so the TERM trap runs at once instead of after the sleep.
 */
export function renderTunerLoop(): string {
  return readAsset(__dirname, "tuner.sh");
}

/** The Kubernetes objects of one tuner, as plain specs (apiVersion, kind, metadata, ...). */
export interface TunerObjects {
  /** undefined when `createNamespace` is false. */
  namespace?: NamespaceObject;
  configMap: ConfigMapObject;
  daemonSet: DaemonSetObject;
  /** The checksum in the pod template: changes exactly when what the pods run changes. */
  checksum: string;
}

/** Renders the Namespace, ConfigMap and DaemonSet; throws a ValidationError naming every bad option. */
export function renderTunerObjects(profile: ResolvedProfile, options: KubernetesNodeTunerOptions & { name: string }): TunerObjects {
  const { name: instance, ...given } = options;
  const r = resolveTunerOptions(instance, given);
  if (!r.value) throw new ValidationError(r.issues, `tuner "${instance}": invalid options`);
  const o: TunerOptions = r.value;
  const name = `edgetune-tuner-${o.name}`;
  const labels = edgetuneLabels("edgetune-tuner", "node-tuner", o.name);
  const data = { "tune.sh": renderTuneSh(profile), "tuner.sh": renderTunerLoop() };
  const env = {
    VERIFY_INTERVAL_SECONDS: String(o.verifyIntervalSeconds),
    REAPPLY_ON_DRIFT: o.reapplyOnDrift ? "1" : "0",
    RESTORE_ON_DELETE: o.restoreOnDelete ? "1" : "0",
    TUNE_SH: "/edgetune/tune.sh",
    STATUS_FILE,
    // The node's /etc and state, so sysctl.d persists across reboots and the originals
    // recorded by the first apply survive pod restarts (a new pod must not record tuned values as originals).
    ETC_ROOT: "/host/etc",
    STATE_DIR: "/host/var/lib/edgetune",
    EDGETUNE_SCOPE: "all",
  };
  const checksum = `sha256:${createHash("sha256")
    .update(JSON.stringify({ data, env, image: o.image }))
    .digest("hex")}`;
  const namespace = o.createNamespace ? privilegedNamespace(o.namespace, labels, o.podSecurityVersion) : undefined;
  const configMap: ConfigMapObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: o.namespace, labels }, data };
  const hostPath = (n: string, path: string, type: string) => ({ name: n, hostPath: { path, type } });
  const daemonSet: DaemonSetObject = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: o.namespace, labels },
    spec: {
      selector: { matchLabels: { "app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": o.name } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: o.maxUnavailable } },
      template: {
        metadata: { labels, annotations: { [CHECKSUM_ANNOTATION]: checksum, "edgetune.io/profile": profile.name } },
        spec: {
          ...(o.nodeSelector && Object.keys(o.nodeSelector).length ? { nodeSelector: o.nodeSelector } : {}),
          ...(o.tolerations?.length ? { tolerations: o.tolerations } : {}),
          // net.* sysctls and NICs belong to a network namespace: without the node's, the pod tunes only itself.
          hostNetwork: o.hostNetwork,
          dnsPolicy: o.hostNetwork ? "ClusterFirstWithHostNet" : "ClusterFirst",
          priorityClassName: "system-node-critical",
          automountServiceAccountToken: false,
          // restore runs in the TERM handler: give it time before SIGKILL.
          terminationGracePeriodSeconds: 60,
          ...(o.podSysctls?.length ? { securityContext: { sysctls: o.podSysctls } } : {}),
          containers: [
            {
              name: "tuner",
              image: o.image,
              imagePullPolicy: "IfNotPresent",
              command: ["/bin/sh", "/edgetune/tuner.sh"],
              env: [
                ...Object.entries(env).map(([k, value]) => ({ name: k, value })),
                { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
              ],
              // Writing /proc/sys, ethtool and IRQ affinity need it; this is the only privileged container.
              securityContext: { privileged: true, runAsUser: 0, readOnlyRootFilesystem: true },
              readinessProbe: { exec: { command: ["test", "-s", STATUS_FILE] }, periodSeconds: 10 },
              resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
              volumeMounts: [
                { name: "scripts", mountPath: "/edgetune", readOnly: true },
                { name: "host-etc", mountPath: "/host/etc" },
                { name: "state", mountPath: "/host/var/lib/edgetune" },
                { name: "run", mountPath: "/run/edgetune" },
              ],
            },
          ],
          volumes: [
            { name: "scripts", configMap: { name, defaultMode: 0o555 } },
            hostPath("host-etc", "/etc", "Directory"),
            hostPath("state", "/var/lib/edgetune", "DirectoryOrCreate"),
            { name: "run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
          ],
        },
      },
    },
  };
  return { ...(namespace ? { namespace } : {}), configMap, daemonSet, checksum };
}
