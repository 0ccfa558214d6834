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
import { ProxyDaemonSet, resolveProfile, ValidationError } from "edgetune";

const consumerDir = join(__dirname, "..");
const requireFromConsumer = createRequire(join(consumerDir, "index.ts"));

type Registered = { type: string; name: string; inputs: Record<string, any> };
const registered: Registered[] = [];
const one = (type: string): Registered => {
  const found = registered.filter((r) => r.type === type);
  expect(found, type).toHaveLength(1);
  return found[0];
};
const valueOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));

let program: typeof import("../index");

beforeAll(async () => {
  // Mocks first: the program registers its resources while it is being imported.
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        registered.push({ type: a.type, name: a.name, inputs: a.inputs });
        return { id: `${a.name}-id`, state: a.inputs };
      },
      call: (a) => a.inputs,
    },
    "edgetune-consumer",
    "test",
    false,
  );
  program = await import("../index");
  // Every registration has reached the mock monitor (ConfigMap and PDB have no exported output to wait on).
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

  it("is installed from a lockfile that matches edgetune's dependencies and pins", () => {
    const json = (path: string) => JSON.parse(readFileSync(join(consumerDir, path), "utf8"));
    const edgetunePkg = json("../../package.json");
    const own = json("package.json");
    const lock = json("package-lock.json");
    // npm takes edgetune's dependencies from this lockfile, not from ../../package.json: when they
    // differ, `npm ci`, `npm install` and `npm ls` all carry on (tried) and edgetune runs on stale versions.
    expect(
      lock.packages["node_modules/edgetune"].dependencies,
      "examples/consumer/package-lock.json is stale; regenerate it: cd examples/consumer && rm -rf node_modules package-lock.json && npm install",
    ).toEqual(edgetunePkg.dependencies);
    // The same exact versions as edgetune's, so npm installs one copy of each for both.
    for (const dep of ["@pulumi/pulumi", "@pulumi/kubernetes"]) expect(own.dependencies[dep], dep).toBe(edgetunePkg.dependencies[dep]);
  });

  it("registers the proxy component and its Kubernetes objects", () => {
    expect(registered.map((r) => r.type).sort()).toEqual(
      [
        "edgetune:proxy:ProxyDaemonSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:Service",
        "kubernetes:policy/v1:PodDisruptionBudget",
      ].sort(),
    );
  });

  it("exports the component's outputs as stack outputs", async () => {
    expect(await valueOf(program.namespace)).toBe("edgetune-proxy");
    expect(await valueOf(program.daemonSetName)).toBe("edgetune-proxy-edge");
    expect(await valueOf(program.proxySummary)).toBe("edgetune-proxy/edgetune-proxy-edge");
    const ds = one("kubernetes:apps/v1:DaemonSet").inputs;
    expect(ds.spec.template.metadata.annotations["edgetune.io/config-checksum"]).toBe(program.configChecksum);
    expect(program.reservedPorts).toBe("80,8404-8405,10250,10256,30000-32767");
  });

  it("tunes the node in a privileged init container that runs tune.sh apply from the ConfigMap", () => {
    const pod = one("kubernetes:apps/v1:DaemonSet").inputs.spec.template.spec;
    const cm = one("kubernetes:core/v1:ConfigMap").inputs;
    expect(pod.initContainers).toHaveLength(1);
    const init = pod.initContainers[0];
    expect(init.image).toBe("ghcr.io/edgetune/edgetune-tuner:0.1.0");
    expect(init.command.join(" ")).toContain("sh /edgetune/tune.sh apply");
    expect(init.securityContext.privileged).toBe(true);
    // /edgetune is the ConfigMap this program registered, so the script that runs is the one asserted below.
    const mount = init.volumeMounts.find((m: { mountPath: string }) => m.mountPath === "/edgetune");
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    expect(volume.configMap.name).toBe(cm.metadata.name);
    expect(pod.nodeSelector).toEqual({ "node-role.kubernetes.io/proxy": "" });
  });

  it("renders the custom profile into tune.sh: the overrides, the port plan, the NIC entry, and the preset underneath", () => {
    const tuneSh: string = one("kubernetes:core/v1:ConfigMap").inputs.data["tune.sh"];
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
    const cfg: string = one("kubernetes:core/v1:ConfigMap").inputs.data["haproxy.cfg"];
    expect(cfg).toMatch(/^\s*bind 0\.0\.0\.0:80\b/m);
    // hardLimit 4000 = maxconn (soft) 2000 + 2000 queued.
    expect(cfg).toMatch(/^\s*server web-1 10\.0\.1\.10:8080 .*maxconn 2000 maxqueue 2000/m);
    expect(cfg).toMatch(/^\s*server web-2 10\.0\.1\.11:8080 .*maxconn 2000 maxqueue 2000/m);
  });

  it("runs the proxy container non-root, least privilege, with the image pinned by tag", () => {
    const [haproxy, ...others] = one("kubernetes:apps/v1:DaemonSet").inputs.spec.template.spec.containers;
    expect(others).toEqual([]);
    expect(haproxy.image).toBe("ghcr.io/edgetune/edgetune-proxy:0.1.0");
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
