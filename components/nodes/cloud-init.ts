import { gunzipSync, gzipSync } from "node:zlib";
import { dump } from "js-yaml";
import { profileDigest, renderTuningArtifacts } from "../tuning/render";
import type { ResolvedProfile } from "../tuning/types";
import { LIFECYCLE_SH_PATH, LIFECYCLE_UNIT_NAME, renderLifecycleScript, renderLifecycleUnit, type LifecycleGate } from "./aws-lifecycle";

import { kernelArgsCommand, renderSystemdUnit, renderUdevRule, TUNE_SH_PATH, UNIT_NAME, UDEV_RULE_PATH } from "./persistence";

export { renderSystemdUnit, renderUdevRule, TUNE_SH_PATH, UNIT_NAME, UDEV_RULE_PATH };
/** EC2 rejects user-data above 16 KiB (before base64). */
export const USER_DATA_MAX_BYTES = 16384;

export interface CloudInitOptions {
  /**
   * "cloud-config": plain `#cloud-config` (an Auto Scaling group or plain instances).
   * "mime-multipart": MIME multipart, the form EKS managed node groups require so they
   * can merge their own part (for AL2023, nodeadm's NodeConfig).
   * @default "cloud-config"
   */
  format?: "cloud-config" | "mime-multipart";
  /** A nodeadm NodeConfig document (YAML) to ship as its own part in "mime-multipart". */
  nodeadmConfig?: string;
  /** Complete this Auto Scaling group's launch lifecycle hook once tuning ran (CONTINUE or ABANDON). */
  lifecycle?: LifecycleGate;
  /**
   * "allowed": with kernel arguments (1 GiB huge pages), reboot once after adding them, so the
   * instance is tuned (and the hook completed) on a kernel that allocated the pages at boot.
   * @default "never"
   */
  reboot?: "never" | "allowed";
}

export interface CloudInitResult {
  /**
   * The bytes EC2 gets (base64 them for a launch template): for "cloud-config" the gzipped
   * document (cloud-init unpacks gzip user-data itself), for "mime-multipart" the MIME text.
   */
  userData: Buffer;
  /** The `#cloud-config` document edgetune owns (gunzipped user-data, or its MIME part). */
  cloudConfig: string;
  unit: string;
  /** undefined when the profile has no NIC settings. */
  udevRule?: string;
  /** Kernel arguments that only take effect after a reboot nobody performs (1 GiB huge pages with reboot "never"). */
  rebootRequiredFor: string[];
  /** Whether first boot reboots once to apply kernel arguments (reboot "allowed" and the profile has some). */
  rebootsOnce: boolean;
}

export const REBOOTED_PATH = "/var/lib/edgetune/rebooted-for-kernel-args";
/**
 * Reboots once. runcmd runs once per instance, but if cloud-init is stopped by the reboot before
 * it records that, the marker keeps the next boot from rebooting again.
 */
const rebootOnceCommand = `[ -e ${REBOOTED_PATH} ] || { mkdir -p ${REBOOTED_PATH.replace(/\/[^/]+$/, "")} && touch ${REBOOTED_PATH} && systemctl --no-block reboot; }`;

/** Renders the user-data for one profile. Deterministic (Node's gzip writes no timestamp). */
export function renderCloudInit(profile: ResolvedProfile, opts: CloudInitOptions = {}): CloudInitResult {
  const artifacts = renderTuningArtifacts(profile);
  const unit = renderSystemdUnit(profile);
  const udevRule = renderUdevRule(profile);
  const mime = opts.format === "mime-multipart";
  const gate = opts.lifecycle;
  const rebootsOnce = opts.reboot === "allowed" && profile.kernelArgs.length > 0;
  // cloud-init 22.x turns non-ASCII text of a gzip MIME part into "\uXXXX" escapes: a tune.sh with
  // non-ASCII text (a profile description) travels there as gz+b64, which is ASCII, byte for byte.
  // Otherwise it is plain text inside the gzipped document: compressing it twice only costs bytes.
  const tuneSh =
    mime && !/^[\x00-\x7f]*$/.test(artifacts["tune.sh"])
      ? { encoding: "gz+b64", content: gzipSync(artifacts["tune.sh"], { level: 9 }).toString("base64") }
      : { content: artifacts["tune.sh"] };
  // The sysctl.d, limits.d, systemd drop-in and modules-load files are not embedded a second time:
  // tune.sh apply writes them (at first boot through the unit below), and user-data holds 16 KiB.
  const doc = {
    write_files: [
      { path: TUNE_SH_PATH, owner: "root:root", permissions: "0755", ...tuneSh },
      { path: `/etc/systemd/system/${UNIT_NAME}`, owner: "root:root", permissions: "0644", content: unit },
      ...(udevRule ? [{ path: UDEV_RULE_PATH, owner: "root:root", permissions: "0644", content: udevRule }] : []),
      ...(gate
        ? [
            { path: LIFECYCLE_SH_PATH, owner: "root:root", permissions: "0755", content: renderLifecycleScript(gate) },
            {
              path: `/etc/systemd/system/${LIFECYCLE_UNIT_NAME}`,
              owner: "root:root",
              permissions: "0644",
              content: renderLifecycleUnit(gate),
            },
          ]
        : []),
    ],
    runcmd: [
      ["systemctl", "daemon-reload"],
      // Applies now (this boot) and at every later boot.
      ["systemctl", "enable", "--now", UNIT_NAME],
      ...(udevRule ? [["udevadm", "control", "--reload"]] : []),
      ...(profile.kernelArgs.length ? [kernelArgsCommand(profile.kernelArgs)] : []),
      // Without a reboot the gate reports now; with one it is only enabled, and reports after the
      // post-reboot apply, so the instance enters service with the pages allocated.
      ...(gate ? [["systemctl", "enable", ...(rebootsOnce ? [] : ["--now"]), LIFECYCLE_UNIT_NAME]] : []),
      ...(rebootsOnce ? [rebootOnceCommand] : []),
    ],
  };
  const cloudConfig = `#cloud-config\n# edgetune profile "${profile.name}" (${profileDigest(profile)})\n${dump(doc, { lineWidth: -1, noRefs: true })}`;
  // tune.sh alone is ~30 KiB and EC2 takes 16 KiB, so the document is gzipped: whole, or as a
  // gzip MIME part (cloud-init unpacks both and then sees "#cloud-config").
  const gz = gzipSync(cloudConfig, { level: 9 });
  const userData = mime
    ? Buffer.from(
        mimeMultipart([
          ...(opts.nodeadmConfig ? [{ type: "application/node.eks.aws", body: opts.nodeadmConfig }] : []),
          { type: "application/gzip", base64: true, body: gz.toString("base64").replace(/.{76}/g, "$&\n") },
        ]),
      )
    : gz;
  return { userData, cloudConfig, unit, udevRule, rebootRequiredFor: rebootsOnce ? [] : [...profile.kernelArgs], rebootsOnce };
}

export const MIME_BOUNDARY = "==EDGETUNE-BOUNDARY==";

function mimeMultipart(parts: Array<{ type: string; body: string; base64?: boolean }>): string {
  for (const p of parts) if (p.body.includes(MIME_BOUNDARY)) throw new Error(`user-data part contains the MIME boundary ${MIME_BOUNDARY}`);
  const head = (p: { type: string; base64?: boolean }) =>
    p.base64 ? `Content-Type: ${p.type}\nContent-Transfer-Encoding: base64` : `Content-Type: ${p.type}; charset="us-ascii"`;
  const body = parts.map((p) => `--${MIME_BOUNDARY}\n${head(p)}\n\n${p.body.endsWith("\n") ? p.body : `${p.body}\n`}`).join("\n");
  return `MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${MIME_BOUNDARY}"\n\n${body}\n--${MIME_BOUNDARY}--\n`;
}

/** Splits the MIME multipart user-data this module renders into its parts, base64 and gzip undone. */
export function parseMimeParts(userData: string): Array<{ type: string; body: string }> {
  const m = /boundary="([^"]+)"/.exec(userData);
  if (!m) return [];
  return userData
    .split(`--${m[1]}`)
    .slice(1, -1)
    .map((chunk) => {
      const [head, ...rest] = chunk.replace(/^\n/, "").split("\n\n");
      const type = /Content-Type: ([^;\n]+)/.exec(head)?.[1] ?? "";
      const raw = rest.join("\n\n").replace(/\n$/, "");
      const body = /Content-Transfer-Encoding: base64/.test(head) ? Buffer.from(raw, "base64") : Buffer.from(raw);
      return { type, body: (type === "application/gzip" ? gunzipSync(body) : body).toString("utf8") };
    });
}
