/**
 * Waits until `probe` holds, checking every `intervalMs`; throws naming `what` when the
 * deadline passes first. The deadline is a bound on a hang, never a measurement: a test
 * waits for the condition it asserts, not for a fixed time.
 */
export async function until(what: string, probe: () => boolean, timeoutMs = 10_000, intervalMs = 10): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (probe()) return;
    if (Date.now() >= end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
