// tsc copies no non-TS files; the modules read these beside their .js at render time.
const { copyFileSync, mkdirSync } = require("node:fs");
const { join } = require("node:path");
const root = join(__dirname, "..");
for (const rel of [
  "components/tuning/tune-engine.sh",
  "components/lab/lab.sh",
  "components/nodes/tuner.sh",
  "components/bench/wrk-report.lua",
  "components/bench/wrk-paced.lua",
  "components/bench/churn-client.js",
  "components/bench/normalize.cjs",
  "lab/proofs/change-load.cjs",
  "lab/proofs/proof-client.js",
  "lab/peers/haproxy-stock.cfg",
  "lab/peers/nginx.conf",
]) {
  mkdirSync(join(root, "dist", rel, ".."), { recursive: true });
  copyFileSync(join(root, rel), join(root, "dist", rel));
}
