#!/usr/bin/env node
// Fails a CI job when a benchmark stack's thresholds were not met.
//
//   pulumi stack output --json --stack bench | node scripts/check-bench.js
//   node scripts/check-bench.js outputs.json
//
// Reads the `benchmark` stack output ({ passed, violations[] }) or those keys at the top
// level. Exit 0: passed. Exit 1: violations (printed). Exit 2: the input is not a
// benchmark output at all — a missing `passed` must never read as success.
"use strict";
const { readFileSync } = require("node:fs");

function fail(code, message) {
  process.stderr.write(`check-bench: ${message}\n`);
  process.exit(code);
}

const file = process.argv[2];
let text;
try {
  text = readFileSync(file && file !== "-" ? file : 0, "utf8");
} catch (e) {
  fail(2, `cannot read ${file ?? "stdin"}: ${e.message}`);
}
let doc;
try {
  doc = JSON.parse(text);
} catch (e) {
  fail(2, `input is not JSON (${e.message})`);
}
const out = doc && typeof doc === "object" && doc.benchmark && typeof doc.benchmark === "object" ? doc.benchmark : doc;
if (!out || typeof out.passed !== "boolean")
  fail(2, 'no boolean "passed" in the input (expected `pulumi stack output --json` of a stack with a benchmark section)');
const violations = Array.isArray(out.violations) ? out.violations : [];
const results = Array.isArray(out.results) ? out.results : [];
const invalid = results.filter((r) => r && r.validity && r.validity.valid === false).length;
if (out.passed) {
  process.stdout.write(`check-bench: passed (${results.length} results${invalid ? `, ${invalid} invalid and not counted` : ""})\n`);
  process.exit(0);
}
process.stdout.write(`check-bench: FAILED, ${violations.length} violation${violations.length === 1 ? "" : "s"}:\n`);
for (const v of violations) process.stdout.write(`  - ${typeof v === "string" ? v : (v && v.message) || JSON.stringify(v)}\n`);
if (!violations.length) process.stdout.write("  (passed is false but no violation was recorded)\n");
process.exit(1);
