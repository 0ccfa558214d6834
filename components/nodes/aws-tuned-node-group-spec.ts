/**
 * The spec of AwsTunedNodeGroup: the one place its options, defaults, bounds and descriptions
 * are written; the component, the stack's `aws` section and the reference use it.
 */
import { z } from "zod";
import { resolveWith, withPending, type PathSegment, type ValidationIssue, grammar } from "../validation";

const autoScalingSpec = z
  .strictObject({
    subnetIds: z.array(z.string().min(1)).min(1, "allowed: at least one subnet").describe("Subnets to launch into."),
    minSize: grammar.int(0, 10000).default(1).describe("Fewest instances."),
    maxSize: grammar.int(0, 10000).default(3).describe("Most instances."),
    desiredCapacity: grammar.int(0, 10000).optional().describe("Instances to run. Default: minSize."),
  })
  .superRefine((a, ctx) => {
    const desired = a.desiredCapacity ?? a.minSize;
    if (!(a.minSize <= desired && desired <= a.maxSize))
      ctx.addIssue({
        code: "custom",
        message: `allowed: 0 <= minSize <= desiredCapacity <= maxSize (got ${a.minSize}, ${desired}, ${a.maxSize})`,
      });
  })
  .transform((a) => ({ ...a, desiredCapacity: a.desiredCapacity ?? a.minSize }));

export const awsTunedNodeGroupShape = {
  imageId: z.string().min(1).optional().describe("AMI. Required unless userDataFormat is `eks-managed` (EKS picks the AMI)."),
  instanceType: z
    .string()
    .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'allowed: an EC2 instance type such as "c6in.xlarge"')
    .optional()
    .describe("Instance type. Default: c6i.large, or none for `eks-managed` (the node group sets it)."),
  securityGroupIds: z.array(z.string().min(1)).optional().describe("Security groups of the instances. Default: none."),
  iamInstanceProfileArn: z.string().min(1).optional().describe("Instance profile ARN. Default: none."),
  rootVolumeSizeGiB: grammar.int(8, 16384).default(20).describe("Root volume size, GiB (gp3, always encrypted)."),
  rootDeviceName: z
    .string()
    .regex(/^\/dev\/[a-z0-9]{1,16}$/, 'allowed: a device name such as "/dev/xvda"')
    .default("/dev/xvda")
    .describe("Root device name of the AMI."),
  ebsKmsKeyId: z.string().min(1).optional().describe("KMS key of the root volume. Default: the account's EBS default key."),
  userDataFormat: z
    .enum(["cloud-config", "eks-managed"])
    .default("cloud-config")
    .describe(
      "`cloud-config` for an Auto Scaling group or plain instances; `eks-managed` renders MIME multipart, which EKS managed node groups need to merge their own part.",
    ),
  nodeadmConfig: z.string().optional().describe("nodeadm NodeConfig YAML as its own MIME part (AL2023; `eks-managed` only)."),
  tags: z
    .record(z.string(), z.string())
    .default({})
    .superRefine((tags, ctx) => {
      for (const [k, v] of Object.entries(tags))
        if (k.length > 128 || v.length > 256 || k.startsWith("aws:"))
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: "allowed: AWS tag keys up to 128 characters (not aws:*) and values up to 256",
          });
    })
    .describe("Tags on the launch template, instances, volumes and network interfaces (and the ASG)."),
  autoScaling: autoScalingSpec
    .optional()
    .describe(
      "Create an Auto Scaling group from the template: `{ subnetIds, minSize = 1, maxSize = 3, desiredCapacity = minSize }`. Not with `eks-managed`.",
    ),
};

const DEFAULT_INSTANCE_TYPE = "c6i.large";

export function awsRules<
  T extends z.ZodType<{
    userDataFormat?: string;
    imageId?: unknown;
    nodeadmConfig?: unknown;
    autoScaling?: unknown;
    instanceType?: string;
  }>,
>(schema: T) {
  return schema
    .superRefine((v, ctx) => {
      const eks = v.userDataFormat === "eks-managed";
      if (!eks && v.imageId === undefined)
        ctx.addIssue({
          code: "custom",
          path: ["imageId"],
          message: 'required: an AMI id (only an "eks-managed" template may leave it to EKS)',
        });
      if (!eks && v.nodeadmConfig !== undefined)
        ctx.addIssue({ code: "custom", path: ["nodeadmConfig"], message: 'allowed: only with userDataFormat "eks-managed"' });
      if (eks && v.autoScaling !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["autoScaling"],
          message: 'allowed: not with "eks-managed": the managed node group owns the ASG',
        });
    })
    .transform((v) => ({ ...v, instanceType: v.instanceType ?? (v.userDataFormat === "eks-managed" ? undefined : DEFAULT_INSTANCE_TYPE) }));
}

export const awsTunedNodeGroupSpec = awsRules(z.strictObject(awsTunedNodeGroupShape));

/** The options as a user writes them (defaults optional). */
export type AwsTunedNodeGroupOptions = z.input<typeof awsTunedNodeGroupSpec>;
export type ResolvedAwsTunedNodeGroupOptions = z.output<typeof awsTunedNodeGroupSpec>;
export type AwsAutoScalingOptions = z.input<typeof autoScalingSpec>;

/** The one resolution of AwsTunedNodeGroup's options. `pending`: Outputs checked when they resolve. */
export function resolveAwsTunedNodeGroupOptions(
  input: unknown,
  prefix: readonly PathSegment[] = [],
  pending: readonly string[] = [],
): { value: ResolvedAwsTunedNodeGroupOptions; issues: [] } | { value?: undefined; issues: ValidationIssue[] } {
  const schema = pending.length ? awsRules(withPending(awsTunedNodeGroupShape, pending)) : awsTunedNodeGroupSpec;
  return resolveWith(schema, input, prefix) as ReturnType<typeof resolveAwsTunedNodeGroupOptions>;
}
