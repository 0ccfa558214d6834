/**
 * @pulumi/pulumi keeps `new Error().stack` on every output promise of every resource
 * (runtime/debuggable.ts, `_debugStackTrace`), only to print it when PULUMI_DEBUG_PROMISE_LEAKS
 * is set; no option turns the capture off (checked up to the SDK's main branch of 2026-08). With
 * source maps on (ts-node, tsx, source-map-support) each capture maps every frame, and it was
 * more than half of the time RemoteHostTuning spent per host (docs/iac-scaling.md).
 * The source positions the engine gets for each resource are not affected: the SDK raises the
 * limit to Infinity itself for those (resource.ts, callsites()).
 */

/**
 * Runs `register` (synchronous resource registrations) with V8's stack trace limit at 0, unless
 * PULUMI_DEBUG_PROMISE_LEAKS asks for the stacks. The limit is put back even when `register` throws.
 */
export function withoutPromiseStacks<T>(register: () => T): T {
  if (process.env.PULUMI_DEBUG_PROMISE_LEAKS) return register();
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return register();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
