import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

/**
 * A Kubernetes object as plain data, typed by @pulumi/kubernetes' input types: what the pure
 * builders return, what render writes as YAML and what a component passes to its resource.
 */
export type Plain<T> = pulumi.Unwrap<T>;
export type NamespaceObject = Plain<k8s.types.input.core.v1.Namespace> & { metadata: { name: string } };
export type ConfigMapObject = Plain<k8s.types.input.core.v1.ConfigMap> & {
  metadata: { name: string; namespace: string };
  data: Record<string, string>;
};
export type DaemonSetObject = Plain<k8s.types.input.apps.v1.DaemonSet> & {
  metadata: { name: string; namespace: string };
  spec: Plain<k8s.types.input.apps.v1.DaemonSetSpec>;
};
export type ServiceObject = Plain<k8s.types.input.core.v1.Service> & { metadata: { name: string; namespace: string } };
export type PodDisruptionBudgetObject = Plain<k8s.types.input.policy.v1.PodDisruptionBudget> & {
  metadata: { name: string; namespace: string };
};
export type ServiceAccountObject = Plain<k8s.types.input.core.v1.ServiceAccount> & { metadata: { name: string; namespace: string } };
export type ClusterRoleObject = Plain<k8s.types.input.rbac.v1.ClusterRole> & { metadata: { name: string } };
export type ClusterRoleBindingObject = Plain<k8s.types.input.rbac.v1.ClusterRoleBinding> & { metadata: { name: string } };
export type RoleObject = Plain<k8s.types.input.rbac.v1.Role> & { metadata: { name: string; namespace: string } };
export type RoleBindingObject = Plain<k8s.types.input.rbac.v1.RoleBinding> & { metadata: { name: string; namespace: string } };
/** A Prometheus Operator PodMonitor (monitoring.coreos.com/v1): no type in @pulumi/kubernetes, so the fields edgetune sets. */
export interface PodMonitorObject {
  apiVersion: "monitoring.coreos.com/v1";
  kind: "PodMonitor";
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    selector: { matchLabels: Record<string, string> };
    podMetricsEndpoints: Array<{ port: string; path: string }>;
  };
}
export type DeploymentObject = Plain<k8s.types.input.apps.v1.Deployment> & { metadata: { name: string; namespace: string } };
export type JobObject = Plain<k8s.types.input.batch.v1.Job> & { metadata: { name: string; namespace: string } };

/** Pods a node needs, the tuner and the proxy: the last evicted under node pressure, and not preempted by ordinary pods. */
export const NODE_CRITICAL_PRIORITY = "system-node-critical";

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
export function privilegedNamespace(
  name: string,
  labels: Record<string, string>,
  podSecurityVersion: string,
): NamespaceObject & { metadata: { labels: Record<string, string> } } {
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
