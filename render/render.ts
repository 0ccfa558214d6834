import { SYSCTL_CATALOG } from "../components/tuning/catalog";
import { profileDigest, renderTuningArtifacts } from "../components/tuning/render";
import type { NodeGroupPlan, StackPlan, Target } from "../loader/stack-config";
import type { ResolvedProfile } from "../components/tuning/types";
import type { SysctlScope } from "../components/tuning/catalog";
import { renderCloudInit, UNIT_NAME } from "../components/nodes/cloud-init";
import {
  cloudInitOptionsOf,
  EC2_ASSUME_ROLE_POLICY,
  lifecycleGateOf,
  LIFECYCLE_UNIT_NAME,
  rebootWarning,
  renderInstanceRolePolicy,
  renderLifecycleHook,
} from "../components/nodes/aws-lifecycle";
import { renderRemoteCommands } from "../components/nodes/remote-script";
import { planBatches, REBOOT_DELAY_SECONDS, renderGateCommand, renderRebootCommand } from "../components/nodes/rollout";
import { renderTunerObjects } from "../components/nodes/k8s-tuner";
import { renderLocalLabSteps } from "../components/lab/lab-steps";
import { estimateCapacity } from "../components/proxy/capacity";
import { dump } from "js-yaml";
import { renderHaproxyConfig, validateProxySpec } from "../components/proxy/haproxy";
import { renderLabHaproxyConfig } from "../components/lab/lab-steps";
import { describeFacts, type MachineFacts } from "../loader/machine-facts";
import { renderProxyObjects } from "../components/proxy/k8s-proxy";
import { buildBenchManifests } from "../components/bench/k8s-jobs";
import { edgetuneLabels, privilegedNamespace } from "../components/k8s-namespace";

export interface RenderOptions {
  /**
   * The machine a `local` group runs on (`readMachineFacts()`): its haproxy.cfg derives
   * nbthread, maxconn and maxpipes from them, as the lab and the local target do. Needed
   * only for stacks with a local group; other targets' nodes are not this machine.
   */
  machine?: MachineFacts;
}

/**
 * Everything a stack would put anywhere, as relative path → content.
 * Pure and deterministic: the same stack and facts give the same bytes.
 */
export function renderStack(plan: StackPlan, opts: RenderOptions = {}): Record<string, string> {
  const files: Record<string, string> = {};
  const local = plan.nodeGroups.find((g) => g.target === "local");
  if (local && !opts.machine) throw new Error(`rendering stack "${plan.stack}" needs this machine's facts: its local group runs here`);
  for (const group of plan.nodeGroups) {
    for (const [name, content] of Object.entries(renderTuningArtifacts(group.profile))) files[`${group.name}/${name}`] = content;
    for (const [name, content] of Object.entries(renderTargetFiles(plan, group, opts))) files[`${group.name}/${name}`] = content;
  }
  // Each namespace once (the program creates them, not the components that run in them).
  const namespaces = plan.namespaces
    .filter((n) => n.create)
    .map((n) => privilegedNamespace(n.name, edgetuneLabels("edgetune", "namespace", n.name), n.podSecurityVersion));
  if (namespaces.length) files["kubernetes/namespaces.yaml"] = yamlDocs(namespaces);
  if (plan.proxy) {
    const profile = plan.profiles[plan.proxy.profile];
    // On a local stack the proxy is the lab's, on this machine; elsewhere the nodes' facts are
    // not known here: threads are HAProxy's choice and maxconn fits the profile's nofile.
    files["proxy/haproxy.cfg"] =
      local && opts.machine
        ? renderLabHaproxyConfig(plan.proxy.spec, profile, opts.machine)
        : renderHaproxyConfig(plan.proxy.spec, { profile });
    if (plan.proxy.kubernetes) {
      const o = renderProxyObjects(plan.proxy.spec, profile, { ...plan.proxy.kubernetes, createNamespace: false });
      const a = o.tuningAccess;
      // In apply order: the sidecar's identity and roles exist before its pods.
      const docs = [
        ...(a ? [a.serviceAccount, a.clusterRole, a.clusterRoleBinding, a.role, a.roleBinding] : []),
        o.configMap,
        o.daemonSet,
        o.service,
        o.podDisruptionBudget,
        o.podMonitor,
      ].filter((d) => d !== undefined);
      files["proxy/manifests.yaml"] = yamlDocs(docs);
    }
  }
  if (plan.benchmark) {
    // The suite runs its profiles in this order; one file per profile shows exactly what each run applies.
    for (const profile of plan.benchmark.profiles) {
      const m = buildBenchManifests({ ...plan.benchmark, profile });
      // In apply order: a load Job's counters Job before it (the load Job waits for its pod).
      const docs = [
        m.serviceAccount,
        m.role,
        m.roleBinding,
        m.configMap,
        m.backend,
        m.backendService,
        ...m.jobs.flatMap((j, i) => [m.counterJobs[i].job, j.job]),
      ];
      files[`bench/${profile}-jobs.yaml`] = yamlDocs(docs);
    }
  }
  files["PLAN.md"] = renderPlanSummary(plan, opts);
  return files;
}

const yamlDocs = (docs: object[]) => docs.map((d) => dump(d, { lineWidth: -1, noRefs: true })).join("---\n");

/** What the group's target puts on its nodes besides the tuning artifacts: exactly what the program passes on. */
function renderTargetFiles(plan: StackPlan, g: NodeGroupPlan, opts: RenderOptions): Record<string, string> {
  switch (g.target) {
    case "aws": {
      const eks = g.aws!.userDataFormat === "eks-managed";
      const ci = renderCloudInit(g.profile, cloudInitOptionsOf(g.aws!, g.name, plan.stack));
      const gate = lifecycleGateOf(g.aws!, g.name, plan.stack);
      const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
      // MIME user-data is text and written as EC2 gets it; cloud-config user-data is gzipped
      // (16 KiB limit), so the readable document cloud-init unpacks is written instead.
      return {
        "cloud-init/user-data": eks ? ci.userData.toString("utf8") : ci.cloudConfig,
        ...(gate
          ? {
              "aws/lifecycle-hook.json": json(renderLifecycleHook(gate, g.aws!.autoScaling!.lifecycleHook.heartbeatTimeoutSeconds)),
              // Region and account are the program's (its provider's); offline they are "*".
              "aws/instance-role-policy.json": json(renderInstanceRolePolicy(gate.groupName)),
              "aws/instance-role-trust.json": json(EC2_ASSUME_ROLE_POLICY),
            }
          : {}),
      };
    }
    case "ssh": {
      const o = g.ssh!;
      const c = renderRemoteCommands(g.profile, o);
      const rebooting = o.reboot === "allowed" && g.profile.kernelArgs.length > 0;
      const perHost = o.hosts.flatMap((h) => [
        [
          `remote/${h.host}/gate.sh`,
          renderGateCommand({ host: h.host, installPath: o.installPath, sudo: o.sudo, stopOnFailure: o.rollout.stopOnFailure }),
        ],
        ...(rebooting
          ? [
              [
                `remote/${h.host}/reboot.sh`,
                renderRebootCommand({ host: h.host, sudo: o.sudo, delaySeconds: REBOOT_DELAY_SECONDS, kernelArgs: g.profile.kernelArgs }),
              ],
            ]
          : []),
      ]);
      return { "remote/apply.sh": c.apply, "remote/restore.sh": c.restore, ...Object.fromEntries(perHost) };
    }
    case "kubernetes": {
      const t = g.kubernetes?.tuner;
      if (!t) return {};
      const o = renderTunerObjects(g.profile, { ...t, createNamespace: false });
      const docs = [o.serviceAccount, o.clusterRole, o.clusterRoleBinding, o.role, o.roleBinding, o.configMap, o.daemonSet, o.podMonitor];
      return { "kubernetes/tuner.yaml": yamlDocs(docs.filter((d) => d !== undefined)) };
    }
    case "local": {
      if (!plan.proxy) return {};
      const { labDir, topology } = g.local!;
      const steps = renderLocalLabSteps({ profile: g.profile, proxy: plan.proxy.spec, labDir, topology, machine: opts.machine! });
      const env = "# command.local.Command runs this with LAB_DIR and one EDGETUNE_FILE_<NAME> variable per file beside it.";
      return {
        ...Object.fromEntries(Object.entries(steps.files).map(([n, c]) => [`lab/${n}`, c])),
        "lab/create.sh": `#!/bin/sh\n${env}\nLAB_DIR=\${LAB_DIR:-${labDir}}\n${steps.create}\n`,
        "lab/delete.sh": `#!/bin/sh\n${env}\nLAB_DIR=\${LAB_DIR:-${labDir}}\n${steps.delete}\n`,
      };
    }
  }
}

const SET_BY: Record<Target, (scope: SysctlScope) => string> = {
  aws: () => "node sysctl.d",
  ssh: () => "node sysctl.d",
  // tune.sh runs twice in the lab: EDGETUNE_SCOPE=netns in the proxy namespace, =host on the machine.
  local: (scope) => (scope === "netns" ? "proxy namespace" : "host"),
  // The privileged hostNetwork container (tuner or proxy init) is in the node's namespace.
  kubernetes: () => "node sysctl.d (privileged hostNetwork container)",
};

/** Whether an ordinary pod could set the key itself, in its securityContext.sysctls. */
function fromPod(scope: SysctlScope, kubeletSafeSince: string | undefined): string {
  if (scope === "host") return "no: host-global";
  if (scope === "netns-readonly") return "no: read-only in a namespace";
  return kubeletSafeSince ? `yes, kubelet-safe since ${kubeletSafeSince}` : "only with kubelet --allowed-unsafe-sysctls";
}

/** Which keys go where, per node group: the plan a reviewer reads before `pulumi up`. */
export function renderPlanSummary(plan: StackPlan, opts: RenderOptions = {}): string {
  const out: string[] = [`# edgetune plan for stack "${plan.stack}"`, ""];
  if (plan.proxy) {
    const local = plan.nodeGroups.some((g) => g.target === "local");
    out.push(
      local && opts.machine
        ? `haproxy.cfg assumes this machine, where the local group runs: ${describeFacts(opts.machine)}.`
        : "haproxy.cfg assumes no machine: nbthread is left to HAProxy (the CPUs it may run on), maxconn fits the profile's nofile limit (else 65536); the proxy image's entrypoint lowers maxconn to what the container's real `ulimit -Hn` holds, by the config's fd budget line.",
      "",
    );
    const { globals } = validateProxySpec(plan.proxy.spec, { profile: plan.profiles[plan.proxy.profile] });
    const placement = globals.cpuMap
      ? `HAProxy placement (cpuMap: auto): ${globals.cpuMap.cpus.length} threads, ${globals.cpuMap.cpus.map((c, i) => `thread ${i + 1}→CPU ${c}`).join(", ")} — the CPUs of profile "${plan.proxy.profile}"'s NIC IRQ affinity and RPS (\`${globals.cpuMap.line}\`).`
      : "HAProxy placement: threads not pinned (cpuMap: off).";
    const tfo = globals.tfo
      ? `TCP Fast Open: on for the listeners (\`tfo\` on their binds): profile "${plan.proxy.profile}" sets net.ipv4.tcp_fastopen with the server bit (2).`
      : `TCP Fast Open: off: profile "${plan.proxy.profile}"'s net.ipv4.tcp_fastopen lacks the server bit (2).`;
    out.push(placement, "", tfo, "");
  }
  for (const g of plan.nodeGroups) {
    const p = g.profile;
    out.push(
      `## Node group \`${g.name}\` (target: ${g.target}, profile: ${p.name}${p.extends ? ` extends ${p.extends}` : ""}, ${profileDigest(p)})`,
      "",
    );
    out.push(`Applied by: ${APPLIED_BY[g.target](g)}.`, "");
    if (p.sysctls.length) {
      out.push(
        "| key | value | compare | scope | set by this target | from a pod's securityContext.sysctls |",
        "|---|---|---|---|---|---|",
      );
      for (const s of p.sysctls)
        out.push(
          `| ${s.key} | ${s.value} | ${s.compare} | ${s.scope} | ${SET_BY[g.target](s.scope)} | ${fromPod(s.scope, SYSCTL_CATALOG[s.key]?.kubeletSafeSince)} |`,
        );
      const keys = (f: (s: ResolvedProfile["sysctls"][number]) => boolean) => {
        const k = p.sysctls.filter(f).map((s) => s.key);
        return `${k.length}${k.length ? `: ${k.join(", ")}` : ""}`;
      };
      out.push(
        "",
        `- Node sysctl.d only (host-global or read-only in a namespace): ${keys((s) => s.scope !== "netns")}`,
        `- Per network namespace (the node's sysctl.d covers the host and hostNetwork pods; a pod with its own namespace needs its own): ${keys((s) => s.scope === "netns")}`,
        `- Not settable from a pod's securityContext.sysctls (skipped there): ${keys((s) => s.scope !== "netns" || !SYSCTL_CATALOG[s.key]?.kubeletSafeSince)}`,
        "",
      );
    } else out.push("No sysctls: this profile changes no kernel parameter.", "");
    if (p.limits)
      out.push(
        `Limits: nofile ${p.limits.nofileSoft}/${p.limits.nofileHard}${p.limits.nproc ? `, nproc ${p.limits.nproc}` : ""} (limits.d and systemd DefaultLimitNOFILE).`,
        "",
      );
    if (p.bdp)
      out.push(
        `Buffers (buffers.bdp): ${p.bdp.gbps} Gbit/s × ${p.bdp.rttMs} ms = ${p.bdp.bdpBytes} bytes, × ${p.bdp.headroom} headroom → ${p.bdp.bufferBytes} bytes in ${p.bdp.set.join(", ") || "no key"}${p.bdp.keptExplicit.length ? ` (the profile's own value kept: ${p.bdp.keptExplicit.join(", ")})` : ""}.`,
        "",
      );
    if (p.modules.length) out.push(`Kernel modules: ${p.modules.join(", ")}.`, "");
    if (p.kernelArgs.length) out.push(`Kernel command line (needs a reboot): \`${p.kernelArgs.join(" ")}\`.`, "");
    if (p.nics.length) out.push(`NICs: ${p.nics.map((n) => `\`${n.match}\``).join(", ")}.`, "");
    if (p.portPlan)
      out.push(
        `Ports: ephemeral ${p.portPlan.range.join("-")}, reserved ${p.portPlan.reserved || "none"}, ${p.portPlan.ephemeralPorts} ephemeral ports left.`,
        ...p.portPlan.notes.map((n) => `- ${n}`),
        "",
      );
    if (g.aws) out.push(...awsGateLines(g, plan.stack));
    if (p.warnings.length) out.push("Warnings:", ...p.warnings.map((w) => `- ${w}`), "");
  }
  if (plan.capacity) out.push(...renderCapacity(plan, plan.capacity));
  return out.join("\n");
}

/** The launch gate and reboot policy of an AWS group, as a reviewer needs them before `pulumi up`. */
function awsGateLines(g: NodeGroupPlan, stack: string): string[] {
  const o = g.aws!;
  const out: string[] = [];
  const gate = lifecycleGateOf(o, g.name, stack);
  const a = o.autoScaling;
  if (gate && a) {
    const h = a.lifecycleHook;
    out.push(
      `Launch gate: Auto Scaling group \`${gate.groupName}\`, lifecycle hook \`${gate.hookName}\` (EC2_INSTANCE_LAUNCHING, default result ABANDON, heartbeat timeout ${h.heartbeatTimeoutSeconds} s). ${LIFECYCLE_UNIT_NAME} completes it with CONTINUE after ${UNIT_NAME} exited 0${gate.allowDegraded ? " or 3 (degraded allowed)" : ""}, ABANDON otherwise, and prints the result and tune.sh's summary to the serial console (EC2 "Get system log").`,
      o.iamInstanceProfileArn
        ? "- Instance profile: given (iamInstanceProfileArn); its role must allow aws/instance-role-policy.json."
        : "- Instance role and profile: created, allowed only aws/instance-role-policy.json (autoscaling:CompleteLifecycleAction on this group).",
      `- Instance refresh: Rolling, minHealthyPercentage ${a.minHealthyPercentage}; a replacement counts once its hook completed.`,
      "- Needs the AWS CLI (`aws`) on the AMI (Amazon Linux 2023 has it); without it the instance is abandoned at the timeout.",
      "",
    );
  }
  if (g.profile.kernelArgs.length) {
    const warning = rebootWarning(g.profile, o);
    out.push(
      warning
        ? `Warning: ${warning}.`
        : `Reboot: allowed; first boot adds \`${g.profile.kernelArgs.join(" ")}\` and reboots once${gate ? ", the launch gate reports after the post-reboot apply" : ""}.`,
      "",
    );
  }
  return out;
}

const APPLIED_BY: Record<Target, (g: NodeGroupPlan) => string> = {
  aws: (g) =>
    `EC2 user-data (cloud-init/user-data, ${g.aws!.userDataFormat}) at first boot, then ${UNIT_NAME} at every boot; ${
      g.aws!.autoScaling
        ? `Auto Scaling group ${g.aws!.autoScaling.minSize}..${g.aws!.autoScaling.maxSize} instances`
        : "launch template only (referenced by an EKS managed node group)"
    }`,
  ssh: (g) =>
    `SSH to ${g.ssh!.hosts.map((h) => `${h.host}${h.port !== 22 ? `:${h.port}` : ""}`).join(", ")} as ${g.ssh!.user}${g.ssh!.sudo ? " with sudo -n" : ""} (remote/apply.sh, with tune.sh gzipped and base64-encoded on its stdin, on create and update; remote/restore.sh on delete), in batches ${planBatches(
      g.ssh!.hosts.map((h) => h.host),
      g.ssh!.rollout,
    )
      .map((b) => `[${b.join(", ")}]`)
      .join(" → ")}, each gated by remote/<host>/gate.sh${g.ssh!.rollout.stopOnFailure ? " (a failure stops the rollout)" : ""}${
      g.ssh!.reboot === "allowed" && g.profile.kernelArgs.length
        ? "; hosts missing the kernel arguments reboot (remote/<host>/reboot.sh) before their gate"
        : ""
    }`,
  kubernetes: (g) =>
    g.kubernetes?.tuner
      ? `tuner DaemonSet edgetune-tuner-${g.name} in ${g.kubernetes.tuner.namespace} (kubernetes/tuner.yaml; the namespace in kubernetes/namespaces.yaml${g.kubernetes.tuner.createNamespace ? "" : ", or existing"})`
      : "the proxy DaemonSet's tuning sidecar (proxy/manifests.yaml)",
  local: (g) =>
    `network namespaces on this machine, lab directory ${g.local!.labDir} (lab/create.sh on pulumi up, lab/delete.sh on destroy)`,
};

function renderCapacity(plan: StackPlan, c: NonNullable<StackPlan["capacity"]>): string[] {
  const e = estimateCapacity(c);
  const out = [
    "## Capacity estimate",
    "",
    "required proxies = ceil(peak / per-proxy throughput), plus spares (N+1: one node lost at peak must not overload the rest).",
    "",
    `- Throughput: ceil(${c.peakGbps} Gbit/s / ${c.perProxyGbps} Gbit/s) = ${e.byThroughput}`,
    ...(e.byRequestRate !== undefined ? [`- Request rate: ceil(${c.peakRps} req/s / ${c.perProxyRps} req/s) = ${e.byRequestRate}`] : []),
    `- Required: ${e.required}; spares: ${e.spares}; **deploy ${e.total} proxies**.`,
  ];
  for (const g of plan.nodeGroups) {
    const max = g.aws?.autoScaling?.maxSize;
    if (max !== undefined && max < e.total)
      out.push(`- Warning: node group \`${g.name}\` scales to at most ${max} instances, fewer than ${e.total}.`);
  }
  out.push("");
  return out;
}
