/**
 * The proxy's Kubernetes objects as plain specs (pure): used by the
 * ProxyDaemonSet component and by `edgetune render`.
 */
import {
  edgetuneLabels,
  privilegedNamespace,
  type ConfigMapObject,
  type DaemonSetObject,
  type NamespaceObject,
  type PodDisruptionBudgetObject,
  type PodMonitorObject,
  type ServiceObject,
} from "../k8s-namespace";
import { createHash } from "node:crypto";
import { DELETION_POLICY_ANNOTATIONS, renderTunerLoop } from "../nodes/k8s-tuner";
import { tunerLoopSpec, type TunerLoopOptions } from "../nodes/kubernetes-node-tuner-spec";
import { READY_COMMAND, STATUS_FILE, tunerPod, type TunerPod } from "../nodes/tuner-pod";
import { renderTuneSh } from "../tuning/render";
import type { ResolvedProfile } from "../tuning/types";
import {
  HEALTH_PATH,
  METRICS_PATH,
  privilegedPorts,
  renderHaproxyConfig,
  validateProxySpec,
  type ProxySpec,
  type ResolvedProxySpec,
} from "./haproxy";
import { TUNING_CONTAINER } from "./policy";
import {
  resolveProxyDaemonSetOptions,
  type ProxyDaemonSetOptions,
  type ProxyK8sOptions,
  type TuningFailurePolicy,
} from "./proxy-daemonset-spec";
import { formatPath, show, ValidationError, type PathSegment, type ValidationIssue } from "../validation";
import { MANAGEMENT_ADDRESS_ENV, MANAGEMENT_CIDR_ENV, managementBind, type ResolvedManagement } from "../management";

export const PROXY_CHECKSUM_ANNOTATION = "edgetune.io/config-checksum";
/** uid of the `haproxy` user in the proxy image (Debian's package user, created with a fixed id: proxy-image/Dockerfile). */
export const PROXY_UID = 100;
/** gid of the `haproxy` group in the proxy image. */
export const PROXY_GID = 101;

export type { ProxyK8sOptions, TuningFailurePolicy } from "./proxy-daemonset-spec";

export interface ProxyObjects {
  /** undefined when `createNamespace` is false. */
  namespace?: NamespaceObject;
  /** With tuneNodes: the tuning sidecar's ServiceAccount and roles (nodes get/patch, its DaemonSet get). */
  tuningAccess?: TunerPod["access"];
  configMap: ConfigMapObject;
  daemonSet: DaemonSetObject;
  service?: ServiceObject;
  podDisruptionBudget?: PodDisruptionBudgetObject;
  /** With tuneNodes and `tuning.metrics.podMonitor`: scrapes the sidecar's metrics. */
  podMonitor?: PodMonitorObject;
  /** In the pod template: changes exactly when haproxy.cfg, tune.sh or an image changes, so pods roll. */
  checksum: string;
}

/**
 * The tuning sidecar's startup probe. Kubelet starts HAProxy only once a sidecar has started,
 * so this is the gate: `fail` waits for `tuner.sh ready` (the last apply meets readyWhen),
 * `continue` only for the first apply to have finished (its status file written), whatever it said.
 */
export function tuningStartupProbe(policy: TuningFailurePolicy) {
  const command = policy === "fail" ? READY_COMMAND : ["/bin/sh", "-c", `test -s ${STATUS_FILE}`];
  // 5 minutes for the first apply (modprobe, ethtool on every queue); then kubelet restarts the sidecar, which applies again.
  return { exec: { command }, periodSeconds: 2, timeoutSeconds: 5, failureThreshold: 150 };
}

/** The tuning sidecar's loop options: given, or the tuner's defaults. */
export function proxyTuningLoop(o: ProxyK8sOptions): TunerLoopOptions {
  return o.tuning ?? tunerLoopSpec.parse({});
}

/** The host ports HAProxy binds on every proxy node (hostNetwork), and what binds each. */
export function proxyHostPorts(spec: ResolvedProxySpec): Map<number, string> {
  return new Map([
    ...spec.listeners.map((l): [number, string] => [l.port, `the proxy's listener ${show(l.name)}`]),
    [spec.metricsPort, "the proxy's metrics endpoint"],
    [spec.healthPort, "the proxy's health endpoint"],
  ]);
}

/**
 * A tuner's metrics port on a proxy node (the sidecar's, or a hostNetwork tuner DaemonSet's)
 * binds the node's address like HAProxy: it must be another port than HAProxy's.
 */
export function tunerPortClash(port: number, spec: ResolvedProxySpec, path: readonly PathSegment[]): ValidationIssue | undefined {
  const what = port ? proxyHostPorts(spec).get(port) : undefined;
  return what
    ? { path: formatPath(path), message: `got ${port}; ${what} binds it on the proxy's nodes; allowed: another port` }
    : undefined;
}

/** Checks between the proxy spec and its Kubernetes options: the sidecar's metrics port. */
export function proxyTuningIssues(spec: ResolvedProxySpec, o: ProxyK8sOptions, prefix: readonly PathSegment[]): ValidationIssue[] {
  if (!o.tuneNodes) return [];
  const clash = tunerPortClash(proxyTuningLoop(o).metrics.port, spec, [...prefix, "tuning", "metrics", "port"]);
  return clash ? [clash] : [];
}

/** The proxy's management address on Kubernetes: one kubelet's probes reach. `prefix`: the proxy spec's path. */
export function kubernetesManagementIssues(spec: ResolvedProxySpec, prefix: readonly PathSegment[]): ValidationIssue[] {
  if (managementBind(spec.management).kind !== "cidr") return [];
  return [
    {
      path: formatPath([...prefix, "management", "address"]),
      message: `got ${show(spec.management.address)}; on Kubernetes kubelet probes the pod's address (status.hostIP), which a CIDR need not contain; allowed: "hostIP" or an address`,
    },
  ];
}

/**
 * The environment a container needs for the rendered management bind: the node's internal
 * address from the downward API (a hostNetwork pod's status.hostIP), or the CIDR the process
 * resolves at start; nothing for an address given as is.
 */
export function managementEnv(m: ResolvedManagement, fieldPath = "status.hostIP"): Array<Record<string, unknown> & { name: string }> {
  const b = managementBind(m);
  if (b.kind === "hostIP") return [{ name: MANAGEMENT_ADDRESS_ENV, valueFrom: { fieldRef: { fieldPath } } }];
  if (b.kind === "cidr") return [{ name: MANAGEMENT_CIDR_ENV, value: b.cidr }];
  return [];
}

/**
 * Renders the proxy's Namespace, ConfigMap, DaemonSet and optional Service
 * and PodDisruptionBudget. Throws `ValidationError` naming every bad path.
 */
export function renderProxyObjects(
  input: ProxySpec,
  profile: ResolvedProfile,
  options: ProxyDaemonSetOptions & { name: string },
  nodeFacts: { cpus?: number; nofileLimit?: number } = {},
): ProxyObjects {
  const { name: instance, ...given } = options;
  const r = resolveProxyDaemonSetOptions(instance, given, ["proxy"]);
  if (!r.value) throw new ValidationError(r.issues, "invalid proxy options");
  const o = r.value;
  const { spec } = validateProxySpec(input, { profile, ...nodeFacts });
  const clash = [...kubernetesManagementIssues(spec, ["proxy"]), ...proxyTuningIssues(spec, o, ["proxy"])];
  if (clash.length) throw new ValidationError(clash, "invalid proxy options");
  const haproxyCfg = renderHaproxyConfig(spec, { profile, ...nodeFacts });
  const name = `edgetune-proxy-${o.name}`;
  const labels = edgetuneLabels("edgetune-proxy", "proxy", o.name);
  const selector = { "app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": o.name };
  const tuneNodes = o.tuneNodes;
  const data = {
    "haproxy.cfg": haproxyCfg,
    "tune.sh": renderTuneSh(profile),
    ...(tuneNodes ? { "tuner.sh": renderTunerLoop() } : {}),
  };
  const nodeSelector = o.nodeSelector ?? {};
  // The same tuner container as the tuner DaemonSet's, as a native sidecar: it keeps the node
  // tuned while the proxy runs and restores it when the proxy is removed from the node.
  const tuner = tuneNodes
    ? tunerPod({
        name: o.name,
        namespace: o.namespace,
        daemonSetName: name,
        labels,
        selector,
        image: o.tunerImage!,
        containerName: TUNING_CONTAINER,
        scriptsVolume: "config",
        nodeSelector,
        hostNetwork: true,
        loop: proxyTuningLoop(o),
        management: spec.management,
      })
    : undefined;
  const checksum = `sha256:${createHash("sha256")
    .update(JSON.stringify({ data, image: o.image, tunerImage: o.tunerImage, policy: o.onTuningFailure, tuneNodes, tuning: tuner?.env }))
    .digest("hex")}`;
  const { metricsPort, healthPort, runtimeDir } = spec;
  const lowPorts = privilegedPorts(spec);
  const scrape: Record<string, string> = o.prometheusScrapeAnnotations
    ? { "prometheus.io/scrape": "true", "prometheus.io/port": String(metricsPort), "prometheus.io/path": METRICS_PATH }
    : {};

  const namespace = o.createNamespace ? privilegedNamespace(o.namespace, labels, o.podSecurityVersion) : undefined;
  const configMap: ConfigMapObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: o.namespace, labels }, data };
  const mgmt = managementBind(spec.management);
  const probe = (initialDelaySeconds: number, failureThreshold: number) => ({
    // Without a host kubelet probes the pod IP, which on hostNetwork is status.hostIP: the default bind.
    httpGet: { path: HEALTH_PATH, port: healthPort, ...(mgmt.kind === "address" ? { host: mgmt.address } : {}) },
    initialDelaySeconds,
    periodSeconds: 5,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const daemonSet: DaemonSetObject = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: o.namespace, labels, ...(tuner ? { annotations: { ...DELETION_POLICY_ANNOTATIONS } } : {}) },
    spec: {
      selector: { matchLabels: selector },
      minReadySeconds: o.minReadySeconds,
      // A surge pod would need the same host ports as the pod it replaces and never become ready.
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: o.maxUnavailable } },
      template: {
        metadata: { labels, annotations: { [PROXY_CHECKSUM_ANNOTATION]: checksum, "edgetune.io/profile": profile.name, ...scrape } },
        spec: {
          ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
          ...(o.tolerations?.length ? { tolerations: o.tolerations } : {}),
          ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          ...(tuner ? { serviceAccountName: tuner.serviceAccountName } : {}),
          // The token goes to the tuning sidecar only, through its own projected volume.
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds,
          ...(tuner
            ? {
                initContainers: [
                  // restartPolicy Always: a native sidecar (Kubernetes >= 1.29), running beside HAProxy
                  // for the pod's lifetime and stopped after it.
                  { ...tuner.container, restartPolicy: "Always", startupProbe: tuningStartupProbe(o.onTuningFailure) },
                ],
              }
            : {}),
          containers: [
            {
              name: "haproxy",
              image: o.image,
              imagePullPolicy: "IfNotPresent",
              env: [
                { name: "HAPROXY_CFG", value: "/etc/edgetune/haproxy.cfg" },
                { name: "TUNE_SH", value: "/etc/edgetune/tune.sh" },
                { name: "RUNTIME_DIR", value: runtimeDir },
                ...managementEnv(spec.management),
              ],
              ports: [
                ...spec.listeners.map((l) => ({
                  name: l.name
                    .toLowerCase()
                    .replace(/[^a-z0-9-]/g, "-")
                    .slice(0, 15),
                  containerPort: l.port,
                  hostPort: l.port,
                  protocol: "TCP",
                })),
                { name: "metrics", containerPort: metricsPort, hostPort: metricsPort, protocol: "TCP" },
                { name: "health", containerPort: healthPort, hostPort: healthPort, protocol: "TCP" },
              ],
              securityContext: {
                runAsNonRoot: true,
                runAsUser: PROXY_UID,
                runAsGroup: PROXY_GID,
                privileged: false,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"], ...(lowPorts.length ? { add: ["NET_BIND_SERVICE"] } : {}) },
                seccompProfile: { type: "RuntimeDefault" },
              },
              resources: o.resources,
              readinessProbe: probe(2, 2),
              livenessProbe: probe(10, 6),
              volumeMounts: [
                { name: "config", mountPath: "/etc/edgetune", readOnly: true },
                { name: "runtime", mountPath: runtimeDir },
              ],
            },
          ],
          volumes: [
            { name: "config", configMap: { name, defaultMode: 0o444 } },
            ...(tuner ? tuner.volumes : []),
            // The only writable path of the proxy: admin and master sockets.
            { name: "runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
          ],
        },
      },
    },
  };
  const out: ProxyObjects = {
    ...(namespace ? { namespace } : {}),
    ...(tuner ? { tuningAccess: tuner.access } : {}),
    configMap,
    daemonSet,
    ...(tuner?.podMonitor ? { podMonitor: tuner.podMonitor } : {}),
    checksum,
  };
  if (o.metricsService) {
    out.service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: `${name}-metrics`,
        namespace: o.namespace,
        labels,
        ...(o.prometheusScrapeAnnotations ? { annotations: scrape } : {}),
      },
      spec: { type: "ClusterIP", selector, ports: [{ name: "metrics", port: metricsPort, targetPort: metricsPort, protocol: "TCP" }] },
    };
  }
  if (o.podDisruptionBudget) {
    out.podDisruptionBudget = {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name, namespace: o.namespace, labels },
      spec: { maxUnavailable: o.podDisruptionBudget.maxUnavailable, selector: { matchLabels: selector } },
    };
  }
  return out;
}
