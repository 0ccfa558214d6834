import { mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ValidationError } from "../components/tuning/profile";
import { renderStack } from "./render";
import { loadStack } from "./stack-config";

const USAGE = `usage: edgetune <command> [options]

commands:
  render --stack <name> --out <dir>   write everything the stack would put on its nodes
                                      (tune.sh, sysctl.d, limits, modules-load, PLAN.md)

options:
  --root <dir>   project root holding Pulumi.yaml and stacks/ (default: current directory)
  -h, --help     this text
`;

/** Runs the CLI; returns the exit code instead of exiting so tests can call it. */
export function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): number {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { stack: { type: "string" }, out: { type: "string" }, root: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    err.write(`edgetune: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = args.positionals;
  if (args.values.help || !command) {
    (command ? out : err).write(USAGE);
    return command || args.values.help ? 0 : 2;
  }
  const root = resolve(args.values.root ?? process.cwd());
  try {
    switch (command) {
      case "render": {
        if (!args.values.stack || !args.values.out) {
          err.write(`edgetune render: --stack and --out are required\n\n${USAGE}`);
          return 2;
        }
        const plan = loadStack(args.values.stack, root);
        // Render everything before writing anything: a bad stack writes nothing.
        const files = renderStack(plan);
        const outDir = resolve(args.values.out);
        for (const [rel, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
          const path = join(outDir, rel);
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, content);
          if (rel.endsWith(".sh")) chmodSync(path, 0o755);
        }
        for (const w of plan.nodeGroups.flatMap((g) => g.profile.warnings.map((m) => `${g.name}: ${m}`))) err.write(`warning: ${w}\n`);
        out.write(`rendered stack "${plan.stack}": ${Object.keys(files).length} files in ${outDir}\n`);
        return 0;
      }
      default:
        err.write(`edgetune: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ValidationError) {
      err.write(`edgetune: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
