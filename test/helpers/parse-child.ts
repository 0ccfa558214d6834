// Loads stacks the way `edgetune render` does (readStackConfig + parseStack), each timed, in a
// process of its own: a hang is killed by the parent's deadline instead of stalling the suite.
// usage: tsx parse-child.ts <root> <stack>... ; prints one JSON line per stack.
import { loadStack } from "../../loader/stack-config";
import { ValidationError } from "../../components/validation";

const [root, ...stacks] = process.argv.slice(2);
for (const stack of stacks) {
  const t0 = process.hrtime.bigint();
  let result: { ok: boolean; issues?: Array<{ path: string; message: string }>; message?: string; crash?: string };
  try {
    loadStack(stack, root);
    result = { ok: true };
  } catch (e) {
    result =
      e instanceof ValidationError
        ? { ok: false, issues: e.issues, message: e.message }
        : { ok: false, crash: (e as Error).stack ?? String(e) };
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`${JSON.stringify({ stack, ms, ...result })}\n`);
}
