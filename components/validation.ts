/**
 * One place for validation: the error every check reports through, how paths and values
 * are shown, the grammars free-form strings must match, and the one translation of a zod
 * error into issues. Every spec module builds its schema from these.
 */
import { z } from "zod";

export type PathSegment = string | number;

export interface ValidationIssue {
  /** e.g. `profiles.edge.sysctls["net.core.somaxconn"]` */
  path: string;
  message: string;
}

/** One error listing every problem found; nothing has been applied when it is thrown. */
export class ValidationError extends Error {
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[], what = "invalid configuration") {
    super(
      `${what}: ${issues.length} problem${issues.length === 1 ? "" : "s"}\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n")}`,
    );
    this.name = "ValidationError";
    this.issues = issues;
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function formatPath(segments: readonly PathSegment[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (IDENT.test(s)) out += out === "" ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out || "(root)";
}

/** Shows a config value inside an error message, shortened and with control characters escaped. */
export function show(value: unknown): string {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === undefined) return "nothing";
  let text: string;
  try {
    // NaN and Infinity inside a value are shown as what they are, not as JSON's null.
    text =
      JSON.stringify(value, (_k, v: unknown) =>
        typeof v === "number" && !Number.isFinite(v) ? String(v) : typeof v === "bigint" ? `${v}n` : v,
      ) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Control characters (newlines included) never reach a file, a script, a label. */
export const CONTROL = /[\u0000-\u001f\u007f]/;

// ---- grammars: each free-form value that reaches a script, a file, a label or a name ----

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// registry[:port]/path[:tag][@sha256:digest]
const IMAGE =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:(?<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?<digest>@sha256:[a-f0-9]{64})?$/;
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/;
const LABEL_VALUE = /^(|[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/;
const ABSOLUTE_PATH = /^\/[A-Za-z0-9._/-]{0,200}$/;

/** Why an image reference is not pinned, or undefined when it is (a non-latest tag or a digest). */
export function imageProblem(image: unknown): string | undefined {
  if (typeof image !== "string" || image === "") return "no image";
  const m = IMAGE.exec(image);
  if (!m) return "not an image reference";
  if (m.groups?.digest) return undefined;
  if (!m.groups?.tag) return "no tag, which means latest";
  if (m.groups.tag === "latest") return "tag latest";
  return undefined;
}

/** Kubernetes label key: an optional DNS-subdomain prefix and "/", then a name of up to 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : [undefined, key];
  if (prefix !== undefined && !DNS_SUBDOMAIN.test(prefix)) return "a label key's prefix is a DNS subdomain";
  if (!LABEL_NAME.test(name))
    return 'a label key\'s name is 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit';
  return undefined;
}

/** The zod schemas of the grammars every spec shares, with the message a user reads. */
export const grammar = {
  dnsLabel: () =>
    z.string().regex(DNS_LABEL, 'allowed: a DNS label (lowercase letters, digits and "-", not at either end, at most 63 characters)'),
  dnsSubdomain: () => z.string().regex(DNS_SUBDOMAIN, "allowed: a DNS subdomain (lowercase DNS labels joined by dots)"),
  /** Pinned by a tag other than latest, or by digest: a moving tag rolls nodes nobody reviewed. */
  pinnedImage: () =>
    z.string().superRefine((v, ctx) => {
      const p = imageProblem(v);
      if (p)
        ctx.addIssue({
          code: "custom",
          message: `allowed: an image reference pinned by tag or digest, e.g. ghcr.io/org/edgetune-tuner:0.1.0 (${p})`,
        });
    }),
  /** An integer count (>= 1) or a percentage, as Kubernetes' maxUnavailable takes. */
  countOrPercent: () =>
    z.union([z.number().int().min(1), z.string().regex(/^([1-9][0-9]?|100)%$/)], {
      error: 'allowed: an integer >= 1 or a percentage "1%".."100%"',
    }),
  /** The Pod Security Standards version a namespace pins, defaulting to the one edgetune is tested against. */
  podSecurityVersion: () =>
    z
      .string()
      .regex(/^v1\.[0-9]{1,2}$/, 'allowed: a pinned Pod Security version such as "v1.33" (not "latest")')
      .default("v1.33")
      .describe("Pod Security Standards version the namespace labels pin."),
  profileName: () =>
    z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'allowed: a profile name of lowercase letters, digits and "-", 1-63 characters'),
  absolutePath: () =>
    z
      .string()
      .regex(ABSOLUTE_PATH, 'allowed: an absolute path of [A-Za-z0-9._/-] without ".."')
      .refine((v) => !v.split("/").includes(".."), 'allowed: an absolute path of [A-Za-z0-9._/-] without ".."'),
  /** One line of text for people (a description, a reason): printable, bounded. */
  text: (max: number) =>
    z
      .string()
      .max(max, `allowed: at most ${max} characters`)
      .regex(/^[^\u0000-\u001f\u007f]*$/, "allowed: one line of text, without control characters or newlines"),
  /** A host name or an IPv4/IPv6 address, as a load generator or SSH connects to it. */
  host: () =>
    z
      .string()
      .max(253, "allowed: a host name or address of at most 253 characters")
      .regex(
        /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]{2,45})$/,
        "allowed: a host name (DNS labels joined by dots) or an IPv4/IPv6 address",
      ),
  /** A Kubernetes resource quantity (`500m`, `256Mi`, `2`). */
  quantity: () =>
    z
      .string()
      .regex(/^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/, 'allowed: a Kubernetes quantity such as "500m", "256Mi" or "2"'),
  int: (min: number, max: number) =>
    z
      .number({ error: `allowed: an integer ${min}..${max}` })
      .int(`allowed: an integer ${min}..${max}`)
      .min(min, `allowed: an integer ${min}..${max}`)
      .max(max, `allowed: an integer ${min}..${max}`),
  port: () => grammar.int(1, 65535),
  /** A Kubernetes toleration (the pod spec's shape). */
  toleration: () =>
    z.strictObject({
      key: z
        .string()
        .refine(
          (k) => labelKeyProblem(k) === undefined,
          "allowed: a label key (an optional DNS-subdomain prefix and /, then a name of up to 63 characters)",
        )
        .optional(),
      operator: z.enum(["Exists", "Equal"]).optional(),
      value: z.string().regex(LABEL_VALUE, "allowed: a label value").optional(),
      effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
      tolerationSeconds: z.number().int().optional(),
    }),
  /** Kubernetes labels (node selectors): valid keys, values of up to 63 characters. */
  labels: () =>
    z.record(z.string(), z.string()).superRefine((v, ctx) => {
      for (const [k, val] of Object.entries(v)) {
        const p = labelKeyProblem(k);
        if (p) ctx.addIssue({ code: "custom", path: [k], message: `allowed: ${p}` });
        else if (!LABEL_VALUE.test(val))
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: 'allowed: a label value of up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
          });
      }
    }),
} as const;

/** Value at a path inside an input, for "got …" in a message. */
function valueAt(input: unknown, segs: readonly PathSegment[]): unknown {
  let v = input;
  for (const s of segs) v = v && typeof v === "object" ? (v as Record<string | number, unknown>)[s] : undefined;
  return v;
}

/**
 * The one translation of a zod error into issues: full path (under `prefix`), what was given,
 * what is allowed. Messages written as "allowed: …" by the grammars above are kept as they
 * are; zod's own ("Invalid input: expected number, received string") lose the prefix.
 */
export function zodIssues(
  error: z.ZodError,
  input: unknown,
  prefix: readonly PathSegment[] = [],
  vocabulary: readonly string[] = [],
): ValidationIssue[] {
  return error.issues.map((issue) => {
    const segs = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    const path = formatPath([...prefix, ...segs]);
    if (issue.code === "unrecognized_keys") return { path, message: unknownFields(issue.keys, vocabulary) };
    const value = valueAt(input, segs);
    const message = issue.message.replace(/^Invalid input: /, "");
    if (value === undefined) return { path, message: message.startsWith("required") ? message : `required; ${message}` };
    // Checks that already name the value ("got 1048576 buckets …") are not prefixed twice.
    return { path, message: message.startsWith("got ") ? message : `got ${show(value)}; ${message}` };
  });
}

/** Parses `input` with a spec's schema: the resolved value (defaults applied), or every problem. */
export function resolveWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  prefix: readonly PathSegment[] = [],
): { value: z.output<S>; issues: [] } | { value?: undefined; issues: ValidationIssue[] } {
  const r = schema.safeParse(input);
  return r.success ? { value: r.data, issues: [] } : { issues: zodIssues(r.error, input, prefix, vocabularyOf(schema)) };
}

export type Resolved<T> = { value: T; issues: [] } | { value?: undefined; issues: ValidationIssue[] };

/**
 * A spec's shape with the fields a component got as Outputs (not resolved yet) left open:
 * they are checked, with everything else again, once they resolve.
 */
export function withPending<S extends z.ZodRawShape>(shape: S, pending: readonly string[]) {
  return z.strictObject(shape).extend(Object.fromEntries(pending.map((k) => [k, z.unknown().optional()])));
}

const vocabularies = new WeakMap<z.ZodType, string[]>();

/** Every field name a schema knows, at any depth: what an unknown key is compared with. */
function vocabularyOf(schema: z.ZodType): string[] {
  let v = vocabularies.get(schema);
  if (!v) {
    const names = new Set<string>();
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        for (const [k, x] of Object.entries(node)) {
          if (k === "properties" && x && typeof x === "object") for (const name of Object.keys(x)) names.add(name);
          walk(x);
        }
      }
    };
    walk(z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }));
    v = [...names];
    vocabularies.set(schema, v);
  }
  return v;
}

/** Edit distance (Levenshtein), for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The known name closest to a typo, when it is close enough to be the one meant. */
export function didYouMean(key: string, vocabulary: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of vocabulary) {
    const d = distance(key, name);
    if (d <= Math.max(1, Math.floor(name.length / 4)) && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

export function unknownFields(keys: readonly string[], vocabulary: readonly string[]): string {
  const hints = keys.map((k) => {
    const near = didYouMean(k, vocabulary);
    return near ? `${JSON.stringify(k)} (did you mean ${JSON.stringify(near)}?)` : JSON.stringify(k);
  });
  return `unknown field${keys.length === 1 ? "" : "s"} ${hints.join(", ")}`;
}
