/**
 * A default is written once: in its spec's `.default(...)`. Every default the specs declare
 * (read from the generated JSON Schema, so a new one is checked without touching this test)
 * must not be re-applied by a fallback (`?? value`) anywhere in the sources, and a default
 * that is a name, a path or an image must appear in one source file only.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "../../render/reference";

const ROOT = join(__dirname, "..", "..");
const SOURCE_DIRS = ["components", "loader", "render", "cli", "lab", "infra"];

function sources(): Array<{ file: string; text: string }> {
  return SOURCE_DIRS.flatMap((d) =>
    readdirSync(join(ROOT, d), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith(".ts"))
      .map((e) => {
        const file = join(e.parentPath, e.name).slice(ROOT.length + 1);
        return { file, text: readFileSync(join(ROOT, file), "utf8") };
      }),
  );
}

/** Every default value in the schema, with where it is declared. */
function defaults(node: unknown, path: string, out: Array<{ path: string; value: unknown }>): Array<{ path: string; value: unknown }> {
  if (!node || typeof node !== "object") return out;
  const n = node as Record<string, unknown>;
  // An enum's default is one of its words, which code compares against: not a default applied again.
  if ("default" in n && !("enum" in n)) out.push({ path, value: n.default });
  for (const [k, v] of Object.entries(n)) {
    if (k === "default") continue;
    if (v && typeof v === "object")
      defaults(v, k === "properties" || k === "anyOf" || k === "items" || k === "additionalProperties" ? path : `${path}.${k}`, out);
  }
  return out;
}

/** The same literal with another meaning somewhere else (not a default applied twice). */
const OTHER_MEANINGS: Record<string, string> = {
  '"edgetune-proxy"': "also the proxy's app.kubernetes.io/name label (k8s-proxy.ts)",
  '"0.0.0.0"': "also the wildcard a management address must not be (management.ts)",
};

describe("defaults are written once, in the specs", () => {
  const all = defaults(configJsonSchema(), "", []);
  // Small numbers and short words mean too many other things to be told apart by their text.
  const literals = [
    ...new Set(
      all
        .map((d) => d.value)
        .filter(
          (v) => (typeof v === "string" && (v.length > 8 || (v.length >= 4 && /[./]/.test(v)))) || (typeof v === "number" && v >= 100),
        )
        .map((v) => JSON.stringify(v)),
    ),
  ];
  const files = sources();

  it("finds the specs' defaults (the check is live)", () => {
    expect(literals).toEqual(
      expect.arrayContaining(["8404", "8405", "300", "3600", '"edgetune-system"', '"v1.33"', '"/var/tmp/edgetune"', '"/var/run/haproxy"']),
    );
  });

  it("no fallback re-applies a spec default (`?? <default>`)", () => {
    const found = files.flatMap(({ file, text }) =>
      literals
        .filter((lit) => new RegExp(`\\?\\?\\s*${lit.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}(?![0-9A-Za-z_])`).test(text))
        .map((lit) => `${file}: ?? ${lit}`),
    );
    expect(found).toEqual([]);
  });

  it("a name, path or image default appears in one source file", () => {
    const named = literals.filter((l) => l.startsWith('"') && !(l in OTHER_MEANINGS));
    const twice = named
      .map((lit) => ({ lit, in: files.filter((f) => f.text.includes(lit)).map((f) => f.file) }))
      .filter((x) => x.in.length > 1);
    expect(twice).toEqual([]);
  });
});
