/**
 * The management endpoints (HAProxy's metrics and health, the tuner's metrics) bind the node's
 * internal address and answer private sources only: in every rendered stack, in the Kubernetes
 * objects, in the lab, and in the scripts that resolve the address at start.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main";
import { PRIVATE_CIDRS } from "../../components/management";
import { renderLabHaproxyConfig } from "../../components/lab/lab-steps";
import { labAddresses } from "../../components/lab/topology";
import { renderTunerObjects } from "../../components/nodes/k8s-tuner";
import { checkProxySpec, renderHaproxyConfig, type ProxySpec } from "../../components/proxy/haproxy";
import { renderProxyObjects } from "../../components/proxy/k8s-proxy";
import { resolveProfile } from "../../components/tuning/profile";
import { ValidationError } from "../../components/validation";
import { have, run } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");
const work = mkdtempSync(join(tmpdir(), "edgetune-mgmt-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const profile = resolveProfile("edge", { extends: "recommended", ports: { listenPorts: [80, 443, 8404, 8405] } });
const spec: ProxySpec = {
  listeners: [{ name: "web", mode: "http", port: 80, backend: "app" }],
  backends: [{ name: "app", servers: [{ name: "a1", address: "10.0.0.1", port: 8080 }] }],
};

/** The frontends metrics and health of a haproxy.cfg: their bind and source-check lines. */
function managementFrontends(cfg: string): Record<string, { binds: string[]; acls: string[] }> {
  const out: Record<string, { binds: string[]; acls: string[] }> = {};
  for (const block of cfg.split(/\n(?=\S)/)) {
    const name = /^frontend (metrics|health)\n/.exec(block)?.[1];
    if (!name) continue;
    const lines = block.split("\n").map((l) => l.trim());
    out[name] = { binds: lines.filter((l) => l.startsWith("bind ")), acls: lines.filter((l) => l.startsWith("tcp-request connection")) };
  }
  return out;
}

const WILDCARD_BIND = /^bind "?(?:0\.0\.0\.0|::|\*|\[::\])?:\d+/;

function renderedFiles(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => [join(d.parentPath, d.name).slice(dir.length + 1), readFileSync(join(d.parentPath, d.name), "utf8")]),
  );
}

type K8sObject = { kind?: string; data?: Record<string, string>; spec?: { template?: { spec?: Record<string, unknown> } } };
type Container = { name: string; env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }> };

describe("edgetune render: no management endpoint faces every address", () => {
  for (const stack of ["dev", "prod", "eks", "local", "bench"]) {
    it(`stack ${stack}`, () => {
      const out = join(work, stack);
      const sink = { write: () => true } as unknown as NodeJS.WritableStream;
      expect(main(["render", "--stack", stack, "--out", out], sink, sink)).toBe(0);
      const files = renderedFiles(out);
      const configs: Array<[string, string]> = [];
      const containers: Array<[string, Container]> = [];
      for (const [path, text] of Object.entries(files)) {
        if (path.endsWith("haproxy.cfg")) configs.push([path, text]);
        if (!path.endsWith(".yaml")) continue;
        for (const doc of loadAll(text) as K8sObject[]) {
          if (doc?.kind === "ConfigMap" && doc.data?.["haproxy.cfg"]) configs.push([`${path} ConfigMap`, doc.data["haproxy.cfg"]]);
          const pod = doc?.spec?.template?.spec as { containers?: Container[]; initContainers?: Container[] } | undefined;
          for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) containers.push([`${path} ${c.name}`, c]);
        }
      }
      if (stack === "eks")
        expect(configs).toEqual([]); // launch templates only: nothing of edgetune's serves there
      else expect(configs.length).toBeGreaterThan(0);
      for (const [where, cfg] of configs) {
        const fe = managementFrontends(cfg);
        expect(Object.keys(fe).sort(), where).toEqual(["health", "metrics"]);
        for (const [name, { binds, acls }] of Object.entries(fe)) {
          expect(binds.length, `${where} ${name}`).toBe(1);
          expect(binds[0], `${where} ${name}`).not.toMatch(WILDCARD_BIND);
          expect(acls, `${where} ${name}`).toEqual([expect.stringMatching(/^tcp-request connection reject if !\{ src 10\.0\.0\.0\/8 /)]);
        }
      }
      for (const [where, c] of containers) {
        const env = new Map((c.env ?? []).map((e) => [e.name, e]));
        if (env.has("METRICS_PORT") && env.get("METRICS_PORT")!.value !== "0") {
          const bind = env.get("METRICS_BIND");
          expect(bind?.valueFrom?.fieldRef?.fieldPath ?? bind?.value, where).toMatch(/^status\.(hostIP|podIP)$|^(?!0\.0\.0\.0)/);
          expect(env.get("METRICS_ALLOW")?.value, where).toMatch(/^10\.0\.0\.0\/8 /);
        }
        if (c.name === "haproxy")
          expect(env.get("EDGETUNE_MANAGEMENT_ADDRESS")?.valueFrom?.fieldRef?.fieldPath, where).toBe("status.hostIP");
      }
    });
  }
});

describe("management: validation", () => {
  const issues = (management: unknown, extra: Partial<ProxySpec> = {}) =>
    checkProxySpec({ ...spec, ...extra, management }, { profile }).issues.map((i) => `${i.path}: ${i.message}`);

  it("refuses a wildcard address without the opt-in, naming key, value and what is allowed", () => {
    expect(issues({ address: "0.0.0.0" })).toEqual([
      expect.stringMatching(/^proxy\.management\.address: got "0\.0\.0\.0", every address .*allowed: "hostIP", .*exposePublicly: true$/),
    ]);
    expect(issues({ address: "::" })).toEqual([expect.stringMatching(/^proxy\.management\.address: got "::"/)]);
  });

  it("refuses a public listener's address, naming the listener", () => {
    const listeners = [{ name: "web", mode: "http" as const, port: 80, address: "203.0.113.7", backend: "app" }];
    expect(issues({ address: "203.0.113.7" }, { listeners })).toEqual([
      expect.stringMatching(
        /^proxy\.management\.address: got "203\.0\.113\.7", a public address \(listener "web" binds it: proxy\.listeners\[0\]\.address\); allowed: /,
      ),
    ]);
    expect(issues({ address: "198.51.100.0/24" })).toEqual([
      expect.stringMatching(/^proxy\.management\.address: got "198\.51\.100\.0\/24", a public range/),
    ]);
  });

  it("refuses an empty allowlist without the opt-in", () => {
    expect(issues({ allowFrom: [] })).toEqual([
      expect.stringMatching(/^proxy\.management\.allowFrom: got \[\]; allowed: at least one source CIDR .*or exposePublicly: true/),
    ]);
  });

  it("refuses what is not an address or a CIDR", () => {
    expect(issues({ address: "eth0" })).toEqual([
      expect.stringMatching(/^proxy\.management\.address: got "eth0"; allowed: "hostIP", an IPv4 or IPv6 address/),
    ]);
    expect(issues({ allowFrom: ["10.0.0.0/33"] })).toEqual([
      expect.stringMatching(/^proxy\.management\.allowFrom\[0\]: got "10\.0\.0\.0\/33"; allowed: a CIDR/),
    ]);
    expect(issues({ podCidr: "10.0.0.1" })).toEqual([
      expect.stringMatching(/^proxy\.management\.podCidr: got "10\.0\.0\.1"; allowed: a CIDR/),
    ]);
  });

  it("exposePublicly allows a wildcard bind and no source check, and only then", () => {
    const cfg = renderHaproxyConfig({ ...spec, management: { address: "0.0.0.0", allowFrom: [], exposePublicly: true } }, { profile });
    expect(managementFrontends(cfg).metrics).toEqual({ binds: ["bind 0.0.0.0:8404"], acls: [] });
    expect(issues({ address: "203.0.113.7", exposePublicly: true })).toEqual([]);
  });

  it("an address given as is is bound and allowed as a source (the node's own checks), with podCidr beside allowFrom", () => {
    const cfg = renderHaproxyConfig(
      { ...spec, management: { address: "10.1.2.3", allowFrom: ["192.168.0.0/16"], podCidr: "100.64.0.0/10" } },
      { profile },
    );
    expect(managementFrontends(cfg).health).toEqual({
      binds: ["bind 10.1.2.3:8405"],
      acls: ["tcp-request connection reject if !{ src 192.168.0.0/16 100.64.0.0/10 10.1.2.3 }"],
    });
    expect(cfg).not.toContain(".if");
  });

  it("defaults: the node's address from the environment, private sources", () => {
    const cfg = renderHaproxyConfig(spec, { profile });
    expect(managementFrontends(cfg).metrics).toEqual({
      binds: ['bind "${EDGETUNE_MANAGEMENT_ADDRESS}:8404"'],
      acls: [`tcp-request connection reject if !{ src ${PRIVATE_CIDRS.join(" ")} "\${EDGETUNE_MANAGEMENT_ADDRESS}" }`],
    });
  });
});

describe("management on Kubernetes", () => {
  const k8s = { name: "edge", image: "ghcr.io/o/proxy:1.0.0", tunerImage: "ghcr.io/o/tuner:1.0.0" };
  const containers = (o: ReturnType<typeof renderProxyObjects>) => {
    const pod = o.daemonSet.spec!.template.spec as unknown as { containers: Container[]; initContainers: Container[] };
    return [...pod.containers, ...pod.initContainers] as Array<Container & { readinessProbe?: { httpGet: { host?: string } } }>;
  };

  it("HAProxy and the tuning sidecar get the node's address from status.hostIP, the sidecar the proxy's allowlist", () => {
    const [haproxy, tuning] = containers(renderProxyObjects({ ...spec, management: { podCidr: "100.64.0.0/10" } }, profile, k8s));
    expect(haproxy.env).toContainEqual({ name: "EDGETUNE_MANAGEMENT_ADDRESS", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } });
    // Without a host kubelet probes the pod IP: status.hostIP on hostNetwork, where HAProxy binds.
    expect(haproxy.readinessProbe!.httpGet.host).toBeUndefined();
    expect(tuning.env).toContainEqual({ name: "METRICS_BIND", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } });
    expect(tuning.env).toContainEqual({
      name: "METRICS_ALLOW",
      value: "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 127.0.0.0/8 100.64.0.0/10",
    });
    expect(tuning.env).toContainEqual({ name: "METRICS_ALLOW_ANY", value: "0" });
  });

  it("an address given as is is where kubelet probes", () => {
    const [haproxy] = containers(renderProxyObjects({ ...spec, management: { address: "127.0.0.1" } }, profile, k8s));
    expect(haproxy.readinessProbe!.httpGet.host).toBe("127.0.0.1");
    expect(haproxy.env!.map((e) => e.name)).not.toContain("EDGETUNE_MANAGEMENT_ADDRESS");
  });

  it("a CIDR is refused on Kubernetes: kubelet probes status.hostIP", () => {
    expect(() => renderProxyObjects({ ...spec, management: { address: "10.0.0.0/8" } }, profile, k8s)).toThrow(
      /proxy\.management\.address: got "10\.0\.0\.0\/8"; on Kubernetes kubelet probes/,
    );
  });

  it("the tuner DaemonSet binds the pod's address (the node's with hostNetwork) and refuses an empty allowlist", () => {
    const objects = (management: unknown, hostNetwork = true) =>
      renderTunerObjects(profile, { name: "edge", image: "ghcr.io/o/tuner:1.0.0", hostNetwork, management } as never);
    const env = (hostNetwork: boolean) => (objects({}, hostNetwork).daemonSet.spec!.template.spec!.containers[0] as Container).env;
    expect(env(true)).toContainEqual({ name: "METRICS_BIND", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } });
    expect(env(false)).toContainEqual({ name: "METRICS_BIND", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
    let err: unknown;
    try {
      objects({ allowFrom: [] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues).toEqual([
      { path: "management.allowFrom", message: expect.stringMatching(/^got \[\]; allowed: /) },
    ]);
  });
});

describe("management in the local lab", () => {
  it("binds the proxy namespace's address (its node address), or the one inside a CIDR", () => {
    const a = labAddresses();
    const machine = { cpus: 2, nofileLimit: 20000 };
    expect(managementFrontends(renderLabHaproxyConfig(spec, profile, machine)).health.binds).toEqual([`bind ${a.proxy}:8405`]);
    const toBackend = renderLabHaproxyConfig({ ...spec, management: { address: `${a.proxyToBackend}/24` } }, profile, machine);
    expect(managementFrontends(toBackend).health.binds).toEqual([`bind ${a.proxyToBackend}:8405`]);
    expect(() => renderLabHaproxyConfig({ ...spec, management: { address: "192.168.77.0/24" } }, profile, machine)).toThrow(
      /proxy\.management\.address: got "192\.168\.77\.0\/24"; no address of the node is inside it/,
    );
  });
});

describe("the address resolved at start from a CIDR", () => {
  const ENTRYPOINT = join(ROOT, "proxy-image", "entrypoint.sh");
  const TUNER = join(ROOT, "components", "nodes", "tuner.sh");
  const block = (path: string) =>
    /# ---- management address and sources[\s\S]*?\n}\nlocal_in_cidr4[\s\S]*?\n}\n/.exec(readFileSync(path, "utf8"))?.[0];

  it("is the same shell code in the proxy image's entrypoint and in tuner.sh", () => {
    expect(block(ENTRYPOINT)).toBeDefined();
    expect(block(ENTRYPOINT)).toBe(block(TUNER));
  });

  // The format of /proc/net/fib_trie: a node with a public and an internal address.
  const fib = join(work, "fib_trie");
  writeFileSync(
    fib,
    [
      "Main:",
      "  +-- 0.0.0.0/0 3 0 5",
      "     |-- 203.0.113.0",
      "        /24 link UNICAST",
      "     |-- 203.0.113.7",
      "        /32 host LOCAL",
      "     |-- 10.20.0.0",
      "        /16 link UNICAST",
      "     |-- 10.20.3.4",
      "        /32 host LOCAL",
      "Local:",
      "     |-- 127.0.0.1",
      "        /32 host LOCAL",
      "",
    ].join("\n"),
  );
  const fake = join(work, "haproxy");
  writeFileSync(fake, '#!/bin/sh\necho "management=${EDGETUNE_MANAGEMENT_ADDRESS:-}"\n', { mode: 0o755 });
  const cfg = join(work, "empty.cfg");
  writeFileSync(cfg, "global\n");

  for (const shell of ["sh", "dash", "busybox"].filter(have)) {
    it(`the entrypoint exports the node's first address inside it, or refuses to start (${shell})`, () => {
      const start = (cidr: string) =>
        run(shell === "busybox" ? "busybox" : shell, [...(shell === "busybox" ? ["sh"] : []), ENTRYPOINT], {
          env: {
            PATH: process.env.PATH,
            HAPROXY_BIN: fake,
            HAPROXY_CFG: cfg,
            TUNE_SH: join(work, "none"),
            RUNTIME_DIR: join(work, "run"),
            FIB_TRIE: fib,
            EDGETUNE_MANAGEMENT_CIDR: cidr,
          },
        });
      const found = start("10.0.0.0/8");
      expect(found.stdout.trim(), found.stderr).toBe("management=10.20.3.4");
      const none = start("192.168.0.0/16");
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("ERROR edgetune: no IPv4 address of this node is inside EDGETUNE_MANAGEMENT_CIDR=192.168.0.0/16");
      expect(none.stdout).toBe("");
    });
  }
});
