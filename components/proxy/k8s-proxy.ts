/**
 * The proxy's Kubernetes objects as plain specs (pure): used by the
 * ProxyDaemonSet component and by `edgetune render`.
 */
import { edgetuneLabels, privilegedNamespace } from "../k8s-namespace";
import { createHash } from "node:crypto";
import { renderTuneSh } from "../tuning/render";
import { formatPath, show, ValidationError, type PathSegment, type ValidationIssue } from "../tuning/profile";
import type { ResolvedProfile } from "../tuning/types";
import { DEFAULT_HEALTH_PORT, DEFAULT_METRICS_PORT, DEFAULT_RUNTIME_DIR, HEALTH_PATH, METRICS_PATH, privilegedPorts, renderHaproxyConfig, type ProxySpec } from "./haproxy";
import { imageProblem } from "./policy";

export const PROXY_CHECKSUM_ANNOTATION = "edgetune.io/config-checksum";
/** uid/gid of the `haproxy` user in the upstream image. */
export const PROXY_UID = 99;

/** What to do when the tuning init container cannot tune the node. */
export type TuningFailurePolicy =
  /** tune.sh hard failure (exit 1) or usage error fails the pod; degraded (exit 3: some items skipped) starts the proxy. */
  | "fail"
  /** Always start the proxy; its entrypoint check then WARNs about every parameter still below the profile. */
  | "continue";

export interface ProxyK8sOptions {
  /** Instance name: part of every object name (DNS label). */
  name: string;
  /** @default "edgetune-proxy" */
  namespace?: string;
  /** Proxy image (proxy-image/ `proxy` target), pinned by tag or digest. */
  image: string;
  /** Tuner image (proxy-image/ `tuner` target) for the init container, pinned by tag or digest. Required unless `tuneNodes` is false. */
  tunerImage?: string;
  /**
   * Tune the node in a privileged init container before HAProxy starts. false: something
   * else tunes the nodes (a KubernetesNodeTuner — e.g. a benchmark stack that measures the
   * baseline first and tunes afterwards); the pod then has no privileged container at all.
   * @default true
   */
  tuneNodes?: boolean;
  /** @default "fail" */
  onTuningFailure?: TuningFailurePolicy;
  /** @default { requests: { cpu: "500m", memory: "256Mi" }, limits: { memory: "1Gi" } } */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** Seconds a new pod must be ready before the roll moves on. @default 10 */
  minReadySeconds?: number;
  /** Nodes whose proxy may be down at once during a roll ("10%" or a count). @default 1 */
  maxUnavailable?: number | string;
  /** Create a PodDisruptionBudget with this maxUnavailable (drains). @default none */
  podDisruptionBudget?: { maxUnavailable: number | string };
  /** @default none */
  priorityClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Array<Record<string, unknown>>;
  /** Create a ClusterIP Service for the metrics port. @default true */
  metricsService?: boolean;
  /** Add prometheus.io/* scrape annotations to the pods and the Service. @default false */
  prometheusScrapeAnnotations?: boolean;
  /** Pod Security Standards version pinned by the namespace labels. @default "v1.33" */
  podSecurityVersion?: string;
  /** Old workers' drain time on rollout; must exceed the config's hard-stop-after. @default 60 */
  terminationGracePeriodSeconds?: number;
  /** Create the namespace; false: it exists already (or another component owns it). @default true */
  createNamespace?: boolean;
}

export const PROXY_DEFAULTS = { namespace: "edgetune-proxy", podSecurityVersion: "v1.33" } as const;

type Obj = Record<string, unknown>;

export interface ProxyObjects {
  /** undefined when `createNamespace` is false. */
  namespace?: Obj;
  configMap: Obj;
  daemonSet: Obj;
  service?: Obj;
  podDisruptionBudget?: Obj;
  /** In the pod template: changes exactly when haproxy.cfg, tune.sh or an image changes, so pods roll. */
  checksum: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const COUNT_OR_PERCENT = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 1) || (typeof v === "string" && /^([1-9][0-9]?|100)%$/.test(v));

/**
 * Every problem with the Kubernetes options, paths under `prefix`. `pending`: options a
 * component got as Outputs not yet resolved, checked when they are.
 */
export function checkProxyK8sOptions(o: ProxyK8sOptions, prefix: readonly PathSegment[] = ["proxy"], pending: ReadonlyArray<keyof ProxyK8sOptions> = []): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const bad = (key: string, value: unknown, allowed: string) => issues.push({ path: formatPath([...prefix, ...key.split(".")]), message: `got ${show(value)}; allowed: ${allowed}` });
  if (!DNS_LABEL.test(o.name) || o.name.length > 40) bad("name", o.name, "a DNS label of at most 40 characters");
  if (o.namespace !== undefined && !DNS_LABEL.test(o.namespace)) bad("namespace", o.namespace, "a DNS label");
  for (const key of ["image", "tunerImage"] as const) {
    if ((key === "tunerImage" && o.tuneNodes === false && o.tunerImage === undefined) || pending.includes(key)) continue;
    const p = imageProblem(o[key]);
    if (p) bad(key, o[key], `an image pinned by tag or digest (${p})`);
  }
  if (o.tuneNodes !== undefined && typeof o.tuneNodes !== "boolean") bad("tuneNodes", o.tuneNodes, "true or false");
  if (o.onTuningFailure !== undefined && !["fail", "continue"].includes(o.onTuningFailure)) bad("onTuningFailure", o.onTuningFailure, '"fail" or "continue"');
  if (o.minReadySeconds !== undefined && !(Number.isInteger(o.minReadySeconds) && o.minReadySeconds >= 0 && o.minReadySeconds <= 3600)) bad("minReadySeconds", o.minReadySeconds, "an integer 0..3600");
  if (o.maxUnavailable !== undefined && !COUNT_OR_PERCENT(o.maxUnavailable)) bad("maxUnavailable", o.maxUnavailable, 'an integer >= 1 or "1%".."100%" (0 would block every roll: maxSurge must be 0 with host ports)');
  if (o.podDisruptionBudget && !COUNT_OR_PERCENT(o.podDisruptionBudget.maxUnavailable)) bad("podDisruptionBudget.maxUnavailable", o.podDisruptionBudget.maxUnavailable, 'an integer >= 1 or "1%".."100%"');
  if (o.priorityClassName !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(o.priorityClassName)) bad("priorityClassName", o.priorityClassName, "a DNS subdomain");
  if (o.podSecurityVersion !== undefined && !/^v1\.[0-9]{1,2}$/.test(o.podSecurityVersion)) bad("podSecurityVersion", o.podSecurityVersion, 'a pinned version such as "v1.33"');
  if (o.terminationGracePeriodSeconds !== undefined && !(Number.isInteger(o.terminationGracePeriodSeconds) && o.terminationGracePeriodSeconds >= 1)) bad("terminationGracePeriodSeconds", o.terminationGracePeriodSeconds, "an integer >= 1");
  if (o.createNamespace !== undefined && typeof o.createNamespace !== "boolean") bad("createNamespace", o.createNamespace, "true or false");
  return issues;
}

function initScript(policy: TuningFailurePolicy): string {
  const run = "sh /edgetune/tune.sh apply";
  if (policy === "continue") return `${run}; rc=$?; [ "$rc" -eq 0 ] || echo "edgetune: tune.sh apply exit $rc; starting the proxy anyway (onTuningFailure=continue)"; exit 0`;
  return `${run}; rc=$?; if [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; then exit 0; fi; echo "edgetune: tune.sh apply exit $rc; failing the pod (onTuningFailure=fail)"; exit "$rc"`;
}

/**
 * Renders the proxy's Namespace, ConfigMap, DaemonSet and optional Service
 * and PodDisruptionBudget. Throws `ValidationError` naming every bad path.
 */
export function renderProxyObjects(spec: ProxySpec, profile: ResolvedProfile, options: ProxyK8sOptions, nodeFacts: { cpus?: number; nofileLimit?: number } = {}): ProxyObjects {
  const issues = checkProxyK8sOptions(options);
  if (issues.length) throw new ValidationError(issues, "invalid proxy options");
  const haproxyCfg = renderHaproxyConfig(spec, { profile, ...nodeFacts });
  const o = {
    namespace: PROXY_DEFAULTS.namespace,
    onTuningFailure: "fail" as TuningFailurePolicy,
    resources: { requests: { cpu: "500m", memory: "256Mi" }, limits: { memory: "1Gi" } },
    minReadySeconds: 10,
    maxUnavailable: 1 as number | string,
    metricsService: true,
    prometheusScrapeAnnotations: false,
    podSecurityVersion: PROXY_DEFAULTS.podSecurityVersion,
    terminationGracePeriodSeconds: 60,
    ...options,
  };
  const name = `edgetune-proxy-${o.name}`;
  const labels = edgetuneLabels("edgetune-proxy", "proxy", o.name);
  const selector = { "app.kubernetes.io/name": labels["app.kubernetes.io/name"], "app.kubernetes.io/instance": o.name };
  const data = { "haproxy.cfg": haproxyCfg, "tune.sh": renderTuneSh(profile) };
  const tuneNodes = o.tuneNodes !== false;
  const checksum = `sha256:${createHash("sha256").update(JSON.stringify({ data, image: o.image, tunerImage: o.tunerImage, policy: o.onTuningFailure, tuneNodes })).digest("hex")}`;
  const metricsPort = spec.metricsPort ?? DEFAULT_METRICS_PORT;
  const healthPort = spec.healthPort ?? DEFAULT_HEALTH_PORT;
  const runtimeDir = spec.runtimeDir ?? DEFAULT_RUNTIME_DIR;
  const lowPorts = privilegedPorts(spec);
  const scrape = o.prometheusScrapeAnnotations ? { "prometheus.io/scrape": "true", "prometheus.io/port": String(metricsPort), "prometheus.io/path": METRICS_PATH } : {};

  const namespace = o.createNamespace === false ? undefined : privilegedNamespace(o.namespace, labels, o.podSecurityVersion);
  const configMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: o.namespace, labels }, data };
  const probe = (initialDelaySeconds: number, failureThreshold: number) => ({ httpGet: { path: HEALTH_PATH, port: healthPort }, initialDelaySeconds, periodSeconds: 5, timeoutSeconds: 2, failureThreshold });
  const daemonSet = {
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
                ...spec.listeners.map((l) => ({ name: l.name.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 15), containerPort: l.port, hostPort: l.port, protocol: "TCP" })),
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
      metadata: { name: `${name}-metrics`, namespace: o.namespace, labels, ...(o.prometheusScrapeAnnotations ? { annotations: scrape } : {}) },
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
