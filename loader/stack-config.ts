import { existsSync } from "node:fs";
import { join } from "node:path";
import { readYamlFile } from "./yaml";
import type { BenchmarkConfig } from "../components/bench/benchmark-suite-spec";
import { resolveBenchmarkSuiteOptions } from "../components/bench/benchmark-suite-spec";
import type { ScenarioName } from "../components/bench/result";
import { resolveLocalLabOptions, type LabTopology } from "../components/lab/local-lab-spec";
import { userDataProblem } from "../components/nodes/user-data";
import type { ResolvedAwsTunedNodeGroupOptions } from "../components/nodes/aws-tuned-node-group-spec";
import type { TunerOptions } from "../components/nodes/kubernetes-node-tuner-spec";
import type { ResolvedRemoteHostTuningOptions } from "../components/nodes/remote-host-tuning-spec";
import { capacitySpec } from "../components/proxy/capacity";
import { checkProxySpec, proxySpecSchema, type ResolvedProxySpec } from "../components/proxy/haproxy";
import { kubernetesManagementIssues, proxyTuningIssues, proxyTuningLoop, tunerPortClash } from "../components/proxy/k8s-proxy";
import type { ProxyK8sOptions } from "../components/proxy/proxy-daemonset-spec";
import { checkProfile } from "../components/tuning/profile";
import { kubernetesPortProblem } from "../components/tuning/ports";
import type { ResolvedProfile } from "../components/tuning/types";
import {
  formatPath,
  grammar,
  resolveWith,
  show,
  unknownFields,
  ValidationError,
  zodIssues,
  type PathSegment,
  type ValidationIssue,
} from "../components/validation";
import type { z } from "zod";
import {
  awsSectionSpec,
  DEPRECATED_KEYS,
  DEPRECATION_NOTES,
  kubernetesSectionSpec,
  LAB_RESERVED_LABELS,
  labSectionSpec,
  localSectionSpec,
  nodeGroupName,
  proxyKubernetesSectionSpec,
  sshSectionSpec,
  STACK_KEYS,
  TARGETS,
  type Target,
} from "./stack-spec";

export { LAB_RESERVED_LABELS, TARGETS, type Target } from "./stack-spec";

export const PROJECT = "edgetune";

/**
 * Reads a stack's configuration the way the Pulumi CLI would, without it:
 * Pulumi.yaml's project-level `config` defaults, overridden by
 * `stacks/Pulumi.<stack>.yaml`. Keys are returned without the `edgetune:` namespace.
 */
export function readStackConfig(stack: string, root: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(stack))
    throw new ValidationError(
      [{ path: "--stack", message: `got ${show(stack)}; allowed: a stack name of [A-Za-z0-9_.-]` }],
      "invalid stack",
    );
  const project = (readYamlFile(join(root, "Pulumi.yaml")) ?? {}) as { config?: Record<string, unknown>; stackConfigDir?: string };
  const file = join(root, project.stackConfigDir ?? ".", `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) throw new ValidationError([{ path: "--stack", message: `no stack file ${file}` }], `unknown stack "${stack}"`);
  const stackDoc = readYamlFile(file) ?? {};
  const out: Record<string, unknown> = {};
  const issues: ValidationIssue[] = [];
  const mapping = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
  if (!mapping(stackDoc)) issues.push({ path: file, message: `got ${show(stackDoc)}; allowed: a mapping with a config key` });
  const config = mapping(stackDoc) ? stackDoc.config : undefined;
  if (config !== undefined && config !== null && !mapping(config))
    issues.push({ path: `${file}: config`, message: `got ${show(config)}; allowed: a mapping of config keys` });
  if (project.config !== undefined && project.config !== null && !mapping(project.config))
    issues.push({ path: "Pulumi.yaml: config", message: `got ${show(project.config)}; allowed: a mapping of config keys` });
  const take = (entries: Record<string, unknown>, fromProject: boolean) => {
    for (const [rawKey, rawValue] of Object.entries(entries ?? {})) {
      const [ns, key] = rawKey.includes(":") ? rawKey.split(/:(.*)/s, 2) : [PROJECT, rawKey];
      if (ns !== PROJECT) continue; // provider config such as aws:region is the provider's business
      let value = rawValue;
      // Project-level declarations: { type, default, value, description, secret }.
      if (
        fromProject &&
        value &&
        typeof value === "object" &&
        !Array.isArray(value) &&
        ("default" in value || "value" in value || "type" in value)
      ) {
        const decl = value as { default?: unknown; value?: unknown };
        value = decl.value ?? decl.default;
        if (value === undefined) continue;
      }
      out[key] = value;
    }
  };
  if (issues.length) throw new ValidationError(issues, `invalid stack file for "${stack}"`);
  take(project.config ?? {}, true);
  take((config as Record<string, unknown> | undefined) ?? {}, false);
  if (issues.length) throw new ValidationError(issues);
  return out;
}

/**
 * A `secure:` value as the stack file holds it (`{ secure: "<ciphertext>" }`). Only the
 * Pulumi runtime can decrypt it; offline the plan keeps where it is, never its text.
 */
export interface SecretRef {
  readonly secure: true;
  /** The top-level config key (without `edgetune:`) holding it. */
  readonly configKey: string;
  /** Its path inside that key's value, e.g. [1, "ssh", "privateKey"]. */
  readonly path: readonly PathSegment[];
}

const isSecureValue = (v: unknown): boolean =>
  !!v &&
  typeof v === "object" &&
  !Array.isArray(v) &&
  Object.keys(v).length === 1 &&
  typeof (v as { secure?: unknown }).secure === "string";

/** `ssh` target: RemoteHostTuning's resolved options; the private key stays a reference. */
export type SshGroupPlan = Omit<ResolvedRemoteHostTuningOptions, "privateKey"> & { privateKey: SecretRef };

/** `aws` target: AwsTunedNodeGroup's resolved options. */
export type AwsGroupPlan = ResolvedAwsTunedNodeGroupOptions;

/** `kubernetes` target: the tuner DaemonSet, or none when the proxy's tuning sidecar tunes these nodes. */
export interface KubernetesGroupPlan {
  tuner?: TunerOptions;
}

export interface NodeGroupPlan {
  name: string;
  target: Target;
  profile: ResolvedProfile;
  ssh?: SshGroupPlan;
  aws?: AwsGroupPlan;
  kubernetes?: KubernetesGroupPlan;
  local?: { labDir: string; topology: LabTopology };
}

/** The stack's optional `proxy` section: which profile its nodes run, the HAProxy spec, and Kubernetes options. */
export interface ProxyPlan {
  profile: string;
  spec: ResolvedProxySpec;
  /** Present when the stack deploys the proxy to Kubernetes (and `render` writes its manifests). */
  kubernetes?: ProxyK8sOptions;
}

export type CapacityPlan = z.output<typeof capacitySpec>;

/**
 * `edgetune:lab`: extra profiles the lab runs after baseline and tuned, each on its
 * own scenarios and compared with tuned — the settings that hurt (or help) on this
 * machine, shown rather than asserted.
 */
export interface LabVariantPlan {
  name: string;
  profile: ResolvedProfile;
  scenarios: ScenarioName[];
  why?: string;
}

/**
 * A Kubernetes namespace the stack's tuners and proxy run in. The program creates each one
 * once (never one per component: a second create of the same namespace fails), unless a
 * user of it says it already exists (`createNamespace: false`).
 */
export interface NamespacePlan {
  name: string;
  create: boolean;
  podSecurityVersion: string;
  /** Who runs in it, in stack order: the components that created it themselves before (see `aliases`). */
  users: Array<{ kind: "tuner" | "proxy" | "bench"; name: string }>;
}

export interface StackPlan {
  stack: string;
  proxy?: ProxyPlan;
  /** The optional `benchmark` section (BenchmarkSuite arguments). */
  benchmark?: BenchmarkConfig;
  /** The optional `capacity` section: inputs of the proxy fleet estimate in PLAN.md. */
  capacity?: CapacityPlan;
  /** The optional `lab` section: variants `edgetune lab` compares with the tuned profile. */
  lab?: { variants: LabVariantPlan[] };
  /** Kubernetes namespaces, each created once by the program (see NamespacePlan). */
  namespaces: NamespacePlan[];
  profiles: Record<string, ResolvedProfile>;
  nodeGroups: NodeGroupPlan[];
  /** Non-fatal findings about the config itself (deprecated keys). */
  warnings: string[];
}

/** Whether the program deploys the proxy DaemonSet: proxy.kubernetes on a stack without Kubernetes nodes (the local stack) is rendered only. */
export function deploysProxyToKubernetes(plan: StackPlan): boolean {
  return plan.proxy?.kubernetes !== undefined && plan.nodeGroups.some((g) => g.target === "kubernetes");
}

/** Loads and validates a whole stack once; throws one ValidationError listing every problem. */
export function loadStack(stack: string, root: string): StackPlan {
  return parseStack(stack, readStackConfig(stack, root));
}

export interface ParseOptions {
  /**
   * Top-level keys (without `edgetune:`) the Pulumi engine marked secret: a `secure:` leaf,
   * an ESC `fn::secret` or a whole secret value makes the engine mark the whole key. Their
   * values arrive decrypted, so they are never shown in a message. Empty offline, where a
   * secret is still `{ secure: ciphertext }`.
   */
  secretKeys?: readonly string[];
}

/**
 * Validates a stack's config: offline as `readStackConfig` returns it (secure values still
 * `{ secure: ciphertext }`), or as the engine hands it to the program (`readEngineConfig`:
 * decrypted, with `secretKeys`). Both give the same plan. Pure; throws one ValidationError
 * listing every problem.
 */
export function parseStack(stack: string, config: Record<string, unknown>, opts: ParseOptions = {}): StackPlan {
  const secretKeys = new Set(opts.secretKeys ?? []);
  try {
    return parseStackUnredacted(stack, config, secretKeys);
  } catch (e) {
    if (!(e instanceof ValidationError) || secretKeys.size === 0) throw e;
    const secrets = [...secretKeys].flatMap((k) => stringLeaves(config[k]));
    throw new ValidationError(
      e.issues.map((i) => ({ path: i.path, message: redact(i.message, secrets) })),
      `invalid stack config "${stack}" (values of secret config keys are not shown)`,
    );
  }
}

/** Every string in a value, each shared object once: linear in the value's size, aliases or not. */
function stringLeaves(v: unknown, seen = new WeakSet<object>()): string[] {
  if (typeof v === "string") return [v];
  if (!v || typeof v !== "object" || seen.has(v)) return [];
  seen.add(v);
  return (Array.isArray(v) ? v : Object.values(v)).flatMap((x) => stringLeaves(x, seen));
}

/**
 * Removes every secret string from a message: as given, as JSON escapes it, and its first
 * 20 characters (show() cuts long values). Shorter than 4 characters is not a secret anyone
 * could use, and blanking it would blank ordinary words.
 */
function redact(message: string, secrets: string[]): string {
  let out = message;
  for (const s of secrets.filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) {
    const forms = [s, JSON.stringify(s).slice(1, -1)];
    for (const f of [...forms, ...forms.filter((x) => x.length > 20).map((x) => x.slice(0, 20))]) out = out.split(f).join("(secret)");
  }
  return out;
}

/** What the parse found so far: every problem, and the warnings. */
interface Found {
  issues: ValidationIssue[];
  warnings: string[];
}

function parseStackUnredacted(stack: string, config: Record<string, unknown>, secretKeys: ReadonlySet<string>): StackPlan {
  const what = `invalid stack config "${stack}"`;
  const unknown = Object.keys(config).filter((k) => !(STACK_KEYS as readonly string[]).includes(k));
  // An unknown top-level key is a typo of one of them: nothing else is trustworthy until it is fixed.
  if (unknown.length)
    throw new ValidationError(
      [
        {
          path: "(root)",
          message: `${unknownFields(
            unknown.map((k) => `edgetune:${k}`),
            STACK_KEYS.map((k) => `edgetune:${k}`),
          )}; allowed: ${STACK_KEYS.map((k) => `edgetune:${k}`).join(", ")}`,
        },
      ],
      what,
    );
  const found: Found = { issues: [...plainTextKeys(config, secretKeys)], warnings: [] };
  const { issues } = found;

  // profiles: each on its own, so one bad profile does not hide the others.
  const rawProfiles = config.profiles;
  const profiles: Record<string, ResolvedProfile> = {};
  if (rawProfiles === undefined) issues.push({ path: "profiles", message: "required; allowed: a mapping of profile names to profiles" });
  else if (!rawProfiles || typeof rawProfiles !== "object" || Array.isArray(rawProfiles))
    issues.push({ path: "profiles", message: `got ${show(rawProfiles)}; allowed: a mapping of profile names to profiles` });
  const declared =
    rawProfiles && typeof rawProfiles === "object" && !Array.isArray(rawProfiles) ? (rawProfiles as Record<string, unknown>) : {};
  for (const [name, input] of Object.entries(declared)) {
    if (!grammar.profileName().safeParse(name).success) {
      issues.push({
        path: formatPath(["profiles", name]),
        message: 'allowed: a profile name of lowercase letters, digits and "-", 1-63 characters',
      });
      continue;
    }
    const r = checkProfile(name, input);
    issues.push(...r.issues);
    if (r.profile) profiles[name] = r.profile;
  }
  /** A profile a section names: resolved, or undefined when it is invalid (already reported) or unknown (reported here). */
  const profileRef = (name: unknown, path: readonly PathSegment[]): ResolvedProfile | undefined => {
    if (typeof name === "string" && name in declared) return profiles[name];
    issues.push({
      path: formatPath(path),
      message: `got ${show(name)}; allowed: one of the profiles ${Object.keys(declared).join(", ") || "(none defined)"}`,
    });
    return undefined;
  };

  const proxy = parseProxy(config.proxy, profileRef, found);
  const parsedBenchmark = parseBenchmark(config.benchmark, declared, found);
  // The proxy pods the counters pods join are where the stack's proxy runs.
  const benchmark =
    parsedBenchmark && parsedBenchmark.proxyNamespace === undefined && proxy?.kubernetes
      ? { ...parsedBenchmark, proxyNamespace: proxy.kubernetes.namespace }
      : parsedBenchmark;
  const capacity = config.capacity === undefined ? undefined : take(resolveWith(capacitySpec, config.capacity, ["capacity"]), found);
  const lab = parseLab(config.lab, declared, profiles, found);
  const groups = parseNodeGroups(config.nodeGroups, profileRef, proxy, secretKeys, found, stack);
  checkKubernetesPorts(groups, proxy, profiles, issues);
  // Checks across sections only mean something once every section is valid on its own:
  // a broken profile or proxy would otherwise also show up as "nothing switches the nodes".
  const sectionsValid = issues.length === 0;
  if (benchmark && sectionsValid) checkAbSwitch(benchmark, proxy, groups, issues);
  if (proxy?.kubernetes && sectionsValid) checkTunerPorts(groups, { ...proxy, kubernetes: proxy.kubernetes }, issues);
  const namespaces = planNamespaces(groups, proxy, benchmark, sectionsValid ? issues : []);
  if (issues.length) throw new ValidationError(issues, what);
  return {
    stack,
    ...(proxy ? { proxy } : {}),
    ...(benchmark ? { benchmark } : {}),
    ...(capacity ? { capacity } : {}),
    ...(lab ? { lab } : {}),
    namespaces,
    profiles,
    nodeGroups: groups,
    warnings: found.warnings,
  };
}

function take<T>(r: { value?: T; issues: ValidationIssue[] }, found: Found): T | undefined {
  found.issues.push(...r.issues);
  return r.value;
}

/**
 * Old key names still accepted for one release: renamed, with a warning naming the new one.
 * Returns the section as the spec reads it, and how to name a path back the way the user wrote it.
 */
function renameDeprecated(
  section: string,
  input: unknown,
  path: readonly PathSegment[],
  found: Found,
): { value: unknown; asWritten: (issues: ValidationIssue[]) => ValidationIssue[] } {
  const renames = DEPRECATED_KEYS[section];
  const used: Array<[string, string]> = [];
  const asWritten = (issues: ValidationIssue[]) =>
    issues.map((i) => {
      for (const [old, now] of used) {
        const from = formatPath([...path, now]);
        if (i.path === from || i.path.startsWith(`${from}.`) || i.path.startsWith(`${from}[`))
          return { ...i, path: formatPath([...path, old]) + i.path.slice(from.length) };
      }
      return i;
    });
  if (!renames || !input || typeof input !== "object" || Array.isArray(input)) return { value: input, asWritten };
  const out: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const [old, now] of Object.entries(renames)) {
    if (!(old in out)) continue;
    if (now in out)
      found.issues.push({ path: formatPath([...path, old]), message: `set together with ${now}, its new name; allowed: only ${now}` });
    else {
      const note = DEPRECATION_NOTES[section]?.[old];
      found.warnings.push(
        `${formatPath([...path, old])} is deprecated: name it ${now} (the component's argument)${note ? `; ${note}` : ""}; ${old} is accepted until the next release`,
      );
      out[now] = out[old];
      used.push([old, now]);
    }
    delete out[old];
  }
  return { value: out, asWritten };
}

type ProfileRef = (name: unknown, path: readonly PathSegment[]) => ResolvedProfile | undefined;

/** Where each planned group sits in `nodeGroups` (a group with an invalid profile is left out of the plan). */
const configIndex = new WeakMap<NodeGroupPlan, number>();

function parseNodeGroups(
  input: unknown,
  profileRef: ProfileRef,
  proxy: ProxyPlan | undefined,
  secretKeys: ReadonlySet<string>,
  found: Found,
  stack: string,
): NodeGroupPlan[] {
  const { issues } = found;
  if (!Array.isArray(input) || input.length === 0) {
    issues.push({
      path: "nodeGroups",
      message: `${input === undefined ? "required" : `got ${show(input)}`}; allowed: a list of at least one node group`,
    });
    return [];
  }
  const out: NodeGroupPlan[] = [];
  const seen = new Set<string>();
  let localGroup: number | undefined;
  input.forEach((raw: unknown, i) => {
    const at = (...p: PathSegment[]) => formatPath(["nodeGroups", i, ...p]);
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
      issues.push({ path: at(), message: `got ${show(raw)}; allowed: a node group { name, target, profile, <target section> }` });
      return;
    }
    const { name, target, profile: profileName, ...sections } = raw as Record<string, unknown>;
    let ok = true;
    const nameOk = nodeGroupName().safeParse(name);
    if (!nameOk.success) {
      issues.push(...zodIssues(nameOk.error, name, ["nodeGroups", i, "name"]));
      ok = false;
    } else if (seen.has(name as string)) {
      issues.push({ path: at("name"), message: `duplicate node group name ${show(name)}` });
      ok = false;
    }
    if (typeof name === "string") seen.add(name);
    if (!(TARGETS as readonly unknown[]).includes(target)) {
      issues.push({
        path: at("target"),
        message: `${target === undefined ? "required" : `got ${show(target)}`}; allowed: one of ${TARGETS.join(", ")}`,
      });
      return;
    }
    const t = target as Target;
    for (const key of Object.keys(sections)) {
      // A section for another target is almost certainly a wrong `target`: say so instead of ignoring it.
      if ((TARGETS as readonly string[]).includes(key) && key !== t)
        issues.push({ path: at(key), message: `a ${key} section on a node group with target ${show(t)}; remove it or change target` });
      else if (key !== t) issues.push({ path: at(key), message: `unknown field "${key}"; allowed: name, target, profile, ${t}` });
    }
    const profile = profileRef(profileName, ["nodeGroups", i, "profile"]);
    const { value: section, asWritten } = renameDeprecated(t, sections[t], ["nodeGroups", i, t], found);
    const collect = (more: ValidationIssue[]) => issues.push(...asWritten(more));
    const plan = { name: name as string, target: t, profile } as NodeGroupPlan;
    switch (t) {
      case "ssh": {
        if (section === undefined) {
          issues.push({ path: at("ssh"), message: "required for target ssh: hosts and privateKey (a secure value)" });
          ok = false;
          break;
        }
        const r = resolveWith(sshSectionSpec, section, ["nodeGroups", i, "ssh"]);
        collect(r.issues);
        const privateKey = (section as { privateKey?: unknown }).privateKey;
        // Offline the stack file holds { secure: ciphertext }; the engine hands the program the
        // decrypted text inside a key it marks secret (a secure: leaf, ESC fn::secret, --secret).
        const secret = isSecureValue(privateKey) || (typeof privateKey === "string" && privateKey !== "" && secretKeys.has("nodeGroups"));
        if (!secret) {
          // Never echo the value: it may be the key itself.
          issues.push({
            path: at("ssh", "privateKey"),
            message: `${privateKey === undefined ? "missing" : "not a secure value"}; allowed: a Pulumi secret, set with \`pulumi config set --secret --path 'nodeGroups[${i}].ssh.privateKey' < ~/.ssh/id_ed25519\` (the stack file then holds \`privateKey: { secure: ... }\`), or an ESC environment's fn::secret`,
          });
        }
        if (!r.value || !secret) ok = false;
        else
          plan.ssh = {
            ...(r.value as Omit<ResolvedRemoteHostTuningOptions, "privateKey">),
            privateKey: { secure: true, configKey: "nodeGroups", path: [i, "ssh", "privateKey"] },
          };
        break;
      }
      case "aws": {
        if (section === undefined) {
          issues.push({ path: at("aws"), message: 'required for target aws: at least imageId (or userDataFormat: "eks-managed")' });
          ok = false;
          break;
        }
        const r = resolveWith(awsSectionSpec, section, ["nodeGroups", i, "aws"]);
        collect(r.issues);
        if (!r.value) ok = false;
        else {
          plan.aws = r.value;
          // Depends on a valid profile: with an invalid one it says nothing (that profile is reported).
          const tooBig = profile ? userDataProblem(profile, r.value, String(name), stack) : undefined;
          if (tooBig) issues.push({ path: at("profile"), message: `${tooBig}: a smaller profile, or fewer NIC entries` });
        }
        break;
      }
      case "kubernetes": {
        const r = resolveWith(kubernetesSectionSpec, section ?? {}, ["nodeGroups", i, "kubernetes"]);
        collect(r.issues);
        if (!r.value) {
          ok = false;
          break;
        }
        const { image, ...rest } = r.value;
        if (image !== undefined) plan.kubernetes = { tuner: { ...rest, image, name: name as string } };
        else {
          // Without a tuner DaemonSet only the proxy's tuning sidecar can tune these nodes, and it applies the proxy's profile.
          const explicit = Object.keys((section as object | undefined) ?? {}).filter((k) => k !== "image");
          if (!proxy?.kubernetes)
            collect([
              {
                path: at("kubernetes", "image"),
                message: "required: nothing else tunes this group (no proxy.kubernetes section whose tuning sidecar would)",
              },
            ]);
          else if (!proxy.kubernetes.tuneNodes)
            collect([
              {
                path: at("kubernetes", "image"),
                message: "required: proxy.kubernetes.tuneNodes is false, so nothing else tunes this group",
              },
            ]);
          else if (profile && proxy.profile !== profile.name)
            collect([
              {
                path: at("kubernetes", "image"),
                message: `required: the proxy's tuning sidecar applies profile ${show(proxy.profile)}, not ${show(profile.name)}`,
              },
            ]);
          else if (explicit.length)
            issues.push({
              path: at("kubernetes"),
              message: `tuner options (${explicit.join(", ")}) without image: the proxy's tuning sidecar tunes this group; set image for a tuner DaemonSet`,
            });
          plan.kubernetes = {};
        }
        break;
      }
      case "local": {
        if (localGroup !== undefined)
          issues.push({
            path: at("target"),
            message: `a second local group (nodeGroups[${localGroup}] is one): the lab's namespaces exist once per machine`,
          });
        localGroup ??= i;
        if (!proxy && !issues.some((x) => x.path === "proxy" || x.path.startsWith("proxy.")))
          issues.push({ path: at("target"), message: "the local lab runs the stack's proxy: add an edgetune:proxy section" });
        const r = resolveWith(localSectionSpec, section ?? {}, ["nodeGroups", i, "local"]);
        collect(r.issues);
        const labDir = r.value ? resolveLocalLabOptions(name as string, section ?? {}, ["nodeGroups", i, "local"]) : undefined;
        if (labDir) issues.push(...labDir.issues);
        if (labDir?.value) plan.local = labDir.value;
        else ok = false;
        break;
      }
    }
    if (profile && ok) {
      configIndex.set(plan, i);
      out.push(plan);
    }
  });
  return out;
}

/** `edgetune:proxy`: the proxy spec plus `profile` and `kubernetes`; ports checked against that profile. */
function parseProxy(input: unknown, profileRef: ProfileRef, found: Found): ProxyPlan | undefined {
  if (input === undefined) return undefined;
  const { issues } = found;
  if (!input || typeof input !== "object" || Array.isArray(input)) {
    issues.push({ path: "proxy", message: `got ${show(input)}; allowed: a mapping with profile, listeners, backends` });
    return undefined;
  }
  const { profile: profileName, kubernetes, ...spec } = input as Record<string, unknown>;
  const profile = profileRef(profileName, ["proxy", "profile"]);
  let k8s: ProxyK8sOptions | undefined;
  if (kubernetes !== undefined) {
    const r = resolveWith(proxyKubernetesSectionSpec, kubernetes, ["proxy", "kubernetes"]);
    issues.push(...r.issues);
    if (r.value) k8s = r.value;
  }
  // Without a valid profile, the spec's checks against the node (ports, fd budget) cannot run: only its shape is checked.
  const r = profile ? checkProxySpec(spec, { profile }) : resolveWith(proxySpecSchema, spec, ["proxy"]);
  issues.push(...r.issues);
  const resolved = "spec" in r ? r.spec : "value" in r ? r.value : undefined;
  if (resolved && k8s)
    issues.push(...kubernetesManagementIssues(resolved, ["proxy"]), ...proxyTuningIssues(resolved, k8s, ["proxy", "kubernetes"]));
  if (!resolved || !profile || (kubernetes !== undefined && !k8s)) return undefined;
  return { profile: profile.name, spec: resolved, ...(k8s ? { kubernetes: k8s } : {}) };
}

function parseBenchmark(input: unknown, declared: Record<string, unknown>, found: Found): BenchmarkConfig | undefined {
  if (input === undefined) return undefined;
  const r = resolveBenchmarkSuiteOptions(input, ["benchmark"]);
  found.issues.push(...r.issues);
  if (!r.value) return undefined;
  r.value.profiles.forEach((p, i) => {
    if (!(p in declared))
      found.issues.push({
        path: formatPath(["benchmark", "profiles", i]),
        message: `got ${show(p)}; allowed: one of the profiles ${Object.keys(declared).join(", ")}`,
      });
  });
  return r.value;
}

function parseLab(
  input: unknown,
  declared: Record<string, unknown>,
  profiles: Record<string, ResolvedProfile>,
  found: Found,
): StackPlan["lab"] {
  if (input === undefined) return undefined;
  const { issues } = found;
  const r = resolveWith(labSectionSpec, input, ["lab"]);
  issues.push(...r.issues);
  if (!r.value) return undefined;
  const variants: LabVariantPlan[] = [];
  const seen = new Set<string>();
  r.value.variants.forEach((v, i) => {
    const at = (k: string) => formatPath(["lab", "variants", i, k]);
    if ((LAB_RESERVED_LABELS as readonly string[]).includes(v.name))
      issues.push({
        path: at("name"),
        message: `got ${show(v.name)}; the lab uses it for its own runs (${LAB_RESERVED_LABELS.join(", ")}); pick another name`,
      });
    else if (seen.has(v.name)) issues.push({ path: at("name"), message: `duplicate variant name ${show(v.name)}` });
    seen.add(v.name);
    if (!(v.profile in declared))
      issues.push({
        path: at("profile"),
        message: `got ${show(v.profile)}; allowed: one of the profiles ${Object.keys(declared).join(", ")}`,
      });
    // An invalid profile is reported under profiles.*; the variant is dropped with it.
    const profile = profiles[v.profile];
    if (profile) variants.push({ name: v.name, profile, scenarios: v.scenarios, ...(v.why ? { why: v.why } : {}) });
  });
  return { variants };
}

/**
 * One entry per Kubernetes namespace the tuners and the proxy use. Everyone in one namespace
 * must agree on how it is made: its Pod Security version, and whether it already exists.
 */
function planNamespaces(
  groups: NodeGroupPlan[],
  proxy: ProxyPlan | undefined,
  benchmark: BenchmarkConfig | undefined,
  issues: ValidationIssue[],
): NamespacePlan[] {
  const users: Array<{ kind: "tuner" | "proxy" | "bench"; name: string; namespace: string; psa: string; create: boolean; at: string }> = [];
  groups.forEach((g) => {
    const t = g.kubernetes?.tuner;
    if (!t) return;
    const i = groups.indexOf(g);
    users.push({
      kind: "tuner",
      name: g.name,
      namespace: t.namespace,
      psa: t.podSecurityVersion,
      create: t.createNamespace,
      at: formatPath(["nodeGroups", configIndex.get(g) ?? i, "kubernetes"]),
    });
  });
  const k = proxy?.kubernetes;
  if (k)
    users.push({
      kind: "proxy",
      name: k.name,
      namespace: k.namespace,
      psa: k.podSecurityVersion,
      create: k.createNamespace,
      at: "proxy.kubernetes",
    });
  // The counters pods are hostNetwork: the bench namespace is privileged like the others.
  if (benchmark)
    users.push({
      kind: "bench",
      name: "bench",
      namespace: benchmark.namespace,
      psa: benchmark.podSecurityVersion,
      create: benchmark.createNamespace,
      at: "benchmark",
    });
  const out: NamespacePlan[] = [];
  for (const u of users) {
    const first = users.find((x) => x.namespace === u.namespace)!;
    if (first === u) {
      const all = users.filter((x) => x.namespace === u.namespace);
      out.push({ name: u.namespace, create: u.create, podSecurityVersion: u.psa, users: all.map((x) => ({ kind: x.kind, name: x.name })) });
      continue;
    }
    if (u.psa !== first.psa)
      issues.push({
        path: `${u.at}.podSecurityVersion`,
        message: `got ${show(u.psa)}; ${first.at} puts namespace ${show(u.namespace)} on ${show(first.psa)}: one namespace has one Pod Security version`,
      });
    if (u.create !== first.create) {
      issues.push({
        path: `${u.at}.createNamespace`,
        message: `got ${u.create}; ${first.at}.createNamespace is ${first.create} for the same namespace ${show(u.namespace)}: it either exists already or edgetune creates it`,
      });
    }
  }
  return out;
}

/** Whether two nodeSelectors can select one node: not when they require different values of one label. */
function selectorsMayOverlap(a: Record<string, string>, b: Record<string, string>): boolean {
  return !Object.keys(a).some((k) => k in b && a[k] !== b[k]);
}

/**
 * A tuner DaemonSet on the host network binds its metrics port on the node's address: on nodes
 * the proxy may also run on, neither HAProxy nor the proxy's tuning sidecar may have it (a pod
 * whose host port is taken is never scheduled there).
 */
function checkTunerPorts(groups: NodeGroupPlan[], proxy: ProxyPlan & { kubernetes: ProxyK8sOptions }, issues: ValidationIssue[]): void {
  const k = proxy.kubernetes;
  const sidecarPort = k.tuneNodes ? proxyTuningLoop(k).metrics.port : 0;
  groups.forEach((g, i) => {
    const t = g.kubernetes?.tuner;
    // Both write the node annotation tuning.edgetune.io/<name>: one would overwrite the other's status.
    if (t && k.tuneNodes && g.name === k.name && selectorsMayOverlap(t.nodeSelector ?? {}, k.nodeSelector ?? {}))
      issues.push({
        path: formatPath(["nodeGroups", configIndex.get(g) ?? i, "name"]),
        message: `got ${show(g.name)}; the proxy's tuning sidecar annotates the proxy's nodes as tuning.edgetune.io/${k.name} (its instance name), and this group's tuner would write the same annotation on nodes both may select; allowed: another name`,
      });
    const port = t?.metrics.port;
    if (!t || !port || !t.hostNetwork || !selectorsMayOverlap(t.nodeSelector ?? {}, k.nodeSelector ?? {})) return;
    const path = ["nodeGroups", configIndex.get(g) ?? i, "kubernetes", "metrics", "port"];
    const clash = tunerPortClash(port, proxy.spec, path);
    if (clash) issues.push({ ...clash, message: `${clash.message} (its nodeSelector may select the proxy's nodes)` });
    else if (port === sidecarPort)
      issues.push({
        path: formatPath(path),
        message: `got ${port}; the proxy's tuning sidecar (proxy.kubernetes.tuning.metrics.port) binds it on the proxy's nodes, which this group's nodeSelector may select; allowed: another port`,
      });
  });
}

/**
 * Every profile that runs on Kubernetes nodes must keep its ephemeral ports off the NodePort
 * range: a tuner group's, an EKS managed group's, and the proxy's when its init container tunes
 * the nodes. Groups without a tuner are tuned by that init container with the proxy's profile,
 * so the proxy's profile is reported once, under the first of them or under the proxy.
 */
function checkKubernetesPorts(
  groups: NodeGroupPlan[],
  proxy: ProxyPlan | undefined,
  profiles: Record<string, ResolvedProfile>,
  issues: ValidationIssue[],
): void {
  // An image-less group is tuned by the proxy's init container only when that applies its profile (else it has an error already).
  const proxyTunes = proxy?.kubernetes?.tuneNodes ? proxy.profile : undefined;
  const tunedByProxy = groups.filter((g) => g.target === "kubernetes" && !g.kubernetes?.tuner && g.profile.name === proxyTunes);
  for (const g of groups) {
    const onKubernetes =
      (g.target === "kubernetes" && g.kubernetes?.tuner) || g.aws?.userDataFormat === "eks-managed" || g === tunedByProxy[0];
    if (!onKubernetes) continue;
    const who =
      g.target === "aws"
        ? `node group "${g.name}" (an EKS managed node group's launch template)`
        : g.kubernetes?.tuner
          ? `node group "${g.name}" (its tuner DaemonSet)`
          : `node group "${g.name}" (tuned by the proxy's init container)`;
    const problem = kubernetesPortProblem(g.profile, who);
    if (problem) issues.push({ path: formatPath(["nodeGroups", configIndex.get(g) ?? groups.indexOf(g), "profile"]), message: problem });
  }
  const profile = proxyTunes !== undefined && tunedByProxy.length === 0 ? profiles[proxyTunes] : undefined;
  const problem = profile && kubernetesPortProblem(profile, "the proxy DaemonSet's tuning init container (proxy.kubernetes.tuneNodes)");
  if (problem) issues.push({ path: "proxy.profile", message: problem });
}

/**
 * A private key anywhere in the config as plain text (rather than a `secure:` value) is
 * refused wherever it is: committed to git it is leaked whether or not edgetune reads it.
 */
function plainTextKeys(config: Record<string, unknown>, secretKeys: ReadonlySet<string>): ValidationIssue[] {
  const found: ValidationIssue[] = [];
  // Each shared object once: linear in the config's size whatever its aliases.
  const seen = new WeakSet<object>();
  const walk = (v: unknown, path: PathSegment[]) => {
    if (v && typeof v === "object") {
      if (seen.has(v)) return;
      seen.add(v);
    }
    if (typeof v === "string" && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v))
      found.push({
        path: formatPath(path),
        message: "a private key in plain text; allowed: a secure value (`pulumi config set --secret ...`)",
      });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  // A key the engine marked secret was stored encrypted (or came from a secret store): not plain text.
  for (const [k, v] of Object.entries(config)) if (!secretKeys.has(k)) walk(v, [k]);
  return found;
}

/**
 * The profile a benchmark A/B switches the nodes to: with `benchmark.profiles` [first, …, last],
 * the runs of the earlier profiles happen on untuned nodes and the tuner DaemonSets of the
 * groups on `last` start only after them. undefined when there is no A/B.
 */
export function abSwitchProfile(benchmark: BenchmarkConfig | undefined): string | undefined {
  return benchmark && benchmark.profiles.length > 1 ? benchmark.profiles[benchmark.profiles.length - 1] : undefined;
}

/** An A/B on one set of nodes needs something to switch them, and nothing tuning them early. */
function checkAbSwitch(benchmark: BenchmarkConfig, proxy: ProxyPlan | undefined, groups: NodeGroupPlan[], issues: ValidationIssue[]): void {
  const last = abSwitchProfile(benchmark);
  if (!last) return;
  const first = benchmark.profiles[0];
  if (proxy?.kubernetes && proxy.kubernetes.tuneNodes) {
    issues.push({
      path: "proxy.kubernetes.tuneNodes",
      message: `must be false: benchmark.profiles runs ${show(first)} before ${show(last)} on the same nodes, and the proxy's tuning sidecar would tune them before the first run; a tuner DaemonSet (kubernetes.image on the node group) switches them after it`,
    });
  }
  if (!groups.some((g) => g.target === "kubernetes" && g.kubernetes?.tuner && g.profile.name === last)) {
    issues.push({
      path: "benchmark.profiles",
      message: `nothing switches the nodes to ${show(last)}: give a kubernetes node group with profile ${show(last)} a kubernetes.image`,
    });
  }
}
