import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { knownNow, type WithInputs } from "../inputs";
import { ValidationError } from "../validation";
import type { ResolvedProfile } from "../tuning/types";
import { resolveRemoteHostTuningOptions, type RemoteHostTuningOptions } from "./remote-host-tuning-spec";
import { parseApplySummary, renderRemoteCommands, type ApplySummary } from "./remote-script";

/**
 * Arguments of RemoteHostTuning: the options of its spec (remote-host-tuning-spec.ts, where
 * every default and bound is written), with the private key also accepted as an Output.
 */
export type RemoteHostTuningArgs = WithInputs<RemoteHostTuningOptions, "privateKey"> & {
  /** The resolved profile every host in this group gets. */
  profile: ResolvedProfile;
};

/** Tunes SSH hosts: copies the rendered artifacts, applies on create/update, restores on delete. */
export class RemoteHostTuning extends pulumi.ComponentResource {
  /** Per host: the parsed `summary:` line of tune.sh apply. */
  readonly summaries: pulumi.Output<Record<string, ApplySummary | undefined>>;
  /** Per host: the command that applies on create/update and restores on delete. */
  readonly commands: Readonly<Record<string, command.remote.Command>>;
  /** Per host: the copies of the rendered files it runs from. */
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
    const summaries: Record<string, pulumi.Output<ApplySummary | undefined>> = {};
    const commands: Record<string, command.remote.Command> = {};
    const copied: Record<string, command.remote.CopyToRemote[]> = {};
    for (const h of o.hosts) {
      const id = `${name}-${h.host.replace(/[^A-Za-z0-9-]/g, "-")}`;
      const connection = { host: h.host, port: h.port, user, privateKey };
      const copies = Object.entries(cmds.stagedFiles).map(
        ([remotePath, content]) =>
          new command.remote.CopyToRemote(
            `${id}-${remotePath
              .split("/")
              .slice(-2)
              .join("-")
              .replace(/[^A-Za-z0-9.-]/g, "-")}`,
            { connection, remotePath, source: new pulumi.asset.StringAsset(content), triggers: [cmds.tuneShSha256] },
            { parent: this },
          ),
      );
      const apply = new command.remote.Command(
        `${id}-apply`,
        {
          connection,
          create: cmds.apply,
          update: cmds.apply,
          delete: cmds.restore,
          // What ends up on the host, and which host: either changing means restore the old, apply the new.
          triggers: [cmds.tuneShSha256, h.host, h.port],
          addPreviousOutputInEnv: false,
        },
        {
          parent: this,
          dependsOn: copies,
          replaceOnChanges: ["triggers"],
          // The default create-then-delete order would run the old restore after the new apply
          // and silently undo the tuning (test/kernel/remote-replace.test.ts shows both orders).
          deleteBeforeReplace: true,
        },
      );
      summaries[h.host] = apply.stdout.apply(parseApplySummary);
      commands[h.host] = apply;
      copied[h.host] = copies;
    }
    this.summaries = pulumi.output(summaries);
    this.commands = commands;
    this.copies = copied;
    this.registerOutputs({ summaries: this.summaries });
  }
}
