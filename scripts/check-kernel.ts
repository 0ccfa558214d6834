// Writes docs/lab-kernel-checks.json: what this kernel can emulate (lab/kernel-checks.ts), the
// reasons docs/settings-proof.md cites. Needs root; run under the lab lock:
//   flock /tmp/edgetune-netns.lock npx tsx scripts/check-kernel.ts
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkKernel } from "../lab/kernel-checks";

const out = join(__dirname, "..", "docs", "lab-kernel-checks.json");
writeFileSync(out, `${JSON.stringify(checkKernel(), null, 2)}\n`);
console.log(`wrote ${out}; now npm run docs`);
