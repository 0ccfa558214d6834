import { AwsTunedNodeGroup } from "../../components/nodes/aws-tuned-node-group";
import type { NodeGroupPlan } from "../../loader/stack-config";

/** `aws`: a launch template with the tuning user-data, and an Auto Scaling group when configured. */
export function wireAws(g: NodeGroupPlan & { aws: NonNullable<NodeGroupPlan["aws"]> }) {
  const c = new AwsTunedNodeGroup(g.name, { profile: g.profile, ...g.aws });
  return {
    // An EKS managed node group references these two (see stacks/Pulumi.eks.yaml).
    launchTemplateId: c.launchTemplate.id,
    launchTemplateVersion: c.launchTemplate.latestVersion,
    autoScalingGroupName: c.autoScalingGroup?.name,
    rebootRequiredFor: c.rebootRequiredFor,
  };
}
