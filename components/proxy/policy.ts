/**
 * CrossGuard-style policy rules as plain functions over Kubernetes object
 * specs: each returns violations instead of throwing, so tests (and a
 * @pulumi/policy pack, if one is added) can call them directly.
 */
import { imageProblem } from "../validation";

export interface PolicyViolation {
  policy: string;
  /** `DaemonSet/ns/name` */
  resource: string;
  message: string;
}

type Obj = Record<string, unknown>;
type Container = {
  name: string;
  image?: string;
  ports?: Array<{ hostPort?: number }>;
  securityContext?: {
    privileged?: boolean;
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type?: string };
  };
};
type PodSpec = {
  hostNetwork?: boolean;
  securityContext?: Container["securityContext"];
  containers?: Container[];
  initContainers?: Container[];
};

/** The name of the container allowed to be privileged. */
export const TUNING_CONTAINER = "tuning";
export const PROXY_CONTAINER = "haproxy";

function podSpecOf(obj: Obj): PodSpec | undefined {
  const kind = obj.kind;
  if (kind === "Pod") return obj.spec as PodSpec;
  if (["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job"].includes(String(kind)))
    return ((obj.spec as Obj)?.template as Obj)?.spec as PodSpec;
  return undefined;
}

function resourceId(obj: Obj): string {
  const md = (obj.metadata ?? {}) as { name?: string; namespace?: string };
  return `${String(obj.kind)}/${md.namespace ?? "-"}/${md.name ?? "?"}`;
}

/** Only the tuning init container may be privileged. */
export function noPrivilegedExceptTuning(obj: Obj): PolicyViolation[] {
  const pod = podSpecOf(obj);
  if (!pod) return [];
  const all = [...(pod.initContainers ?? []).map((c) => ({ c, init: true })), ...(pod.containers ?? []).map((c) => ({ c, init: false }))];
  return all
    .filter(({ c, init }) => c.securityContext?.privileged === true && !(init && c.name === TUNING_CONTAINER))
    .map(({ c }) => ({
      policy: "no-privileged-except-tuning",
      resource: resourceId(obj),
      message: `container ${c.name} is privileged; only the ${TUNING_CONTAINER} init container may be`,
    }));
}

/** The proxy container meets the Pod Security "restricted" profile (ports below 1024 may add NET_BIND_SERVICE). */
export function proxyContainerRestricted(obj: Obj): PolicyViolation[] {
  const pod = podSpecOf(obj);
  if (!pod) return [];
  const out: PolicyViolation[] = [];
  const v = (message: string) => out.push({ policy: "proxy-container-restricted", resource: resourceId(obj), message });
  const c = pod.containers?.find((x) => x.name === PROXY_CONTAINER);
  if (!c) return [];
  // Container settings override the pod's; either level satisfies the rule.
  const sc = { ...pod.securityContext, ...c.securityContext };
  if (sc.runAsNonRoot !== true) v("runAsNonRoot must be true");
  if (sc.runAsUser === undefined || sc.runAsUser === 0)
    v("runAsUser must be a non-zero uid (kubelet cannot verify runAsNonRoot for named users)");
  if (sc.privileged === true) v("must not be privileged");
  if (sc.readOnlyRootFilesystem !== true) v("readOnlyRootFilesystem must be true");
  if (sc.allowPrivilegeEscalation !== false) v("allowPrivilegeEscalation must be false");
  const drop = sc.capabilities?.drop ?? [];
  if (!drop.includes("ALL")) v("capabilities.drop must include ALL");
  const extra = (sc.capabilities?.add ?? []).filter((cap) => cap !== "NET_BIND_SERVICE");
  if (extra.length) v(`capabilities.add may only be NET_BIND_SERVICE; got ${extra.join(", ")}`);
  if (!["RuntimeDefault", "Localhost"].includes(sc.seccompProfile?.type ?? ""))
    v("seccompProfile.type must be RuntimeDefault or Localhost");
  return out;
}

/** Every image is pinned: a non-latest tag or a digest. */
export function noLatestImages(obj: Obj): PolicyViolation[] {
  const pod = podSpecOf(obj);
  if (!pod) return [];
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])]
    .map((c) => ({ c, p: imageProblem(c.image) }))
    .filter(({ p }) => p !== undefined)
    .map(({ c, p }) => ({
      policy: "no-latest-images",
      resource: resourceId(obj),
      message: `container ${c.name} image ${JSON.stringify(c.image)}: ${p}`,
    }));
}

/**
 * A DaemonSet declaring host ports must not surge: the scheduler refuses a second pod whose declared
 * hostPorts are taken on the node (with hostNetwork every declared containerPort is one). Undeclared
 * ports bound on the node's network (hostNetwork, SO_REUSEPORT) are what `handover: surge` relies on.
 */
export function noSurgeWithHostPorts(obj: Obj): PolicyViolation[] {
  if (obj.kind !== "DaemonSet") return [];
  const pod = podSpecOf(obj);
  const usesHostPorts = [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])].some((c) =>
    (c.ports ?? []).some((p) => p.hostPort !== undefined || pod?.hostNetwork === true),
  );
  if (!usesHostPorts) return [];
  const surge = (((obj.spec as Obj)?.updateStrategy as Obj)?.rollingUpdate as Obj)?.maxSurge;
  const positive = typeof surge === "number" ? surge > 0 : typeof surge === "string" ? !/^0+%?$/.test(surge) : false;
  return positive
    ? [
        {
          policy: "no-surge-with-host-ports",
          resource: resourceId(obj),
          message: `maxSurge ${JSON.stringify(surge)} with host ports: the surge pod cannot be scheduled beside the old one; use maxSurge 0 and maxUnavailable, or declare no host ports`,
        },
      ]
    : [];
}

export const PROXY_POLICIES = [noPrivilegedExceptTuning, proxyContainerRestricted, noLatestImages, noSurgeWithHostPorts] as const;

/** Runs every rule over every object. */
export function checkProxyPolicies(objects: Obj[]): PolicyViolation[] {
  return objects.flatMap((o) => PROXY_POLICIES.flatMap((rule) => rule(o)));
}
