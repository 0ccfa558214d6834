import * as pulumi from "@pulumi/pulumi";
import { formatPath, show, ValidationError, type PathSegment, type ValidationIssue } from "../components/validation";
import { PROJECT } from "../loader/stack-config";

/** The stack's `edgetune:*` config as the engine hands it over, keys without the namespace. */
export interface EngineConfig {
  config: Record<string, unknown>;
  /** Keys whose value the engine marked secret (any secret leaf marks the whole key). */
  secretKeys: string[];
}

/**
 * Pure: the engine's flat map (`project:key` → text) to config values. The engine merges the
 * stack file, Pulumi.yaml's defaults, `-c`/`--config-file`, `--path` values and ESC
 * environments, and hands every object or list as JSON text, `secure:` leaves decrypted. A value
 * set as a JSON string (`pulumi config set edgetune:proxy '{"profile": ...}'`) arrives the same
 * way. Scalars stay text: every `edgetune:` key holds an object or a list, and the stack schema
 * says so when one does not.
 */
export function fromEngine(all: Readonly<Record<string, string>>, secretKeys: readonly string[]): EngineConfig {
  const config: Record<string, unknown> = {};
  const issues: ValidationIssue[] = [];
  const secret = new Set(secretKeys);
  for (const [fullKey, text] of Object.entries(all)) {
    const [ns, key] = fullKey.split(/:(.*)/s, 2);
    // Provider config such as aws:region is the provider's business.
    if (ns !== PROJECT || key === undefined) continue;
    if (/^\s*[[{]/.test(text)) {
      try {
        config[key] = JSON.parse(text);
        // JSON.parse rounds an integer beyond 2^53 without a word: refuse it instead.
        for (const path of unsafeIntegers(config[key], [key]))
          issues.push({ path, message: "an integer beyond ±(2^53 - 1) cannot be held exactly; allowed: a smaller integer, or a string" });
      } catch (e) {
        // Never the text itself: the key may be secret.
        issues.push({
          path: key,
          message: `not valid JSON (${(e as Error).message.replace(/ in JSON.*$/s, "")})${secret.has(fullKey) ? "" : `: ${show(text)}`}`,
        });
      }
    } else config[key] = text;
  }
  if (issues.length) throw new ValidationError(issues, "invalid stack config from the engine");
  return { config, secretKeys: secretKeys.filter((k) => k.startsWith(`${PROJECT}:`)).map((k) => k.slice(PROJECT.length + 1)) };
}

function unsafeIntegers(v: unknown, path: PathSegment[]): string[] {
  if (typeof v === "number") return Number.isInteger(v) && !Number.isSafeInteger(v) ? [formatPath(path)] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => unsafeIntegers(x, [...path, i]));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => unsafeIntegers(x, [...path, k]));
  return [];
}

/**
 * Which keys are secret is only in the SDK's runtime (`isConfigSecret`, exported but marked
 * internal, what `Config.get` uses to warn about secrets). Pinned SDK: checked by the tests.
 */
const runtime = pulumi.runtime as typeof pulumi.runtime & { isConfigSecret?: (key: string) => boolean };

/** What the running engine handed this program (`pulumi up`, `preview`, Automation API, or mocks). */
export function readEngineConfig(): EngineConfig {
  const all = pulumi.runtime.allConfig();
  const isSecret = runtime.isConfigSecret;
  if (typeof isSecret !== "function")
    throw new Error("@pulumi/pulumi no longer exports runtime.isConfigSecret: edgetune cannot tell secret config from plain config");
  return fromEngine(
    all,
    Object.keys(all).filter((k) => isSecret(k)),
  );
}
