/**
 * The consumer project under Pulumi mocks: what a project that depends on
 * edgetune by package name gets registered, and that it type-checks against
 * the package's published declarations.
 *
 * Runs from the repository's root vitest (`npm test`, project `unit`), but
 * every import below resolves from examples/consumer/, so "@pulumi/pulumi"
 * and "edgetune" are this project's own installed dependencies.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { KubernetesNodeTuner, ProxyDaemonSet, resolveProfile, ValidationError } from "edgetune";

const consumerDir = join(__dirname, "..");
const requireFromConsumer = createRequire(join(consumerDir, "index.ts"));

type Registered = { type: string; name: string; inputs: Record<string, any>; provider: string };
const registered: Registered[] = [];
const all = (type: string): Registered[] => registered.filter((r) => r.type === type);
const one = (type: string, name?: string): Registered => {
  const found = all(type).filter((r) => name === undefined || r.name === name);
  expect(found, `${type} ${name ?? ""}`).toHaveLength(1);
  return found[0];
};
const valueOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
const REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

let program: typeof import("../index");

beforeAll(async () => {
  // Mocks first: the program registers its resources while it is being imported.
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        registered.push({ type: a.type, name: a.name, inputs: a.inputs, provider: a.provider ?? "" });
        const state: Record<string, unknown> = { ...a.inputs };
        if (a.type === "aws:ecr/repository:Repository") state.repositoryUrl = `${REGISTRY}/${a.name}`;
        // The edgetune `eks` stack's outputs, as a stack reference reads them.
        if (a.type === "pulumi:pulumi:StackReference")
          state.outputs = { nodeGroups: { "eks-edge": { launchTemplateId: "lt-0abc", launchTemplateVersion: 7 } } };
        if (a.type === "aws:eks/nodeGroup:NodeGroup") state.nodeGroupName = `${a.name}-ng`;
        return { id: `${a.name}-id`, state };
      },
      call: (a) => a.inputs,
    },
    "edgetune-consumer",
    "test",
    false,
  );
  pulumi.runtime.setAllConfig(
    {
      "edgetune-consumer:kubeconfig": "apiVersion: v1\nkind: Config\n",
      "edgetune-consumer:eksClusterName": "prod",
      "edgetune-consumer:nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes",
      "edgetune-consumer:subnetIds": '["subnet-1","subnet-2"]',
    },
    ["edgetune-consumer:kubeconfig"],
  );
  program = await import("../index");
  // Every registration has reached the mock monitor (not every resource has an exported output to wait on).
  await pulumi.runtime.disconnect();
});

describe("examples/consumer: edgetune used as a package", () => {
  it("sees one @pulumi/pulumi: its own and edgetune's resolve to the same file", () => {
    // The arrangement this example depends on (install-links, see .npmrc). With a second copy
    // (the default symlink install), instanceof across the copies fails, and these mocks reach
    // edgetune's resources only because this SDK version happens to keep its state in a global.
    const edgetuneMain = requireFromConsumer.resolve("edgetune");
    const pulumiForEdgetune = createRequire(edgetuneMain).resolve("@pulumi/pulumi");
    expect(realpathSync(pulumiForEdgetune)).toBe(realpathSync(requireFromConsumer.resolve("@pulumi/pulumi")));
    expect(ProxyDaemonSet.prototype).toBeInstanceOf(pulumi.ComponentResource);
    // The package entry point (exports → dist), not the repository's TypeScript sources.
    expect(edgetuneMain).toMatch(/[/\\]dist[/\\]components[/\\]index\.js$/);
  });

  it("is installed from a lockfile that matches edgetune's dependencies, with @pulumi/pulumi as the consumer's own (a peer)", () => {
    const json = (path: string) => JSON.parse(readFileSync(join(consumerDir, path), "utf8"));
    const edgetunePkg = json("../../package.json");
    const own = json("package.json");
    const lock = json("package-lock.json");
    // npm takes edgetune's dependencies from this lockfile, not from ../../package.json: when they
    // differ, `npm ci`, `npm install` and `npm ls` all carry on (tried) and edgetune runs on stale versions.
    const stale =
      "examples/consumer/package-lock.json is stale; regenerate it: cd examples/consumer && rm -rf node_modules package-lock.json && npm install";
    expect(lock.packages["node_modules/edgetune"].dependencies, stale).toEqual(edgetunePkg.dependencies);
    expect(lock.packages["node_modules/edgetune"].peerDependencies, stale).toEqual(edgetunePkg.peerDependencies);
    // The SDK is the consumer's, inside edgetune's peer range: one copy for both.
    expect(edgetunePkg.dependencies["@pulumi/pulumi"]).toBeUndefined();
    const installed = json("node_modules/@pulumi/pulumi/package.json").version as string;
    expect(own.dependencies["@pulumi/pulumi"]).toBe(installed);
    expect(edgetunePkg.peerDependencies["@pulumi/pulumi"]).toBe(`^${installed.split(".")[0]}.${installed.split(".")[1]}.0`);
  });

  it("registers the components and their Kubernetes objects, all on the explicit provider", () => {
    const k8sTypes = registered.filter((r) => r.type.startsWith("kubernetes:"));
    expect(k8sTypes.map((r) => r.type).sort()).toEqual(
      [
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:Service",
        "kubernetes:policy/v1:PodDisruptionBudget",
        // Each tuner's identity and roles; the proxy (tuneNodes: false) has none.
        ...["edge-nodes", "cache-nodes"].flatMap(() => [
          "kubernetes:core/v1:ServiceAccount",
          "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
          "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
          "kubernetes:rbac.authorization.k8s.io/v1:Role",
          "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        ]),
      ].sort(),
    );
    // Every object goes to the cluster the program named, through the components' opts.providers.
    for (const r of k8sTypes) expect(r.provider, `${r.type} ${r.name}`).toMatch(/::pulumi:providers:kubernetes::cluster::/);
    expect(
      all("edgetune:nodes:KubernetesNodeTuner")
        .map((r) => r.name)
        .sort(),
    ).toEqual(["cache-nodes", "edge-nodes"]);
  });

  it("puts both tuner groups in the one namespace it created, which neither component creates again", async () => {
    expect(
      all("kubernetes:core/v1:Namespace")
        .map((r) => r.inputs.metadata.name)
        .sort(),
    ).toEqual(["edgetune-proxy", "edgetune-system"]);
    const tuners = all("kubernetes:apps/v1:DaemonSet").filter((r) => r.name.endsWith("-tuner"));
    expect(tuners.map((r) => r.inputs.metadata.namespace)).toEqual(["edgetune-system", "edgetune-system"]);
    expect(await valueOf(program.tunerNamespaces)).toEqual(["edgetune-system", "edgetune-system"]);
    expect(one("kubernetes:core/v1:Namespace", "edgetune-system").inputs.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe(
      "privileged",
    );
  });

  it("takes images computed from other resources: the ECR repositories' URLs", () => {
    const proxyDs = all("kubernetes:apps/v1:DaemonSet").find((r) => r.name === "edge-ds")!;
    expect(proxyDs.inputs.spec.template.spec.containers[0].image).toBe(`${REGISTRY}/edgetune-proxy:0.1.0`);
    for (const t of all("kubernetes:apps/v1:DaemonSet").filter((r) => r.name.endsWith("-tuner")))
      expect(t.inputs.spec.template.spec.containers[0].image).toBe(`${REGISTRY}/edgetune-tuner:0.1.0`);
  });

  it("exposes the components' child resources, as pulumi-eks does", async () => {
    expect(KubernetesNodeTuner.prototype).toBeInstanceOf(pulumi.ComponentResource);
    // Exported from the components' typed properties (index.ts type-checks against them, below).
    expect(await valueOf(program.tunerDaemonSets)).toEqual(["edgetune-tuner-edge-nodes", "edgetune-tuner-cache-nodes"]);
    expect(await valueOf(program.proxyConfigMap)).toBe(one("kubernetes:core/v1:ConfigMap", "edge-config").inputs.metadata.name);
  });

  it("reads the edgetune eks stack's launch template through a stack reference", async () => {
    const ng = one("aws:eks/nodeGroup:NodeGroup").inputs;
    expect(ng.launchTemplate).toEqual({ id: "lt-0abc", version: "7" });
    expect(await valueOf(program.eksNodeGroup)).toBe("edge-ng");
    expect(one("pulumi:pulumi:StackReference").inputs.name).toBe("organization/edgetune/eks");
  });

  it("exports the component's outputs as stack outputs", async () => {
    expect(await valueOf(program.namespace)).toBe("edgetune-proxy");
    expect(await valueOf(program.daemonSetName)).toBe("edgetune-proxy-edge");
    expect(await valueOf(program.proxySummary)).toBe("edgetune-proxy/edgetune-proxy-edge");
    const ds = one("kubernetes:apps/v1:DaemonSet", "edge-ds").inputs;
    expect(ds.spec.template.metadata.annotations["edgetune.io/config-checksum"]).toBe(await valueOf(program.configChecksum));
    expect(program.reservedPorts).toBe("80,8404-8405,10250,10256,30000-32767");
  });

  it("tunes the proxy nodes with a privileged tuner that runs tune.sh from its ConfigMap; the proxy pods have no privileged container", () => {
    const tuner = one("kubernetes:apps/v1:DaemonSet", "edge-nodes-tuner").inputs.spec.template.spec;
    const cm = one("kubernetes:core/v1:ConfigMap", "edge-nodes-scripts").inputs;
    expect(tuner.containers[0].securityContext.privileged).toBe(true);
    const mount = tuner.containers[0].volumeMounts.find((m: { mountPath: string }) => m.mountPath === "/edgetune");
    expect(tuner.volumes.find((v: { name: string }) => v.name === mount.name).configMap.name).toBe(cm.metadata.name);
    expect(tuner.nodeSelector).toEqual({ "node-role.kubernetes.io/proxy": "" });
    const pod = one("kubernetes:apps/v1:DaemonSet", "edge-ds").inputs.spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(JSON.stringify(pod)).not.toContain('"privileged":true');
  });

  it("renders the custom profile into tune.sh: the overrides, the port plan, the NIC entry, and the preset underneath", () => {
    const tuneSh: string = one("kubernetes:core/v1:ConfigMap", "edge-nodes-scripts").inputs.data["tune.sh"];
    // Overridden: recommended says 60.
    expect(tuneSh).toMatch(/sysctl_item 'net\.ipv4\.tcp_keepalive_time' '30' /);
    expect(tuneSh).not.toMatch(/sysctl_item 'net\.ipv4\.tcp_keepalive_time' '60' /);
    // Port plan: the listeners, kubelet (10250, 10256) and the NodePort range kept out of the ephemeral range.
    expect(tuneSh).toMatch(/sysctl_item 'net\.ipv4\.ip_local_reserved_ports' '80,8404-8405,10250,10256,30000-32767' /);
    // The NIC entry: offloads and RPS on CPUs 0-3 (mask f) with RFS flow entries.
    expect(tuneSh).toMatch(/nic_offload 'ens\*' 'gro' 'on'/);
    expect(tuneSh).toMatch(/nic_offload 'ens\*' 'lro' 'off'/);
    expect(tuneSh).toMatch(/nic_rps 'ens\*' 'f' '4096'/);
    expect(tuneSh).toMatch(/^\* hard nofile 1048576$/m);
    // Inherited from `extends: "recommended"` and not overridden.
    expect(tuneSh).toMatch(/sysctl_item 'net\.core\.somaxconn' '65535' /);
    expect(tuneSh).toMatch(/sysctl_item 'net\.ipv4\.ip_local_port_range' '1024 65535' /);
  });

  it("derives haproxy.cfg from the proxy spec: the listener, both servers with their soft/hard limits", () => {
    const cfg: string = one("kubernetes:core/v1:ConfigMap", "edge-config").inputs.data["haproxy.cfg"];
    expect(cfg).toMatch(/^\s*bind 0\.0\.0\.0:80\b/m);
    // hardLimit 4000 = maxconn (soft) 2000 + 2000 queued.
    expect(cfg).toMatch(/^\s*server web-1 10\.0\.1\.10:8080 .*maxconn 2000 maxqueue 2000/m);
    expect(cfg).toMatch(/^\s*server web-2 10\.0\.1\.11:8080 .*maxconn 2000 maxqueue 2000/m);
  });

  it("runs the proxy container non-root, least privilege", () => {
    const [haproxy, ...others] = one("kubernetes:apps/v1:DaemonSet", "edge-ds").inputs.spec.template.spec.containers;
    expect(others).toEqual([]);
    expect(haproxy.securityContext).toMatchObject({
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: "RuntimeDefault" },
      // Port 80 is below 1024: the one capability it needs, nothing else.
      capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
    });
    expect(haproxy.securityContext.runAsUser).toBeGreaterThan(0);
    expect(one("kubernetes:policy/v1:PodDisruptionBudget").inputs.spec.maxUnavailable).toBe(1);
  });

  it("rejects a bad profile through the package's ValidationError, naming the key", () => {
    const bad = () => resolveProfile("k8s-proxy", { ...program.profileInput, limits: { nofileHard: 9_000_000 } });
    expect(bad).toThrow(ValidationError);
    expect(bad).toThrow(/limits\.nofileHard/);
  });

  it("type-checks against edgetune's published declarations (what `pulumi up` compiles)", () => {
    const tsc = requireFromConsumer.resolve("typescript/bin/tsc");
    const r = spawnSync(process.execPath, [tsc, "-p", join(consumerDir, "tsconfig.json")], { cwd: consumerDir, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 60_000);
});
