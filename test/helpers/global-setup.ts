import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Every temp dir a test makes (os.tmpdir() in the workers) lands in one directory that is
 * deleted after the run, whatever the test did or failed to clean up. Kept short (HAProxy's
 * unix sockets live under it: sun_path holds 107 bytes) and shared by all projects.
 */
export default function setup(): (() => void) | undefined {
  if (process.env.EDGETUNE_TEST_TMP) return undefined;
  const root = mkdtempSync(join(tmpdir(), "edgetune-tests-"));
  // Like /tmp: tests also run tools as an unprivileged user (e.g. tsx's cache as nobody).
  chmodSync(root, 0o1777);
  process.env.EDGETUNE_TEST_TMP = root;
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
