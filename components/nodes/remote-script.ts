import { createHash } from "node:crypto";
import { posix } from "node:path";
import { shq } from "../shell";
import { renderTuningArtifacts } from "../tuning/render";
import { CONTROL } from "../validation";
import type { ResolvedProfile } from "../tuning/types";

/** Where the remote commands find and put things on a host. */
export interface RemoteScriptOptions {
  /** Directory the rendered artifacts are copied to (by CopyToRemote, as the SSH user), in a subdirectory per rendering. */
  stagingDir: string;
  /** Where tune.sh is installed (as root) so `restore` still finds it when the staging copy is gone. */
  installPath: string;
  /** Run tune.sh through `sudo -n` (the SSH user is not root). */
  sudo: boolean;
  /** Extra environment for tune.sh (e.g. STATE_DIR); names are checked, values quoted. */
  env?: Record<string, string>;
}

/** The scripts remote.Command runs, and the files CopyToRemote puts in `stagingDir`. */
export interface RemoteCommands {
  /** Runs on create and on update: verify the staged copy, install it, `tune.sh apply`. */
  apply: string;
  /** Runs on delete: `tune.sh restore`, then removes the installed script. */
  restore: string;
  /** Absolute remote path → content, for every rendered artifact. */
  stagedFiles: Record<string, string>;
  /** sha256 (hex) of tune.sh: the apply script refuses a staged copy with another digest. */
  tuneShSha256: string;
}

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * The command texts for one host. Pure: the same profile and options give
 * the same bytes, so a changed profile is exactly a changed trigger.
 */
export function renderRemoteCommands(profile: ResolvedProfile, opts: RemoteScriptOptions): RemoteCommands {
  // A hook for tests (STATE_DIR and the like), never from config: still checked before it reaches a script.
  for (const [k, v] of Object.entries(opts.env ?? {}))
    if (!ENV_NAME.test(k) || CONTROL.test(v))
      throw new Error(`renderRemoteCommands: env ${JSON.stringify(k)} is not a variable name with a plain value`);
  const artifacts = renderTuningArtifacts(profile);
  const tuneShSha256 = createHash("sha256").update(artifacts["tune.sh"]).digest("hex");
  // One staging directory per rendering: on a replacement the new copy lands before the old
  // command's delete runs, and that delete must only remove its own files.
  const stagingDir = posix.join(opts.stagingDir, tuneShSha256.slice(0, 16));
  const stagedFiles = Object.fromEntries(Object.entries(artifacts).map(([name, content]) => [posix.join(stagingDir, name), content]));
  const staged = posix.join(stagingDir, "tune.sh");
  const installed = opts.installPath;
  // -n: fail at once instead of waiting for a password prompt nobody can answer.
  const root = opts.sudo ? "sudo -n " : "";
  const env = Object.entries(opts.env ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${shq(v)}`);
  const run = (mode: string) => `${root}${env.length ? `env ${env.join(" ")} ` : ""}"$installed" ${mode}`;
  const apply = [
    "#!/bin/sh",
    `# edgetune: apply profile ${shq(profile.name)} on this host.`,
    "set -u",
    `staged=${shq(staged)}`,
    `installed=${shq(installed)}`,
    // The staging directory is writable by the SSH user (and, under /var/tmp, possibly by others):
    // check the digest before running it as root.
    `if ! printf '%s  %s\\n' ${shq(tuneShSha256)} "$staged" | sha256sum -c --status; then`,
    `  echo "edgetune: $staged is missing or differs from the rendered tune.sh; not running it" >&2`,
    "  exit 1",
    "fi",
    `${root}mkdir -p "$(dirname "$installed")" && ${root}cp "$staged" "$installed.new" && ${root}chmod 0755 "$installed.new" && ${root}mv -f "$installed.new" "$installed" || exit 1`,
    run("apply"),
    "rc=$?",
    "# 3 is degraded: what this host supports was applied and the summary line counts the rest.",
    '[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"',
    "",
  ].join("\n");
  const restore = [
    "#!/bin/sh",
    `# edgetune: put back what profile ${shq(profile.name)} changed on this host, then remove edgetune.`,
    "set -u",
    `installed=${shq(installed)}`,
    `staging=${shq(stagingDir)}`,
    'if [ ! -e "$installed" ]; then',
    '  echo "summary: restore status=nothing (no $installed)"',
    "  exit 0",
    "fi",
    run("restore"),
    "rc=$?",
    // Keep the script when restore failed: its state records are what a retry needs.
    '[ "$rc" -eq 0 ] || exit "$rc"',
    `${root}rm -f "$installed"`,
    `${root}rmdir "$(dirname "$installed")" 2>/dev/null`,
    ...Object.keys(stagedFiles).map((f) => `rm -f ${shq(f)}`),
    // Only directories the copy created and left empty; nothing else is touched.
    `find "$staging" -depth -type d -empty -delete 2>/dev/null`,
    `rmdir "$(dirname "$staging")" 2>/dev/null`,
    "exit 0",
    "",
  ].join("\n");
  return { apply, restore, stagedFiles, tuneShSha256 };
}

/** What `tune.sh apply` reported in its final `summary:` line. */
export interface ApplySummary {
  status: "applied" | "degraded" | "failed";
  changed: number;
  unchanged: number;
  skipped: number;
  failed: number;
  rebootRequired: number;
  profile: string;
  digest: string;
}

/** Parses the last apply summary line of tune.sh output; undefined when there is none. */
export function parseApplySummary(output: string | undefined): ApplySummary | undefined {
  // A mocked or failed command may have no stdout at all.
  if (typeof output !== "string") return undefined;
  const line = output
    .split("\n")
    .reverse()
    .find((l) => /^summary: status=/.test(l));
  if (!line) return undefined;
  const kv = Object.fromEntries([...line.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1], m[2].replace(/^"|"$/g, "")]));
  if (!["applied", "degraded", "failed"].includes(kv.status)) return undefined;
  const n = (k: string) => Number(kv[k] ?? 0);
  return {
    status: kv.status as ApplySummary["status"],
    changed: n("changed"),
    unchanged: n("unchanged"),
    skipped: n("skipped"),
    failed: n("failed"),
    rebootRequired: n("reboot_required"),
    profile: kv.profile ?? "",
    digest: kv.digest ?? "",
  };
}
