/**
 * The recommended app.kubernetes.io labels every edgetune object carries, in one
 * key order (rendered manifests are compared byte for byte).
 */
export function edgetuneLabels(name: string, component: string, instance?: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": name,
    ...(instance !== undefined ? { "app.kubernetes.io/instance": instance } : {}),
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/part-of": "edgetune",
    "app.kubernetes.io/managed-by": "edgetune",
  };
}

/**
 * A namespace that admits privileged pods (the tuning container writes /proc/sys and runs
 * ethtool) while Pod Security warn/audit still flag them to whoever applies.
 * Shared by the tuner DaemonSet and the proxy DaemonSet (pure).
 */
export function privilegedNamespace(name: string, labels: Record<string, string>, podSecurityVersion: string): { apiVersion: "v1"; kind: "Namespace"; metadata: { name: string; labels: Record<string, string> } } {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name,
      labels: {
        ...labels,
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/enforce-version": podSecurityVersion,
        "pod-security.kubernetes.io/warn": "baseline",
        "pod-security.kubernetes.io/warn-version": podSecurityVersion,
        "pod-security.kubernetes.io/audit": "baseline",
        "pod-security.kubernetes.io/audit-version": podSecurityVersion,
      },
    },
  };
}
