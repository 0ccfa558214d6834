import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { knownNow, pendingKeys, type WithInputs } from "../inputs";
import { ValidationError } from "../validation";
import { kubernetesPortProblem } from "../tuning/ports";
import { resolveAwsTunedNodeGroupOptions, type AwsAutoScalingOptions, type AwsTunedNodeGroupOptions } from "./aws-tuned-node-group-spec";
import type { ResolvedProfile } from "../tuning/types";
import { renderCloudInit } from "./cloud-init";
import { userDataProblem } from "./user-data";

export { userDataProblem };
import {
  cloudInitOptionsOf,
  EC2_ASSUME_ROLE_POLICY,
  lifecycleGateOf,
  rebootWarning,
  renderInstanceRolePolicy,
  renderLifecycleHook,
} from "./aws-lifecycle";

/** Options that may be Outputs of other resources (an AMI lookup, a security group, a KMS key). */
type InputOptions = "imageId" | "securityGroupIds" | "iamInstanceProfileArn" | "ebsKmsKeyId";

/**
 * Arguments of AwsTunedNodeGroup: the options of its spec (aws-tuned-node-group-spec.ts, where
 * every default and bound is written), with ids that come from other resources as Outputs.
 */
export type AwsTunedNodeGroupArgs = WithInputs<Omit<AwsTunedNodeGroupOptions, "autoScaling">, InputOptions> & {
  /** The resolved profile rendered into the user-data. */
  profile: ResolvedProfile;
  /** Create an Auto Scaling group from the template (subnets may be Outputs). */
  autoScaling?: Omit<AwsAutoScalingOptions, "subnetIds"> & { subnetIds: pulumi.Input<string>[] };
};

/** A launch template whose user-data tunes the node at first boot, every boot and on NIC resets; optionally an ASG. */
export class AwsTunedNodeGroup extends pulumi.ComponentResource {
  readonly launchTemplate: aws.ec2.LaunchTemplate;
  readonly autoScalingGroup?: aws.autoscaling.Group;
  /** The instance role the component created for the launch gate (none when iamInstanceProfileArn is given). */
  readonly instanceRole?: aws.iam.Role;
  readonly instanceProfile?: aws.iam.InstanceProfile;
  /** Kernel arguments (1 GiB huge pages) that only apply after a reboot; empty when none. */
  readonly rebootRequiredFor: string[];

  constructor(name: string, args: AwsTunedNodeGroupArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before super(): bad input must not register even the component. Ids given as
    // Outputs are the engine's to check; their presence and count are checked here.
    const { profile, imageId, securityGroupIds, iamInstanceProfileArn, ebsKmsKeyId, autoScaling, ...plain } = args;
    const inputs = { imageId, securityGroupIds, iamInstanceProfileArn, ebsKmsKeyId };
    const pending = pendingKeys(inputs).map(String);
    const known = Object.fromEntries(Object.entries(inputs).filter(([k, v]) => v !== undefined && !pending.includes(k)));
    const subnets = autoScaling && { ...autoScaling, subnetIds: autoScaling.subnetIds.map((id) => knownNow(id) ?? "(an Output)") };
    const r = resolveAwsTunedNodeGroupOptions({ ...plain, ...known, ...(subnets ? { autoScaling: subnets } : {}) }, [], pending);
    const issues = [...r.issues];
    if (r.value) {
      const tooBig = userDataProblem(profile, r.value, name, pulumi.getStack());
      if (tooBig) issues.push({ path: "profile", message: tooBig });
      const ports = r.value.userDataFormat === "eks-managed" && kubernetesPortProblem(profile, `EKS managed node group "${name}"`);
      if (ports) issues.push({ path: "profile", message: ports });
    }
    if (!r.value || issues.length) throw new ValidationError(issues, `AwsTunedNodeGroup "${name}": invalid args`);
    super("edgetune:nodes:AwsTunedNodeGroup", name, {}, opts);
    const o = r.value;
    const a = o.autoScaling;
    const gate = lifecycleGateOf(o, name, pulumi.getStack());
    const ci = renderCloudInit(profile, cloudInitOptionsOf(o, name, pulumi.getStack()));

    this.rebootRequiredFor = ci.rebootRequiredFor;
    const warning = rebootWarning(profile, o);
    if (warning) void pulumi.log.warn(`AwsTunedNodeGroup "${name}": ${warning}`, this);
    let instanceProfileArn: pulumi.Input<string> | undefined = iamInstanceProfileArn;
    if (gate && !iamInstanceProfileArn) {
      // The instance's only permission: completing this group's hook. Created before the ASG, so
      // the first instances can already report; the policy names the group, fixed in advance.
      this.instanceRole = new aws.iam.Role(
        `${name}-role`,
        { assumeRolePolicy: JSON.stringify(EC2_ASSUME_ROLE_POLICY), description: `edgetune launch gate of ASG ${gate.groupName}` },
        { parent: this },
      );
      const policy = new aws.iam.RolePolicy(
        `${name}-gate`,
        {
          role: this.instanceRole.name,
          policy: pulumi
            .all([aws.getPartitionOutput({}, { parent: this }), aws.getRegionOutput({}, { parent: this })])
            .apply(([p, r]) => JSON.stringify(renderInstanceRolePolicy(gate.groupName, { partition: p.partition, region: r.region }))),
        },
        { parent: this },
      );
      this.instanceProfile = new aws.iam.InstanceProfile(
        `${name}-profile`,
        { role: this.instanceRole.name },
        { parent: this, dependsOn: policy },
      );
      instanceProfileArn = this.instanceProfile.arn;
    }
    const tags = { "app.kubernetes.io/part-of": "edgetune", "edgetune:profile": profile.name, ...o.tags };
    this.launchTemplate = new aws.ec2.LaunchTemplate(
      `${name}-lt`,
      {
        namePrefix: `${name}-`,
        description: `edgetune profile ${profile.name}`,
        imageId,
        instanceType: o.instanceType,
        vpcSecurityGroupIds: securityGroupIds,
        iamInstanceProfile: instanceProfileArn ? { arn: instanceProfileArn } : undefined,
        userData: ci.userData.toString("base64"),
        updateDefaultVersion: true,
        // IMDSv2 only; hop limit 2 so containers on the node still reach it through the extra hop.
        metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 2, instanceMetadataTags: "disabled" },
        blockDeviceMappings: [
          {
            deviceName: o.rootDeviceName,
            ebs: {
              encrypted: "true",
              kmsKeyId: ebsKmsKeyId,
              volumeSize: o.rootVolumeSizeGiB,
              volumeType: "gp3",
              deleteOnTermination: "true",
            },
          },
        ],
        tagSpecifications: ["instance", "volume", "network-interface"].map((resourceType) => ({ resourceType, tags })),
        tags,
      },
      { parent: this },
    );
    if (a && autoScaling) {
      this.autoScalingGroup = new aws.autoscaling.Group(
        `${name}-asg`,
        {
          ...(gate
            ? {
                name: gate.groupName,
                // Declared with the group, so the first instances are gated too.
                initialLifecycleHooks: [renderLifecycleHook(gate, a.lifecycleHook.heartbeatTimeoutSeconds)],
                // Creation waits for minSize instances in service, which now includes their hook.
                waitForCapacityTimeout: `${a.lifecycleHook.heartbeatTimeoutSeconds + 600}s`,
              }
            : { name: a.name }),
          minSize: a.minSize,
          maxSize: a.maxSize,
          desiredCapacity: a.desiredCapacity,
          vpcZoneIdentifiers: autoScaling.subnetIds,
          launchTemplate: { id: this.launchTemplate.id, version: this.launchTemplate.latestVersion.apply(String) },
          // A new template version (a changed profile) rolls the instances instead of waiting for churn.
          // A replacement is in service only after its hook completed with CONTINUE; one whose tuning
          // failed is abandoned (terminated) and never counts towards minHealthyPercentage.
          instanceRefresh: { strategy: "Rolling", preferences: { minHealthyPercentage: a.minHealthyPercentage } },
          tags: Object.entries(tags).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
        },
        { parent: this },
      );
    }
    this.registerOutputs({
      launchTemplateId: this.launchTemplate.id,
      autoScalingGroupName: this.autoScalingGroup?.name,
      instanceProfileArn: this.instanceProfile?.arn,
      rebootRequiredFor: this.rebootRequiredFor,
    });
  }
}
