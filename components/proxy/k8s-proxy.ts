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
  type ServiceObject,
} from "../k8s-namespace";
import { createHash } from "node:crypto";
import { renderTuneSh } from "../tuning/render";
import type { ResolvedProfile } from "../tuning/types";
import { HEALTH_PATH, METRICS_PATH, privilegedPorts, renderHaproxyConfig, validateProxySpec, type ProxySpec } from "./haproxy";
import { resolveProxyDaemonSetOptions, type ProxyDaemonSetOptions, type TuningFailurePolicy } from "./proxy-daemonset-spec";
import { ValidationError } from "../validation";

export const PROXY_CHECKSUM_ANNOTATION = "edgetune.io/config-checksum";
/** uid/gid of the `haproxy` user in the upstream image. */
export const PROXY_UID = 99;

export type { ProxyK8sOptions, TuningFailurePolicy } from "./proxy-daemonset-spec";

export interface ProxyObjects {
  /** undefined when `createNamespace` is false. */
  namespace?: NamespaceObject;
  configMap: ConfigMapObject;
  daemonSet: DaemonSetObject;
  service?: ServiceObject;
  podDisruptionBudget?: PodDisruptionBudgetObject;
  /** In the pod template: changes exactly when haproxy.cfg, tune.sh or an image changes, so pods roll. */
  checksum: string;
}

function initScript(policy: TuningFailurePolicy): string {
  const run = "sh /edgetune/tune.sh apply";
  if (policy === "continue")
    return `${run}; rc=$?; [ "$rc" -eq 0 ] || echo "edgetune: tune.sh apply exit $rc; starting the proxy anyway (onTuningFailure=continue)"; exit 0`;
  return `${run}; rc=$?; if [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; then exit 0; fi; echo "edgetune: tune.sh apply exit $rc; failing the pod (onTuningFailure=fail)"; exit "$rc"`;
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
  const haproxyCfg = renderHaproxyConfig(spec, { profile, ...nodeFacts });
  const name = `edgetune-proxy-${o.name}`;
  const labels = edgetuneLabels("edgetune-proxy", "proxy", o.name);
  const selector = { "app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": o.name };
  const data = { "haproxy.cfg": haproxyCfg, "tune.sh": renderTuneSh(profile) };
  const tuneNodes = o.tuneNodes;
  const checksum = `sha256:${createHash("sha256")
    .update(JSON.stringify({ data, image: o.image, tunerImage: o.tunerImage, policy: o.onTuningFailure, tuneNodes }))
    .digest("hex")}`;
  const { metricsPort, healthPort, runtimeDir } = spec;
  const lowPorts = privilegedPorts(spec);
  const scrape: Record<string, string> = o.prometheusScrapeAnnotations
    ? { "prometheus.io/scrape": "true", "prometheus.io/port": String(metricsPort), "prometheus.io/path": METRICS_PATH }
    : {};

  const namespace = o.createNamespace ? privilegedNamespace(o.namespace, labels, o.podSecurityVersion) : undefined;
  const configMap: ConfigMapObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: o.namespace, labels }, data };
  const probe = (initialDelaySeconds: number, failureThreshold: number) => ({
    httpGet: { path: HEALTH_PATH, port: healthPort },
    initialDelaySeconds,
    periodSeconds: 5,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const daemonSet: DaemonSetObject = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: o.namespace, labels },
    spec: {
      selector: { matchLabels: selector },
      minReadySeconds: o.minReadySeconds,
      // A surge pod would need the same host ports as the pod it replaces and never become ready.
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: o.maxUnavailable } },
      template: {
        metadata: { labels, annotations: { [PROXY_CHECKSUM_ANNOTATION]: checksum, "edgetune.io/profile": profile.name, ...scrape } },
        spec: {
          ...(o.nodeSelector && Object.keys(o.nodeSelector).length ? { nodeSelector: o.nodeSelector } : {}),
          ...(o.tolerations?.length ? { tolerations: o.tolerations } : {}),
          ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds,
          ...(tuneNodes
            ? {
                initContainers: [
                  {
                    name: "tuning",
                    image: o.tunerImage,
                    imagePullPolicy: "IfNotPresent",
                    command: ["/bin/sh", "-c", initScript(o.onTuningFailure)],
                    env: [
                      // The node's /etc and state dir: sysctl.d persists across reboots, and originals recorded by the first apply survive pod restarts.
                      { name: "ETC_ROOT", value: "/host/etc" },
                      { name: "STATE_DIR", value: "/host/var/lib/edgetune" },
                      { name: "EDGETUNE_SCOPE", value: "all" },
                    ],
                    // Writing /proc/sys and running ethtool need it; the only privileged container.
                    securityContext: { privileged: true, runAsUser: 0, readOnlyRootFilesystem: true },
                    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
                    volumeMounts: [
                      { name: "config", mountPath: "/edgetune", readOnly: true },
                      { name: "host-etc", mountPath: "/host/etc" },
                      { name: "state", mountPath: "/host/var/lib/edgetune" },
                    ],
                  },
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
                runAsGroup: PROXY_UID,
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
            ...(tuneNodes
              ? [
                  { name: "host-etc", hostPath: { path: "/etc", type: "Directory" } },
                  { name: "state", hostPath: { path: "/var/lib/edgetune", type: "DirectoryOrCreate" } },
                ]
              : []),
            // The only writable path of the proxy: admin and master sockets.
            { name: "runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
          ],
        },
      },
    },
  };
  const out: ProxyObjects = { ...(namespace ? { namespace } : {}), configMap, daemonSet, checksum };
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
