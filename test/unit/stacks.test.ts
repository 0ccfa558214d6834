import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type * as Pulumi from "@pulumi/pulumi";
import { readStackConfig } from "../../infra/stack-config";

const ROOT = join(__dirname, "..", "..");
const STACKS = readdirSync(join(ROOT, "stacks")).flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? []).sort();

interface Recorded { type: string; name: string; inputs: Record<string, any> }

/** Stands in for the engine's decryption: distinct from the ciphertext, so a test can tell which one a resource got. */
const decrypt = (ciphertext: string) => `decrypted(${ciphertext})`;

/**
 * The config map the Pulumi CLI hands the program: `project:key` → string (objects as JSON),
 * `secure:` leaves decrypted, and every key holding one listed as secret.
 */
function cliConfig(config: Record<string, unknown>): { values: Record<string, string>; secretKeys: string[] } {
  const secretKeys: string[] = [];
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    let secret = false;
    const walk = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (Object.keys(o).length === 1 && typeof o.secure === "string") return (secret = true), decrypt(o.secure);
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
      }
      return v;
    };
    const plain = walk(value);
    values[`edgetune:${key}`] = typeof plain === "string" ? plain : JSON.stringify(plain);
    if (secret) secretKeys.push(`edgetune:${key}`);
  }
  return { values, secretKeys };
}

const SUMMARY = "summary: status=applied changed=12 unchanged=3 skipped=0 failed=0 reboot_required=0 profile=p digest=sha256:0";

/** Runs infra/index.ts for one stack in a fresh module context under Pulumi's mocks (a preview). */
async function runProgram(stack: string, config: Record<string, unknown>, wrapLoad?: (real: typeof import("../../infra/stack-config")) => Partial<typeof import("../../infra/stack-config")>) {
  vi.resetModules();
  if (wrapLoad) vi.doMock("../../infra/stack-config", async (orig) => ({ ...(await orig()), ...wrapLoad(await orig()) }));
  else vi.doUnmock("../../infra/stack-config");
  const pulumi = await import("@pulumi/pulumi");
  const recorded: Recorded[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        recorded.push({ type: a.type, name: a.name, inputs: a.inputs });
        const state: Record<string, unknown> = { ...a.inputs };
        if (a.type === "aws:ec2/launchTemplate:LaunchTemplate") state.latestVersion = 3;
        if (a.type === "aws:autoscaling/group:Group") state.name = `${a.name}-name`;
        if (a.type === "command:remote:Command" || (a.type === "command:local:Command" && !a.name.endsWith("-collect"))) state.stdout = `changed x\n${SUMMARY}\n`;
        return { id: `${a.name}-id`, state };
      },
      call: (a) => a.inputs,
    },
    "edgetune",
    stack,
    true,
  );
  const { values, secretKeys } = cliConfig(config);
  pulumi.runtime.setAllConfig(values, secretKeys);
  const program = await import("../../infra/index");
  await new Promise((r) => setTimeout(r, 100));
  const resolve = <T>(o: T) => new Promise<Pulumi.Unwrap<T>>((r) => pulumi.output(o).apply(r));
  return { pulumi, program, recorded, resolve };
}

const count = (recorded: Recorded[]) => recorded.reduce<Record<string, number>>((m, r) => ((m[r.type] = (m[r.type] ?? 0) + 1), m), {});

/** What each stack must register (types not listed must be absent when marked 0). */
const EXPECTED: Record<string, Record<string, number>> = {
  local: {
    "edgetune:lab:LocalLab": 1,
    "command:local:Command": 1,
    "edgetune:proxy:ProxyDaemonSet": 0, // proxy.kubernetes is rendered only: no Kubernetes nodes in this stack
    "kubernetes:apps/v1:DaemonSet": 0,
  },
  dev: {
    "edgetune:nodes:KubernetesNodeTuner": 1,
    "edgetune:proxy:ProxyDaemonSet": 1,
    "kubernetes:apps/v1:DaemonSet": 2,
    "kubernetes:core/v1:Namespace": 2,
    "kubernetes:policy/v1:PodDisruptionBudget": 1,
    "command:local:Command": 0,
  },
  prod: {
    "edgetune:nodes:AwsTunedNodeGroup": 1,
    "aws:ec2/launchTemplate:LaunchTemplate": 1,
    "aws:autoscaling/group:Group": 1,
    "edgetune:nodes:RemoteHostTuning": 1,
    "command:remote:Command": 3,
    "edgetune:proxy:ProxyDaemonSet": 1,
    "edgetune:nodes:KubernetesNodeTuner": 0,
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
  },
};

describe("every stack file evaluates under Pulumi mocks", () => {
  it("has an expectation for every stack file", () => {
    expect(STACKS).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const stack of STACKS) {
    it(`${stack}: registers the expected resources and exports per node group`, async () => {
      const config = readStackConfig(stack, ROOT);
      const { program, recorded, resolve } = await runProgram(stack, config);
      const counts = count(recorded);
      for (const [type, n] of Object.entries(EXPECTED[stack] ?? {})) expect(counts[type] ?? 0, `${stack}: ${type}`).toBe(n);
      const groups = await resolve(program.nodeGroups);
      const declared = (config.nodeGroups as Array<{ name: string; target: string; profile: string }>).map((g) => [g.name, g.target, g.profile]);
      expect(Object.entries(groups).map(([n, g]) => [n, (g as { target: string }).target, (g as { profile: string }).profile])).toEqual(declared);
      for (const g of Object.values(groups)) expect((g as { digest: string }).digest).toMatch(/^sha256:[0-9a-f]{16}$/);
    });
  }

  it("local: the lab command runs the rendered step scripts, and the exports carry its status and endpoints", async () => {
    const { program, recorded, resolve } = await runProgram("local", readStackConfig("local", ROOT));
    const { renderStack } = await import("../../infra/render");
    const { loadStack } = await import("../../infra/stack-config");
    const files = renderStack(loadStack("local", ROOT));
    const [lab] = recorded.filter((r) => r.type === "command:local:Command");
    // One definition, two executors: the command Pulumi runs is the one render shows.
    expect(files["lab/lab/create.sh"]).toContain(lab.inputs.create);
    expect(files["lab/lab/delete.sh"]).toContain(lab.inputs.delete);
    expect(lab.inputs.environment.EDGETUNE_FILE_LAB_SH).toBe(files["lab/lab/lab.sh"]);
    const groups = (await resolve(program.nodeGroups)) as Record<string, any>;
    expect(groups.lab.status).toMatchObject({ status: "applied", changed: 12 });
    const proxy = (await resolve(program.proxy)) as Record<string, any>;
    expect(proxy.endpoints.web).toMatch(/^http:\/\/10\.231\.\d+\.\d+:80$/);
    expect(proxy.kubernetes).toBeUndefined();
  });

  it("prod: the SSH key reaches the commands decrypted and secret, and no plain export contains it", async () => {
    const config = readStackConfig("prod", ROOT);
    const ciphertext = (config.nodeGroups as any[])[1].ssh.privateKey.secure as string;
    const { pulumi, program, recorded, resolve } = await runProgram("prod", config);
    const cmds = recorded.filter((r) => r.type === "command:remote:Command");
    for (const c of cmds) {
      expect(c.inputs.connection[pulumi.runtime.specialSigKey]).toBe(pulumi.runtime.specialSecretSig);
      expect(c.inputs.connection.value.privateKey).toBe(decrypt(ciphertext));
    }
    expect(cmds.map((c) => [c.inputs.connection.value.host, c.inputs.connection.value.port, c.inputs.connection.value.user])).toEqual([
      ["192.0.2.10", 22, "ops"],
      ["192.0.2.11", 22, "ops"],
      ["edge-3.example.net", 2222, "ops"],
    ]);
    const exported = JSON.stringify([await resolve(program.nodeGroups), await resolve(program.proxy)]);
    expect(exported).not.toContain(ciphertext);
    expect(exported).not.toContain(decrypt(ciphertext));
    expect(await pulumi.output(program.nodeGroups).isSecret).toBe(false);
    const groups = JSON.parse(exported)[0];
    expect(groups["edge-asg"]).toMatchObject({ launchTemplateId: "edge-asg-lt-id", launchTemplateVersion: 3, autoScalingGroupName: expect.any(String) });
    expect(groups["edge-hosts"].status["edge-3.example.net"]).toMatchObject({ status: "applied" });
    expect(groups["proxy-nodes"]).toMatchObject({ tunedBy: "proxy init container" });
    const asg = recorded.find((r) => r.type === "aws:autoscaling/group:Group");
    expect([asg?.inputs.minSize, asg?.inputs.desiredCapacity, asg?.inputs.maxSize]).toEqual([4, 4, 8]);
  });

  it("eks: the launch template carries MIME user-data and no AMI, for a managed node group", async () => {
    const { recorded } = await runProgram("eks", readStackConfig("eks", ROOT));
    const lt = recorded.find((r) => r.type === "aws:ec2/launchTemplate:LaunchTemplate");
    expect(lt?.inputs.imageId).toBeUndefined();
    expect(Buffer.from(lt?.inputs.userData, "base64").toString()).toMatch(/^MIME-Version: 1\.0\nContent-Type: multipart\/mixed/);
  });

  it("bench: the baseline runs on untuned nodes — no tuning init container — and a tuner switches them for the tuned runs", async () => {
    const { program, recorded } = await runProgram("bench", readStackConfig("bench", ROOT));
    const proxyDs = recorded.find((r) => r.type === "kubernetes:apps/v1:DaemonSet" && JSON.stringify(r.inputs.metadata).includes("edgetune-proxy"));
    expect(proxyDs?.inputs.spec.template.spec.initContainers).toBeUndefined();
    const privileged = proxyDs?.inputs.spec.template.spec.containers.filter((c: any) => c.securityContext?.privileged);
    expect(privileged).toEqual([]);
    // Plain values, filled while the suite is constructed (its results stay unknown in a preview).
    const bench = program.benchmark as unknown as { switchedTo: string; tuners: Record<string, unknown> };
    expect(bench.switchedTo).toBe("tuned");
    expect(Object.keys(bench.tuners)).toEqual(["proxy-nodes"]);
    expect(recorded.some((r) => r.type === "kubernetes:apps/v1:DaemonSet" && JSON.stringify(r.inputs.metadata).includes("edgetune-tuner"))).toBe(true);
  });

  it("a bad stack throws one error listing every problem before any resource is registered", async () => {
    const bad = {
      profiles: { edge: { extends: "recommended", sysctls: { "net.core.somaxconn": "many" } } },
      nodeGroups: [
        { name: "hosts", target: "ssh", profile: "edge", ssh: { hosts: [{ host: "bad host" }], privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----" } },
        { name: "asg", target: "aws", profile: "edge", aws: { instanceType: "huge" } },
      ],
    };
    // The program reads the stack files; point its loader at this config instead.
    const run = runProgram("bad", {}, (real) => ({ loadStack: (stack: string) => real.parseStack(stack, bad) }));
    await expect(run).rejects.toThrow(/invalid stack config "bad": 6 problems\n(.|\n)*nodeGroups\[0\]\.ssh\.privateKey: not a secure value(.|\n)*nodeGroups\[0\]\.ssh\.hosts\[0\]\.host(.|\n)*nodeGroups\[1\]\.aws\.instanceType(.|\n)*nodeGroups\[1\]\.aws\.amiId/);
    const { recorded } = await runProgram("bad", {}, (real) => ({ loadStack: (stack: string) => real.parseStack(stack, bad) })).catch(() => ({ recorded: [] as Recorded[] }));
    expect(recorded).toEqual([]);
  });
});
