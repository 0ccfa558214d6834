/**
 * The spec of AwsTunedNodeGroup: the one place its options, defaults, bounds and descriptions
 * are written; the component, the stack's `aws` section and the reference use it.
 */
import { z } from "zod";
import { parse as parseYaml } from "yaml";
import { resolveWith, withPending, type PathSegment, type ValidationIssue, grammar } from "../validation";
import { MIME_BOUNDARY } from "./cloud-init";

/** An EC2 id such as ami-0123456789abcdef0. */
function awsId(prefix: string) {
  return z.string().regex(new RegExp(`^${prefix}-[0-9a-f]{8,17}$`), `allowed: an id such as ${prefix}-0123456789abcdef0`);
}

/** Why a text is not a nodeadm NodeConfig document EKS can merge, or undefined. */
function nodeConfigProblem(text: string): string | undefined {
  if (text.includes(MIME_BOUNDARY)) return `it contains the user-data's MIME boundary ${MIME_BOUNDARY}`;
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) return "it contains control characters";
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 10 });
  } catch (e) {
    return `not YAML: ${(e as Error).message.split("\n")[0]}`;
  }
  const d = doc as { apiVersion?: unknown; kind?: unknown } | null;
  if (
    !d ||
    typeof d !== "object" ||
    d.kind !== "NodeConfig" ||
    typeof d.apiVersion !== "string" ||
    !d.apiVersion.startsWith("node.eks.aws/")
  )
    return "a mapping with apiVersion node.eks.aws/... and kind NodeConfig";
  return undefined;
}

const lifecycleHookSpec = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      "Gate launches on tuning: a launch lifecycle hook (default result ABANDON) that each instance completes with CONTINUE only after `tune.sh apply` succeeded. Needs the AWS CLI on the AMI (Amazon Linux 2023 has it).",
    ),
  heartbeatTimeoutSeconds: grammar
    .int(30, 7200)
    .default(900)
    .describe("Seconds an instance may take from launch to completing the hook (including the reboot of `reboot: allowed`); then ABANDON."),
  allowDegraded: z
    .boolean()
    .default(false)
    .describe("Let an instance in when `tune.sh apply` exits 3 (degraded: applied what the node supports, skipped the rest)."),
});

const autoScalingSpec = z
  .strictObject({
    subnetIds: z.array(awsId("subnet")).min(1, "allowed: at least one subnet").describe("Subnets to launch into."),
    minSize: grammar.int(0, 10000).default(1).describe("Fewest instances."),
    maxSize: grammar.int(0, 10000).default(3).describe("Most instances."),
    desiredCapacity: grammar.int(0, 10000).optional().describe("Instances to run. Default: minSize."),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,255}$/, "allowed: 1-255 letters, digits and _ . -")
      .optional()
      .describe(
        "The Auto Scaling group's name, fixed so the user-data and the instance role's policy can name it before it exists. Default: `<group name>-<stack>`.",
      ),
    lifecycleHook: lifecycleHookSpec
      .default({ enabled: true, heartbeatTimeoutSeconds: 900, allowDegraded: false })
      .describe("The launch gate: `{ enabled = true, heartbeatTimeoutSeconds = 900, allowDegraded = false }`."),
    minHealthyPercentage: grammar
      .int(0, 100)
      .default(90)
      .describe(
        "Instance refresh (a changed profile or AMI rolls the group): the share of desired capacity kept in service; replacements count only once their hook completed.",
      ),
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
  imageId: awsId("ami").optional().describe("AMI. Required unless userDataFormat is `eks-managed` (EKS picks the AMI)."),
  instanceType: z
    .string()
    .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'allowed: an EC2 instance type such as "c6in.xlarge"')
    .optional()
    .describe("Instance type. Default: c6i.large, or none for `eks-managed` (the node group sets it)."),
  securityGroupIds: z.array(awsId("sg")).optional().describe("Security groups of the instances. Default: none."),
  iamInstanceProfileArn: z
    .string()
    .regex(
      /^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile\/[\w+=,.@/-]{1,128}$/,
      "allowed: an instance profile ARN, arn:aws:iam::<account>:instance-profile/<name>",
    )
    .optional()
    .describe("Instance profile ARN. Default: none."),
  rootVolumeSizeGiB: grammar.int(8, 16384).default(20).describe("Root volume size, GiB (gp3, always encrypted)."),
  rootDeviceName: z
    .string()
    .regex(/^\/dev\/[a-z0-9]{1,16}$/, 'allowed: a device name such as "/dev/xvda"')
    .default("/dev/xvda")
    .describe("Root device name of the AMI."),
  ebsKmsKeyId: z
    .string()
    .regex(
      /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)\/[\w/-]{1,256}|alias\/[\w/-]{1,256}|[0-9a-f-]{36}|mrk-[0-9a-f]{32})$/,
      "allowed: a KMS key id, alias or ARN",
    )
    .optional()
    .describe("KMS key of the root volume. Default: the account's EBS default key."),
  userDataFormat: z
    .enum(["cloud-config", "eks-managed"])
    .default("cloud-config")
    .describe(
      "`cloud-config` for an Auto Scaling group or plain instances; `eks-managed` renders MIME multipart, which EKS managed node groups need to merge their own part.",
    ),
  nodeadmConfig: z
    .string()
    .max(4096, "allowed: at most 4096 bytes (EC2 user-data holds 16 KiB in all)")
    .superRefine((text, ctx) => {
      const problem = nodeConfigProblem(text);
      if (problem) ctx.addIssue({ code: "custom", message: `allowed: a nodeadm NodeConfig YAML document (${problem})` });
    })
    .optional()
    .describe("nodeadm NodeConfig YAML as its own MIME part (AL2023; `eks-managed` only)."),
  tags: z
    .record(z.string(), z.string())
    .default({})
    .superRefine((tags, ctx) => {
      for (const [k, v] of Object.entries(tags)) {
        if (k.length < 1 || k.length > 128 || v.length > 256 || k.startsWith("aws:") || !AWS_TAG.test(k) || !AWS_TAG.test(v))
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: "allowed: AWS tag keys of 1-128 and values of up to 256 letters, digits, spaces and _ . : / = + - @ (keys not aws:*)",
          });
      }
    })
    .describe("Tags on the launch template, instances, volumes and network interfaces (and the ASG)."),
  reboot: z
    .enum(["never", "allowed"])
    .default("never")
    .describe(
      "`allowed`: when the profile has kernel arguments (1 GiB huge pages), first boot adds them and reboots once; tuning (and the launch gate) completes after that reboot. `never`: the arguments wait for a reboot nobody performs (render and `pulumi up` warn).",
    ),
  autoScaling: autoScalingSpec
    .optional()
    .describe(
      "Create an Auto Scaling group from the template: `{ subnetIds, minSize = 1, maxSize = 3, desiredCapacity = minSize }`. Not with `eks-managed`.",
    ),
};

const DEFAULT_INSTANCE_TYPE = "c6i.large";
/** AWS's tag grammar (letters, digits, spaces and _ . : / = + - @, Unicode letters included). */
const AWS_TAG = /^[\p{L}\p{N}\p{Zs}_.:/=+\-@]*$/u;

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
