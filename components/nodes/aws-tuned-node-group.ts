import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { knownNow, pendingKeys, type WithInputs } from "../inputs";
import { ValidationError } from "../validation";
import { kubernetesPortProblem } from "../tuning/ports";
import { resolveAwsTunedNodeGroupOptions, type AwsAutoScalingOptions, type AwsTunedNodeGroupOptions } from "./aws-tuned-node-group-spec";
import type { ResolvedProfile } from "../tuning/types";
import { renderCloudInit, USER_DATA_MAX_BYTES } from "./cloud-init";

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

/** The user-data must fit EC2's limit: the rendered size against it, for this profile and format. */
export function userDataProblem(profile: ResolvedProfile, o: { userDataFormat: string; nodeadmConfig?: string }): string | undefined {
  const ci = renderCloudInit(profile, {
    format: o.userDataFormat === "eks-managed" ? "mime-multipart" : "cloud-config",
    nodeadmConfig: o.nodeadmConfig,
  });
  return ci.userData.length > USER_DATA_MAX_BYTES
    ? `got ${ci.userData.length} bytes of user-data; allowed: at most ${USER_DATA_MAX_BYTES} bytes (EC2's limit)`
    : undefined;
}

/** A launch template whose user-data tunes the node at first boot, every boot and on NIC resets; optionally an ASG. */
export class AwsTunedNodeGroup extends pulumi.ComponentResource {
  readonly launchTemplate: aws.ec2.LaunchTemplate;
  readonly autoScalingGroup?: aws.autoscaling.Group;
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
      const tooBig = userDataProblem(profile, r.value);
      if (tooBig) issues.push({ path: "profile", message: tooBig });
      const ports = r.value.userDataFormat === "eks-managed" && kubernetesPortProblem(profile, `EKS managed node group "${name}"`);
      if (ports) issues.push({ path: "profile", message: ports });
    }
    if (!r.value || issues.length) throw new ValidationError(issues, `AwsTunedNodeGroup "${name}": invalid args`);
    super("edgetune:nodes:AwsTunedNodeGroup", name, {}, opts);
    const o = r.value;
    const eks = o.userDataFormat === "eks-managed";
    const a = o.autoScaling;
    const ci = renderCloudInit(profile, { format: eks ? "mime-multipart" : "cloud-config", nodeadmConfig: o.nodeadmConfig });

    this.rebootRequiredFor = ci.rebootRequiredFor;
    const tags = { "app.kubernetes.io/part-of": "edgetune", "edgetune:profile": profile.name, ...o.tags };
    this.launchTemplate = new aws.ec2.LaunchTemplate(
      `${name}-lt`,
      {
        namePrefix: `${name}-`,
        description: `edgetune profile ${profile.name}`,
        imageId,
        instanceType: o.instanceType,
        vpcSecurityGroupIds: securityGroupIds,
        iamInstanceProfile: iamInstanceProfileArn ? { arn: iamInstanceProfileArn } : undefined,
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
          minSize: a.minSize,
          maxSize: a.maxSize,
          desiredCapacity: a.desiredCapacity,
          vpcZoneIdentifiers: autoScaling.subnetIds,
          launchTemplate: { id: this.launchTemplate.id, version: this.launchTemplate.latestVersion.apply(String) },
          // A new template version (a changed profile) rolls the instances instead of waiting for churn.
          instanceRefresh: { strategy: "Rolling", preferences: { minHealthyPercentage: 90 } },
          tags: Object.entries(tags).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
        },
        { parent: this },
      );
    }
    this.registerOutputs({
      launchTemplateId: this.launchTemplate.id,
      autoScalingGroupName: this.autoScalingGroup?.name,
      rebootRequiredFor: this.rebootRequiredFor,
    });
  }
}
