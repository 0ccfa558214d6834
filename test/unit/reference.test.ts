/**
 * The config reference and the stack files' JSON Schema come from the specs: stale files fail,
 * the schema accepts every shipped stack file and rejects what the loader rejects by shape.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import { renderConfigReference, stackFileJsonSchema } from "../../render/reference";

const ROOT = join(__dirname, "..", "..");
const STACK_FILES = readdirSync(join(ROOT, "stacks")).filter((f) => /^Pulumi\..+\.yaml$/.test(f));
const stale = "stale: regenerate with `npm run docs` and commit the result";

describe("the generated reference", () => {
  it("docs/config-reference.md and schema/stack.schema.json are what the specs generate", () => {
    expect(readFileSync(join(ROOT, "docs", "config-reference.md"), "utf8"), stale).toBe(renderConfigReference());
    expect(JSON.parse(readFileSync(join(ROOT, "schema", "stack.schema.json"), "utf8")), stale).toEqual(stackFileJsonSchema());
  });

  it("documents every key with its default and bounds, e.g. the tuner's verify interval", () => {
    const md = renderConfigReference();
    expect(md).toMatch(/\| `verifyIntervalSeconds` \| integer \(10\.\.86400\) \| `300` \| Seconds between `tune\.sh verify` runs\. \|/);
    expect(md).toMatch(/\| `metricsPort` \| integer \(1\.\.65535\) \| `8404` \|/);
    expect(md).toMatch(/### `nodeGroups\[\] \(target: aws\)\.aws`/);
  });

  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const validate = ajv.compile(stackFileJsonSchema());

  for (const file of STACK_FILES) {
    it(`stacks/${file} names the schema for editors and is valid against it`, () => {
      const text = readFileSync(join(ROOT, "stacks", file), "utf8");
      expect(text.split("\n")[0]).toBe("# yaml-language-server: $schema=../schema/stack.schema.json");
      const ok = validate(load(text));
      expect(ok, JSON.stringify(validate.errors)).toBe(true);
    });
  }

  it("rejects a typo'd key, an edgetune: key that does not exist, and a value out of bounds; leaves provider keys alone", () => {
    const dev = load(readFileSync(join(ROOT, "stacks", "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, any> };
    const bad = structuredClone(dev);
    bad.config["edgetune:nodeGroups"][0].kubernetes.verifyIntervalSeconds = 1;
    bad.config["edgetune:nodeGroups"][0].kubernetes.verifyIntervalSecond = 300;
    bad.config["edgetune:profile"] = {};
    bad.config["aws:region"] = "eu-west-1";
    expect(validate(bad)).toBe(false);
    const messages = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`).join("\n");
    expect(messages).toMatch(/verifyIntervalSeconds must be >= 10/);
    expect(messages).toMatch(/verifyIntervalSecond/);
    expect(messages).toMatch(/edgetune:profile/);
    expect(messages).not.toMatch(/aws:region/);
  });
});
