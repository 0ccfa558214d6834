/**
 * Stack files parsed the safe way (the `yaml` library): a YAML mistake or a hostile document is
 * one clear error with its line and column, never a stack trace, a hang or a silently changed
 * value. Refused: duplicate keys, alias graphs that expand past a bound ("billion laughs"),
 * bytes that are not UTF-8, numbers JavaScript cannot hold exactly (integers beyond 2^53 - 1,
 * .nan, .inf, 1e309), and tags YAML's core schema does not know.
 */
import { readFileSync } from "node:fs";
import { isScalar, LineCounter, parseDocument, visit } from "yaml";
import { ValidationError, type ValidationIssue } from "../components/validation";

/** More alias expansions than a hand-written stack file ever needs; a bomb needs millions. */
export const MAX_ALIAS_COUNT = 100;

export function parseYamlText(text: string, file: string): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, intAsBigInt: true, lineCounter: lines, prettyErrors: false, schema: "core" });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const issues: ValidationIssue[] = [...doc.errors, ...doc.warnings].map((e) => ({
    path: at(e.pos[0]),
    message: e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, ""),
  }));
  visit(doc, {
    Scalar(_key, node) {
      if (!isScalar(node) || !node.range) return;
      const v = node.value;
      if (typeof v === "bigint" && (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))) {
        issues.push({
          path: at(node.range[0]),
          message: `the integer ${v} cannot be held exactly (beyond ±(2^53 - 1)); allowed: a smaller integer, or quote it as a string`,
        });
      } else if (typeof v === "number" && !Number.isFinite(v)) {
        issues.push({
          path: at(node.range[0]),
          message: `got ${JSON.stringify(node.source ?? String(v))}; allowed: a finite number (not .nan, .inf or a value beyond ~1.8e308)`,
        });
      }
    },
  });
  if (issues.length) throw new ValidationError(issues, `${file}: not a stack file edgetune can read`);
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT, reviver: (_k, v) => (typeof v === "bigint" ? Number(v) : v) });
  } catch (e) {
    // The one error toJS raises on a valid document: too many alias expansions.
    throw new ValidationError(
      [
        {
          path: file,
          message: `${(e as Error).message}: more than ${MAX_ALIAS_COUNT} alias expansions; allowed: a stack file without nested aliases`,
        },
      ],
      `${file}: not a stack file edgetune can read`,
    );
  }
}

/** Reads a file that must be UTF-8 text: a stray byte is an error with its position, not a replacement character. */
export function readYamlFile(path: string): unknown {
  const bytes = readFileSync(path);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const before = bytes.subarray(0, bad).toString("utf8");
    const line = before.split("\n").length;
    const col = before.length - before.lastIndexOf("\n");
    throw new ValidationError(
      [
        {
          path: `${path}:${line}:${col}`,
          message: `byte 0x${bytes[bad].toString(16).padStart(2, "0")} is not UTF-8; allowed: a UTF-8 text file`,
        },
      ],
      `${path}: not a stack file edgetune can read`,
    );
  }
  return parseYamlText(text, path);
}

/** Where the first byte that cannot start or continue a UTF-8 sequence is (for the message). */
function firstInvalidUtf8(bytes: Buffer): number {
  for (let i = 0; i < bytes.length;) {
    const c = bytes[i];
    const follow = c < 0x80 ? 0 : c >> 5 === 0b110 ? 1 : c >> 4 === 0b1110 ? 2 : c >> 3 === 0b11110 ? 3 : -1;
    if (follow < 0) return i;
    for (let k = 1; k <= follow; k++) if (i + k >= bytes.length || bytes[i + k] >> 6 !== 0b10) return i;
    i += follow + 1;
  }
  return bytes.length - 1;
}
