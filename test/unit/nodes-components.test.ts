import * as pulumi from "@pulumi/pulumi";
import { gunzipSync } from "node:zlib";
import { load } from "js-yaml";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { resolveProfile } from "../../components/tuning/profile";
import { ValidationError } from "../../components/validation";
import { renderTuneSh } from "../../components/tuning/render";
import { renderTunerObjects, CHECKSUM_ANNOTATION, READY_COMMAND } from "../../components/nodes/k8s-tuner";
import { mocksSettled, until } from "../helpers/wait";

interface Recorded {
  type: string;
  name: string;
  inputs: Record<string, any>;
}
const recorded: Recorded[] = [];
const profile = resolveProfile("edge", {
  extends: "recommended",
  // Kubernetes nodes among them: the NodePorts must stay out of the ephemeral range.
  ports: { kubernetesNodePorts: true, kubelet: true },
  nics: [{ match: "ens*", offloads: { gro: true } }],
  hugepages: { pages1GiB: 2 },
});

type Mod = typeof import("../../components");
let m: Mod;
beforeAll(async () => {
  // Mocks first: the component modules must load against the mocked runtime.
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        recorded.push({ type: a.type, name: a.name, inputs: a.inputs });
        const state = {
          ...a.inputs,
          ...(a.type === "command:remote:Command"
            ? {
                stdout: a.name.endsWith("-gate")
                  ? "summary: verify status=ok\ngate: status=passed host=x"
                  : a.name.endsWith("-reboot")
                    ? "boot_id=0f1e2d3c-0000-4000-8000-000000000001\nreboot: status=scheduled"
                    : `changed sysctl x\nsummary: status=degraded changed=3 unchanged=1 skipped=2 failed=0 reboot_required=${a.name.includes("needsreboot") ? 2 : 0} profile=edge digest=sha256:abc`,
              }
            : {}),
          ...(a.type === "aws:ec2/launchTemplate:LaunchTemplate" ? { latestVersion: 1 } : {}),
        };
        return { id: `${a.name}-id`, state };
      },
      call: (a) => a.inputs,
    },
    "edgetune",
    "test",
    false,
  );
  m = await import("../../components");
});

/** The mock monitor sees secrets as signed envelopes: unwrap one, failing if the value was not secret. */
function secretValue(v: any): any {
  expect(v?.[pulumi.runtime.specialSigKey]).toBe(pulumi.runtime.specialSecretSig);
  return v.value;
}
const of = (type: string, name?: string) => recorded.filter((r) => r.type === type && (name === undefined || r.name.startsWith(name)));
const value = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));
/** Waits until `n` resources of this type (and name prefix) have reached the mocks. */
const registered = (n: number, type: string, name?: string) => until(`${n} × ${type} ${name ?? ""}`, () => of(type, name).length >= n);

describe("RemoteHostTuning", () => {
  it("per host one apply (tune.sh on stdin) and one gate, applies on create/update, restores on delete, replaces delete-first on artifact or host change", async () => {
    const c = new m.RemoteHostTuning("ssh", {
      profile,
      hosts: [{ host: "10.0.0.5" }, { host: "edge-2.example", port: 2222 }],
      user: "ops",
      sudo: true,
      privateKey: "KEY-MATERIAL",
    });
    const summaries = await value(c.summaries);
    // The spec's defaults (remote-host-tuning-spec.ts), as the component resolves them.
    const expected = m.renderRemoteCommands(
      profile,
      m.resolveRemoteHostTuningOptions({ hosts: [{ host: "10.0.0.5" }], privateKey: "k", sudo: true }).value!,
    );
    await registered(4, "command:remote:Command", "ssh-");
    await mocksSettled();
    // Per host an apply and its verify gate, and nothing else.
    expect(recorded.filter((r) => r.name.startsWith("ssh-")).map((r) => r.type)).toEqual(Array(4).fill("command:remote:Command"));
    const cmds = of("command:remote:Command", "ssh-").filter((r) => r.name.endsWith("-apply"));
    expect(cmds).toHaveLength(2);
    // The children are the component's readonly properties.
    expect(Object.keys(c.commands)).toEqual(["10.0.0.5", "edge-2.example"]);
    // Sanitizing lost the dots, so the name carries a digest of the real host.
    expect(await value(c.commands["edge-2.example"].urn)).toMatch(/\$command:remote:Command::ssh-edge-2-example-[0-9a-f]{8}-apply$/);
    expect(c.copies["10.0.0.5"]).toEqual([]);
    // The whole connection (private key included) reaches the engine as a secret.
    const conns = cmds.map((c) => secretValue(c.inputs.connection));
    expect(conns.map((c) => c.host).sort()).toEqual(["10.0.0.5", "edge-2.example"]);
    expect(conns.map((c) => c.privateKey)).toEqual(["KEY-MATERIAL", "KEY-MATERIAL"]);
    for (const [i, cmd] of cmds.entries()) {
      const conn = conns[i];
      expect(cmd.inputs.create).toBe(expected.apply);
      expect(cmd.inputs.update).toBe(expected.apply);
      expect(cmd.inputs.delete).toBe(expected.restore);
      expect(cmd.inputs.create).toContain('sudo -n "$installed" apply');
      // tune.sh travels on stdin: the group's one payload, which unpacks to the rendered script.
      expect(cmd.inputs.stdin).toBe(expected.payload);
      expect(gunzipSync(Buffer.from(cmd.inputs.stdin, "base64")).toString("utf8")).toBe(expected.tuneSh);
      expect(cmd.inputs.triggers).toEqual([expected.tuneShSha256, conn.host, conn.port]);
      expect(conn.user).toBe("ops");
    }
    // Nothing the component exports carries the key.
    expect(JSON.stringify(summaries)).not.toContain("KEY-MATERIAL");
    expect(summaries["10.0.0.5"]).toEqual({
      status: "degraded",
      changed: 3,
      unchanged: 1,
      skipped: 2,
      failed: 0,
      rebootRequired: 0,
      profile: "edge",
      digest: "sha256:abc",
    });
  });

  it("sets deleteBeforeReplace and replaceOnChanges on the command, and keeps the private key secret", async () => {
    const seen: Array<{ opts: pulumi.CustomResourceOptions; args: any }> = [];
    new m.RemoteHostTuning(
      "opts",
      { profile, hosts: [{ host: "10.0.0.9" }], privateKey: "KEY-MATERIAL" },
      {
        transformations: [
          (r) => {
            if (r.type === "command:remote:Command" && r.name.endsWith("-apply")) seen.push({ opts: r.opts, args: r.props });
            return undefined;
          },
        ],
      },
    );
    await until("the apply command's transformation", () => seen.length >= 1);
    expect(seen).toHaveLength(1);
    expect(seen[0].opts.deleteBeforeReplace).toBe(true);
    expect(seen[0].opts.replaceOnChanges).toContain("triggers");
    expect(await pulumi.isSecret(pulumi.output(seen[0].args.connection.privateKey))).toBe(true);
  });

  it("names every bad field in one error before registering anything", async () => {
    const before = recorded.length;
    let err: unknown;
    try {
      new m.RemoteHostTuning("bad", {
        profile,
        hosts: [{ host: "a b" }, { host: "ok", port: 0 }],
        user: "Root!",
        privateKey: "",
        installPath: "relative/tune.sh",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues.map((i) => i.path)).toEqual([
      "hosts[0].host",
      "hosts[1].port",
      "user",
      "privateKey",
      "installPath",
    ]);
    // Registration is asynchronous: only once the mocks have settled is "nothing" a finding.
    // (By name: an earlier test's registrations may still arrive.)
    await mocksSettled();
    expect(recorded.slice(before).filter((r) => r.name.startsWith("bad"))).toEqual([]);
  });
});

describe("RemoteHostTuning rollout", () => {
  interface Child {
    type: string;
    name: string;
    opts: pulumi.CustomResourceOptions;
    props: any;
  }
  /** Builds the component and records every child with the options it was registered with. */
  function build(name: string, extra: Record<string, unknown>, hosts: string[], p = profile) {
    const children: Child[] = [];
    const c = new m.RemoteHostTuning(
      name,
      { profile: p, hosts: hosts.map((host) => ({ host })), privateKey: "K", ...extra },
      {
        transformations: [
          (r) => {
            children.push({ type: r.type, name: r.name, opts: r.opts, props: r.props });
            return undefined;
          },
        ],
      },
    );
    const deps = (n: string) => {
      const child = children.find((x) => x.name === n);
      if (!child) throw new Error(`no child ${n} among ${children.map((x) => x.name).join(", ")}`);
      return ([] as pulumi.Resource[]).concat((child.opts.dependsOn as pulumi.Resource[]) ?? []);
    };
    /** The names of what `n` depends on (by URN: a transformation sees options, not resources). */
    const depNames = async (n: string) =>
      (await Promise.all(deps(n).map((d) => value((d as pulumi.CustomResource).urn)))).map((u) => u.split("::").pop());
    return { c, children, deps, depNames };
  }
  const hosts5 = ["h1", "h2", "h3", "h4", "h5"];

  it("splits the hosts into batches of batchSize, and each batch's applies depend on every gate of the batch before", async () => {
    const { c, deps } = build("roll", { rollout: { batchSize: 2 } }, hosts5);
    expect(c.batches).toEqual([["h1", "h2"], ["h3", "h4"], ["h5"]]);
    await until("all gates", () => Object.keys(c.gates).length === 5);
    // The first batch waits for nothing.
    expect(deps("roll-h1-apply")).toEqual([]);
    for (const h of ["h3", "h4"]) expect(deps(`roll-${h}-apply`)).toEqual(expect.arrayContaining([c.gates.h1, c.gates.h2]));
    expect(deps("roll-h5-apply")).toEqual(expect.arrayContaining([c.gates.h3, c.gates.h4]));
    expect(deps("roll-h5-apply")).not.toContain(c.gates.h1);
    // A host's gate runs after its own apply, and is what stops the next batch when verify fails.
    expect(deps("roll-h3-gate")).toEqual([c.commands.h3]);
    const statuses = await value(c.statuses);
    expect(statuses.h5).toEqual({ batch: 2, status: "degraded", changed: 3, digest: "sha256:abc", rebootRequired: 0, gate: "passed" });
  });

  it("maxUnavailable as a count or a percentage (rounded down, at least one); one host at a time by default", () => {
    expect(build("mu-n", { rollout: { maxUnavailable: 3 } }, hosts5).c.batches.map((b) => b.length)).toEqual([3, 2]);
    expect(build("mu-p", { rollout: { maxUnavailable: "50%" } }, hosts5).c.batches.map((b) => b.length)).toEqual([2, 2, 1]);
    expect(build("mu-s", { rollout: { maxUnavailable: "10%" } }, hosts5).c.batches.map((b) => b.length)).toEqual([1, 1, 1, 1, 1]);
    expect(build("mu-d", {}, ["a", "b"]).c.batches).toEqual([["a"], ["b"]]);
  });

  it("pauseSeconds puts a sleep between batches that the next batch depends on", async () => {
    const { c, children, deps, depNames } = build("pause", { rollout: { batchSize: 1, pauseSeconds: 30 } }, ["p1", "p2"]);
    await until("the pause", () => children.some((x) => x.name === "pause-pause-1"));
    const pause = children.find((x) => x.name === "pause-pause-1")!;
    expect(pause.type).toBe("command:local:Command");
    expect(pause.props.create).toBe("sleep 30");
    expect(deps("pause-pause-1")).toEqual([c.gates.p1]);
    expect(await depNames("pause-p2-apply")).toContain("pause-pause-1");
    expect(await depNames("pause-p2-apply")).not.toContain("pause-p1-gate");
    expect(children.filter((x) => x.name.startsWith("pause-pause-"))).toHaveLength(1);
  });

  it("the gate fails naming the host unless stopOnFailure is false", () => {
    const stop = build("gate-a", {}, ["edge-1.example"]).children.find((x) => x.name.endsWith("-gate"))!;
    expect(stop.props.create).toContain("host='edge-1.example'");
    expect(stop.props.create).toMatch(/rollout stopped: host \$host failed tune\.sh verify.*exit 1/);
    const go = build("gate-b", { rollout: { stopOnFailure: false } }, ["edge-1.example"]).children.find((x) => x.name.endsWith("-gate"))!;
    expect(go.props.create).toMatch(/stopOnFailure is false, the rollout goes on" >&2; exit 0/);
  });

  it("hosts that differ only in '.' and '-' get distinct resource names", async () => {
    const { c } = build("dots", {}, ["a.b", "a-b"]);
    const urns = await Promise.all(Object.values(c.commands).map((x) => value(x.urn)));
    expect(new Set(urns).size).toBe(2);
    expect(urns.some((u) => u.endsWith("::dots-a-b-apply"))).toBe(true);
    expect(urns.some((u) => /::dots-a-b-[0-9a-f]{8}-apply$/.test(u))).toBe(true);
  });

  it("keeps the old resource name as an alias where it was unambiguous, so existing stacks are not replaced", () => {
    const { children } = build("alias", {}, ["10.0.0.7"]);
    const apply = children.find((x) => x.name.endsWith("-apply"))!;
    expect(apply.name).toMatch(/^alias-10-0-0-7-[0-9a-f]{8}-apply$/);
    expect(apply.opts.aliases).toEqual([{ name: "alias-10-0-0-7-apply" }]);
    // Two hosts once sharing a name: neither may claim it.
    const both = build("alias2", {}, ["a.b", "a:b"]).children.filter((x) => x.name.endsWith("-apply"));
    for (const a of both) expect(a.opts.aliases ?? []).toEqual([]);
  });

  it("reboot: allowed reboots after apply, waits for SSH with retries, and only then gates the host", async () => {
    const { c, children, deps, depNames } = build("rb", { reboot: "allowed", rebootTimeoutSeconds: 300 }, ["r1"]);
    await until("the gate", () => children.some((x) => x.name === "rb-r1-gate"));
    expect(deps("rb-r1-reboot")).toEqual([c.commands.r1]);
    expect(deps("rb-r1-reboot-settle")).toEqual([c.reboots.r1]);
    const rebooted = children.find((x) => x.name === "rb-r1-rebooted")!;
    expect(await depNames("rb-r1-rebooted")).toEqual(["rb-r1-reboot-settle"]);
    expect(await depNames("rb-r1-gate")).toEqual(["rb-r1-rebooted"]);
    const reboot = children.find((x) => x.name === "rb-r1-reboot")!;
    expect(reboot.props.create).toContain("hugepagesz=1G");
    const conn = await value(pulumi.output(rebooted.props.connection));
    expect(conn).toMatchObject({ perDialTimeout: 10, dialErrorLimit: 30 });
    // The check compares against the boot id the reboot command printed.
    expect(await value(pulumi.output(rebooted.props.create))).toContain("old='0f1e2d3c-0000-4000-8000-000000000001'");
    expect((await value(c.statuses)).r1.rebootRequired).toBe(0);
  });

  it("reboot: never adds no reboot and warns naming the hosts that still need one", async () => {
    const { c, children } = build("never", {}, ["needsreboot-1", "needsreboot-2"]);
    expect(await value(c.rebootRequired)).toEqual(["needsreboot-1", "needsreboot-2"]);
    expect(children.filter((x) => /-reboot(-settle|ed)?$/.test(x.name))).toEqual([]);
    expect(Object.keys(c.reboots)).toEqual([]);
  });

  it("rejects batchSize together with maxUnavailable, naming the key", () => {
    const r = m.resolveRemoteHostTuningOptions({
      hosts: [{ host: "h" }],
      privateKey: "k",
      rollout: { batchSize: 2, maxUnavailable: "10%" },
    });
    expect(r.issues).toEqual([{ path: "rollout.maxUnavailable", message: expect.stringMatching(/batchSize or maxUnavailable, not both/) }]);
    const bad = m.resolveRemoteHostTuningOptions({
      hosts: [{ host: "h" }],
      privateKey: "k",
      rollout: { batchSize: 0 },
      reboot: "sometimes",
    });
    expect(bad.issues?.map((i) => i.path)).toEqual(["rollout.batchSize", "reboot"]);
  });
});

describe("AwsTunedNodeGroup", () => {
  it("renders IMDSv2, encrypted EBS, tags everywhere and the cloud-init user-data with the core's tune.sh", async () => {
    const g = new m.AwsTunedNodeGroup("aws", {
      profile,
      imageId: "ami-0123456789abcdef0",
      tags: { team: "edge" },
      autoScaling: { subnetIds: ["subnet-0a1b2c3d4e5f60001"], minSize: 2, maxSize: 4 },
    });
    await value(g.launchTemplate.id);
    await registered(1, "aws:autoscaling/group:Group", "aws-");
    const [lt] = of("aws:ec2/launchTemplate:LaunchTemplate", "aws-");
    expect(lt.inputs.metadataOptions.httpTokens).toBe("required");
    expect(lt.inputs.blockDeviceMappings[0].ebs.encrypted).toBe("true");
    expect(lt.inputs.tagSpecifications.map((t: any) => t.resourceType)).toEqual(["instance", "volume", "network-interface"]);
    for (const t of lt.inputs.tagSpecifications) expect(t.tags).toMatchObject({ team: "edge", "edgetune:profile": "edge" });
    const doc = load(gunzipSync(Buffer.from(lt.inputs.userData, "base64")).toString("utf8")) as {
      write_files: Array<{ path: string; content: string }>;
    };
    expect(doc.write_files.find((f) => f.path.endsWith("/tune.sh"))!.content).toBe(renderTuneSh(profile));
    expect(g.rebootRequiredFor).toEqual(expect.arrayContaining(["hugepages=2"]));
    const [asg] = of("aws:autoscaling/group:Group", "aws-");
    expect(asg.inputs).toMatchObject({
      minSize: 2,
      maxSize: 4,
      desiredCapacity: 2,
      vpcZoneIdentifiers: ["subnet-0a1b2c3d4e5f60001"],
      launchTemplate: { id: "aws-lt-id", version: "1" },
    });
    expect(asg.inputs.tags).toContainEqual({ key: "team", value: "edge", propagateAtLaunch: true });
  });

  it("gates launches: the hook declared with the ASG, a fixed group name, and a role allowed only to complete it", async () => {
    const g = new m.AwsTunedNodeGroup("gated", {
      profile,
      imageId: "ami-0123456789abcdef0",
      reboot: "allowed",
      autoScaling: { subnetIds: ["subnet-0a1b2c3d4e5f60001"], lifecycleHook: { heartbeatTimeoutSeconds: 1200, allowDegraded: true } },
    });
    await value(g.launchTemplate.id);
    await registered(1, "aws:autoscaling/group:Group", "gated-");
    const [asg] = of("aws:autoscaling/group:Group", "gated-");
    // The mocks' stack is "test": the default name is <group>-<stack>, the one the policy and user-data carry.
    expect(asg.inputs.name).toBe("gated-test");
    expect(asg.inputs.initialLifecycleHooks).toEqual([
      {
        name: "edgetune-tuned",
        lifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        defaultResult: "ABANDON",
        heartbeatTimeout: 1200,
      },
    ]);
    expect(asg.inputs.instanceRefresh).toEqual({ strategy: "Rolling", preferences: { minHealthyPercentage: 90 } });
    const [policy] = of("aws:iam/rolePolicy:RolePolicy", "gated-");
    expect(JSON.parse(policy.inputs.policy).Statement).toEqual([
      {
        Sid: "EdgetuneLaunchGate",
        Effect: "Allow",
        Action: "autoscaling:CompleteLifecycleAction",
        Resource: "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/gated-test",
      },
    ]);
    const [role] = of("aws:iam/role:Role", "gated-");
    expect(JSON.parse(role.inputs.assumeRolePolicy).Statement[0].Principal).toEqual({ Service: "ec2.amazonaws.com" });
    const [lt] = of("aws:ec2/launchTemplate:LaunchTemplate", "gated-");
    // The mocks give the profile no arn; what matters is that the template references it at all.
    expect(lt.inputs.iamInstanceProfile).toBeDefined();
    expect(of("aws:iam/instanceProfile:InstanceProfile", "gated-")).toHaveLength(1);
    const doc = gunzipSync(Buffer.from(lt.inputs.userData, "base64")).toString("utf8");
    expect(doc).toContain("ASG='gated-test'");
    expect(doc).toContain("ALLOW_DEGRADED=1");
    expect(g.rebootRequiredFor).toEqual([]);
  });

  it("warns at `pulumi up` that 1 GiB pages wait for a reboot nobody performs (reboot: never), and not when allowed", async () => {
    const warn = vi.spyOn(pulumi.log, "warn").mockResolvedValue(undefined as never);
    try {
      new m.AwsTunedNodeGroup("never", { profile, imageId: "ami-0123456789abcdef0" });
      new m.AwsTunedNodeGroup("allowed", { profile, imageId: "ami-0123456789abcdef0", reboot: "allowed" });
      const messages = warn.mock.calls.map((c) => String(c[0]));
      expect(messages.filter((t) => t.startsWith('AwsTunedNodeGroup "never": kernel arguments'))).toHaveLength(1);
      expect(messages.join("\n")).toMatch(/hugepages=2 .*need a reboot that nobody performs \(reboot: never\)/);
      expect(messages.filter((t) => t.includes('"allowed"'))).toEqual([]);
    } finally {
      warn.mockRestore();
    }
    await mocksSettled();
  });

  it("uses the user's instance profile instead of creating a role, and creates no gate without an ASG", async () => {
    const arn = "arn:aws:iam::123456789012:instance-profile/edge";
    const g = new m.AwsTunedNodeGroup("own", {
      profile,
      imageId: "ami-0123456789abcdef0",
      iamInstanceProfileArn: arn,
      autoScaling: { subnetIds: ["subnet-0a1b2c3d4e5f60001"] },
    });
    await value(g.launchTemplate.id);
    await registered(1, "aws:autoscaling/group:Group", "own-");
    await mocksSettled();
    expect(of("aws:iam/role:Role", "own-")).toHaveLength(0);
    expect(of("aws:ec2/launchTemplate:LaunchTemplate", "own-")[0].inputs.iamInstanceProfile).toEqual({ arn });
    expect(of("aws:autoscaling/group:Group", "own-")[0].inputs.initialLifecycleHooks).toHaveLength(1);
    expect(g.rebootRequiredFor).toEqual(expect.arrayContaining(["hugepages=2"]));
  });

  it("renders MIME multipart without an ASG for EKS managed node groups", async () => {
    const g = new m.AwsTunedNodeGroup("eks", { profile, userDataFormat: "eks-managed" });
    await value(g.launchTemplate.id);
    // The ASG would wait for the launch template; once that is registered and the mocks have
    // settled, a missing ASG is absent, not late.
    await mocksSettled();
    const [lt] = of("aws:ec2/launchTemplate:LaunchTemplate", "eks-");
    expect(Buffer.from(lt.inputs.userData, "base64").toString("utf8")).toMatch(/^MIME-Version: 1\.0/);
    expect(lt.inputs.imageId).toBeUndefined();
    expect(of("aws:autoscaling/group:Group", "eks-")).toHaveLength(0);
  });

  it("names every bad field in one error before registering anything", async () => {
    const before = recorded.length;
    let err: unknown;
    try {
      new m.AwsTunedNodeGroup("bad", {
        profile,
        instanceType: "huge",
        rootVolumeSizeGiB: 2,
        autoScaling: { subnetIds: [], minSize: 3, maxSize: 1 },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues.map((i) => i.path)).toEqual([
      "instanceType",
      "rootVolumeSizeGiB",
      "autoScaling.subnetIds",
      "autoScaling",
      "imageId",
    ]);
    await mocksSettled();
    expect(recorded.slice(before).filter((r) => r.name.startsWith("bad"))).toEqual([]);
  });
});

describe("KubernetesNodeTuner", () => {
  const image = "ghcr.io/example/edgetune-tuner:0.1.0";

  it("refuses a profile whose ephemeral ports overlap the NodePorts unreserved, as an EKS managed group does, before registering anything", async () => {
    const seed = resolveProfile("seed", { extends: "recommended" });
    const refused = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (e instanceof ValidationError) return e.issues;
        throw e;
      }
      return [];
    };
    for (const issues of [
      refused(() => new m.KubernetesNodeTuner("overlap", { profile: seed, image })),
      refused(() => new m.AwsTunedNodeGroup("overlap-eks", { profile: seed, userDataFormat: "eks-managed" })),
    ])
      expect(issues).toEqual([
        {
          path: "profile",
          message: expect.stringMatching(/applies profile "seed", whose ip_local_port_range 1024 65535 .*kubernetesNodePorts: true/),
        },
      ]);
    await mocksSettled();
    expect(recorded.filter((r) => r.name.startsWith("overlap"))).toEqual([]);
  });

  it("creates a privileged-enforced namespace, the scripts ConfigMap and a hostNetwork DaemonSet", async () => {
    new m.KubernetesNodeTuner("k8s", {
      profile,
      image,
      nodeSelector: { "edgetune.io/tune": "true" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "proxy", effect: "NoSchedule" }],
      verifyIntervalSeconds: 60,
      reapplyOnDrift: true,
    });
    // The DaemonSet depends on the ConfigMap, which depends on the Namespace: it registers last.
    await registered(1, "kubernetes:apps/v1:DaemonSet", "k8s-");
    const [ns] = of("kubernetes:core/v1:Namespace", "k8s-");
    expect(ns.inputs.metadata.labels).toMatchObject({
      "pod-security.kubernetes.io/enforce": "privileged",
      "pod-security.kubernetes.io/enforce-version": "v1.33",
      "pod-security.kubernetes.io/warn": "baseline",
      "pod-security.kubernetes.io/audit": "baseline",
    });
    const [cm] = of("kubernetes:core/v1:ConfigMap", "k8s-");
    expect(cm.inputs.data["tune.sh"]).toBe(renderTuneSh(profile));
    const [ds] = of("kubernetes:apps/v1:DaemonSet", "k8s-");
    const pod = ds.inputs.spec.template.spec;
    expect(pod).toMatchObject({
      hostNetwork: true,
      priorityClassName: "system-node-critical",
      nodeSelector: { "edgetune.io/tune": "true" },
      serviceAccountName: "edgetune-tuner-k8s",
      automountServiceAccountToken: false,
    });
    expect(pod.securityContext).toBeUndefined();
    expect(pod.containers).toHaveLength(1);
    expect(pod.containers[0].securityContext).toMatchObject({ privileged: true });
    expect(pod.containers[0].command).toEqual(["/bin/sh", "/edgetune/tuner.sh"]);
    expect(pod.containers[0].env).toEqual(
      expect.arrayContaining([
        { name: "VERIFY_INTERVAL_SECONDS", value: "60" },
        { name: "REAPPLY_ON_DRIFT", value: "1" },
        { name: "RESTORE_ON_REMOVE", value: "1" },
      ]),
    );
    expect(ds.inputs.metadata.annotations).toEqual({ "pulumi.com/deletionPropagationPolicy": "foreground" });
    // The identity the pods ask the API server with, and what it may do.
    await registered(1, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "k8s-");
    await registered(1, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "k8s-");
    const [sa] = of("kubernetes:core/v1:ServiceAccount", "k8s-");
    expect(sa.inputs.metadata).toMatchObject({ name: "edgetune-tuner-k8s", namespace: "edgetune-system" });
    const [cr] = of("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "k8s-");
    expect(cr.inputs.rules).toEqual([{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] }]);
    const [role] = of("kubernetes:rbac.authorization.k8s.io/v1:Role", "k8s-");
    expect(role.inputs.rules).toEqual([
      { apiGroups: ["apps"], resources: ["daemonsets"], resourceNames: ["edgetune-tuner-k8s"], verbs: ["get"] },
    ]);
    // No metrics.podMonitor: no PodMonitor.
    await mocksSettled();
    expect(of("kubernetes:monitoring.coreos.com/v1:PodMonitor", "k8s-")).toEqual([]);
    expect(ds.inputs.spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } });
    expect(ds.inputs.spec.template.metadata.annotations[CHECKSUM_ANNOTATION]).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("takes the image, namespace and node selector as Outputs of other resources, and exposes its children", async () => {
    const fromRegistry = pulumi.output("123456789012.dkr.ecr.eu-west-1.amazonaws.com/edgetune-tuner:0.2.0");
    const c = new m.KubernetesNodeTuner("outputs", {
      profile,
      image: fromRegistry,
      namespace: pulumi.output("tuning"),
      createNamespace: false,
      nodeSelector: pulumi.output({ pool: "edge" }),
    });
    expect(await value(c.namespace)).toBe("tuning");
    expect(c.namespaceResource).toBeUndefined();
    expect(await value(c.daemonSet.metadata.name)).toBe("edgetune-tuner-outputs");
    expect(await value(c.configMap.metadata.namespace)).toBe("tuning");
    await registered(1, "kubernetes:apps/v1:DaemonSet", "outputs-");
    await mocksSettled();
    expect(of("kubernetes:core/v1:Namespace", "outputs-")).toEqual([]);
    const [ds] = of("kubernetes:apps/v1:DaemonSet", "outputs-");
    expect(ds.inputs.spec.template.spec.containers[0].image).toBe("123456789012.dkr.ecr.eu-west-1.amazonaws.com/edgetune-tuner:0.2.0");
    expect(ds.inputs.spec.template.spec.nodeSelector).toEqual({ pool: "edge" });
    expect(ds.inputs.spec.template.metadata.annotations[CHECKSUM_ANNOTATION]).toBe(await value(c.checksum));
  });

  it("refuses securityContext.sysctls on a hostNetwork pod, a latest tag and an unpinned PSS version, in one error, before registering anything", async () => {
    const before = recorded.length;
    let err: unknown;
    try {
      new m.KubernetesNodeTuner("bad", {
        profile,
        image: "ghcr.io/example/tuner:latest",
        podSysctls: [{ name: "net.core.somaxconn", value: "4096" }],
        podSecurityVersion: "latest",
        maxUnavailable: 0,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const issues = (err as ValidationError).issues;
    expect(issues.map((i) => i.path)).toEqual(["image", "maxUnavailable", "podSecurityVersion", "podSysctls[0].name", "podSysctls"]);
    // somaxconn is per namespace but not in kubelet's safe set: the pod needs kubelet's allowance.
    expect(issues[3].message).toMatch(/net\.core\.somaxconn is not in kubelet's safe set: list it in allowedUnsafeSysctls/);
    expect(issues[4].message).toMatch(/kubelet rejects securityContext\.sysctls on hostNetwork pods/);
    expect(() => new m.KubernetesNodeTuner("untagged", { profile, image: "ghcr.io/example/tuner" })).toThrow(/pinned by tag or digest/);
    await mocksSettled();
    expect(recorded.slice(before).filter((r) => r.name.startsWith("bad") || r.name.startsWith("untagged"))).toEqual([]);
  });

  it("changes the pod template checksum exactly when the profile changes", () => {
    const o = { name: "g", image };
    const a = renderTunerObjects(profile, o).checksum;
    expect(renderTunerObjects(profile, o).checksum).toBe(a);
    expect(renderTunerObjects(resolveProfile("edge", { sysctls: { "net.core.somaxconn": 1024 } }), o).checksum).not.toBe(a);
  });

  it("builds objects that validate against the Kubernetes API schema", () => {
    for (const p of [profile, resolveProfile("min", {})]) {
      const objs = renderTunerObjects(p, {
        name: "g",
        image,
        tolerations: [{ operator: "Exists" }],
        nodeSelector: { role: "proxy" },
        maxUnavailable: "10%",
      });
      expect(() => new Namespace(objs.namespace as any).validate()).not.toThrow();
      expect(() => new ServiceAccount(objs.serviceAccount as any).validate()).not.toThrow();
      expect(() => new ClusterRole(objs.clusterRole as any).validate()).not.toThrow();
      expect(() => new ClusterRoleBinding(objs.clusterRoleBinding as any).validate()).not.toThrow();
      expect(() => new Role(objs.role as any).validate()).not.toThrow();
      expect(() => new RoleBinding(objs.roleBinding as any).validate()).not.toThrow();
      expect(() => new ConfigMap(objs.configMap as any).validate()).not.toThrow();
      expect(() => new DaemonSet(objs.daemonSet as any).validate()).not.toThrow();
    }
    // kubernetes-models has no Prometheus Operator types: the PodMonitor is checked by shape in its own test.
    // The validator is live: a wrong type is caught.
    const broken = renderTunerObjects(profile, { name: "g", image }).daemonSet as any;
    broken.spec.template.spec.hostNetwork = "yes";
    expect(() => new DaemonSet(broken).validate()).toThrow();
  });

  describe("the tuner loop's pod (renderTunerObjects)", () => {
    const o = renderTunerObjects(profile, { name: "g", image, nodeSelector: { role: "proxy" } });
    const pod = (o.daemonSet as any).spec.template.spec;
    const [c] = pod.containers;

    it("passes the tuner loop its settings as the contract names them", () => {
      expect(c.env).toEqual([
        { name: "TUNER_NAME", value: "g" },
        { name: "TUNE_SH", value: "/edgetune/tune.sh" },
        { name: "STATUS_FILE", value: "/run/edgetune/status" },
        { name: "VERIFY_INTERVAL_SECONDS", value: "300" },
        { name: "REAPPLY_ON_DRIFT", value: "0" },
        { name: "NIC_POLL_SECONDS", value: "5" },
        { name: "RESTORE_ON_REMOVE", value: "1" },
        { name: "READY_WHEN", value: "no-failures" },
        { name: "METRICS_PORT", value: "9477" },
        { name: "METRICS_ALLOW", value: "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 127.0.0.0/8" },
        { name: "METRICS_ALLOW_ANY", value: "0" },
        { name: "ANNOTATE_NODE", value: "1" },
        { name: "DAEMONSET_NAME", value: "edgetune-tuner-g" },
        { name: "NODE_SELECTOR", value: '{"role":"proxy"}' },
        { name: "KUBE_TOKEN_FILE", value: "/var/run/secrets/edgetune/token" },
        { name: "KUBE_CA_FILE", value: "/var/run/secrets/edgetune/ca.crt" },
        { name: "ETC_ROOT", value: "/host/etc" },
        { name: "STATE_DIR", value: "/host/var/lib/edgetune" },
        { name: "EDGETUNE_SCOPE", value: "all" },
        { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
        { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        { name: "METRICS_BIND", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
      ]);
      // DAEMONSET_NAME is this DaemonSet, which the Role lets it read, and nothing else.
      expect(o.role.rules).toEqual([
        { apiGroups: ["apps"], resources: ["daemonsets"], resourceNames: [o.daemonSet.metadata.name], verbs: ["get"] },
      ]);
      const every = renderTunerObjects(profile, { name: "g", image });
      expect((every.daemonSet as any).spec.template.spec.containers[0].env).toContainEqual({ name: "NODE_SELECTOR", value: "{}" });
      const tuned = renderTunerObjects(profile, {
        name: "g",
        image,
        nicPollSeconds: 0,
        restoreOnRemove: false,
        readyWhen: "applied",
        metrics: { port: 0 },
      });
      const env = (tuned.daemonSet as any).spec.template.spec.containers[0].env;
      expect(env).toEqual(
        expect.arrayContaining([
          { name: "NIC_POLL_SECONDS", value: "0" },
          { name: "RESTORE_ON_REMOVE", value: "0" },
          { name: "READY_WHEN", value: "applied" },
          { name: "METRICS_PORT", value: "0" },
        ]),
      );
      // No endpoint, no port.
      expect((tuned.daemonSet as any).spec.template.spec.containers[0].ports).toBeUndefined();
    });

    it("gives the API token to the tuner container only, through a projected volume", () => {
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.serviceAccountName).toBe(o.serviceAccount.metadata.name);
      expect(pod.volumes.find((v: any) => v.name === "tuner-token").projected.sources).toEqual([
        { serviceAccountToken: { path: "token", expirationSeconds: 3600 } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
      ]);
      expect(c.volumeMounts).toContainEqual({ name: "tuner-token", mountPath: "/var/run/secrets/edgetune", readOnly: true });
      // The roles: its node's labels and annotation, its own DaemonSet; bound to its ServiceAccount.
      expect(o.clusterRole.rules).toEqual([{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] }]);
      const subject = [{ kind: "ServiceAccount", name: "edgetune-tuner-g", namespace: "edgetune-system" }];
      expect(o.clusterRoleBinding).toMatchObject({
        roleRef: { kind: "ClusterRole", name: o.clusterRole.metadata.name },
        subjects: subject,
      });
      expect(o.roleBinding).toMatchObject({ roleRef: { kind: "Role", name: o.role.metadata.name }, subjects: subject });
      // Cluster-scoped names carry the namespace: two stacks' tuners of one name do not collide.
      expect(o.clusterRole.metadata.name).toBe("edgetune:edgetune-system:edgetune-tuner-g");
    });

    it("is ready only by `tuner.sh ready`, can modprobe, and has a bounded grace period for the restore", () => {
      expect(c.readinessProbe.exec.command).toEqual(READY_COMMAND);
      expect(READY_COMMAND).toEqual(["/bin/sh", "/edgetune/tuner.sh", "ready"]);
      expect(pod.volumes).toContainEqual({ name: "lib-modules", hostPath: { path: "/lib/modules", type: "Directory" } });
      expect(c.volumeMounts).toContainEqual({ name: "lib-modules", mountPath: "/lib/modules", readOnly: true });
      expect(pod.terminationGracePeriodSeconds).toBe(60);
      const longer = renderTunerObjects(profile, { name: "g", image, terminationGracePeriodSeconds: 300 });
      expect((longer.daemonSet as any).spec.template.spec.terminationGracePeriodSeconds).toBe(300);
      // pulumi destroy waits for the pods' decision: foreground deletion of the DaemonSet.
      expect(o.daemonSet.metadata.annotations).toEqual({ "pulumi.com/deletionPropagationPolicy": "foreground" });
    });

    it("tolerates every NoSchedule and NoExecute taint unless told otherwise", () => {
      expect(pod.tolerations).toEqual([
        { operator: "Exists", effect: "NoSchedule" },
        { operator: "Exists", effect: "NoExecute" },
      ]);
      const none = renderTunerObjects(profile, { name: "g", image, tolerations: [] });
      expect((none.daemonSet as any).spec.template.spec.tolerations).toBeUndefined();
      const own = [{ key: "dedicated", operator: "Equal" as const, value: "proxy", effect: "NoSchedule" as const }];
      expect((renderTunerObjects(profile, { name: "g", image, tolerations: own }).daemonSet as any).spec.template.spec.tolerations).toEqual(
        own,
      );
    });

    it("serves metrics on the node's port, and a PodMonitor scrapes it when asked", () => {
      expect(c.ports).toEqual([{ name: "tuner-metrics", containerPort: 9477, hostPort: 9477, protocol: "TCP" }]);
      expect(o.podMonitor).toBeUndefined();
      const own = renderTunerObjects(profile, { name: "g", image, hostNetwork: false, metrics: { port: 9100, podMonitor: true } });
      expect((own.daemonSet as any).spec.template.spec.containers[0].ports).toEqual([
        { name: "tuner-metrics", containerPort: 9100, protocol: "TCP" },
      ]);
      // The PodMonitor selects exactly this DaemonSet's pods, by the port's name.
      expect(own.podMonitor).toEqual({
        apiVersion: "monitoring.coreos.com/v1",
        kind: "PodMonitor",
        metadata: { name: "edgetune-tuner-g", namespace: "edgetune-system", labels: own.daemonSet.metadata.labels },
        spec: {
          selector: { matchLabels: own.daemonSet.spec.selector.matchLabels },
          podMetricsEndpoints: [{ port: "tuner-metrics", path: "/metrics" }],
        },
      });
    });

    it("names the key, the value and what is allowed for each bad loop option", () => {
      try {
        renderTunerObjects(profile, {
          name: "g",
          image,
          nicPollSeconds: 3601,
          readyWhen: "sometimes" as never,
          metrics: { port: 0, podMonitor: true },
          terminationGracePeriodSeconds: 1,
        });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ValidationError);
        expect((e as ValidationError).issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
          "nicPollSeconds: got 3601; allowed: an integer 0..3600",
          expect.stringMatching(/^readyWhen: got "sometimes"; .*"applied".*"no-failures"/),
          "metrics.podMonitor: got true with port 0; allowed: a PodMonitor needs a metrics port",
          "terminationGracePeriodSeconds: got 1; allowed: an integer 5..3600",
        ]);
      }
    });
  });

  it("registers the PodMonitor when asked, and deletes what the pods use only after the DaemonSet", async () => {
    const seen: pulumi.ResourceTransformationArgs[] = [];
    const c = new m.KubernetesNodeTuner(
      "mon",
      { profile, image, metrics: { podMonitor: true } },
      { transformations: [(r) => (seen.push(r), undefined)] },
    );
    await registered(1, "kubernetes:monitoring.coreos.com/v1:PodMonitor", "mon-");
    const [pm] = of("kubernetes:monitoring.coreos.com/v1:PodMonitor", "mon-");
    expect(pm.inputs.spec.podMetricsEndpoints).toEqual([{ port: "tuner-metrics", path: "/metrics" }]);
    expect(c.podMonitor).toBeDefined();
    // Pulumi deletes a resource before what it depends on: the ServiceAccount, the bindings and
    // the scripts outlive the DaemonSet, whose deletion waits for its pods to restore.
    await until("the DaemonSet's transformation", () => seen.some((r) => r.type === "kubernetes:apps/v1:DaemonSet"));
    const ds = seen.find((r) => r.type === "kubernetes:apps/v1:DaemonSet")!;
    expect(ds.opts.dependsOn).toEqual(expect.arrayContaining([c.serviceAccount, c.clusterRoleBinding, c.roleBinding, c.configMap]));
  });

  it("accepts the deprecated restoreOnDelete as restoreOnRemove, and refuses both at once", async () => {
    new m.KubernetesNodeTuner("old", { profile, image, restoreOnDelete: false });
    await registered(1, "kubernetes:apps/v1:DaemonSet", "old-");
    const [ds] = of("kubernetes:apps/v1:DaemonSet", "old-");
    expect(ds.inputs.spec.template.spec.containers[0].env).toContainEqual({ name: "RESTORE_ON_REMOVE", value: "0" });
    expect(() => new m.KubernetesNodeTuner("both", { profile, image, restoreOnDelete: true, restoreOnRemove: false })).toThrow(
      /restoreOnDelete: set together with restoreOnRemove, its new name; allowed: only restoreOnRemove/,
    );
  });
});
