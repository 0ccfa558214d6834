import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { parseApplySummary, type ApplySummary } from "../nodes/remote-script";
import { checkProxySpec, HEALTH_PATH, METRICS_PATH } from "../proxy/haproxy";
import { ValidationError } from "../validation";
import { resolveLocalLabOptions } from "./local-lab-spec";
import { labAddresses } from "./topology";

export { localLabEnvironment, renderLabHaproxyConfig, renderLocalLabSteps, type LocalLabArgs, type LocalLabSteps } from "./lab-steps";
import { localLabEnvironment, renderLocalLabSteps, type LocalLabArgs } from "./lab-steps";

/**
 * The `local` target: this machine's lab topology (network namespaces as
 * nodes, HAProxy between client and backend) as one command.local.Command
 * whose create sets up, tunes and starts, and whose delete stops, restores
 * and tears down — so `pulumi destroy` leaves the machine as before.
 */
export class LocalLab extends pulumi.ComponentResource {
  /** The parsed `summary:` of tune.sh apply in the proxy namespace. */
  readonly tuning: pulumi.Output<ApplySummary | undefined>;
  /** Where the client namespace reaches the proxy's listeners, metrics and health endpoints. */
  readonly endpoints: Record<string, string>;
  readonly digest: string;
  /** The command whose create builds, tunes and starts the lab, and whose delete tears it down. */
  readonly command: command.local.Command;

  constructor(name: string, args: LocalLabArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before super(): bad input must not register even the component.
    const { profile, proxy, machine, ...options } = args;
    const r = resolveLocalLabOptions(name, options);
    const spec = r.value ? checkProxySpec(proxy, { profile, ...machine }, ["proxy"]) : undefined;
    if (!r.value || !spec?.spec) throw new ValidationError([...r.issues, ...(spec?.issues ?? [])], `LocalLab "${name}": invalid args`);
    super("edgetune:lab:LocalLab", name, {}, opts);
    const { labDir, topology } = r.value;

    const steps = renderLocalLabSteps({ profile, proxy, machine, labDir, topology });
    const a = labAddresses(topology);
    const lab = new command.local.Command(
      `${name}-lab`,
      {
        create: steps.create,
        delete: steps.delete,
        environment: localLabEnvironment(steps, labDir),
        interpreter: ["/bin/sh", "-c"],
        triggers: [steps.digest, labDir],
      },
      // Restore the old lab before building the new one: the reverse order would tear down what was just built.
      { parent: this, deleteBeforeReplace: true, replaceOnChanges: ["triggers", "environment"] },
    );
    this.digest = steps.digest;
    this.command = lab;
    this.tuning = lab.stdout.apply((out) => parseApplySummary(out));
    this.endpoints = Object.fromEntries([
      ...spec.spec.listeners.map((l) => [l.name, `${l.mode === "http" ? "http" : "tcp"}://${a.proxy}:${l.port}`]),
      ["metrics", `http://${a.proxy}:${spec.spec.metricsPort}${METRICS_PATH}`],
      ["health", `http://${a.proxy}:${spec.spec.healthPort}${HEALTH_PATH}`],
    ]);
    this.registerOutputs({ tuning: this.tuning, endpoints: this.endpoints, digest: this.digest });
  }
}
