/**
 * The spec of RemoteHostTuning (SSH hosts): the one place its options, defaults, bounds and
 * descriptions are written; the component, the stack's `ssh` section and the reference use it.
 */
import { z } from "zod";
import { grammar, resolveWith, withPending, type PathSegment, type ValidationIssue } from "../validation";
// Where every target installs tune.sh (the EC2 user-data too): one path on every host.
import { TUNE_SH_PATH } from "./persistence";

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

export const remoteHostSpec = z.strictObject({
  host: z.string().regex(HOST, "allowed: an IP address or DNS name").describe("Address (IP or DNS name) to connect to."),
  port: grammar.port().default(22).describe("SSH port."),
});

export const rolloutSpec = z
  .strictObject({
    batchSize: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("Hosts applied (and verified) together in one batch. Set this or maxUnavailable; neither means 1."),
    maxUnavailable: grammar
      .countOrPercent()
      .optional()
      .describe('Batch size as a count, or a percentage of the group ("25%", rounded down, at least 1 host).'),
    pauseSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(0)
      .describe("Seconds to wait after a batch has passed its gate before the next batch starts (run where Pulumi runs)."),
    stopOnFailure: z
      .boolean()
      .default(true)
      .describe(
        "A host whose `tune.sh verify` fails after apply fails its gate, and no later batch is applied; the error names the host. false: the gate reports the failure (status output, warning) and the rollout goes on. An apply that fails outright always fails its resource.",
      ),
  })
  .superRefine((r, ctx) => {
    if (r.batchSize !== undefined && r.maxUnavailable !== undefined)
      ctx.addIssue({ code: "custom", path: ["maxUnavailable"], message: "allowed: batchSize or maxUnavailable, not both" });
  })
  .describe("Rolling apply: hosts in batches, each applied then verified before the next batch starts.");

export const remoteHostTuningShape = {
  hosts: z
    .array(remoteHostSpec)
    .min(1, "allowed: at least one host")
    .superRefine((hosts, ctx) => {
      hosts.forEach((h, i) => {
        if (hosts.findIndex((x) => x.host === h.host) !== i)
          ctx.addIssue({ code: "custom", path: [i, "host"], message: "allowed: each host once" });
      });
    })
    .describe("The hosts; each gets one apply command (tune.sh on its stdin) and one verify gate."),
  user: z.string().regex(USER, "allowed: a POSIX user name").default("root").describe("SSH user."),
  privateKey: z
    .string()
    .min(1, "allowed: an SSH private key (a Pulumi secret)")
    .describe("SSH private key (PEM/OpenSSH); always handled as a Pulumi secret. In a stack file: a `secure:` value."),
  sudo: z.boolean().default(false).describe("Run tune.sh through `sudo -n` (passwordless sudo) because `user` is not root."),
  stagingDir: grammar
    .absolutePath()
    .default("/var/tmp/edgetune")
    .describe(
      "Remote directory where earlier edgetune versions staged copies of the rendered files. Nothing is staged any more (tune.sh travels on the apply command's stdin); `restore` removes what an earlier version left here.",
    ),
  installPath: grammar
    .absolutePath()
    .default(TUNE_SH_PATH)
    .describe("Where tune.sh is installed (as root) so `restore` finds it at destroy time."),
  rollout: rolloutSpec.default({ pauseSeconds: 0, stopOnFailure: true }),
  reboot: z
    .enum(["never", "allowed"])
    .default("never")
    .describe(
      "What to do when the profile needs kernel arguments (1 GiB huge pages). `allowed`: after apply, each host of a batch whose running kernel lacks them gets them in its boot loader (grubby, or /etc/default/grub.d + update-grub) and is rebooted; the rollout waits for SSH to answer on a new boot, then gates the host. `never`: no boot loader change, no reboot; a warning names the hosts that still need one (output rebootRequired).",
    ),
  rebootTimeoutSeconds: z
    .number()
    .int()
    .min(60)
    .max(3600)
    .default(600)
    .describe("How long to keep retrying SSH while a host reboots (reboot: allowed)."),
};

export const remoteHostTuningSpec = z.strictObject(remoteHostTuningShape);

export type RemoteHost = z.input<typeof remoteHostSpec>;
/** The options as a user writes them (defaults optional). */
export type RemoteHostTuningOptions = z.input<typeof remoteHostTuningSpec>;
export type ResolvedRemoteHostTuningOptions = z.output<typeof remoteHostTuningSpec>;

/** The one resolution of RemoteHostTuning's options. `pending`: Outputs checked when they resolve. */
export function resolveRemoteHostTuningOptions(
  input: unknown,
  prefix: readonly PathSegment[] = [],
  pending: readonly string[] = [],
): { value: ResolvedRemoteHostTuningOptions; issues: [] } | { value?: undefined; issues: ValidationIssue[] } {
  const schema = pending.length ? withPending(remoteHostTuningShape, pending) : remoteHostTuningSpec;
  return resolveWith(schema, input, prefix) as ReturnType<typeof resolveRemoteHostTuningOptions>;
}
