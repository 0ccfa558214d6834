import { SYSCTL_CATALOG } from "../components/tuning/catalog";
import { profileDigest, renderTuningArtifacts } from "../components/tuning/render";
import type { StackPlan } from "./stack-config";
import { dump } from "js-yaml";
import { renderHaproxyConfig } from "../components/proxy/haproxy";
import { renderProxyObjects } from "../components/proxy/k8s-proxy";
import { buildBenchManifests } from "../components/bench/k8s-jobs";

/**
 * Everything a stack would put anywhere, as relative path → content.
 * Pure and deterministic: the same stack gives the same bytes.
 */
export function renderStack(plan: StackPlan): Record<string, string> {
  const files: Record<string, string> = {};
  for (const group of plan.nodeGroups) {
    for (const [name, content] of Object.entries(renderTuningArtifacts(group.profile))) files[`${group.name}/${name}`] = content;
  }
  if (plan.proxy) {
    const profile = plan.profiles[plan.proxy.profile];
    files["proxy/haproxy.cfg"] = renderHaproxyConfig(plan.proxy.spec, { profile });
    if (plan.proxy.kubernetes) {
      const o = renderProxyObjects(plan.proxy.spec, profile, plan.proxy.kubernetes);
      const docs = [o.namespace, o.configMap, o.daemonSet, o.service, o.podDisruptionBudget].filter((d) => d !== undefined);
      files["proxy/manifests.yaml"] = docs.map((d) => dump(d, { lineWidth: -1, noRefs: true })).join("---\n");
    }
  }
  if (plan.benchmark) {
    // The suite runs its profiles in this order; one file per profile shows exactly what each run applies.
    for (const profile of plan.benchmark.profiles) {
      const m = buildBenchManifests({ ...plan.benchmark, profile });
      const docs = [m.configMap, m.backend, m.backendService, ...m.counterJobs.map((j) => j.job), ...m.jobs.map((j) => j.job)];
      files[`bench/${profile}-jobs.yaml`] = docs.map((d) => dump(d, { lineWidth: -1, noRefs: true })).join("---\n");
    }
  }
  files["PLAN.md"] = renderPlanSummary(plan);
  return files;
}

const WHERE: Record<string, string> = {
  netns: "per network namespace (node sysctl.d; a hostNetwork pod or the node itself sets it)",
  "netns-readonly": "host only (visible but read-only inside a namespace)",
  host: "host only (global; absent from or shared with namespaces)",
};

/** Which keys go where, per node group: the plan a reviewer reads before `pulumi up`. */
export function renderPlanSummary(plan: StackPlan): string {
  const out: string[] = [`# edgetune plan for stack "${plan.stack}"`, ""];
  for (const g of plan.nodeGroups) {
    const p = g.profile;
    out.push(`## Node group \`${g.name}\` (target: ${g.target}, profile: ${p.name}${p.extends ? ` extends ${p.extends}` : ""}, ${profileDigest(p)})`, "");
    if (p.sysctls.length) {
      out.push("| key | value | compare | where | kubelet-safe since |", "|---|---|---|---|---|");
      for (const s of p.sysctls) {
        const meta = SYSCTL_CATALOG[s.key];
        out.push(`| ${s.key} | ${s.value} | ${s.compare} | ${WHERE[s.scope]} | ${meta?.kubeletSafeSince ?? "no"} |`);
      }
      out.push("");
    } else out.push("No sysctls: this profile changes no kernel parameter.", "");
    if (p.limits) out.push(`Limits: nofile ${p.limits.nofileSoft}/${p.limits.nofileHard}${p.limits.nproc ? `, nproc ${p.limits.nproc}` : ""} (limits.d and systemd DefaultLimitNOFILE).`, "");
    if (p.modules.length) out.push(`Kernel modules: ${p.modules.join(", ")}.`, "");
    if (p.kernelArgs.length) out.push(`Kernel command line (needs a reboot): \`${p.kernelArgs.join(" ")}\`.`, "");
    if (p.nics.length) out.push(`NICs: ${p.nics.map((n) => `\`${n.match}\``).join(", ")}.`, "");
    if (p.portPlan) out.push(`Ports: ephemeral ${p.portPlan.range.join("-")}, reserved ${p.portPlan.reserved || "none"}, ${p.portPlan.ephemeralPorts} ephemeral ports left.`, ...p.portPlan.notes.map((n) => `- ${n}`), "");
    if (p.warnings.length) out.push("Warnings:", ...p.warnings.map((w) => `- ${w}`), "");
  }
  return out.join("\n");
}
