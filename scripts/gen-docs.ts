// Writes what render/reference.ts generates from the specs: `npm run docs` after a spec changed
// (test/unit/reference.test.ts fails while the committed files are stale), and the settings and
// claims tables from the committed lab results (test/unit/settings-proof.test.ts checks them).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference, stackFileJsonSchema } from "../render/reference";
import { committedRun, renderSettingsProofDoc } from "../lab/settings-proof";

const root = join(__dirname, "..");
writeFileSync(join(root, "docs", "config-reference.md"), renderConfigReference());
writeFileSync(join(root, "schema", "stack.schema.json"), `${JSON.stringify(stackFileJsonSchema(), null, 2)}\n`);
const docs = (f: string) => JSON.parse(readFileSync(join(root, "docs", f), "utf8"));
const run = committedRun(docs, (f) => existsSync(join(root, "docs", f)));
writeFileSync(join(root, "docs", "settings-proof.md"), renderSettingsProofDoc(run, docs("lab-kernel-checks.json")));
console.log("wrote docs/config-reference.md, schema/stack.schema.json and docs/settings-proof.md");
