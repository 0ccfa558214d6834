/**
 * The tuner container and everything it needs, built once for both places it runs: the tuner
 * DaemonSet (k8s-tuner.ts) and the proxy's tuning sidecar (k8s-proxy.ts). Pure.
 *
 * The container talks to the API server for two things only: patching its node's annotation
 * (status per node) and, on SIGTERM, deciding whether the tuning was removed (its DaemonSet
 * gone or being deleted, or the node no longer selected). Its RBAC is exactly that.
 */
import type {
  ClusterRoleBindingObject,
  ClusterRoleObject,
  PodMonitorObject,
  RoleBindingObject,
  RoleObject,
  ServiceAccountObject,
} from "../k8s-namespace";
import type { TunerLoopOptions } from "./kubernetes-node-tuner-spec";
import { managementBind, managementSources, type ResolvedManagement } from "../management";

export const STATUS_FILE = "/run/edgetune/status";
export const TUNER_SH = "/edgetune/tuner.sh";
/** Where the projected API token and CA are mounted; only the tuner container mounts them. */
export const TOKEN_DIR = "/var/run/secrets/edgetune";
/** Exit 0 only when the last apply meets readyWhen; otherwise prints the reason kubelet shows in the probe event. */
export const READY_COMMAND = ["/bin/sh", TUNER_SH, "ready"];
/** The metrics port's name in the pod (unique across the proxy pod, whose HAProxy port is "metrics"). */
export const TUNER_METRICS_PORT = "tuner-metrics";
export const NODE_ANNOTATION_PREFIX = "tuning.edgetune.io/";
/** How long a projected token lives; kubelet rotates it well before, and tuner.sh reads the file on every call. */
const TOKEN_SECONDS = 3600;

export interface TunerPodInput {
  /** TUNER_NAME: the node annotation `tuning.edgetune.io/<name>` and the metrics' `tuner` label. */
  name: string;
  namespace: string;
  /** The DaemonSet running the container: its deletion means "removed". Also names the ServiceAccount and roles. */
  daemonSetName: string;
  labels: Record<string, string>;
  /** The DaemonSet's pod selector, which the PodMonitor selects by. */
  selector: Record<string, string>;
  image: string;
  containerName: string;
  /** The pod's ConfigMap volume holding tune.sh and tuner.sh. */
  scriptsVolume: string;
  /** The pod's nodeSelector: a node whose labels stop matching it is one the tuning was removed from. */
  nodeSelector: Record<string, string>;
  hostNetwork: boolean;
  loop: TunerLoopOptions;
  /** Where the metrics endpoint binds and whom it answers (the proxy's own section in the proxy pod). */
  management: ResolvedManagement;
}

export interface TunerPod {
  container: Record<string, unknown> & { name: string; env: Array<{ name: string; value?: string }> };
  volumes: Array<Record<string, unknown> & { name: string }>;
  serviceAccountName: string;
  /** The env values set literally (the pod's own fields come from the downward API): what a checksum covers. */
  env: Record<string, string>;
  access: {
    serviceAccount: ServiceAccountObject;
    clusterRole: ClusterRoleObject;
    clusterRoleBinding: ClusterRoleBindingObject;
    role: RoleObject;
    roleBinding: RoleBindingObject;
  };
  podMonitor?: PodMonitorObject;
}

/** tuner.sh's metrics bind and source check for a management section (IPv4 sources: tuner.sh matches those only). */
function metricsAccess(m: ResolvedManagement): Record<string, string> {
  const b = managementBind(m);
  const sources = managementSources(m).filter((c) => !c.includes(":"));
  return {
    ...(b.kind === "address" ? { METRICS_BIND: b.address } : b.kind === "cidr" ? { METRICS_BIND_CIDR: b.cidr } : {}),
    METRICS_ALLOW: sources.join(" "),
    METRICS_ALLOW_ANY: m.exposePublicly && managementSources(m).length === 0 ? "1" : "0",
  };
}

/** The tuner container, its volumes, its ServiceAccount and roles, and the optional PodMonitor. */
export function tunerPod(i: TunerPodInput): TunerPod {
  const { loop } = i;
  const env: Record<string, string> = {
    TUNER_NAME: i.name,
    TUNE_SH: "/edgetune/tune.sh",
    STATUS_FILE,
    VERIFY_INTERVAL_SECONDS: String(loop.verifyIntervalSeconds),
    REAPPLY_ON_DRIFT: loop.reapplyOnDrift ? "1" : "0",
    NIC_POLL_SECONDS: String(loop.nicPollSeconds),
    RESTORE_ON_REMOVE: loop.restoreOnRemove ? "1" : "0",
    READY_WHEN: loop.readyWhen,
    METRICS_PORT: String(loop.metrics.port),
    ...metricsAccess(i.management),
    ANNOTATE_NODE: "1",
    DAEMONSET_NAME: i.daemonSetName,
    NODE_SELECTOR: JSON.stringify(i.nodeSelector),
    KUBE_TOKEN_FILE: `${TOKEN_DIR}/token`,
    KUBE_CA_FILE: `${TOKEN_DIR}/ca.crt`,
    // The node's /etc and state, so sysctl.d persists across reboots and the originals
    // recorded by the first apply survive pod restarts (a new pod must not record tuned values as originals).
    ETC_ROOT: "/host/etc",
    STATE_DIR: "/host/var/lib/edgetune",
    EDGETUNE_SCOPE: "all",
  };
  const port = loop.metrics.port;
  const container = {
    name: i.containerName,
    image: i.image,
    imagePullPolicy: "IfNotPresent",
    command: ["/bin/sh", TUNER_SH],
    env: [
      ...Object.entries(env).map(([name, value]) => ({ name, value })),
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      // Pod IP = node IP on hostNetwork; otherwise the pod's own address, which no public route reaches either.
      ...(managementBind(i.management).kind === "hostIP"
        ? [{ name: "METRICS_BIND", valueFrom: { fieldRef: { fieldPath: i.hostNetwork ? "status.hostIP" : "status.podIP" } } }]
        : []),
    ],
    ...(port
      ? { ports: [{ name: TUNER_METRICS_PORT, containerPort: port, ...(i.hostNetwork ? { hostPort: port } : {}), protocol: "TCP" }] }
      : {}),
    // Writing /proc/sys, ethtool, IRQ affinity and modprobe need it; the only privileged container.
    securityContext: { privileged: true, runAsUser: 0, readOnlyRootFilesystem: true },
    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
    volumeMounts: [
      { name: i.scriptsVolume, mountPath: "/edgetune", readOnly: true },
      { name: "host-etc", mountPath: "/host/etc" },
      { name: "state", mountPath: "/host/var/lib/edgetune" },
      // modprobe (tcp_bbr, conntrack, NOTRACK) loads the node's modules for the node's kernel.
      { name: "lib-modules", mountPath: "/lib/modules", readOnly: true },
      { name: "tuner-run", mountPath: "/run/edgetune" },
      { name: "tuner-token", mountPath: TOKEN_DIR, readOnly: true },
    ],
  };
  const hostPath = (name: string, path: string, type: string) => ({ name, hostPath: { path, type } });
  const volumes = [
    hostPath("host-etc", "/etc", "Directory"),
    hostPath("state", "/var/lib/edgetune", "DirectoryOrCreate"),
    hostPath("lib-modules", "/lib/modules", "Directory"),
    { name: "tuner-run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
    // The pod keeps automountServiceAccountToken: false (the proxy container must not get a
    // token); this volume gives one to the container that mounts it, and only to that one.
    {
      name: "tuner-token",
      projected: {
        defaultMode: 0o400,
        sources: [
          { serviceAccountToken: { path: "token", expirationSeconds: TOKEN_SECONDS } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        ],
      },
    },
  ];
  const sa = i.daemonSetName;
  // Cluster-scoped names are shared by every namespace: the namespace keeps two stacks apart.
  const clusterName = `edgetune:${i.namespace}:${i.daemonSetName}`;
  const subject = [{ kind: "ServiceAccount", name: sa, namespace: i.namespace }];
  const access: TunerPod["access"] = {
    serviceAccount: {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: sa, namespace: i.namespace, labels: i.labels },
      automountServiceAccountToken: false,
    },
    // As node-feature-discovery's: read its node's labels, patch its annotation; nothing else.
    clusterRole: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: clusterName, labels: i.labels },
      rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] }],
    },
    clusterRoleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: clusterName, labels: i.labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterName },
      subjects: subject,
    },
    // Its own DaemonSet only: is it gone or being deleted?
    role: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: sa, namespace: i.namespace, labels: i.labels },
      rules: [{ apiGroups: ["apps"], resources: ["daemonsets"], resourceNames: [i.daemonSetName], verbs: ["get"] }],
    },
    roleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: sa, namespace: i.namespace, labels: i.labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: sa },
      subjects: subject,
    },
  };
  const podMonitor: PodMonitorObject | undefined =
    port && loop.metrics.podMonitor
      ? {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "PodMonitor",
          metadata: { name: i.daemonSetName, namespace: i.namespace, labels: i.labels },
          spec: { selector: { matchLabels: i.selector }, podMetricsEndpoints: [{ port: TUNER_METRICS_PORT, path: "/metrics" }] },
        }
      : undefined;
  return { container, volumes, serviceAccountName: sa, env, access, ...(podMonitor ? { podMonitor } : {}) };
}
