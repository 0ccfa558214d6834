import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { z } from "zod";
import { checkProfile, formatPath, resolveProfile, show, ValidationError, type PathSegment, type ValidationIssue } from "../components/tuning/profile";
import type { ResolvedProfile } from "../components/tuning/types";
import { checkProxySpec, type ProxySpec } from "../components/proxy/haproxy";
import { checkProxyK8sOptions, PROXY_DEFAULTS, type ProxyK8sOptions } from "../components/proxy/k8s-proxy";
import { checkBenchmarkConfig, type BenchmarkConfig } from "../components/bench/config";
import { SCENARIO_NAMES, type ScenarioName } from "../components/bench/result";
import { checkAwsTunedNodeGroupArgs, type AwsTunedNodeGroupArgs } from "../components/nodes/aws-tuned-node-group";
import { checkRemoteHostTuningArgs, type RemoteHost } from "../components/nodes/remote-host-tuning";
import { checkTunerOptions, TUNER_DEFAULTS, tunerOptions, type TunerInput } from "../components/nodes/k8s-tuner";

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
  !!v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { secure?: unknown }).secure === "string";

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const sshSchema = z.strictObject({
  hosts: z.array(z.strictObject({ host: z.string(), port: z.number().optional() })).min(1),
  user: z.string().optional(),
  sudo: z.boolean().optional(),
  // Shape checked below: it must be a secure value, and its text must never reach a message.
  privateKey: z.unknown(),
  stagingDir: z.string().optional(),
  installPath: z.string().optional(),
});

const awsSchema = z.strictObject({
  amiId: z.string().min(1).optional(),
  instanceType: z.string().optional(),
  securityGroupIds: z.array(z.string().min(1)).optional(),
  iamInstanceProfileArn: z.string().min(1).optional(),
  rootVolumeSizeGiB: z.number().optional(),
  rootDeviceName: z.string().regex(/^\/dev\/[a-z0-9]{1,16}$/, 'a device name such as "/dev/xvda"').optional(),
  ebsKmsKeyId: z.string().min(1).optional(),
  userDataFormat: z.enum(["cloud-config", "eks-managed"]).optional(),
  nodeadmConfig: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  autoScaling: z
    .strictObject({
      subnetIds: z.array(z.string().min(1)),
      minSize: z.number().optional(),
      maxSize: z.number().optional(),
      desiredCapacity: z.number().optional(),
    })
    .optional(),
});

const kubernetesSchema = z.strictObject({
  tunerImage: z.string().optional(),
  namespace: z.string().optional(),
  createNamespace: z.boolean().optional(),
  nodeSelector: z.record(z.string(), z.string()).optional(),
  tolerations: z.array(z.record(z.string(), z.unknown())).optional(),
  verifyIntervalSeconds: z.number().optional(),
  reapplyOnDrift: z.boolean().optional(),
  restoreOnDelete: z.boolean().optional(),
  maxUnavailable: z.union([z.number(), z.string()]).optional(),
  hostNetwork: z.boolean().optional(),
  podSysctls: z.array(z.strictObject({ name: z.string(), value: z.string() })).optional(),
  podSecurityVersion: z.string().optional(),
});

const localSchema = z.strictObject({ labDir: z.string().optional() });

const nodeGroupSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,39}[a-z0-9])?$/, 'lowercase letters, digits and "-" (not at either end), at most 41 characters'),
  target: z.enum(TARGETS),
  profile: z.string(),
  ssh: sshSchema.optional(),
  aws: awsSchema.optional(),
  kubernetes: kubernetesSchema.optional(),
  local: localSchema.optional(),
});

const capacitySchema = z
  .strictObject({
    peakGbps: z.number().positive(),
    perProxyGbps: z.number().positive(),
    peakRps: z.number().positive().optional(),
    perProxyRps: z.number().positive().optional(),
    spares: int(0, 1000).default(1),
  })
  .refine((c) => (c.peakRps === undefined) === (c.perProxyRps === undefined), { message: "peakRps and perProxyRps go together", path: ["perProxyRps"] });

/** The keys edgetune reads under `edgetune:`; any other is a typo and an error. */
const stackSchema = z.strictObject({
  profiles: z.record(z.string(), z.unknown()),
  nodeGroups: z.array(z.unknown()).min(1),
  proxy: z.unknown().optional(),
  benchmark: z.unknown().optional(),
  capacity: z.unknown().optional(),
  lab: z.unknown().optional(),
});

/** Labels the lab itself uses for its runs; a variant cannot take one. */
export const LAB_RESERVED_LABELS = ["baseline", "tuned", "direct", "forward", "no-splice"] as const;

const labSchema = z.strictObject({
  variants: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-z][a-z0-9-]{0,19}$/, 'lowercase letters, digits and "-", starting with a letter, at most 20 characters'),
        profile: z.string(),
        scenarios: z.array(z.enum(SCENARIO_NAMES)).min(1),
        why: z.string().max(200).optional(),
      }),
    )
    .default([]),
});

/** `ssh` target: RemoteHostTuning arguments; the private key stays a reference. */
export interface SshGroupPlan {
  hosts: RemoteHost[];
  user?: string;
  sudo?: boolean;
  privateKey: SecretRef;
  stagingDir?: string;
  installPath?: string;
}

/** `aws` target: AwsTunedNodeGroup arguments (`amiId` is its `imageId`). */
export type AwsGroupPlan = Omit<AwsTunedNodeGroupArgs, "profile">;

/** `kubernetes` target: the tuner DaemonSet, or none when the proxy's init container tunes these nodes. */
export interface KubernetesGroupPlan {
  tuner?: TunerInput & { image: string };
}

export interface NodeGroupPlan {
  name: string;
  target: Target;
  profile: ResolvedProfile;
  ssh?: SshGroupPlan;
  aws?: AwsGroupPlan;
  kubernetes?: KubernetesGroupPlan;
  local?: { labDir?: string };
}

/** The stack's optional `proxy` section: which profile its nodes run, the HAProxy spec, and Kubernetes options. */
export interface ProxyPlan {
  profile: string;
  spec: ProxySpec;
  /** Present when the stack deploys the proxy to Kubernetes (and `render` writes its manifests). */
  kubernetes?: ProxyK8sOptions;
}

export type CapacityPlan = z.infer<typeof capacitySchema>;

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
  users: Array<{ kind: "tuner" | "proxy"; name: string }>;
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
}

const zodIssues = (error: z.ZodError, prefix: readonly PathSegment[]): ValidationIssue[] =>
  error.issues.map((i) => ({ path: formatPath([...prefix, ...i.path.filter((p): p is string | number => typeof p !== "symbol")]), message: i.message }));

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

function stringLeaves(v: unknown): string[] {
  if (typeof v === "string") return [v];
  if (Array.isArray(v)) return v.flatMap(stringLeaves);
  if (v && typeof v === "object") return Object.values(v).flatMap(stringLeaves);
  return [];
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

function parseStackUnredacted(stack: string, config: Record<string, unknown>, secretKeys: ReadonlySet<string>): StackPlan {
  const what = `invalid stack config "${stack}"`;
  const parsed = stackSchema.safeParse(config);
  if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, []), what);
  const issues: ValidationIssue[] = [];
  issues.push(...plainTextKeys(config, secretKeys));
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
  const proxy = checkProxySection(config.proxy, profiles, issues);
  const benchmark = checkBenchmarkConfig(config.benchmark, Object.keys(parsed.data.profiles), issues);
  let capacity: CapacityPlan | undefined;
  if (config.capacity !== undefined) {
    const c = capacitySchema.safeParse(config.capacity);
    if (c.success) capacity = c.data;
    else issues.push(...zodIssues(c.error, ["capacity"]));
  }
  const lab = checkLabSection(config.lab, parsed.data.profiles, profiles, issues);
  const groups = checkNodeGroups(parsed.data.nodeGroups, parsed.data.profiles, profiles, proxy, secretKeys, issues);
  if (benchmark) checkAbSwitch(benchmark, proxy, groups, issues);
  const namespaces = planNamespaces(groups, proxy, issues);
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
  };
}

/**
 * One entry per Kubernetes namespace the tuners and the proxy use. Everyone in one namespace
 * must agree on how it is made: its Pod Security version, and whether it already exists.
 */
function planNamespaces(groups: NodeGroupPlan[], proxy: ProxyPlan | undefined, issues: ValidationIssue[]): NamespacePlan[] {
  const users: Array<{ kind: "tuner" | "proxy"; name: string; namespace: string; psa: string; create?: boolean; at: string }> = [];
  groups.forEach((g) => {
    const t = g.kubernetes?.tuner;
    if (!t) return;
    const i = groups.indexOf(g);
    users.push({ kind: "tuner", name: g.name, namespace: t.namespace ?? TUNER_DEFAULTS.namespace, psa: t.podSecurityVersion ?? TUNER_DEFAULTS.podSecurityVersion, create: t.createNamespace, at: formatPath(["nodeGroups", configIndex.get(g) ?? i, "kubernetes"]) });
  });
  const k = proxy?.kubernetes;
  if (k) users.push({ kind: "proxy", name: k.name, namespace: k.namespace ?? PROXY_DEFAULTS.namespace, psa: k.podSecurityVersion ?? PROXY_DEFAULTS.podSecurityVersion, create: k.createNamespace, at: "proxy.kubernetes" });
  const out: NamespacePlan[] = [];
  for (const u of users) {
    const first = users.find((x) => x.namespace === u.namespace)!;
    if (first === u) {
      const all = users.filter((x) => x.namespace === u.namespace);
      out.push({ name: u.namespace, create: !all.some((x) => x.create === false), podSecurityVersion: u.psa, users: all.map((x) => ({ kind: x.kind, name: x.name })) });
      continue;
    }
    if (u.psa !== first.psa) issues.push({ path: `${u.at}.podSecurityVersion`, message: `got ${show(u.psa)}; ${first.at} puts namespace ${show(u.namespace)} on ${show(first.psa)}: one namespace has one Pod Security version` });
    if (u.create !== undefined && first.create !== undefined && u.create !== first.create) {
      issues.push({ path: `${u.at}.createNamespace`, message: `got ${u.create}; ${first.at}.createNamespace is ${first.create} for the same namespace ${show(u.namespace)}: it either exists already or edgetune creates it` });
    }
  }
  return out;
}

/** Where each planned group sits in `nodeGroups` (a group with an invalid profile is left out of the plan). */
const configIndex = new WeakMap<NodeGroupPlan, number>();

function checkNodeGroups(
  input: unknown[],
  rawProfiles: Record<string, unknown>,
  profiles: Record<string, ResolvedProfile>,
  proxy: ProxyPlan | undefined,
  secretKeys: ReadonlySet<string>,
  issues: ValidationIssue[],
): NodeGroupPlan[] {
  const out: NodeGroupPlan[] = [];
  const seen = new Set<string>();
  let localGroup: number | undefined;
  input.forEach((raw, i) => {
    const at = (...p: PathSegment[]) => formatPath(["nodeGroups", i, ...p]);
    const r = nodeGroupSchema.safeParse(raw);
    if (!r.success) {
      issues.push(...zodIssues(r.error, ["nodeGroups", i]));
      return;
    }
    const g = r.data;
    if (seen.has(g.name)) issues.push({ path: at("name"), message: `duplicate node group name ${show(g.name)}` });
    seen.add(g.name);
    if (!(g.profile in rawProfiles)) {
      issues.push({ path: at("profile"), message: `got ${show(g.profile)}; allowed: one of the profiles ${Object.keys(rawProfiles).join(", ")}` });
      return;
    }
    // A section for another target is almost certainly a wrong `target`: say so instead of ignoring it.
    for (const t of TARGETS) if (t !== g.target && g[t] !== undefined) issues.push({ path: at(t), message: `a ${t} section on a node group with target ${show(g.target)}; remove it or change target` });
    // Undefined when the profile itself is invalid (listed under profiles.*): the target's
    // section is still checked, so one run lists every problem.
    const profile: ResolvedProfile | undefined = profiles[g.profile];
    const plan = { name: g.name, target: g.target, profile } as NodeGroupPlan;
    switch (g.target) {
      case "ssh": {
        if (!g.ssh) {
          issues.push({ path: at("ssh"), message: "required for target ssh: hosts and privateKey (a secure value)" });
          break;
        }
        const { privateKey, ...rest } = g.ssh;
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
        issues.push(...checkRemoteHostTuningArgs({ ...rest, privateKey: "(secret)" }, ["nodeGroups", i, "ssh"]));
        plan.ssh = { ...rest, privateKey: { secure: true, configKey: "nodeGroups", path: [i, "ssh", "privateKey"] } };
        break;
      }
      case "aws": {
        if (!g.aws) {
          issues.push({ path: at("aws"), message: 'required for target aws: at least amiId (or userDataFormat: "eks-managed")' });
          break;
        }
        const { amiId, ...rest } = g.aws;
        const args: AwsGroupPlan = { ...rest, ...(amiId !== undefined ? { imageId: amiId } : {}) };
        // The component names the AMI imageId; the stack key is amiId.
        // While the profile is invalid the arguments are still checked, against an empty profile
        // (the user-data size then says nothing about the real one, so that finding is dropped).
        const sizeOf = profile ?? resolveProfile(g.profile, {});
        const found = checkAwsTunedNodeGroupArgs({ ...args, profile: sizeOf }, ["nodeGroups", i, "aws"]).filter((x) => profile || !x.path.endsWith(".profile"));
        issues.push(...found.map((x) => ({ ...x, path: x.path.replace(/\.imageId$/, ".amiId") })));
        plan.aws = args;
        break;
      }
      case "kubernetes": {
        const { tunerImage, ...rest } = g.kubernetes ?? {};
        if (tunerImage !== undefined) {
          const tuner = { ...rest, image: tunerImage };
          const imagePath = at("kubernetes", "image");
          issues.push(...checkTunerOptions(tunerOptions(g.name, tuner), ["nodeGroups", i, "kubernetes"]).map((x) => (x.path === imagePath ? { ...x, path: at("kubernetes", "tunerImage") } : x)));
          plan.kubernetes = { tuner };
        } else {
          // Without a tuner DaemonSet only the proxy's init container can tune these nodes, and it applies the proxy's profile.
          if (!proxy?.kubernetes) issues.push({ path: at("kubernetes", "tunerImage"), message: "required: nothing else tunes this group (no proxy.kubernetes section whose init container would)" });
          else if (proxy.kubernetes.tuneNodes === false) issues.push({ path: at("kubernetes", "tunerImage"), message: "required: proxy.kubernetes.tuneNodes is false, so nothing else tunes this group" });
          else if (proxy.profile !== g.profile) issues.push({ path: at("kubernetes", "tunerImage"), message: `required: the proxy's init container applies profile ${show(proxy.profile)}, not ${show(g.profile)}` });
          else if (Object.keys(rest).length) issues.push({ path: at("kubernetes"), message: "tuner options without tunerImage: the proxy's init container tunes this group; set tunerImage for a tuner DaemonSet" });
          plan.kubernetes = {};
        }
        break;
      }
      case "local": {
        if (localGroup !== undefined) issues.push({ path: at("target"), message: `a second local group (nodeGroups[${localGroup}] is one): the lab's namespaces exist once per machine` });
        localGroup ??= i;
        if (!proxy) issues.push({ path: at("target"), message: "the local lab runs the stack's proxy: add an edgetune:proxy section" });
        plan.local = { ...g.local };
        break;
      }
    }
    if (profile) {
      configIndex.set(plan, i);
      out.push(plan);
    }
  });
  return out;
}

/**
 * A private key anywhere in the config as plain text (rather than a `secure:` value) is
 * refused wherever it is: committed to git it is leaked whether or not edgetune reads it.
 */
function plainTextKeys(config: Record<string, unknown>, secretKeys: ReadonlySet<string>): ValidationIssue[] {
  const found: ValidationIssue[] = [];
  const walk = (v: unknown, path: PathSegment[]) => {
    if (typeof v === "string" && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v)) found.push({ path: formatPath(path), message: "a private key in plain text; allowed: a secure value (`pulumi config set --secret ...`)" });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  // A key the engine marked secret was stored encrypted (or came from a secret store): not plain text.
  for (const [k, v] of Object.entries(config)) if (!secretKeys.has(k)) walk(v, [k]);
  return found;
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

function checkLabSection(input: unknown, rawProfiles: Record<string, unknown>, profiles: Record<string, ResolvedProfile>, issues: ValidationIssue[]): StackPlan["lab"] {
  if (input === undefined) return undefined;
  const r = labSchema.safeParse(input);
  if (!r.success) {
    issues.push(...zodIssues(r.error, ["lab"]));
    return undefined;
  }
  const variants: LabVariantPlan[] = [];
  const seen = new Set<string>();
  r.data.variants.forEach((v, i) => {
    const at = (k: string) => formatPath(["lab", "variants", i, k]);
    if ((LAB_RESERVED_LABELS as readonly string[]).includes(v.name)) issues.push({ path: at("name"), message: `got ${show(v.name)}; the lab uses it for its own runs (${LAB_RESERVED_LABELS.join(", ")}); pick another name` });
    else if (seen.has(v.name)) issues.push({ path: at("name"), message: `duplicate variant name ${show(v.name)}` });
    seen.add(v.name);
    if (!(v.profile in rawProfiles)) issues.push({ path: at("profile"), message: `got ${show(v.profile)}; allowed: one of the profiles ${Object.keys(rawProfiles).join(", ")}` });
    // An invalid profile is reported under profiles.*; the variant is dropped with it.
    const profile = profiles[v.profile];
    if (profile) variants.push({ name: v.name, profile, scenarios: v.scenarios, ...(v.why ? { why: v.why } : {}) });
  });
  return { variants };
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
  if (proxy?.kubernetes && proxy.kubernetes.tuneNodes !== false) {
    issues.push({ path: "proxy.kubernetes.tuneNodes", message: `must be false: benchmark.profiles runs ${show(first)} before ${show(last)} on the same nodes, and the proxy's init container would tune them before the first run; a tuner DaemonSet (kubernetes.tunerImage on the node group) switches them after it` });
  }
  if (!groups.some((g) => g.target === "kubernetes" && g.kubernetes?.tuner && g.profile.name === last)) {
    issues.push({ path: "benchmark.profiles", message: `nothing switches the nodes to ${show(last)}: give a kubernetes node group with profile ${show(last)} a kubernetes.tunerImage` });
  }
}
