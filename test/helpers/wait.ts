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

/**
 * One turn of the event loop, for "nothing was registered" checks under Pulumi's mocks. The
 * mocked runtime works on promises alone (no timers, no I/O), so once a turn has passed every
 * registration not waiting on an unresolved promise has reached the mocks: a registration
 * still missing then is not merely late.
 */
export function mocksSettled(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
