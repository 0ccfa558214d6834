/**
 * The pure side of a rolling SSH apply: which hosts go in which batch, the resource names each
 * host gets, and the scripts that gate a batch on `tune.sh verify` and reboot a host into kernel
 * arguments. The component (remote-host-tuning.ts) only wires these into resources.
 */
import { createHash } from "node:crypto";
import { shq } from "../shell";
import { kernelArgsCommand } from "./persistence";

export interface RolloutPlanOptions {
  /** Hosts per batch. */
  batchSize?: number;
  /** Hosts per batch as a count, or a percentage of the group rounded down (at least 1). */
  maxUnavailable?: number | string;
}

/** The default when neither is set: one host at a time, as a DaemonSet's rolling update does. */
export const DEFAULT_BATCH_SIZE = 1;

export function batchSizeFor(hostCount: number, r: RolloutPlanOptions): number {
  if (r.batchSize !== undefined) return r.batchSize;
  const mu = r.maxUnavailable;
  if (typeof mu === "number") return mu;
  if (typeof mu === "string") return Math.max(1, Math.floor((hostCount * Number(mu.replace("%", ""))) / 100));
  return DEFAULT_BATCH_SIZE;
}

/** Hosts in batches, in the order the stack lists them. */
export function planBatches<T>(hosts: readonly T[], r: RolloutPlanOptions): T[][] {
  const size = batchSizeFor(hosts.length, r);
  const out: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}

/** What a host's name became before names were made collision-free: kept as an alias. */
export const legacyName = (host: string) => host.replace(/[^A-Za-z0-9-]/g, "-");

/**
 * A resource-name fragment per host. "a.b" and "a-b" both sanitize to "a-b", so a name that lost
 * information gets a short digest of the real host: stable per host, whatever else is listed.
 */
export function hostResourceNames(hosts: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    hosts.map((h) => {
      const plain = legacyName(h);
      return [h, plain === h ? h : `${plain}-${createHash("sha256").update(h).digest("hex").slice(0, 8)}`];
    }),
  );
}

export interface GateOptions {
  /** The host, named in the failure message. */
  host: string;
  installPath: string;
  sudo: boolean;
  env?: Readonly<Record<string, string>>;
  /** true: exit non-zero so nothing that depends on this gate runs. false: report and pass. */
  stopOnFailure: boolean;
}

/** The gate between batches: `tune.sh verify` on one host, failing with the host's name. */
export function renderGateCommand(o: GateOptions): string {
  const root = o.sudo ? "sudo -n " : "";
  const env = Object.entries(o.env ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${shq(v)}`);
  const host = shq(o.host);
  return [
    "#!/bin/sh",
    "# edgetune: the rollout gate: the next batch starts only when this host verifies.",
    "set -u",
    `host=${host}`,
    `${root}${env.length ? `env ${env.join(" ")} ` : ""}${shq(o.installPath)} verify`,
    "rc=$?",
    'if [ "$rc" -eq 0 ]; then',
    '  echo "gate: status=passed host=$host"',
    "  exit 0",
    "fi",
    'echo "gate: status=failed host=$host verify-exit=$rc"',
    o.stopOnFailure
      ? 'echo "edgetune: rollout stopped: host $host failed tune.sh verify (exit $rc) after apply; later batches are not applied" >&2; exit 1'
      : 'echo "edgetune: host $host failed tune.sh verify (exit $rc); stopOnFailure is false, the rollout goes on" >&2; exit 0',
    "",
  ].join("\n");
}

/** Seconds between the reboot command's exit and the reboot, so its SSH session ends cleanly. */
export const REBOOT_DELAY_SECONDS = 5;

/** Where Linux names the current boot: a new value after every reboot. */
export const BOOT_ID = "/proc/sys/kernel/random/boot_id";

/**
 * Adds the kernel arguments to the boot loader and reboots, unless the running kernel already
 * has them all. Prints the boot id it leaves (none when no reboot is needed), and reboots a few
 * seconds later so this SSH session ends cleanly first.
 */
export function renderRebootCommand(o: { host: string; sudo: boolean; delaySeconds: number; kernelArgs: readonly string[] }): string {
  const root = o.sudo ? "sudo -n " : "";
  const add = kernelArgsCommand([...o.kernelArgs]);
  if (add.split("\n").includes("EDGETUNE_EOF"))
    throw new Error("renderRebootCommand: kernel arguments contain the here-document delimiter");
  return [
    "#!/bin/sh",
    "# edgetune: reboot into the kernel arguments the profile needs (reboot: allowed).",
    "set -u",
    `host=${shq(o.host)}`,
    "missing=",
    `for a in ${o.kernelArgs.map(shq).join(" ")}; do`,
    '  case " $(cat /proc/cmdline) " in *" $a "*) ;; *) missing="$missing $a" ;; esac',
    "done",
    'if [ -z "$missing" ]; then echo "reboot: status=not-needed host=$host"; exit 0; fi',
    "if ! command -v grubby >/dev/null 2>&1 && [ ! -d /etc/default/grub.d ]; then",
    '  echo "edgetune: host $host needs kernel arguments$missing but has neither grubby nor /etc/default/grub.d; not rebooting" >&2',
    "  exit 1",
    "fi",
    `${root}sh <<'EDGETUNE_EOF' || exit 1`,
    add,
    "EDGETUNE_EOF",
    `printf 'boot_id=%s\\n' "$(cat ${BOOT_ID})"`,
    `${root}sh -c 'nohup sh -c "sleep ${o.delaySeconds}; systemctl reboot || reboot" >/dev/null 2>&1 &' || exit 1`,
    `echo "reboot: status=scheduled host=$host in=${o.delaySeconds}s missing=$missing"`,
    "",
  ].join("\n");
}

/** Runs once the host answers SSH again: fails unless it really booted anew (when a reboot was scheduled). */
export function renderRebootedCheck(host: string, previousBootId: string): string {
  return [
    "#!/bin/sh",
    "set -u",
    `host=${shq(host)}`,
    `old=${shq(previousBootId)}`,
    `now=$(cat ${BOOT_ID})`,
    'if [ -z "$old" ]; then echo "reboot: status=not-needed host=$host"; exit 0; fi',
    'if [ "$now" = "$old" ]; then',
    '  echo "edgetune: host $host did not reboot (boot id still $now)" >&2',
    "  exit 1",
    "fi",
    'echo "reboot: status=done host=$host boot_id=$now"',
    "",
  ].join("\n");
}

/** The boot id a reboot command printed. */
export const parseBootId = (stdout: string | undefined) => /^boot_id=([0-9a-f-]+)$/m.exec(stdout ?? "")?.[1] ?? "";
