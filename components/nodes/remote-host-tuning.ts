import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { formatPath, show, ValidationError, type PathSegment, type ValidationIssue } from "../tuning/profile";
import type { ResolvedProfile } from "../tuning/types";
import { checkRemoteOptions, parseApplySummary, REMOTE_DEFAULTS, renderRemoteCommands, type ApplySummary } from "./remote-script";

export interface RemoteHost {
  /** Address (IP or DNS name) to connect to. */
  host: string;
  /** SSH port. @default 22 */
  port?: number;
}

export interface RemoteHostTuningArgs {
  /** The resolved profile every host in this group gets. */
  profile: ResolvedProfile;
  /** The hosts; each gets its own copy and command. */
  hosts: RemoteHost[];
  /** SSH user. @default "root" */
  user?: string;
  /** SSH private key (PEM/OpenSSH). Wrapped as a Pulumi secret whatever it was given as. */
  privateKey: pulumi.Input<string>;
  /** Run tune.sh through `sudo -n` (passwordless sudo) because `user` is not root. @default false */
  sudo?: boolean;
  /** Remote staging directory for the copied artifacts. @default "/var/tmp/edgetune" */
  stagingDir?: string;
  /** Where tune.sh is installed for `restore` at destroy time. @default "/usr/local/lib/edgetune/tune.sh" */
  installPath?: string;
}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Every problem with the arguments, paths under `prefix` (the stack loader passes `nodeGroups[i].ssh`). */
export function checkRemoteHostTuningArgs(args: Omit<RemoteHostTuningArgs, "profile">, prefix: readonly PathSegment[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const bad = (path: Array<string | number>, value: unknown, allowed: string) => issues.push({ path: formatPath([...prefix, ...path]), message: `got ${show(value)}; allowed: ${allowed}` });
  if (!Array.isArray(args.hosts) || args.hosts.length === 0) bad(["hosts"], args.hosts, "at least one host");
  const seen = new Set<string>();
  (args.hosts ?? []).forEach((h, i) => {
    if (!HOST.test(h.host ?? "")) bad(["hosts", i, "host"], h.host, "an IP address or DNS name");
    else if (seen.has(h.host)) bad(["hosts", i, "host"], h.host, "each host once");
    seen.add(h.host);
    if (h.port !== undefined && !(Number.isInteger(h.port) && h.port >= 1 && h.port <= 65535)) bad(["hosts", i, "port"], h.port, "1..65535");
  });
  if (!USER.test(args.user ?? "root")) bad(["user"], args.user, "a POSIX user name");
  if (args.privateKey === undefined || args.privateKey === "") bad(["privateKey"], "(empty)", "an SSH private key (a Pulumi secret)");
  issues.push(...checkRemoteOptions({ stagingDir: args.stagingDir, installPath: args.installPath }, prefix));
  return issues;
}

/** Tunes SSH hosts: copies the rendered artifacts, applies on create/update, restores on delete. */
export class RemoteHostTuning extends pulumi.ComponentResource {
  /** Per host: the parsed `summary:` line of tune.sh apply. */
  readonly summaries: pulumi.Output<Record<string, ApplySummary | undefined>>;
  /** Per host: the command that applies on create/update and restores on delete. */
  readonly commands: Readonly<Record<string, command.remote.Command>>;
  /** Per host: the copies of the rendered files it runs from. */
  readonly copies: Readonly<Record<string, command.remote.CopyToRemote[]>>;

  constructor(name: string, args: RemoteHostTuningArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before super(): bad input must not register even the component.
    const issues = checkRemoteHostTuningArgs(args, []);
    if (issues.length) throw new ValidationError(issues, `RemoteHostTuning "${name}": invalid args`);
    super("edgetune:nodes:RemoteHostTuning", name, {}, opts);
    const user = args.user ?? "root";

    const cmds = renderRemoteCommands(args.profile, {
      stagingDir: args.stagingDir ?? REMOTE_DEFAULTS.stagingDir,
      installPath: args.installPath ?? REMOTE_DEFAULTS.installPath,
      sudo: args.sudo ?? false,
    });
    const privateKey = pulumi.secret(args.privateKey);
    const summaries: Record<string, pulumi.Output<ApplySummary | undefined>> = {};
    const commands: Record<string, command.remote.Command> = {};
    const copied: Record<string, command.remote.CopyToRemote[]> = {};
    for (const h of args.hosts) {
      const id = `${name}-${h.host.replace(/[^A-Za-z0-9-]/g, "-")}`;
      const connection = { host: h.host, port: h.port ?? 22, user, privateKey };
      const copies = Object.entries(cmds.stagedFiles).map(
        ([remotePath, content]) =>
          new command.remote.CopyToRemote(`${id}-${remotePath.split("/").slice(-2).join("-").replace(/[^A-Za-z0-9.-]/g, "-")}`, { connection, remotePath, source: new pulumi.asset.StringAsset(content), triggers: [cmds.tuneShSha256] }, { parent: this }),
      );
      const apply = new command.remote.Command(
        `${id}-apply`,
        {
          connection,
          create: cmds.apply,
          update: cmds.apply,
          delete: cmds.restore,
          // What ends up on the host, and which host: either changing means restore the old, apply the new.
          triggers: [cmds.tuneShSha256, h.host, h.port ?? 22],
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
