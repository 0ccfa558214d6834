/**
 * Every shipped stack through the program exactly as `pulumi preview` runs it: the SDK's own
 * `cmd/run` loads the entry point Pulumi.yaml names, with the config the engine would hand it,
 * against Pulumi's mocks (test/helpers/program.ts).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { fromEngine } from "../../infra/engine-config";
import { loadStack, parseStack, readStackConfig } from "../../loader/stack-config";
import { renderStack } from "../../render/render";
import { readMachineFacts } from "../../loader/machine-facts";
import { countByType, decrypt, engineConfigFor, ofType, ROOT, runProgram, type ProgramRun } from "../helpers/program";

const STACKS = readdirSync(join(ROOT, "stacks"))
  .flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? [])
  .sort();

/** What each stack must register (types not listed must be absent when marked 0). */
const EXPECTED: Record<string, Record<string, number>> = {
  local: {
    "edgetune:lab:LocalLab": 1,
    "command:local:Command": 1,
    "edgetune:proxy:ProxyDaemonSet": 0, // proxy.kubernetes is rendered only: no Kubernetes nodes in this stack
    "kubernetes:apps/v1:DaemonSet": 0,
    "kubernetes:core/v1:Namespace": 0,
  },
  dev: {
    "edgetune:nodes:KubernetesNodeTuner": 1,
    "edgetune:proxy:ProxyDaemonSet": 1,
    "kubernetes:apps/v1:DaemonSet": 2,
    // edgetune-system (tuner) and edgetune-proxy, each created once by the program.
    "kubernetes:core/v1:Namespace": 2,
    "kubernetes:policy/v1:PodDisruptionBudget": 1,
    // The tuner's and the proxy's tuning sidecar's: one identity and its roles each.
    "kubernetes:core/v1:ServiceAccount": 2,
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": 2,
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": 2,
    "kubernetes:monitoring.coreos.com/v1:PodMonitor": 0,
    "command:local:Command": 0,
  },
  prod: {
    "edgetune:nodes:AwsTunedNodeGroup": 1,
    "aws:ec2/launchTemplate:LaunchTemplate": 1,
    "aws:autoscaling/group:Group": 1,
    "edgetune:nodes:RemoteHostTuning": 1,
    // Per SSH host an apply and the verify gate the next batch waits for.
    "command:remote:Command": 6,
    "edgetune:proxy:ProxyDaemonSet": 1,
    "edgetune:nodes:KubernetesNodeTuner": 0,
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ServiceAccount": 1,
  },
  eks: {
    "edgetune:nodes:AwsTunedNodeGroup": 1,
    "aws:ec2/launchTemplate:LaunchTemplate": 1,
    "aws:autoscaling/group:Group": 0, // the EKS managed node group owns the instances
  },
  bench: {
    "edgetune:proxy:ProxyDaemonSet": 1,
    "edgetune:bench:BenchmarkSuite": 1,
    // Created inside the suite's A/B gate, after the baseline runs.
    "edgetune:nodes:KubernetesNodeTuner": 1,
    // The tuner's, and the bench load Jobs' (to find their counters pod); the proxy has no tuning sidecar here.
    "kubernetes:core/v1:ServiceAccount": 2,
  },
};

const runs = new Map<string, ProgramRun>();
const stackRun = (stack: string) => runs.get(stack)!;

beforeAll(() => {
  for (const stack of STACKS) runs.set(stack, runProgram({ stack, ...engineConfigFor(readStackConfig(stack, ROOT)) }));
}, 180_000);

describe("every stack file, through the SDK's own program loader under Pulumi mocks", () => {
  it("has an expectation for every stack file", () => {
    expect(STACKS).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const stack of STACKS) {
    it(`${stack}: the SDK runs infra/index.ts, which registers the expected resources and exports per node group`, () => {
      const run = stackRun(stack);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.program).toBe(join(ROOT, "infra", "index.ts"));
      const counts = countByType(run);
      for (const [type, n] of Object.entries(EXPECTED[stack] ?? {})) expect(counts[type] ?? 0, `${stack}: ${type}`).toBe(n);
      const groups = run.outputs!.nodeGroups as Record<string, { target: string; profile: string; digest: string }>;
      const declared = (readStackConfig(stack, ROOT).nodeGroups as Array<{ name: string; target: string; profile: string }>).map((g) => [
        g.name,
        g.target,
        g.profile,
      ]);
      expect(Object.entries(groups).map(([n, g]) => [n, g.target, g.profile])).toEqual(declared);
      for (const g of Object.values(groups)) expect(g.digest).toMatch(/^sha256:[0-9a-f]{16}$/);
    });
  }

  it("local: the lab command runs the rendered step scripts, and the exports carry its status and endpoints", () => {
    const run = stackRun("local");
    const files = renderStack(loadStack("local", ROOT), { machine: readMachineFacts() });
    const [lab] = ofType(run, "command:local:Command");
    // One definition, two executors: the command Pulumi runs is the one render shows.
    expect(files["lab/lab/create.sh"]).toContain(lab.inputs.create);
    expect(files["lab/lab/delete.sh"]).toContain(lab.inputs.delete);
    expect(lab.inputs.environment.EDGETUNE_FILE_LAB_SH).toBe(files["lab/lab/lab.sh"]);
    // One haproxy.cfg for this machine: the local target's, render's and (test/lab/lab.test.ts) the lab's.
    expect(lab.inputs.environment.EDGETUNE_FILE_HAPROXY_CFG).toBe(files["proxy/haproxy.cfg"]);
    expect(files["lab/lab/haproxy.cfg"]).toBe(files["proxy/haproxy.cfg"]);
    const outputs = run.outputs!;
    expect(outputs.nodeGroups.lab.status).toMatchObject({ status: "applied", changed: 12 });
    expect(outputs.proxy.endpoints.web).toMatch(/^http:\/\/10\.231\.\d+\.\d+:80$/);
    expect(outputs.proxy.kubernetes).toBeUndefined();
  });

  it("prod: the SSH key reaches the commands decrypted and secret, and no plain export contains it", () => {
    const config = readStackConfig("prod", ROOT);
    const ciphertext = (config.nodeGroups as any[])[1].ssh.privateKey.secure as string;
    const run = stackRun("prod");
    const cmds = ofType(run, "command:remote:Command");
    for (const c of cmds) {
      expect(c.inputs.connection[pulumi.runtime.specialSigKey]).toBe(pulumi.runtime.specialSecretSig);
      expect(c.inputs.connection.value.privateKey).toBe(decrypt(ciphertext));
    }
    const conns = cmds.map((c) => [c.inputs.connection.value.host, c.inputs.connection.value.port, c.inputs.connection.value.user]);
    expect([...new Map(conns.map((c) => [c.join(" "), c])).values()].sort()).toEqual([
      ["192.0.2.10", 22, "ops"],
      ["192.0.2.11", 22, "ops"],
      ["edge-3.example.net", 2222, "ops"],
    ]);
    const exported = JSON.stringify(run.outputs);
    expect(exported).not.toContain(ciphertext);
    expect(exported).not.toContain(decrypt(ciphertext));
    // A secret export would arrive as a signed envelope: nodeGroups is plain data.
    expect(run.outputs!.nodeGroups[pulumi.runtime.specialSigKey]).toBeUndefined();
    const groups = run.outputs!.nodeGroups;
    expect(groups["edge-asg"]).toMatchObject({
      launchTemplateId: "edge-asg-lt-id",
      launchTemplateVersion: 3,
      autoScalingGroupName: expect.any(String),
    });
    expect(groups["edge-hosts"].status["edge-3.example.net"]).toMatchObject({ status: "applied" });
    expect(groups["proxy-nodes"]).toMatchObject({ tunedBy: "proxy tuning sidecar" });
    const [asg] = ofType(run, "aws:autoscaling/group:Group");
    expect([asg.inputs.minSize, asg.inputs.desiredCapacity, asg.inputs.maxSize]).toEqual([4, 4, 8]);
  });

  it("eks: the launch template carries MIME user-data and no AMI, for a managed node group", () => {
    const [lt] = ofType(stackRun("eks"), "aws:ec2/launchTemplate:LaunchTemplate");
    expect(lt.inputs.imageId).toBeUndefined();
    expect(Buffer.from(lt.inputs.userData, "base64").toString()).toMatch(/^MIME-Version: 1\.0\nContent-Type: multipart\/mixed/);
  });

  it("bench: the baseline runs on untuned nodes — no tuning init container — and a tuner switches them for the tuned runs", () => {
    const run = stackRun("bench");
    const proxyDs = ofType(run, "kubernetes:apps/v1:DaemonSet").find((r) => JSON.stringify(r.inputs.metadata).includes("edgetune-proxy"))!;
    expect(proxyDs.inputs.spec.template.spec.initContainers).toBeUndefined();
    expect(proxyDs.inputs.spec.template.spec.containers.filter((c: any) => c.securityContext?.privileged)).toEqual([]);
    expect(run.outputs!.benchmark.switchedTo).toBe("tuned");
    expect(Object.keys(run.outputs!.benchmark.tuners)).toEqual(["proxy-nodes"]);
    expect(ofType(run, "kubernetes:apps/v1:DaemonSet").some((r) => JSON.stringify(r.inputs.metadata).includes("edgetune-tuner"))).toBe(
      true,
    );
  });
});

describe("config comes from the engine; the stack file is one source of it", () => {
  it("every shipped stack gives the identical plan from the stack file (render, lab) and from the engine (pulumi up)", () => {
    for (const stack of STACKS) {
      const offline = loadStack(stack, ROOT);
      const handed = engineConfigFor(readStackConfig(stack, ROOT));
      const engine = fromEngine(handed.config, handed.secretKeys);
      expect(parseStack(stack, engine.config, { secretKeys: engine.secretKeys }), stack).toEqual(offline);
    }
  });

  it("a value set only at runtime (-c, --config-file or an ESC environment) changes what the program registers", () => {
    const file = readStackConfig("dev", ROOT);
    const proxy = file.proxy as Record<string, any>;
    // As `pulumi config set edgetune:proxy '<json>'` or an ESC environment would set it: a new
    // backend address and an image from another registry; the stack file is unchanged.
    const runtimeProxy = {
      ...proxy,
      backends: proxy.backends.map((b: any) => ({ ...b, servers: b.servers.map((s: any) => ({ ...s, address: "10.96.7.7" })) })),
      kubernetes: { ...proxy.kubernetes, image: "registry.example.org/edge/proxy:2.0.1" },
    };
    const handed = engineConfigFor(file);
    const run = runProgram({
      stack: "dev",
      config: { ...handed.config, "edgetune:proxy": JSON.stringify(runtimeProxy) },
      secretKeys: handed.secretKeys,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    const ds = ofType(run, "kubernetes:apps/v1:DaemonSet").find((r) => r.name.startsWith("proxy"))!;
    expect(ds.inputs.spec.template.spec.containers[0].image).toBe("registry.example.org/edge/proxy:2.0.1");
    const cm = ofType(run, "kubernetes:core/v1:ConfigMap").find((r) => r.name.startsWith("proxy"))!;
    expect(cm.inputs.data["haproxy.cfg"]).toMatch(/server app-1 10\.96\.7\.7:8080/);
    // The same stack from its file alone still has the file's values.
    const fromFile = ofType(stackRun("dev"), "kubernetes:core/v1:ConfigMap").find((r) => r.name.startsWith("proxy"))!;
    expect(fromFile.inputs.data["haproxy.cfg"]).toMatch(/server app-1 10\.96\.100\.10:8080/);
  });

  it("a bad stack fails with one error listing every problem, and registers nothing but the root stack", () => {
    const bad = {
      profiles: { edge: { extends: "recommended", sysctls: { "net.core.somaxconn": "many" } } },
      nodeGroups: [
        {
          name: "hosts",
          target: "ssh",
          profile: "edge",
          ssh: {
            hosts: [{ host: "bad host" }],
            privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
          },
        },
        { name: "asg", target: "aws", profile: "edge", aws: { instanceType: "huge" } },
      ],
    };
    const run = runProgram({ stack: "bad", ...engineConfigFor(bad) });
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toMatch(/invalid stack config "bad": 6 problems\n/);
    for (const problem of [
      /nodeGroups\[0\]\.ssh\.privateKey: not a secure value/,
      /nodeGroups\[0\]\.ssh\.hosts\[0\]\.host: got "bad host"/,
      /nodeGroups\[1\]\.aws\.instanceType: got "huge"/,
      /nodeGroups\[1\]\.aws\.imageId: required: an AMI id/,
      /profiles\.edge\.sysctls\["net\.core\.somaxconn"\]: got "many"/,
    ]) {
      expect(run.stderr).toMatch(problem);
    }
    // A message, not a crash: no stack trace.
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.stderr).not.toContain("AAAA");
    // Recorded by the child as the mock monitor saw them: nothing can replace this list after the fact.
    expect(run.registered.map((r) => r.type)).toEqual(["pulumi:pulumi:Stack"]);
  });

  it("a secret config key's values never appear in an error, whatever the leaf", () => {
    // As an ESC environment with fn::secret on the whole key would hand it: nodeGroups secret, a bad host inside.
    const config = readStackConfig("prod", ROOT);
    const groups = JSON.parse(JSON.stringify(config.nodeGroups));
    groups[1].ssh.hosts[0].host = "leaky host name";
    const handed = engineConfigFor({ ...config, nodeGroups: groups });
    const engine = fromEngine(handed.config, [...handed.secretKeys, "edgetune:nodeGroups"]);
    expect(() => parseStack("prod", engine.config, { secretKeys: engine.secretKeys })).toThrow(
      /nodeGroups\[1\]\.ssh\.hosts\[0\]\.host: got "\(secret\)"/,
    );
    try {
      parseStack("prod", engine.config, { secretKeys: engine.secretKeys });
    } catch (e) {
      expect((e as Error).message).not.toContain("leaky host");
    }
  });
});

describe("Kubernetes namespaces: one owner each", () => {
  const base = readStackConfig("dev", ROOT);
  const twoTuners = (extra: Record<string, unknown> = {}) => ({
    ...base,
    nodeGroups: [
      ...(base.nodeGroups as unknown[]),
      {
        name: "cache-nodes",
        target: "kubernetes",
        profile: "app",
        kubernetes: { image: "ghcr.io/edgetune/edgetune-tuner:0.1.0", nodeSelector: { "edgetune.io/pool": "cache" }, ...extra },
      },
    ],
  });

  it("two tuner groups in edgetune-system register one Namespace, which the program owns under the namespace's name", () => {
    const run = runProgram({ stack: "dev", ...engineConfigFor(twoTuners()) });
    expect(run.exitCode, run.stderr).toBe(0);
    const namespaces = ofType(run, "kubernetes:core/v1:Namespace");
    expect(namespaces.map((n) => [n.name, n.inputs.metadata.name]).sort()).toEqual([
      ["edgetune-proxy", "edgetune-proxy"],
      ["edgetune-system", "edgetune-system"],
    ]);
    // Top-level, not a component's child: renaming a group cannot replace it. What components
    // created as their child `<name>-ns` before is carried over by an alias, not replaced.
    for (const n of namespaces) expect(n.parent).toMatch(/::pulumi:pulumi:Stack::edgetune-dev$/);
    const system = namespaces.find((n) => n.name === "edgetune-system")!;
    expect(JSON.stringify(system.aliases)).toContain("app-nodes-ns");
    expect(JSON.stringify(system.aliases)).toContain("cache-nodes-ns");
    expect(JSON.stringify(system.aliases)).toContain("edgetune:nodes:KubernetesNodeTuner::app-nodes");
    const tuners = ofType(run, "kubernetes:apps/v1:DaemonSet").filter((d) => d.name.endsWith("-tuner"));
    expect(tuners.map((t) => t.inputs.metadata.namespace)).toEqual(["edgetune-system", "edgetune-system"]);
  });

  it("uses an existing namespace when told to, and refuses users of one namespace that disagree", () => {
    const existing = runProgram({
      stack: "dev",
      ...engineConfigFor({
        ...twoTuners({ createNamespace: false }),
        nodeGroups: (twoTuners({ createNamespace: false }).nodeGroups as any[]).map((g) =>
          g.kubernetes?.image ? { ...g, kubernetes: { ...g.kubernetes, createNamespace: false } } : g,
        ),
      }),
    });
    expect(existing.exitCode, existing.stderr).toBe(0);
    expect(ofType(existing, "kubernetes:core/v1:Namespace").map((n) => n.name)).toEqual(["edgetune-proxy"]);
    expect(() => parseStack("dev", twoTuners({ podSecurityVersion: "v1.30" }))).toThrow(
      /nodeGroups\[2\]\.kubernetes\.podSecurityVersion: got "v1\.30"; nodeGroups\[0\]\.kubernetes puts namespace "edgetune-system" on "v1\.33"/,
    );
  });
});
