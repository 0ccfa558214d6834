/** EC2's user-data limit checked against a rendering: pure, so the stack loader needs no Pulumi SDK. */
import { renderCloudInit, USER_DATA_MAX_BYTES } from "./cloud-init";
import { cloudInitOptionsOf } from "./aws-lifecycle";
import type { ResolvedAwsTunedNodeGroupOptions } from "./aws-tuned-node-group-spec";
import type { ResolvedProfile } from "../tuning/types";

/** The user-data must fit EC2's limit: the rendered size against it, for this profile and format. */
export function userDataProblem(
  profile: ResolvedProfile,
  o: ResolvedAwsTunedNodeGroupOptions,
  group = "group",
  stack = "stack",
): string | undefined {
  const ci = renderCloudInit(profile, cloudInitOptionsOf(o, group, stack));
  return ci.userData.length > USER_DATA_MAX_BYTES
    ? `got ${ci.userData.length} bytes of user-data; allowed: at most ${USER_DATA_MAX_BYTES} bytes (EC2's limit)`
    : undefined;
}
