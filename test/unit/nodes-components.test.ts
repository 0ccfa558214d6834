import * as pulumi from "@pulumi/pulumi";
import { gunzipSync } from "node:zlib";
import { load } from "js-yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { resolveProfile } from "../../components/tuning/profile";
import { ValidationError } from "../../components/validation";
import { renderTuneSh } from "../../components/tuning/render";
import { renderTunerObjects, CHECKSUM_ANNOTATION } from "../../components/nodes/k8s-tuner";
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
                stdout:
                  "changed sysctl x\nsummary: status=degraded changed=3 unchanged=1 skipped=2 failed=0 reboot_required=0 profile=edge digest=sha256:abc",
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
  it("copies the artifacts, applies on create/update, restores on delete, replaces delete-first on artifact or host change", async () => {
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
    await registered(2, "command:remote:Command", "ssh-");
    await registered(Object.keys(expected.stagedFiles).length, "command:remote:CopyToRemote", "ssh-10-0-0-5");
    const cmds = of("command:remote:Command", "ssh-");
    expect(cmds).toHaveLength(2);
    // The children are the component's readonly properties.
    expect(Object.keys(c.commands)).toEqual(["10.0.0.5", "edge-2.example"]);
    expect(await value(c.commands["edge-2.example"].urn)).toMatch(/\$command:remote:Command::ssh-edge-2-example-apply$/);
    expect(c.copies["10.0.0.5"].length).toBe(of("command:remote:CopyToRemote", "ssh-10-0-0-5").length);
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
      expect(cmd.inputs.triggers).toEqual([expected.tuneShSha256, conn.host, conn.port]);
      expect(conn.user).toBe("ops");
    }
    const copies = of("command:remote:CopyToRemote", "ssh-10-0-0-5");
    const copied = await Promise.all(copies.map(async (c) => [c.inputs.remotePath, await c.inputs.source.text]));
    expect(Object.fromEntries(copied)).toEqual(expected.stagedFiles);
    for (const c of copies) expect(secretValue(c.inputs.connection).privateKey).toBe("KEY-MATERIAL");
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
            if (r.type === "command:remote:Command") seen.push({ opts: r.opts, args: r.props });
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
    });
    expect(pod.securityContext).toBeUndefined();
    expect(pod.containers).toHaveLength(1);
    expect(pod.containers[0].securityContext).toMatchObject({ privileged: true });
    expect(pod.containers[0].command).toEqual(["/bin/sh", "/edgetune/tuner.sh"]);
    expect(pod.containers[0].env).toEqual(
      expect.arrayContaining([
        { name: "VERIFY_INTERVAL_SECONDS", value: "60" },
        { name: "REAPPLY_ON_DRIFT", value: "1" },
        { name: "RESTORE_ON_DELETE", value: "1" },
      ]),
    );
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
      expect(() => new ConfigMap(objs.configMap as any).validate()).not.toThrow();
      expect(() => new DaemonSet(objs.daemonSet as any).validate()).not.toThrow();
    }
    // The validator is live: a wrong type is caught.
    const broken = renderTunerObjects(profile, { name: "g", image }).daemonSet as any;
    broken.spec.template.spec.hostNetwork = "yes";
    expect(() => new DaemonSet(broken).validate()).toThrow();
  });
});
