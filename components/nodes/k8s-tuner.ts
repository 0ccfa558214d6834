import { edgetuneLabels, privilegedNamespace } from "../k8s-namespace";
import { imageProblem } from "../proxy/policy";
import { createHash } from "node:crypto";
import { readAsset } from "../shell";
import { renderTuneSh } from "../tuning/render";
import { formatPath, show, type PathSegment, type ValidationIssue } from "../tuning/profile";
import type { ResolvedProfile } from "../tuning/types";

/** Options of the tuner DaemonSet; see KubernetesNodeTunerArgs for the documented public form. */
export interface TunerOptions {
  /** Node group name: part of every object name. */
  name: string;
  namespace: string;
  /** Tuner image with a tag or digest (never `latest`). */
  image: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Array<Record<string, unknown>>;
  verifyIntervalSeconds: number;
  reapplyOnDrift: boolean;
  restoreOnDelete: boolean;
  /** "1", "10%": nodes that may be without a running tuner during a roll. */
  maxUnavailable: number | string;
  hostNetwork: boolean;
  /** Pod-level `securityContext.sysctls`; only meaningful without hostNetwork. */
  podSysctls?: Array<{ name: string; value: string }>;
  /** Pod Security Standards version the namespace labels pin, e.g. "v1.33". */
  podSecurityVersion: string;
  /** Create the namespace; false: it exists already (or another component owns it). */
  createNamespace: boolean;
}

export const TUNER_DEFAULTS = {
  namespace: "edgetune-system",
  verifyIntervalSeconds: 300,
  reapplyOnDrift: false,
  restoreOnDelete: true,
  maxUnavailable: 1,
  hostNetwork: true,
  podSecurityVersion: "v1.33",
  createNamespace: true,
} as const;

/** What a caller gives: the image, and any option to override a default. */
export type TunerInput = Partial<Omit<TunerOptions, "name" | "image">> & { image?: string };

/** TunerOptions with TUNER_DEFAULTS applied, for the component, render and the stack loader alike. */
export function tunerOptions(name: string, o: TunerInput): TunerOptions {
  return {
    name,
    image: o.image as string,
    namespace: o.namespace ?? TUNER_DEFAULTS.namespace,
    nodeSelector: o.nodeSelector,
    tolerations: o.tolerations,
    verifyIntervalSeconds: o.verifyIntervalSeconds ?? TUNER_DEFAULTS.verifyIntervalSeconds,
    reapplyOnDrift: o.reapplyOnDrift ?? TUNER_DEFAULTS.reapplyOnDrift,
    restoreOnDelete: o.restoreOnDelete ?? TUNER_DEFAULTS.restoreOnDelete,
    maxUnavailable: o.maxUnavailable ?? TUNER_DEFAULTS.maxUnavailable,
    hostNetwork: o.hostNetwork ?? TUNER_DEFAULTS.hostNetwork,
    podSysctls: o.podSysctls,
    podSecurityVersion: o.podSecurityVersion ?? TUNER_DEFAULTS.podSecurityVersion,
    createNamespace: o.createNamespace ?? TUNER_DEFAULTS.createNamespace,
  };
}

export const CHECKSUM_ANNOTATION = "edgetune.io/artifacts-checksum";
export const STATUS_FILE = "/run/edgetune/status";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Every problem with the options, paths under `prefix`. `pending`: options a component got as
 * Outputs not yet resolved, checked when they are.
 */
export function checkTunerOptions(o: Partial<TunerOptions>, prefix: readonly PathSegment[], pending: ReadonlyArray<keyof TunerOptions> = []): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const bad = (key: PathSegment, value: unknown, allowed: string) => issues.push({ path: formatPath([...prefix, key]), message: `got ${show(value)}; allowed: ${allowed}` });
  if (o.name !== undefined && !DNS_LABEL.test(o.name)) bad("name", o.name, "a DNS label (lowercase letters, digits, -)");
  if (o.namespace !== undefined && !DNS_LABEL.test(o.namespace)) bad("namespace", o.namespace, "a DNS label");
  if (o.image === undefined) {
    if (!pending.includes("image")) bad("image", o.image, "the tuner image with a tag or digest");
  } else {
    const problem = imageProblem(o.image);
    if (problem === "tag latest") bad("image", o.image, 'a pinned tag, not "latest" (a moving tag rolls nodes nobody reviewed)');
    else if (problem) bad("image", o.image, "an image reference pinned by tag or digest (e.g. ghcr.io/org/edgetune-tuner:0.1.0)");
  }
  if (o.verifyIntervalSeconds !== undefined && !(Number.isInteger(o.verifyIntervalSeconds) && o.verifyIntervalSeconds >= 10 && o.verifyIntervalSeconds <= 86400)) bad("verifyIntervalSeconds", o.verifyIntervalSeconds, "an integer from 10 to 86400");
  const mu = o.maxUnavailable;
  if (mu !== undefined && !((typeof mu === "number" && Number.isInteger(mu) && mu >= 1) || (typeof mu === "string" && /^([1-9][0-9]?|100)%$/.test(mu)))) bad("maxUnavailable", mu, 'an integer >= 1 or a percentage "1%".."100%"');
  if (o.podSecurityVersion !== undefined && !/^v1\.[0-9]{1,2}$/.test(o.podSecurityVersion)) bad("podSecurityVersion", o.podSecurityVersion, 'a pinned version such as "v1.33" (not "latest")');
  for (const [k, v] of Object.entries(o.nodeSelector ?? {})) if (!/^[A-Za-z0-9./_-]{1,316}$/.test(k) || !/^[A-Za-z0-9._-]{0,63}$/.test(v)) bad("nodeSelector", { [k]: v }, "label keys and values");
  if (o.podSysctls?.length && o.hostNetwork !== false) {
    issues.push({
      path: formatPath([...prefix, "podSysctls"]),
      message: "kubelet rejects securityContext.sysctls on hostNetwork pods (net.* sysctls are per network namespace, and a hostNetwork pod shares the node's); the tuner sets them through tune.sh instead — remove podSysctls or set hostNetwork: false",
    });
  }
  return issues;
}

/**
 * The container's entrypoint: apply once, then verify every interval; on
 * SIGTERM restore when asked. POSIX sh (tuner.sh beside this module). `sleep & wait`
 * so the TERM trap runs at once instead of after the sleep.
 */
export function renderTunerLoop(): string {
  return readAsset(__dirname, "tuner.sh");
}

type Obj = Record<string, unknown>;

/** The Kubernetes objects of one tuner, as plain specs (apiVersion, kind, metadata, ...). */
export interface TunerObjects {
  /** undefined when `createNamespace` is false. */
  namespace?: Obj;
  configMap: Obj;
  daemonSet: Obj;
  /** The checksum in the pod template: changes exactly when what the pods run changes. */
  checksum: string;
}

/** Renders the Namespace, ConfigMap and DaemonSet. Validate with checkTunerOptions first. */
export function renderTunerObjects(profile: ResolvedProfile, o: TunerOptions): TunerObjects {
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
  const checksum = `sha256:${createHash("sha256").update(JSON.stringify({ data, env, image: o.image })).digest("hex")}`;
  const namespace = o.createNamespace ? privilegedNamespace(o.namespace, labels, o.podSecurityVersion) : undefined;
  const configMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: o.namespace, labels }, data };
  const hostPath = (n: string, path: string, type: string) => ({ name: n, hostPath: { path, type } });
  const daemonSet = {
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
