/**
 * The Pulumi resources of a tuner's identity and roles, and of its PodMonitor: registered the
 * same way by KubernetesNodeTuner and by ProxyDaemonSet (its tuning sidecar), from the
 * objects tuner-pod.ts builds.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { PodMonitorObject } from "../k8s-namespace";
import type { TunerPod } from "./tuner-pod";

export interface TunerAccessResources {
  serviceAccount: k8s.core.v1.ServiceAccount;
  clusterRole: k8s.rbac.v1.ClusterRole;
  clusterRoleBinding: k8s.rbac.v1.ClusterRoleBinding;
  role: k8s.rbac.v1.Role;
  roleBinding: k8s.rbac.v1.RoleBinding;
}

/**
 * Registers the ServiceAccount and its roles as children of `parent`. The DaemonSet must
 * depend on `podDependencies(...)`: Pulumi then deletes them only after the DaemonSet, whose
 * foreground deletion waits for its pods, so a pod deciding whether to restore can still
 * authenticate.
 */
export function registerTunerAccess(
  name: string,
  access: pulumi.Output<TunerPod["access"]>,
  parent: pulumi.Resource,
  namespaceDeps: pulumi.Resource[],
): TunerAccessResources {
  const inNs = { parent, dependsOn: namespaceDeps };
  const serviceAccount = new k8s.core.v1.ServiceAccount(
    `${name}-sa`,
    { metadata: access.serviceAccount.metadata, automountServiceAccountToken: false },
    inNs,
  );
  const clusterRole = new k8s.rbac.v1.ClusterRole(
    `${name}-node-access`,
    { metadata: access.clusterRole.metadata, rules: access.clusterRole.rules },
    { parent },
  );
  const clusterRoleBinding = new k8s.rbac.v1.ClusterRoleBinding(
    `${name}-node-access`,
    {
      metadata: access.clusterRoleBinding.metadata,
      roleRef: access.clusterRoleBinding.roleRef,
      subjects: access.clusterRoleBinding.subjects,
    },
    { parent, dependsOn: [clusterRole, serviceAccount] },
  );
  const role = new k8s.rbac.v1.Role(`${name}-ds-access`, { metadata: access.role.metadata, rules: access.role.rules }, inNs);
  const roleBinding = new k8s.rbac.v1.RoleBinding(
    `${name}-ds-access`,
    { metadata: access.roleBinding.metadata, roleRef: access.roleBinding.roleRef, subjects: access.roleBinding.subjects },
    { parent, dependsOn: [...namespaceDeps, role, serviceAccount] },
  );
  return { serviceAccount, clusterRole, clusterRoleBinding, role, roleBinding };
}

/** What the DaemonSet depends on so that these outlive it (the bindings depend on the roles). */
export function podDependencies(a: TunerAccessResources): pulumi.Resource[] {
  return [a.serviceAccount, a.clusterRoleBinding, a.roleBinding];
}

/** A monitoring.coreos.com/v1 PodMonitor (no typed resource for it in @pulumi/kubernetes). */
export function registerPodMonitor(
  name: string,
  podMonitor: pulumi.Output<PodMonitorObject>,
  opts: pulumi.CustomResourceOptions,
): k8s.apiextensions.CustomResource {
  return new k8s.apiextensions.CustomResource(
    `${name}-podmonitor`,
    { apiVersion: "monitoring.coreos.com/v1", kind: "PodMonitor", metadata: podMonitor.metadata, spec: podMonitor.spec },
    opts,
  );
}
