#!/usr/bin/env node
// Pins the stacks' edgetune images to what a release pushed (.github/workflows/release.yml):
//
//   node scripts/pin-images.js [--dir stacks] \
//     proxy=ghcr.io/acme/edgetune-proxy:0.2.0@sha256:… tuner=… loadgen=…
//
// Every string value in stacks/Pulumi.*.yaml that is an image reference named
// edgetune-<kind> (any registry, owner, tag or digest) becomes the given reference, so a
// fork's release points its stacks at its own registry. The edit is made on the YAML
// document's concrete syntax tree (the `yaml` package's CST): comments, flow/block style,
// quoting and blank lines stay byte for byte; only the rewritten scalars change.
//
// Exit 0: done (prints one line per change). Exit 1: a given image is referenced by no
// stack (a renamed key would otherwise go unpinned silently), or a file does not parse.
// Exit 2: usage (a reference that is not `registry/…/edgetune-<kind>:tag@sha256:<64 hex>`).
"use strict";
const { readdirSync, readFileSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");
const { parseArgs } = require("node:util");
const { CST, LineCounter, Parser, parseDocument } = require("yaml");

const KINDS = ["proxy", "tuner", "loadgen"];
// The project's image grammar (components/validation.ts), with the digest required.
const PINNED =
  /^(?<repo>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*):(?<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})@sha256:[a-f0-9]{64}$/;
// A stack's image is pinned by tag or digest (the loader refuses anything else), and the
// tag or digest is what tells `edgetune-proxy` the image from `edgetune-proxy` the label value.
const ANY_IMAGE =
  /^(?<repo>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*)(?=[:@])(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

class UsageError extends Error {}

/** `kind=reference` arguments → { kind: reference }, each checked. */
function parsePins(args) {
  const pins = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    const kind = arg.slice(0, eq);
    const ref = arg.slice(eq + 1);
    if (eq < 0 || !KINDS.includes(kind))
      throw new UsageError(`${JSON.stringify(arg)}: expected <kind>=<reference>, kind one of ${KINDS.join(", ")}`);
    if (kind in pins) throw new UsageError(`${kind} given twice`);
    const m = PINNED.exec(ref);
    if (!m) throw new UsageError(`${kind}: ${JSON.stringify(ref)} is not pinned as registry/…/edgetune-${kind}:tag@sha256:<64 hex digits>`);
    if (imageName(m.groups.repo) !== `edgetune-${kind}`)
      throw new UsageError(`${kind}: ${JSON.stringify(ref)} is not named edgetune-${kind}: a stack would run the wrong image`);
    pins[kind] = ref;
  }
  if (!Object.keys(pins).length)
    throw new UsageError(`nothing to pin: give at least one of ${KINDS.map((k) => `${k}=<reference>`).join(" ")}`);
  return pins;
}

function imageName(repo) {
  return repo.slice(repo.lastIndexOf("/") + 1);
}

/** The pin kind a scalar value refers to, if it is an edgetune image reference. */
function kindOf(value) {
  const m = typeof value === "string" ? ANY_IMAGE.exec(value) : null;
  if (!m) return undefined;
  const name = imageName(m.groups.repo);
  return KINDS.find((k) => name === `edgetune-${k}`);
}

/**
 * Rewrites one YAML text. Returns the new text, the changes ({ line, kind, from, to }) and
 * the kinds it references (pinned now or before). Throws when the text does not parse, or
 * when the result would differ in more than those values: such a file is not written.
 */
function pinText(text, pins, file = "<text>") {
  const before = parseDocument(text, { uniqueKeys: true });
  if (before.errors.length) throw new Error(`${file}: ${before.errors[0].message.split("\n")[0]}`);
  const lines = new LineCounter();
  const tokens = [...new Parser(lines.addNewLine).parse(text)];
  const changes = [];
  const referenced = new Set();
  for (const token of tokens) {
    CST.visit(token, (item) => {
      // Values only: a mapping key or a comment is never an image.
      const node = item.value;
      if (!node || !CST.isScalar(node)) return;
      const { value } = CST.resolveAsScalar(node);
      const kind = kindOf(value);
      if (!kind || !(kind in pins)) return;
      referenced.add(kind);
      if (value === pins[kind]) return;
      changes.push({ line: lines.linePos(node.offset).line, kind, from: value, to: pins[kind] });
      CST.setScalarValue(node, pins[kind]);
    });
  }
  const out = tokens.map((t) => CST.stringify(t)).join("");
  const pinned = (_key, v) => {
    const kind = kindOf(v);
    return kind && kind in pins ? pins[kind] : v;
  };
  const after = parseDocument(out, { uniqueKeys: true });
  if (after.errors.length || JSON.stringify(after.toJS()) !== JSON.stringify(before.toJS(), pinned))
    throw new Error(`${file}: the rewrite would change more than the image values; nothing written`);
  return { text: out, changes, referenced };
}

/** Pins every Pulumi.<stack>.yaml in `dir`; returns the changes per file. */
function pinStacks(dir, pins) {
  const files = readdirSync(dir)
    .filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f))
    .sort();
  const results = [];
  const referenced = new Set();
  for (const f of files) {
    const file = join(dir, f);
    const { text, changes, referenced: kinds } = pinText(readFileSync(file, "utf8"), pins, file);
    kinds.forEach((k) => referenced.add(k));
    results.push({ file, text, changes });
  }
  const unused = Object.keys(pins).filter((k) => !referenced.has(k));
  if (unused.length) throw new Error(`no stack in ${dir} references ${unused.map((k) => `edgetune-${k}`).join(", ")}; nothing written`);
  // Written only once every file has passed: a release never gets half its stacks pinned.
  for (const r of results) if (r.changes.length) writeFileSync(r.file, r.text);
  return results.map(({ file, changes }) => ({ file, changes }));
}

function main(argv) {
  let args;
  try {
    args = parseArgs({ args: argv, allowPositionals: true, options: { dir: { type: "string", default: "stacks" } } });
    const pins = parsePins(args.positionals);
    const results = pinStacks(args.values.dir, pins);
    let n = 0;
    for (const { file, changes } of results)
      for (const c of changes) {
        n++;
        process.stdout.write(`${file}:${c.line}: ${c.from} -> ${c.to}\n`);
      }
    process.stdout.write(`pin-images: ${n} reference${n === 1 ? "" : "s"} pinned in ${results.length} stack files\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`pin-images: ${e.message}\n`);
    return e instanceof UsageError || (e && e.code && String(e.code).startsWith("ERR_PARSE_ARGS")) ? 2 : 1;
  }
}

module.exports = { parsePins, pinText, pinStacks, kindOf };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
