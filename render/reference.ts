/**
 * The config reference and the JSON Schema of a stack file, generated from the specs (pure).
 * `npm run docs` writes them to docs/config-reference.md and schema/stack.schema.json; a test
 * fails when the committed files are stale.
 */
import { z } from "zod";
import { DEPRECATED_KEYS, secureValue, stackConfigSpec } from "../loader/stack-spec";

type Node = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  maxLength?: number;
  minLength?: number;
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: Node | boolean;
  propertyNames?: Node;
  items?: Node;
  anyOf?: Node[];
  oneOf?: Node[];
  deprecated?: boolean;
};

/** JSON Schema of the `edgetune:*` config (the keys without the namespace), as a user writes it. */
export function configJsonSchema(): Node {
  return z.toJSONSchema(stackConfigSpec, { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as Node;
}

/** JSON Schema of a whole stack file (stacks/Pulumi.<stack>.yaml): what editors complete and check. */
export function stackFileJsonSchema(): Record<string, unknown> {
  const config = configJsonSchema();
  const properties: Record<string, Node> = {};
  for (const [k, v] of Object.entries(config.properties ?? {})) properties[`edgetune:${k}`] = withDeprecatedKeys(k, v);
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://github.com/edgetune/edgetune/schema/stack.schema.json",
    title: "edgetune stack file (stacks/Pulumi.<stack>.yaml)",
    description: "Generated from edgetune's specs (npm run docs). Keys of other namespaces (aws:region, ...) are the providers'.",
    type: "object",
    properties: {
      config: {
        type: "object",
        description: "The stack's config: edgetune:* keys (checked here) and other namespaces' keys (left to their providers).",
        properties,
        // Any other edgetune: key is a typo; keys of other namespaces are the providers' business.
        patternProperties: { "^(?!edgetune:)[^:]+:.+$": {} },
        additionalProperties: false,
      },
      environment: { description: "ESC environments imported into this stack's config." },
      secretsprovider: { type: "string" },
      encryptedkey: { type: "string" },
      encryptionsalt: { type: "string" },
    },
  };
}

/** The deprecated names (amiId, tunerImage) stay known to editors, marked deprecated. */
function withDeprecatedKeys(key: string, node: Node): Node {
  if (key !== "nodeGroups") return node;
  const items = node.items;
  for (const variant of items?.anyOf ?? []) {
    for (const [section, renames] of Object.entries(DEPRECATED_KEYS)) {
      const s = variant.properties?.[section];
      if (!s?.properties) continue;
      for (const [old, now] of Object.entries(renames))
        s.properties[old] = {
          ...s.properties[now],
          deprecated: true,
          description: `Deprecated: ${now}. ${s.properties[now]?.description ?? ""}`.trim(),
        };
    }
  }
  return node;
}

const code = (s: string) => `\`${s}\``;

function typeOf(n: Node): string {
  if (n.const !== undefined) return code(JSON.stringify(n.const));
  if (n.enum) return n.enum.map((e) => code(String(e))).join(" | ");
  const alts = n.anyOf ?? n.oneOf;
  if (alts) return alts.map((a) => (a.properties ? `{ ${Object.keys(a.properties).join(", ")} }` : typeOf(a))).join(" or ");
  const bounds: string[] = [];
  if (n.minimum !== undefined && n.maximum !== undefined && n.maximum < 9007199254740991) bounds.push(`${n.minimum}..${n.maximum}`);
  else if (n.minimum !== undefined && n.minimum > -9007199254740991) bounds.push(`≥ ${n.minimum}`);
  else if (n.exclusiveMinimum !== undefined) bounds.push(`> ${n.exclusiveMinimum}`);
  if (n.minItems !== undefined) bounds.push(`at least ${n.minItems}`);
  if (n.maxItems !== undefined) bounds.push(`at most ${n.maxItems}`);
  if (n.maxLength !== undefined) bounds.push(`≤ ${n.maxLength} characters`);
  // A named format (ipv4, cidrv4) says more than the regular expression zod emits beside it.
  if (n.pattern && !n.format) bounds.push(`matching ${code(n.pattern)}`);
  if (n.format) bounds.push(n.format);
  const t = Array.isArray(n.type) ? n.type.join("|") : n.type;
  const base =
    t === "array"
      ? `list of ${n.items ? typeOf(n.items) : "values"}`
      : t === "object"
        ? n.properties
          ? "mapping"
          : n.additionalProperties && typeof n.additionalProperties === "object"
            ? `mapping of ${typeOf(n.additionalProperties)}`
            : "mapping"
        : (t ?? "any");
  return bounds.length ? `${base} (${bounds.join(", ")})` : base;
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** Nested object schemas worth a table of their own: objects with properties, in lists, in maps. */
function children(n: Node, path: string): Array<{ path: string; node: Node }> {
  if (n.properties) return [{ path, node: n }];
  if (n.items) return children(n.items, `${path}[]`);
  if (n.additionalProperties && typeof n.additionalProperties === "object") return children(n.additionalProperties, `${path}.<name>`);
  const alts = n.anyOf ?? n.oneOf;
  if (alts?.every((a) => a.properties)) {
    return alts.flatMap((a) => {
      const tag = Object.entries(a.properties ?? {}).find(([, v]) => v.const !== undefined);
      return children(a, tag ? `${path} (${tag[0]}: ${String(tag[1].const)})` : path);
    });
  }
  return [];
}

function table(path: string, n: Node, out: string[]): void {
  out.push(`### ${code(path)}`, "");
  if (n.description) out.push(n.description, "");
  out.push("| key | type and bounds | default | description |", "|---|---|---|---|");
  const nested: Array<{ path: string; node: Node }> = [];
  for (const [key, p] of Object.entries(n.properties ?? {})) {
    const required = n.required?.includes(key) && p.default === undefined;
    const def = p.default === undefined ? (required ? "required" : "—") : code(JSON.stringify(p.default));
    out.push(`| ${code(key)}${p.deprecated ? " (deprecated)" : ""} | ${cell(typeOf(p))} | ${cell(def)} | ${cell(p.description ?? "")} |`);
    for (const c of children(p, `${path}.${key}`)) if (c.node !== n) nested.push(c);
  }
  out.push("");
  for (const c of nested) table(c.path, c.node, out);
}

/** docs/config-reference.md: every key of a stack's config, its bounds, default and meaning. */
export function renderConfigReference(): string {
  const schema = configJsonSchema();
  const out = [
    "# Stack config reference",
    "",
    "Generated from edgetune's specs (`npm run docs`; a test fails when this file is stale). Every key lives under the",
    "`edgetune:` namespace of a stack file (`stacks/Pulumi.<stack>.yaml`) or anywhere the Pulumi engine takes config",
    "from (`pulumi config set`, `-c`, `--config-file`, ESC). Keys of other namespaces (`aws:region`, ...) are the providers'.",
    "",
    "**A bad value** — a wrong type, a value out of its bounds, an unknown key, a reference to something that does not",
    "exist — stops `edgetune render`, `edgetune lab` and `pulumi preview`/`up` before anything is applied, with one error",
    "that lists every problem by its path (`nodeGroups[1].aws.imageId: ...`), what was given and what is allowed. A value of",
    "a config key the engine marks secret is never shown. Stack keys are the components' argument names, so the same",
    "tables describe `new KubernetesNodeTuner(...)`, `new ProxyDaemonSet(...)` and the others.",
    "",
    "Editors: every shipped stack file starts with `# yaml-language-server: $schema=../schema/stack.schema.json`, the JSON",
    "Schema generated from the same specs.",
    "",
  ];
  for (const [key, node] of Object.entries(schema.properties ?? {})) {
    out.push(`## ${code(`edgetune:${key}`)}${schema.required?.includes(key) ? " (required)" : ""}`, "");
    if (node.description) out.push(node.description, "");
    const nested = children(node, key);
    if (nested.length === 0) out.push(`Type: ${typeOf(node)}.`, "");
    for (const c of nested) table(c.path, c.node, out);
  }
  out.push(
    "## Secrets",
    "",
    `A secret (the SSH private key) is written as ${code(JSON.stringify(z.toJSONSchema(secureValue).properties))}: \`{ secure: <ciphertext> }\` in a stack file, set with \`pulumi config set --secret --path ...\`.`,
    "",
  );
  return out.join("\n");
}
