/**
 * The spec of a stack's `edgetune:*` config, composed of the components' own specs: a node
 * group's `ssh` section is RemoteHostTuning's options, `aws` AwsTunedNodeGroup's, `kubernetes`
 * KubernetesNodeTuner's, `proxy` the proxy's and ProxyDaemonSet's, `benchmark` BenchmarkSuite's.
 * Stack keys are the components' argument names. The loader parses each section with these;
 * the JSON Schema for stacks/Pulumi.*.yaml and docs/config-reference.md are generated from them.
 */
import { z } from "zod";
import { benchmarkSuiteSpec } from "../components/bench/benchmark-suite-spec";
import { SCENARIO_NAMES } from "../components/bench/result";
import { localLabSpec } from "../components/lab/local-lab-spec";
import { awsTunedNodeGroupShape, awsRules } from "../components/nodes/aws-tuned-node-group-spec";
import { kubernetesNodeTunerShape, tunerRules } from "../components/nodes/kubernetes-node-tuner-spec";
import { remoteHostTuningShape } from "../components/nodes/remote-host-tuning-spec";
import { capacitySpec } from "../components/proxy/capacity";
import { proxyDaemonSetRules, proxyDaemonSetShape } from "../components/proxy/proxy-daemonset-spec";
import { proxySpecSchema } from "../components/proxy/proxy-spec";
import { tuningProfileSchema } from "../components/tuning/profile-spec";
import { grammar } from "../components/validation";

export const TARGETS = ["local", "ssh", "aws", "kubernetes"] as const;
export type Target = (typeof TARGETS)[number];

/** Keys renamed to the components' argument names; the old ones work, with a warning, for one release. */
export const DEPRECATED_KEYS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  aws: { amiId: "imageId" },
  kubernetes: { tunerImage: "image", restoreOnDelete: "restoreOnRemove" },
};

/** What changed with a rename besides the name, for its warning. */
export const DEPRECATION_NOTES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  kubernetes: { restoreOnDelete: "it now restores only when the tuning is removed from a node (never when a pod merely stops)" },
};

/** A `secure:` value as a stack file holds it; the engine hands the program the decrypted text. */
const secureValue = z
  .strictObject({ secure: z.string() })
  .describe("A Pulumi secret: `pulumi config set --secret --path 'nodeGroups[N].ssh.privateKey' < key`.");

export const sshSectionSpec = z
  .strictObject({
    ...remoteHostTuningShape,
    privateKey: z
      .union([secureValue, z.string()])
      .describe("SSH private key: a `secure:` value (or a secret the engine decrypts, e.g. an ESC fn::secret); never plain text."),
  })
  .describe("RemoteHostTuning: SSH hosts, required for target ssh.");

export const awsSectionSpec = awsRules(z.strictObject(awsTunedNodeGroupShape)).describe(
  "AwsTunedNodeGroup: a launch template (and ASG), required for target aws.",
);

export const kubernetesSectionSpec = tunerRules(
  z.strictObject({ ...kubernetesNodeTunerShape, image: kubernetesNodeTunerShape.image.optional() }),
).describe(
  "KubernetesNodeTuner: with `image` a tuner DaemonSet tunes this group; without, the proxy's tuning sidecar does (proxy.kubernetes with this group's profile).",
);

export const localSectionSpec = localLabSpec.describe("LocalLab: this machine, network namespaces as nodes.");

export const nodeGroupName = () =>
  z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,39}[a-z0-9])?$/, 'allowed: lowercase letters, digits and "-" (not at either end), at most 41 characters');

const groupBase = {
  name: nodeGroupName().describe("Node group name: part of every resource and object name; unique."),
  profile: z.string().describe("A key of `profiles`."),
};
export const nodeGroupSpec = z.discriminatedUnion("target", [
  z.strictObject({ ...groupBase, target: z.literal("local"), local: localSectionSpec.optional() }),
  z.strictObject({ ...groupBase, target: z.literal("ssh"), ssh: sshSectionSpec }),
  z.strictObject({ ...groupBase, target: z.literal("aws"), aws: awsSectionSpec }),
  z.strictObject({ ...groupBase, target: z.literal("kubernetes"), kubernetes: kubernetesSectionSpec.optional() }),
]);

export const proxyKubernetesSectionSpec = proxyDaemonSetRules(
  z.strictObject({
    ...proxyDaemonSetShape,
    name: z.string().default("proxy").describe("Instance name: part of every object name (a DNS label of at most 40 characters)."),
  }),
).describe("ProxyDaemonSet: render and deploy the proxy to Kubernetes.");

export const proxySectionSpec = proxySpecSchema.extend({
  profile: z.string().describe("The node profile the proxy runs on: backlog, nofile and ephemeral ports come from it."),
  kubernetes: proxyKubernetesSectionSpec.optional(),
});

/** Labels the lab itself uses for its runs; a variant cannot take one. */
export const LAB_RESERVED_LABELS = ["baseline", "tuned", "direct", "forward", "no-splice"] as const;

export const labSectionSpec = z.strictObject({
  variants: z
    .array(
      z.strictObject({
        name: z
          .string()
          .regex(/^[a-z][a-z0-9-]{0,19}$/, 'allowed: lowercase letters, digits and "-", starting with a letter, at most 20 characters')
          .describe("Label of the variant's runs."),
        profile: z.string().describe("A key of `profiles`: the tuned profile with one setting changed."),
        scenarios: z.array(z.enum(SCENARIO_NAMES)).min(1).describe("Scenarios the variant runs."),
        why: grammar.text(200).optional().describe("What the changed setting is expected to do, for the report."),
      }),
    )
    .default([])
    .describe("Profiles `edgetune lab` runs after baseline and tuned, each compared with tuned."),
});

/** Every `edgetune:` key of a stack; any other is an error. */
export const stackConfigSpec = z.strictObject({
  profiles: z.record(grammar.profileName(), tuningProfileSchema).describe("Tuning profiles by name (required)."),
  nodeGroups: z
    .array(nodeGroupSpec)
    .min(1)
    .describe("Node groups: which nodes get which profile, on which target (required, at least one)."),
  proxy: proxySectionSpec
    .optional()
    .describe("The proxy: HAProxy listeners and backends, the profile its nodes run, and Kubernetes options."),
  benchmark: benchmarkSuiteSpec.optional().describe("BenchmarkSuite: Jobs against the proxy, baseline then tuned, with thresholds."),
  capacity: capacitySpec.optional().describe("Inputs of the proxy fleet estimate in PLAN.md."),
  lab: labSectionSpec.optional().describe("Variants `edgetune lab` compares with the tuned profile."),
});

export const STACK_KEYS = Object.keys(stackConfigSpec.shape) as Array<keyof typeof stackConfigSpec.shape>;
export { secureValue };
