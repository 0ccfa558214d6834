import { createHash } from "node:crypto";
import { posix } from "node:path";
import { gzipSync } from "node:zlib";
import { shq } from "../shell";
import { renderTuneSh, renderTuningArtifacts } from "../tuning/render";
import { CONTROL } from "../validation";
import type { ResolvedProfile } from "../tuning/types";
import { renderSystemdUnit, renderUdevRule, UDEV_RULE_PATH, UNIT_NAME, UNIT_PATH } from "./persistence";

/** Where the remote commands find and put things on a host. */
export interface RemoteScriptOptions {
  /**
   * Where earlier versions of edgetune staged copies of the rendered files (by CopyToRemote).
   * Nothing is staged any more; `restore` still removes what such a version left there.
   */
  stagingDir?: string;
  /** Where tune.sh is installed (as root) so `restore` still finds it when the staging copy is gone. */
  installPath: string;
  /** Run tune.sh through `sudo -n` (the SSH user is not root). */
  sudo: boolean;
  /** Extra environment for tune.sh (e.g. STATE_DIR); names are checked, values quoted. */
  env?: Record<string, string>;
  /**
   * Root the unit and udev rule are installed under, and `systemctl --root` enables in: "/" on a
   * host; a test's temporary directory, so a sandboxed run never touches the machine's systemd.
   * @default "/"
   */
  systemRoot?: string;
}

/** The scripts remote.Command runs, and what its standard input carries. */
export interface RemoteCommands {
  /**
   * Runs on create and on update with `payload` on standard input: unpacks tune.sh into the
   * install directory, checks its digest, `tune.sh apply`, installs the unit and rule.
   */
  apply: string;
  /** Runs on delete: removes the unit and udev rule, `tune.sh restore`, then removes the installed script. */
  restore: string;
  /** The systemd oneshot unit apply installs and enables, so the tuning is re-applied at every boot. */
  unit: string;
  /** The udev rule apply installs (undefined when the profile has no NIC settings). */
  udevRule?: string;
  /** The rendered tune.sh. */
  tuneSh: string;
  /**
   * The apply command's standard input: tune.sh, gzipped, base64 (one line). The same string for
   * every host of a group, so a fleet holds the script once per group, not once per host.
   */
  payload: string;
  /** sha256 (hex) of tune.sh: apply refuses a received script with another digest. */
  tuneShSha256: string;
}

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const ABSOLUTE = /^\/[A-Za-z0-9._/-]*$/;

/**
 * The command texts for one host. Pure: the same profile and options give
 * the same bytes, so a changed profile is exactly a changed trigger.
 */
export function renderRemoteCommands(profile: ResolvedProfile, opts: RemoteScriptOptions): RemoteCommands {
  // A hook for tests (STATE_DIR and the like), never from config: still checked before it reaches a script.
  for (const [k, v] of Object.entries(opts.env ?? {}))
    if (!ENV_NAME.test(k) || CONTROL.test(v))
      throw new Error(`renderRemoteCommands: env ${JSON.stringify(k)} is not a variable name with a plain value`);
  const tuneSh = renderTuneSh(profile);
  const tuneShSha256 = createHash("sha256").update(tuneSh).digest("hex");
  // No name, no time and (below) no OS in the header: the same script gives the same bytes on
  // any machine running Pulumi, so the command's stdin only changes when the script does.
  const gz = gzipSync(tuneSh, { level: 9 });
  gz[9] = 255;
  const payload = gz.toString("base64");
  // Earlier versions staged a copy per rendering here; restore removes the one for this script.
  const legacyStaging = opts.stagingDir ? posix.join(opts.stagingDir, tuneShSha256.slice(0, 16)) : undefined;
  const legacyStaged = legacyStaging ? Object.keys(renderTuningArtifacts(profile)).map((f) => posix.join(legacyStaging, f)) : [];
  const installed = opts.installPath;
  // -n: fail at once instead of waiting for a password prompt nobody can answer.
  const root = opts.sudo ? "sudo -n " : "";
  const env = Object.entries(opts.env ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${shq(v)}`);
  const run = (mode: string) => `${root}${env.length ? `env ${env.join(" ")} ` : ""}"$installed" ${mode}`;
  const sysroot = opts.systemRoot ?? "/";
  if (!ABSOLUTE.test(sysroot)) throw new Error(`renderRemoteCommands: systemRoot ${JSON.stringify(sysroot)} is not an absolute path`);
  const unit = renderSystemdUnit(profile, { execPath: installed, env: opts.env });
  const udevRule = renderUdevRule(profile);
  const under = (p: string) => (sysroot === "/" ? p : posix.join(sysroot, p));
  // Only a live host's own root has a systemd and udev to tell; --root works offline on any tree.
  const live = '[ "$sysroot" = / ]';
  const put = (path: string, content: string) => [
    `${root}mkdir -p ${shq(posix.dirname(path))} && ${root}sh -c 'cat >"$1.new" && chmod 0644 "$1.new" && mv -f "$1.new" "$1"' sh ${shq(path)} <<'EDGETUNE_EOF' || exit 1`,
    content.replace(/\n$/, ""),
    "EDGETUNE_EOF",
  ];
  for (const c of [unit, udevRule ?? ""])
    if (c.split("\n").includes("EDGETUNE_EOF"))
      throw new Error("renderRemoteCommands: a persistence file contains the here-document delimiter");
  const persist = [
    "# Persist: ethtool, RPS/XPS and IRQ settings are gone after a reboot or a NIC reset; the unit and rule re-apply them.",
    `sysroot=${shq(sysroot)}`,
    ...put(under(UNIT_PATH), unit),
    ...(udevRule ? put(under(UDEV_RULE_PATH), udevRule) : [`${root}rm -f ${shq(under(UDEV_RULE_PATH))}`]),
    "if command -v systemctl >/dev/null 2>&1; then",
    `  ${root}systemctl --quiet --root="$sysroot" enable ${UNIT_NAME} || exit 1`,
    `  if ${live} && [ -d /run/systemd/system ]; then ${root}systemctl daemon-reload || exit 1; fi`,
    `  if ${live} && command -v udevadm >/dev/null 2>&1; then ${root}udevadm control --reload; fi`,
    `  echo "persistence: status=installed unit=${UNIT_NAME}${udevRule ? ` rule=${UDEV_RULE_PATH}` : ""}"`,
    "else",
    '  echo "persistence: status=none reason=no-systemctl (the tuning is lost at the next reboot)"',
    '  echo "edgetune: no systemctl on this host: the tuning is applied now but not re-applied at boot" >&2',
    "fi",
  ];
  const unpersist = [
    "# First, so no boot or NIC event re-applies while the originals are being put back.",
    `sysroot=${shq(sysroot)}`,
    `if command -v systemctl >/dev/null 2>&1 && [ -e ${shq(under(UNIT_PATH))} ]; then ${root}systemctl --quiet --root="$sysroot" disable ${UNIT_NAME}; fi`,
    `${root}rm -f ${shq(under(UNIT_PATH))} ${shq(under(UDEV_RULE_PATH))}`,
    `if ${live} && [ -d /run/systemd/system ]; then ${root}systemctl daemon-reload; fi`,
    `if ${live} && command -v udevadm >/dev/null 2>&1; then ${root}udevadm control --reload; fi`,
  ];
  const apply = [
    "#!/bin/sh",
    `# edgetune: apply profile ${shq(profile.name)} on this host. tune.sh arrives on standard input (gzip, base64).`,
    "set -u",
    `installed=${shq(installed)}`,
    "for t in base64 gzip sha256sum; do",
    '  command -v "$t" >/dev/null 2>&1 || { echo "edgetune: $t is not installed on this host; it is needed to unpack and check tune.sh" >&2; exit 1; }',
    "done",
    `${root}mkdir -p "$(dirname "$installed")" || exit 1`,
    // Unpacked straight into the root-owned install directory and checked there: nothing the SSH
    // user (or, under /var/tmp, anyone) can swap between the check and the run.
    `base64 -d | gzip -dc | ${root}sh -c 'umask 022; cat >"$1.new"' sh "$installed" || { echo "edgetune: could not unpack tune.sh from standard input" >&2; ${root}rm -f "$installed.new"; exit 1; }`,
    `if ! printf '%s  %s\\n' ${shq(tuneShSha256)} "$installed.new" | sha256sum -c --status; then`,
    `  ${root}rm -f "$installed.new"`,
    `  echo "edgetune: the tune.sh received differs from the rendered one (sha256 ${tuneShSha256}); not running it" >&2`,
    "  exit 1",
    "fi",
    `${root}chmod 0755 "$installed.new" && ${root}mv -f "$installed.new" "$installed" || exit 1`,
    run("apply"),
    "rc=$?",
    "# 3 is degraded: what this host supports was applied and the summary line counts the rest.",
    '[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"',
    ...persist,
    "",
  ].join("\n");
  const restore = [
    "#!/bin/sh",
    `# edgetune: put back what profile ${shq(profile.name)} changed on this host, then remove edgetune.`,
    "set -u",
    `installed=${shq(installed)}`,
    ...unpersist,
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
    ...(legacyStaging
      ? [
          ...legacyStaged.map((f) => `rm -f ${shq(f)}`),
          // Only directories that copy created and left empty; nothing else is touched.
          `find ${shq(legacyStaging)} -depth -type d -empty -delete 2>/dev/null`,
          `rmdir ${shq(posix.dirname(legacyStaging))} 2>/dev/null`,
        ]
      : []),
    "exit 0",
    "",
  ].join("\n");
  return { apply, restore, unit, udevRule, tuneSh, payload, tuneShSha256 };
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
