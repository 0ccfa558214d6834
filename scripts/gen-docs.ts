// Writes what render/reference.ts generates from the specs: `npm run docs` after a spec changed
// (test/unit/reference.test.ts fails while the committed files are stale).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference, stackFileJsonSchema } from "../render/reference";

const root = join(__dirname, "..");
writeFileSync(join(root, "docs", "config-reference.md"), renderConfigReference());
writeFileSync(join(root, "schema", "stack.schema.json"), `${JSON.stringify(stackFileJsonSchema(), null, 2)}\n`);
console.log("wrote docs/config-reference.md and schema/stack.schema.json");
