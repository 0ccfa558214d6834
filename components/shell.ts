/**
 * Writing shell (pure): quoting, heredocs, header assignments, and the scripts that ship as
 * files beside a module (tune-engine.sh, lab.sh, tuner.sh). Every value a renderer puts into a
 * script goes through shq/shqWord/shWords/shAssignments, after the value was validated against
 * its own grammar (DESIGN.md: quote even what was checked).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * POSIX single quoting: inside '...' nothing is special, and a ' is closed,
 * escaped and reopened. (shell-quote's quote() picks bare words, double
 * quotes or backslashes case by case; the contract here is that every
 * interpolated value is single-quoted, so the rule fits in one line.)
 * The profile schema has already rejected quotes and control characters.
 */
export function shq(value: string | number): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/**
 * Quotes only what needs it: a word of safe characters stays bare, anything else
 * is single-quoted as by shq. For command lines people read (a Job's script in
 * `kubectl logs`), where every argument quoted would bury the command.
 */
export function shqWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : shq(value);
}

/** The arguments of one command: each single-quoted as by shq, joined by spaces. */
export function shWords(...args: Array<string | number>): string {
  return args.map(shq).join(" ");
}

/**
 * `NAME='value'` lines, one per entry in the order given: the header by which a generated
 * script hands values to a static body (readAsset) that only ever expands "$NAME".
 */
export function shAssignments(vars: Record<string, string | number>): string {
  return Object.entries(vars)
    .map(([name, value]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(name)) throw new Error(`not a shell variable name: ${JSON.stringify(name)}`);
      return `${name}=${shq(value)}`;
    })
    .join("\n");
}

/**
 * `call <<'EDGETUNE_EOF'` followed by content, indented to sit in a function body. The quoted
 * delimiter turns expansion off, so only a line equal to the delimiter could end it early:
 * such content is refused rather than escaped.
 */
export function heredoc(call: string, content: string): string {
  const delim = "EDGETUNE_EOF";
  if (content.split("\n").includes(delim)) throw new Error(`file content contains the heredoc delimiter ${delim}`);
  return `  ${call} <<'${delim}'\n${content}${content.endsWith("\n") ? "" : "\n"}${delim}`;
}

const assets = new Map<string, string>();

/**
 * A text file that ships beside a module (`readAsset(__dirname, "tune-engine.sh")`): scripts
 * stay real files that shellcheck and editors read, not template literals. tsc copies no
 * such files; scripts/copy-assets.js lists each one for dist/. Read once per process.
 */
export function readAsset(dir: string, file: string): string {
  const path = join(dir, file);
  let text = assets.get(path);
  if (text === undefined) {
    text = readFileSync(path, "utf8");
    assets.set(path, text);
  }
  return text;
}
