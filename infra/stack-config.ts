import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { z } from "zod";
import { checkProfile, formatPath, show, ValidationError, type ValidationIssue } from "../components/tuning/profile";
import type { ResolvedProfile } from "../components/tuning/types";
import { checkProxySpec, type ProxySpec } from "../components/proxy/haproxy";
import { checkProxyK8sOptions, type ProxyK8sOptions } from "../components/proxy/k8s-proxy";
import { checkBenchmarkConfig, type BenchmarkConfig } from "../components/bench/config";

export const PROJECT = "edgetune";

/**
 * Reads a stack's configuration the way the Pulumi CLI would, without it:
 * Pulumi.yaml's project-level `config` defaults, overridden by
 * `stacks/Pulumi.<stack>.yaml`. Keys are returned without the `edgetune:` namespace.
 */
export function readStackConfig(stack: string, root: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(stack)) throw new ValidationError([{ path: "--stack", message: `got ${show(stack)}; allowed: a stack name of [A-Za-z0-9_.-]` }], "invalid stack");
  const project = load(readFileSync(join(root, "Pulumi.yaml"), "utf8")) as { config?: Record<string, unknown>; stackConfigDir?: string };
  const file = join(root, project.stackConfigDir ?? ".", `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) throw new ValidationError([{ path: "--stack", message: `no stack file ${file}` }], `unknown stack "${stack}"`);
  const stackDoc = (load(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const out: Record<string, unknown> = {};
  const issues: ValidationIssue[] = [];
  const take = (entries: Record<string, unknown>, fromProject: boolean) => {
    for (const [rawKey, rawValue] of Object.entries(entries ?? {})) {
      const [ns, key] = rawKey.includes(":") ? rawKey.split(/:(.*)/s, 2) : [PROJECT, rawKey];
      if (ns !== PROJECT) continue; // provider config such as aws:region is the provider's business
      let value = rawValue;
      // Project-level declarations: { type, default, value, description, secret }.
      if (fromProject && value && typeof value === "object" && !Array.isArray(value) && ("default" in value || "value" in value || "type" in value)) {
        const decl = value as { default?: unknown; value?: unknown };
        value = decl.value ?? decl.default;
        if (value === undefined) continue;
      }
      out[key] = value;
    }
  };
  take(project.config ?? {}, true);
  take(stackDoc.config ?? {}, false);
  if (issues.length) throw new ValidationError(issues);
  return out;
}

export const TARGETS = ["local", "ssh", "aws", "kubernetes"] as const;
export type Target = (typeof TARGETS)[number];

const nodeGroupSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,40}$/, 'lowercase letters, digits and "-", at most 41 characters'),
  target: z.enum(TARGETS),
  profile: z.string(),
});

const stackSchema = z.looseObject({
  profiles: z.record(z.string(), z.unknown()),
  nodeGroups: z.array(nodeGroupSchema).min(1),
});

export interface NodeGroupPlan {
  name: string;
  target: Target;
  profile: ResolvedProfile;
}

/** The stack's optional `proxy` section: which profile its nodes run, the HAProxy spec, and Kubernetes options. */
export interface ProxyPlan {
  profile: string;
  spec: ProxySpec;
  /** Present when the stack deploys the proxy to Kubernetes (and `render` writes its manifests). */
  kubernetes?: ProxyK8sOptions;
}

export interface StackPlan {
  stack: string;
  proxy?: ProxyPlan;
  /** The optional `benchmark` section (BenchmarkSuite arguments). */
  benchmark?: BenchmarkConfig;
  config: Record<string, unknown>;
  profiles: Record<string, ResolvedProfile>;
  nodeGroups: NodeGroupPlan[];
}

/** Loads and validates a whole stack once; throws one ValidationError listing every problem. */
export function loadStack(stack: string, root: string): StackPlan {
  const config = readStackConfig(stack, root);
  const parsed = stackSchema.safeParse(config);
  if (!parsed.success) {
    throw new ValidationError(
      parsed.error.issues.map((i) => ({ path: formatPath(i.path.filter((p): p is string | number => typeof p !== "symbol")), message: i.message })),
      `invalid stack config "${stack}"`,
    );
  }
  const issues: ValidationIssue[] = [];
  const profiles: Record<string, ResolvedProfile> = {};
  for (const [name, input] of Object.entries(parsed.data.profiles)) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) {
      issues.push({ path: formatPath(["profiles", name]), message: 'profile names are lowercase letters, digits and "-"' });
      continue;
    }
    const r = checkProfile(name, input);
    issues.push(...r.issues);
    if (r.profile) profiles[name] = r.profile;
  }
  const seen = new Set<string>();
  parsed.data.nodeGroups.forEach((g, i) => {
    if (seen.has(g.name)) issues.push({ path: formatPath(["nodeGroups", i, "name"]), message: `duplicate node group name ${show(g.name)}` });
    seen.add(g.name);
    if (!(g.profile in parsed.data.profiles)) issues.push({ path: formatPath(["nodeGroups", i, "profile"]), message: `got ${show(g.profile)}; allowed: one of the profiles ${Object.keys(parsed.data.profiles).join(", ")}` });
  });
  const proxy = checkProxySection(config.proxy, profiles, issues);
  const benchmark = checkBenchmarkConfig(config.benchmark, Object.keys(parsed.data.profiles), issues);
  if (issues.length) throw new ValidationError(issues, `invalid stack config "${stack}"`);
  return {
    stack,
    ...(proxy ? { proxy } : {}),
    ...(benchmark ? { benchmark } : {}),
    config,
    profiles,
    nodeGroups: parsed.data.nodeGroups.map((g) => ({ name: g.name, target: g.target, profile: profiles[g.profile] })),
  };
}

/**
 * Validates `edgetune:proxy`: `{ profile, kubernetes?, ...ProxySpec }`.
 * The proxy's listen ports are checked against that profile's ephemeral range.
 */
function checkProxySection(input: unknown, profiles: Record<string, ResolvedProfile>, issues: ValidationIssue[]): ProxyPlan | undefined {
  if (input === undefined) return undefined;
  if (!input || typeof input !== "object" || Array.isArray(input)) {
    issues.push({ path: "proxy", message: `got ${show(input)}; allowed: a mapping with profile, listeners, backends` });
    return undefined;
  }
  const { profile, kubernetes, ...spec } = input as Record<string, unknown>;
  const resolved = typeof profile === "string" ? profiles[profile] : undefined;
  if (!resolved) {
    issues.push({ path: "proxy.profile", message: `got ${show(profile)}; allowed: one of the profiles ${Object.keys(profiles).join(", ")}` });
    return undefined;
  }
  const r = checkProxySpec(spec, { profile: resolved });
  issues.push(...r.issues);
  let k8s: ProxyK8sOptions | undefined;
  if (kubernetes !== undefined) {
    k8s = { name: "proxy", ...(kubernetes as object) } as ProxyK8sOptions;
    issues.push(...checkProxyK8sOptions(k8s, ["proxy", "kubernetes"]));
  }
  return r.spec ? { profile: profile as string, spec: r.spec, ...(k8s ? { kubernetes: k8s } : {}) } : undefined;
}
