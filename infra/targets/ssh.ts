import * as pulumi from "@pulumi/pulumi";
import { RemoteHostTuning } from "../../components/nodes/remote-host-tuning";
import { formatPath } from "../../components/validation";
import { PROJECT, type NodeGroupPlan, type SecretRef } from "../../loader/stack-config";

/**
 * The decrypted value of a `secure:` config leaf. requireSecretObject keeps the whole key a
 * secret Output; only the leaf is taken out of it, so nothing else of the key is read as secret.
 */
export function secretValue(ref: SecretRef): pulumi.Output<string> {
  return new pulumi.Config(PROJECT).requireSecretObject<unknown>(ref.configKey).apply((v) => {
    const leaf = ref.path.reduce<unknown>(
      (o, p) => (o && typeof o === "object" ? (o as Record<string | number, unknown>)[p] : undefined),
      v,
    );
    // Still `{ secure: ... }` means the engine did not decrypt it: never pass ciphertext on as a key.
    if (typeof leaf !== "string" || leaf === "")
      throw new Error(
        `${PROJECT}:${formatPath([ref.configKey, ...ref.path])}: no decrypted secret (is the stack's secrets provider available?)`,
      );
    return leaf;
  });
}

/**
 * `ssh`: every listed host gets the group's profile over SSH, batch by batch; the key stays a secret
 * end to end. Outputs per host: batch, status, changed, digest, pending reboot, gate verdict.
 */
export function wireSsh(g: NodeGroupPlan & { ssh: NonNullable<NodeGroupPlan["ssh"]> }) {
  const { privateKey, ...rest } = g.ssh;
  const c = new RemoteHostTuning(g.name, { profile: g.profile, ...rest, privateKey: secretValue(privateKey) });
  return {
    hosts: g.ssh.hosts.map((h) => h.host),
    batches: c.batches,
    status: c.summaries,
    statuses: c.statuses,
    rebootRequired: c.rebootRequired,
  };
}
