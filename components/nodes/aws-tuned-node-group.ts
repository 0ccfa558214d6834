import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { formatPath, show, ValidationError, type PathSegment, type ValidationIssue } from "../tuning/profile";
import type { ResolvedProfile } from "../tuning/types";
import { renderCloudInit, USER_DATA_MAX_BYTES } from "./cloud-init";

export interface AwsAutoScalingArgs {
  /** Subnets to launch into. */
  subnetIds: pulumi.Input<string>[];
  /** @default 1 */
  minSize?: number;
  /** @default 3 */
  maxSize?: number;
  /** @default minSize */
  desiredCapacity?: number;
}

export interface AwsTunedNodeGroupArgs {
  /** The resolved profile rendered into the user-data. */
  profile: ResolvedProfile;
  /** AMI; leave unset for an EKS managed node group that picks its own AMI. */
  imageId?: pulumi.Input<string>;
  /** @default "c6i.large" (omitted for EKS managed node groups, which set it) */
  instanceType?: string;
  /** Security groups for the instances. @default none */
  securityGroupIds?: pulumi.Input<string>[];
  /** Instance profile ARN. @default none */
  iamInstanceProfileArn?: pulumi.Input<string>;
  /** Root volume size. @default 20 */
  rootVolumeSizeGiB?: number;
  /** Root device name of the AMI. @default "/dev/xvda" */
  rootDeviceName?: string;
  /** KMS key for the (always encrypted) root volume. @default the account's EBS default key */
  ebsKmsKeyId?: pulumi.Input<string>;
  /**
   * "cloud-config" for an Auto Scaling group or plain instances; "eks-managed" renders MIME
   * multipart, which EKS managed node groups require to merge their own user-data.
   * @default "cloud-config"
   */
  userDataFormat?: "cloud-config" | "eks-managed";
  /** nodeadm NodeConfig YAML added as its own MIME part (AL2023, "eks-managed" only). @default none */
  nodeadmConfig?: string;
  /** Tags on the launch template, instances, volumes and network interfaces (and the ASG). @default {} */
  tags?: Record<string, string>;
  /** Create an Auto Scaling group from the template. @default none: use `launchTemplate` elsewhere (e.g. aws.eks.NodeGroup) */
  autoScaling?: AwsAutoScalingArgs;
}

/**
 * Every problem with the arguments, paths under `prefix` (the stack loader passes
 * `nodeGroups[i].aws`). Renders the user-data to check EC2's size limit.
 */
export function checkAwsTunedNodeGroupArgs(args: AwsTunedNodeGroupArgs, prefix: readonly PathSegment[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const bad = (path: Array<string | number>, value: unknown, allowed: string) => issues.push({ path: formatPath([...prefix, ...path]), message: `got ${show(value)}; allowed: ${allowed}` });
  const eks = args.userDataFormat === "eks-managed";
  if (args.userDataFormat !== undefined && !["cloud-config", "eks-managed"].includes(args.userDataFormat)) bad(["userDataFormat"], args.userDataFormat, '"cloud-config" or "eks-managed"');
  if (args.instanceType !== undefined && !/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(args.instanceType)) bad(["instanceType"], args.instanceType, 'an EC2 instance type such as "c6in.xlarge"');
  const size = args.rootVolumeSizeGiB ?? 20;
  if (!Number.isInteger(size) || size < 8 || size > 16384) bad(["rootVolumeSizeGiB"], size, "an integer from 8 to 16384");
  if (args.nodeadmConfig !== undefined && !eks) bad(["nodeadmConfig"], "(set)", 'only with userDataFormat "eks-managed"');
  if (!eks && args.imageId === undefined) bad(["imageId"], undefined, 'an AMI id (only an "eks-managed" template may leave it to EKS)');
  for (const [k, v] of Object.entries(args.tags ?? {})) if (k.length > 128 || v.length > 256 || k.startsWith("aws:")) bad(["tags", k], v, "AWS tag keys up to 128 characters (not aws:*) and values up to 256");
  const a = args.autoScaling;
  if (a) {
    if (eks) bad(["autoScaling"], "(set)", 'not with "eks-managed": the managed node group owns the ASG');
    if (!a.subnetIds?.length) bad(["autoScaling", "subnetIds"], a.subnetIds, "at least one subnet");
    const min = a.minSize ?? 1, max = a.maxSize ?? 3, want = a.desiredCapacity ?? min;
    if (!(Number.isInteger(min) && Number.isInteger(max) && Number.isInteger(want) && min >= 0 && min <= want && want <= max)) bad(["autoScaling"], { minSize: min, desiredCapacity: want, maxSize: max }, "integers with 0 <= minSize <= desiredCapacity <= maxSize");
  }
  const ci = renderCloudInit(args.profile, { format: eks ? "mime-multipart" : "cloud-config", nodeadmConfig: args.nodeadmConfig });
  if (ci.userData.length > USER_DATA_MAX_BYTES) bad(["profile"], `${ci.userData.length} bytes of user-data`, `at most ${USER_DATA_MAX_BYTES} bytes (EC2's limit)`);
  return issues;
}

/** A launch template whose user-data tunes the node at first boot, every boot and on NIC resets; optionally an ASG. */
export class AwsTunedNodeGroup extends pulumi.ComponentResource {
  readonly launchTemplate: aws.ec2.LaunchTemplate;
  readonly autoScalingGroup?: aws.autoscaling.Group;
  /** Kernel arguments (1 GiB huge pages) that only apply after a reboot; empty when none. */
  readonly rebootRequiredFor: string[];

  constructor(name: string, args: AwsTunedNodeGroupArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before super(): bad input must not register even the component.
    const issues = checkAwsTunedNodeGroupArgs(args, []);
    if (issues.length) throw new ValidationError(issues, `AwsTunedNodeGroup "${name}": invalid args`);
    super("edgetune:nodes:AwsTunedNodeGroup", name, {}, opts);
    const eks = args.userDataFormat === "eks-managed";
    const size = args.rootVolumeSizeGiB ?? 20;
    const a = args.autoScaling;
    const ci = renderCloudInit(args.profile, { format: eks ? "mime-multipart" : "cloud-config", nodeadmConfig: args.nodeadmConfig });

    this.rebootRequiredFor = ci.rebootRequiredFor;
    const tags = { "app.kubernetes.io/part-of": "edgetune", "edgetune:profile": args.profile.name, ...args.tags };
    this.launchTemplate = new aws.ec2.LaunchTemplate(
      `${name}-lt`,
      {
        namePrefix: `${name}-`,
        description: `edgetune profile ${args.profile.name}`,
        imageId: args.imageId,
        instanceType: eks ? args.instanceType : (args.instanceType ?? "c6i.large"),
        vpcSecurityGroupIds: args.securityGroupIds,
        iamInstanceProfile: args.iamInstanceProfileArn ? { arn: args.iamInstanceProfileArn } : undefined,
        userData: ci.userData.toString("base64"),
        updateDefaultVersion: true,
        // IMDSv2 only; hop limit 2 so containers on the node still reach it through the extra hop.
        metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 2, instanceMetadataTags: "disabled" },
        blockDeviceMappings: [
          { deviceName: args.rootDeviceName ?? "/dev/xvda", ebs: { encrypted: "true", kmsKeyId: args.ebsKmsKeyId, volumeSize: size, volumeType: "gp3", deleteOnTermination: "true" } },
        ],
        tagSpecifications: ["instance", "volume", "network-interface"].map((resourceType) => ({ resourceType, tags })),
        tags,
      },
      { parent: this },
    );
    if (a) {
      const min = a.minSize ?? 1;
      this.autoScalingGroup = new aws.autoscaling.Group(
        `${name}-asg`,
        {
          minSize: min,
          maxSize: a.maxSize ?? 3,
          desiredCapacity: a.desiredCapacity ?? min,
          vpcZoneIdentifiers: a.subnetIds,
          launchTemplate: { id: this.launchTemplate.id, version: this.launchTemplate.latestVersion.apply(String) },
          // A new template version (a changed profile) rolls the instances instead of waiting for churn.
          instanceRefresh: { strategy: "Rolling", preferences: { minHealthyPercentage: 90 } },
          tags: Object.entries(tags).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
        },
        { parent: this },
      );
    }
    this.registerOutputs({ launchTemplateId: this.launchTemplate.id, autoScalingGroupName: this.autoScalingGroup?.name, rebootRequiredFor: this.rebootRequiredFor });
  }
}
