import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { knownNow, type WithInputs } from "../inputs";
import { withoutPromiseStacks } from "../promise-stacks";
import { ValidationError } from "../validation";
import type { ResolvedProfile } from "../tuning/types";
import { resolveRemoteHostTuningOptions, type RemoteHostTuningOptions } from "./remote-host-tuning-spec";
import { parseApplySummary, renderRemoteCommands, type ApplySummary } from "./remote-script";
import {
  hostResourceNames,
  legacyName,
  parseBootId,
  REBOOT_DELAY_SECONDS,
  planBatches,
  renderGateCommand,
  renderRebootCommand,
  renderRebootedCheck,
} from "./rollout";

/**
 * Arguments of RemoteHostTuning: the options of its spec (remote-host-tuning-spec.ts, where
 * every default and bound is written), with the private key also accepted as an Output.
 */
export type RemoteHostTuningArgs = WithInputs<RemoteHostTuningOptions, "privateKey"> & {
  /** The resolved profile every host in this group gets. */
  profile: ResolvedProfile;
};

/** One host's outcome, as `pulumi stack output` shows it. */
export interface HostTuningStatus {
  /** 0-based batch the host was applied in. */
  batch: number;
  /** The apply's summary status (applied, degraded, failed), or "unknown" without a summary line. */
  status: string;
  /** Settings the apply changed. */
  changed: number;
  /** The profile digest the host now runs. */
  digest: string;
  /** Kernel arguments still waiting for a reboot (0 once rebooted, or when none are needed). */
  rebootRequired: number;
  /** The gate's verdict: "passed", or "failed" when stopOnFailure is false and verify failed. */
  gate: string;
}

/** Seconds to wait after that before dialling again: by then the old boot's sshd is gone. */
const REBOOT_SETTLE_SECONDS = 30;
/** Max seconds of one SSH dial while a host reboots. */
const REBOOT_DIAL_SECONDS = 10;

/**
 * Tunes SSH hosts in batches: applies on create/update (tune.sh sent on the command's stdin; the
 * boot-time unit installed), optionally reboots into kernel arguments, then gates each host on
 * `tune.sh verify`; the next batch depends on every gate of the one before. Restores on delete.
 * Two resources per host (apply and gate) unless reboot: allowed has kernel arguments to add.
 */
export class RemoteHostTuning extends pulumi.ComponentResource {
  /** Per host: the parsed `summary:` line of tune.sh apply. */
  readonly summaries: pulumi.Output<Record<string, ApplySummary | undefined>>;
  /** Per host: batch, status, changed, digest, pending reboot and gate verdict. */
  readonly statuses: pulumi.Output<Record<string, HostTuningStatus>>;
  /** Hosts whose apply left kernel arguments waiting for a reboot nobody will do (reboot: never). */
  readonly rebootRequired: pulumi.Output<string[]>;
  /** The hosts of each batch, in rollout order. */
  readonly batches: readonly (readonly string[])[];
  /** Per host: the command that applies on create/update and restores on delete. */
  readonly commands: Readonly<Record<string, command.remote.Command>>;
  /** Per host: the `tune.sh verify` gate the next batch depends on. */
  readonly gates: Readonly<Record<string, command.remote.Command>>;
  /** Per host (reboot: allowed and kernel arguments in the profile): the reboot command. */
  readonly reboots: Readonly<Record<string, command.remote.Command>>;
  /**
   * Per host: an empty list. tune.sh now travels in the apply command's stdin.
   * @deprecated Nothing is copied any more; kept so code reading it still compiles.
   */
  readonly copies: Readonly<Record<string, command.remote.CopyToRemote[]>>;

  constructor(name: string, args: RemoteHostTuningArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before super(): bad input must not register even the component. The key, when an
    // Output (a secret from config or a secret store), is known only to the engine's connection.
    const { profile, privateKey: key, ...plain } = args;
    const known = knownNow(key);
    const r =
      known === undefined
        ? resolveRemoteHostTuningOptions(plain, [], ["privateKey"])
        : resolveRemoteHostTuningOptions({ ...plain, privateKey: known });
    if (!r.value) throw new ValidationError(r.issues, `RemoteHostTuning "${name}": invalid args`);
    super("edgetune:nodes:RemoteHostTuning", name, {}, opts);
    const o = r.value;
    const user = o.user;

    const cmds = renderRemoteCommands(profile, o);
    const privateKey = pulumi.secret(key);
    const names = hostResourceNames(o.hosts.map((h) => h.host));
    // A name from before names were collision-free is an alias only where it was unambiguous.
    const legacyUses = new Map<string, number>();
    for (const h of o.hosts) legacyUses.set(legacyName(h.host), (legacyUses.get(legacyName(h.host)) ?? 0) + 1);
    const rebooting = o.reboot === "allowed" && profile.kernelArgs.length > 0;
    const batches = planBatches(o.hosts, o.rollout);

    // Per host only the commands' own stdout Outputs; the outputs below combine them once per
    // group, since every Output per host is kept by the SDK until the whole group has registered.
    const applyOut: Record<string, pulumi.Output<string>> = {};
    const gateOut: Record<string, pulumi.Output<string>> = {};
    const rebooted: Record<string, pulumi.Output<string>> = {};
    const batchOf: Record<string, number> = {};
    const commands: Record<string, command.remote.Command> = {};
    const gates: Record<string, command.remote.Command> = {};
    const reboots: Record<string, command.remote.Command> = {};
    const copied: Record<string, command.remote.CopyToRemote[]> = {};
    // What the next batch waits for: the gates (or the pause after them) of the batch before.
    let previous: pulumi.Resource[] = [];
    // A fleet registers thousands of resources here; the SDK's per-promise debug stacks cost more
    // than everything else per host (components/promise-stacks.ts).
    withoutPromiseStacks(() =>
      batches.forEach((batch, b) => {
        const batchGates: command.remote.Command[] = [];
        for (const h of batch) {
          const id = `${name}-${names[h.host]}`;
          const legacy = `${name}-${legacyName(h.host)}`;
          const aliased = (suffix: string) =>
            id !== legacy && legacyUses.get(legacyName(h.host)) === 1 ? { aliases: [{ name: `${legacy}${suffix}` }] } : {};
          const connection = { host: h.host, port: h.port, user, privateKey };
          // What ends up on the host, and which host: either changing means restore the old, apply the new.
          const triggers = [cmds.tuneShSha256, h.host, h.port];
          // One command per host carries tune.sh on stdin: the group's one payload string, not a
          // copy per host, and re-sent only when the command runs (create, or a changed input).
          const apply = new command.remote.Command(
            `${id}-apply`,
            {
              connection,
              create: cmds.apply,
              update: cmds.apply,
              delete: cmds.restore,
              stdin: cmds.payload,
              triggers,
              addPreviousOutputInEnv: false,
            },
            {
              parent: this,
              dependsOn: previous,
              replaceOnChanges: ["triggers"],
              // The default create-then-delete order would run the old restore after the new apply
              // and silently undo the tuning (test/kernel/remote-replace.test.ts shows both orders).
              deleteBeforeReplace: true,
              ...aliased("-apply"),
            },
          );
          let ready: pulumi.CustomResource = apply;
          if (rebooting) {
            const reboot = new command.remote.Command(
              `${id}-reboot`,
              {
                connection,
                create: renderRebootCommand({
                  host: h.host,
                  sudo: o.sudo,
                  delaySeconds: REBOOT_DELAY_SECONDS,
                  kernelArgs: profile.kernelArgs,
                }),
                triggers,
                addPreviousOutputInEnv: false,
              },
              { parent: this, dependsOn: [apply], replaceOnChanges: ["triggers"] },
            );
            // Dialling at once could reach the old boot's sshd; the check below fails on the old boot id.
            const settle = new command.local.Command(
              `${id}-reboot-settle`,
              {
                create: reboot.stdout.apply((out) => (parseBootId(out) ? `sleep ${REBOOT_DELAY_SECONDS + REBOOT_SETTLE_SECONDS}` : "true")),
                triggers,
              },
              { parent: this, dependsOn: [reboot], replaceOnChanges: ["triggers"] },
            );
            ready = new command.remote.Command(
              `${id}-rebooted`,
              {
                connection: {
                  ...connection,
                  perDialTimeout: REBOOT_DIAL_SECONDS,
                  dialErrorLimit: Math.ceil(o.rebootTimeoutSeconds / REBOOT_DIAL_SECONDS),
                },
                create: reboot.stdout.apply((out) => renderRebootedCheck(h.host, parseBootId(out))),
                triggers,
                addPreviousOutputInEnv: false,
              },
              { parent: this, dependsOn: [settle], replaceOnChanges: ["triggers"] },
            );
            reboots[h.host] = reboot;
          }
          const gate = new command.remote.Command(
            `${id}-gate`,
            {
              connection,
              create: renderGateCommand({ host: h.host, installPath: o.installPath, sudo: o.sudo, stopOnFailure: o.rollout.stopOnFailure }),
              triggers,
              addPreviousOutputInEnv: false,
            },
            { parent: this, dependsOn: [ready], replaceOnChanges: ["triggers"] },
          );
          batchGates.push(gate);
          applyOut[h.host] = apply.stdout;
          gateOut[h.host] = gate.stdout;
          // Waits for the after-reboot check: its success is what clears the pending reboot.
          if (rebooting) rebooted[h.host] = ready.id;
          batchOf[h.host] = b;
          commands[h.host] = apply;
          gates[h.host] = gate;
          copied[h.host] = [];
        }
        previous =
          o.rollout.pauseSeconds > 0 && b < batches.length - 1
            ? [
                new command.local.Command(
                  `${name}-pause-${b + 1}`,
                  { create: `sleep ${o.rollout.pauseSeconds}`, triggers: [cmds.tuneShSha256] },
                  { parent: this, dependsOn: batchGates, replaceOnChanges: ["triggers"] },
                ),
              ]
            : batchGates;
      }),
    );
    this.summaries = pulumi
      .output(applyOut)
      .apply((outs) => Object.fromEntries(Object.entries(outs).map(([h, out]) => [h, parseApplySummary(out)])));
    this.statuses = pulumi.all([this.summaries, pulumi.output(gateOut), pulumi.output(rebooted)]).apply(([sums, gs]) => {
      const all: Record<string, HostTuningStatus> = {};
      for (const h of Object.keys(batchOf)) {
        const s = sums[h];
        all[h] = {
          batch: batchOf[h],
          status: s?.status ?? "unknown",
          changed: s?.changed ?? 0,
          digest: s?.digest ?? "",
          // A reboot that passed its check took the pending kernel arguments with it.
          rebootRequired: rebooting ? 0 : (s?.rebootRequired ?? 0),
          gate: /^gate: status=(\w+)/m.exec(gs[h] ?? "")?.[1] ?? "unknown",
        };
      }
      // stopOnFailure: false lets the rollout go on; the failure must still be seen.
      const failed = Object.entries(all)
        .filter(([, s]) => s.gate === "failed")
        .map(([h]) => h);
      if (failed.length) pulumi.log.warn(`RemoteHostTuning "${name}": tune.sh verify failed after apply on ${failed.join(", ")}`, this);
      return all;
    });
    this.rebootRequired = this.statuses.apply((all) => {
      const hosts = Object.entries(all)
        .filter(([, s]) => s.rebootRequired > 0)
        .map(([h]) => h);
      if (hosts.length)
        pulumi.log.warn(
          `RemoteHostTuning "${name}": reboot: never, so ${hosts.join(", ")} still need${hosts.length === 1 ? "s" : ""} a reboot with kernel arguments "${profile.kernelArgs.join(" ")}" (add them to the boot loader and reboot, or set reboot: allowed to roll the reboots batch by batch)`,
          this,
        );
      return hosts;
    });
    this.batches = batches.map((bt) => bt.map((h) => h.host));
    this.commands = commands;
    this.gates = gates;
    this.reboots = reboots;
    this.copies = copied;
    this.registerOutputs({ summaries: this.summaries, statuses: this.statuses, rebootRequired: this.rebootRequired });
  }
}
