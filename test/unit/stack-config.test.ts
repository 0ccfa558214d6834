import { describe, expect, it } from "vitest";
import { parseStack } from "../../loader/stack-config";
import { ValidationError } from "../../components/validation";

const profiles = { edge: { extends: "recommended" } };
const problems = (config: Record<string, unknown>): string[] => {
  try {
    parseStack("t", config);
  } catch (e) {
    if (e instanceof ValidationError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
};

describe("stack config: per-target sections", () => {
  it("refuses a plain-text SSH key, naming the command that makes it secure, without echoing it", () => {
    const key = "not-really-a-key-but-plain-text";
    const p = problems({
      profiles,
      nodeGroups: [{ name: "h", target: "ssh", profile: "edge", ssh: { hosts: [{ host: "10.0.0.1" }], privateKey: key } }],
    });
    expect(p).toEqual([
      expect.stringMatching(
        /^nodeGroups\[0\]\.ssh\.privateKey: not a secure value; .*pulumi config set --secret --path 'nodeGroups\[0\]\.ssh\.privateKey'/,
      ),
    ]);
    expect(p.join("")).not.toContain(key);
  });

  it("accepts a secure value and keeps only where it is, never its text", () => {
    const plan = parseStack("t", {
      profiles,
      nodeGroups: [{ name: "h", target: "ssh", profile: "edge", ssh: { hosts: [{ host: "10.0.0.1" }], privateKey: { secure: "v1:abc" } } }],
    });
    expect(plan.nodeGroups[0].ssh?.privateKey).toEqual({ secure: true, configKey: "nodeGroups", path: [0, "ssh", "privateKey"] });
    expect(JSON.stringify(plan.nodeGroups)).not.toContain("v1:abc");
  });

  it("lists every problem by config path across targets, sections and top-level keys", () => {
    const nodeGroups = [
      {
        name: "a",
        target: "aws",
        profile: "edge",
        aws: { amiId: "ami-0123456789abcdef0", autoScaling: { subnetIds: [], minSize: 3, maxSize: 2 } },
        ssh: { hosts: [{ host: "10.0.0.1" }], privateKey: { secure: "x" } },
      },
      { name: "k", target: "kubernetes", profile: "edge" },
      { name: "t", target: "kubernetes", profile: "edge", kubernetes: { tunerImage: "tuner:latest", verifyIntervalSeconds: 1 } },
      { name: "l", target: "local", profile: "edge" },
    ];
    const p = problems({
      profiles,
      nodeGroups,
      capacity: { peakGbps: 100, perProxyGbps: 40, peakRps: 5 },
      typo: 1,
    });
    expect(p.map((x) => x.split(":")[0])).toEqual(["(root)"]); // an unknown top-level key stops here: nothing else is trustworthy
    const q = problems({
      profiles,
      nodeGroups,
      capacity: { peakGbps: 100, perProxyGbps: 40, peakRps: 5 },
    });
    expect(q.map((x) => x.split(": ")[0]).sort()).toEqual(
      [
        "capacity.perProxyRps",
        "nodeGroups[0].ssh",
        "nodeGroups[0].aws.autoScaling.subnetIds",
        "nodeGroups[0].aws.autoScaling",
        "nodeGroups[1].kubernetes.image",
        "nodeGroups[2].kubernetes.tunerImage",
        "nodeGroups[2].kubernetes.verifyIntervalSeconds",
        "nodeGroups[3].target",
      ].sort(),
    );
  });
});

describe("stack config: a benchmark A/B on one set of nodes", () => {
  it("refuses an init container that would tune the nodes before the baseline runs, and a missing switch", async () => {
    const { readStackConfig } = await import("../../loader/stack-config");
    const { join } = await import("node:path");
    const bench = readStackConfig("bench", join(__dirname, "..", ".."));
    const nodeGroups = [{ name: "proxy-nodes", target: "kubernetes", profile: "tuned" }];
    const proxy = {
      ...(bench.proxy as Record<string, unknown>),
      kubernetes: { image: "ghcr.io/edgetune/edgetune-proxy:0.1.0", tunerImage: "ghcr.io/edgetune/edgetune-tuner:0.1.0" },
    };
    expect(problems({ ...bench, nodeGroups, proxy })).toEqual([
      expect.stringMatching(
        /^proxy\.kubernetes\.tuneNodes: must be false: benchmark\.profiles runs "baseline" before "tuned" on the same nodes/,
      ),
      expect.stringMatching(
        /^benchmark\.profiles: nothing switches the nodes to "tuned": give a kubernetes node group with profile "tuned" a kubernetes\.image/,
      ),
    ]);
    // The shipped bench stack has both: no init container, a tuner on the tuned profile.
    expect(problems(bench)).toEqual([]);
  });
});

describe("stack config: lab variants", () => {
  const nodeGroups = [{ name: "k", target: "kubernetes", profile: "edge", kubernetes: { tunerImage: "tuner:1.0.0" } }];

  it("resolves each variant's profile and keeps its scenarios", () => {
    const plan = parseStack("t", {
      profiles: { ...profiles, "no-tso": { extends: "recommended", nics: [{ match: "eth*", offloads: { tso: false } }] } },
      nodeGroups,
      lab: { variants: [{ name: "tso-off", profile: "no-tso", scenarios: ["l4-throughput"], why: "segmentation in software" }] },
    });
    expect(plan.lab?.variants.map((v) => [v.name, v.profile.name, v.scenarios, v.why])).toEqual([
      ["tso-off", "no-tso", ["l4-throughput"], "segmentation in software"],
    ]);
  });

  it("names the key, the value and what is allowed for every bad variant", () => {
    const p = problems({
      profiles,
      nodeGroups,
      lab: {
        variants: [
          { name: "tuned", profile: "edge", scenarios: ["conn-rate"] },
          { name: "x", profile: "nope", scenarios: ["conn-rate"] },
          { name: "x", profile: "edge", scenarios: ["conn-rate"] },
        ],
      },
    });
    expect(p).toEqual([
      'lab.variants[0].name: got "tuned"; the lab uses it for its own runs (baseline, tuned, direct, forward, no-splice); pick another name',
      'lab.variants[1].profile: got "nope"; allowed: one of the profiles edge',
      'lab.variants[2].name: duplicate variant name "x"',
    ]);
    expect(problems({ profiles, nodeGroups, lab: { variants: [{ name: "v", profile: "edge", scenarios: ["warp"] }] } })[0]).toMatch(
      /^lab\.variants\[0\]\.scenarios\[0\]: .*"http-throughput"/,
    );
    expect(problems({ profiles, nodeGroups, lab: { variants: [{ name: "v", profile: "edge", scenarios: [] }] } })[0]).toMatch(
      /^lab\.variants\[0\]\.scenarios: /,
    );
  });
});

describe("stack config: Kubernetes tuners", () => {
  const tuner = "ghcr.io/edgetune/edgetune-tuner:0.1.0";

  it("accepts restoreOnDelete as restoreOnRemove with a warning, and names it as written when it is wrong", () => {
    const plan = parseStack("t", {
      profiles,
      nodeGroups: [{ name: "k", target: "kubernetes", profile: "edge", kubernetes: { image: tuner, restoreOnDelete: false } }],
    });
    expect(plan.nodeGroups[0].kubernetes?.tuner?.restoreOnRemove).toBe(false);
    expect(plan.warnings).toEqual([
      "nodeGroups[0].kubernetes.restoreOnDelete is deprecated: name it restoreOnRemove (the component's argument); it now restores only when the tuning is removed from a node (never when a pod merely stops); restoreOnDelete is accepted until the next release",
    ]);
    const k = (kubernetes: Record<string, unknown>) =>
      problems({
        profiles,
        nodeGroups: [{ name: "k", target: "kubernetes", profile: "edge", kubernetes: { image: tuner, ...kubernetes } }],
      });
    expect(k({ restoreOnDelete: "yes" })).toEqual([
      expect.stringMatching(/^nodeGroups\[0\]\.kubernetes\.restoreOnDelete: got "yes"; .*boolean/),
    ]);
    expect(k({ restoreOnDelete: true, restoreOnRemove: true })).toEqual([
      "nodeGroups[0].kubernetes.restoreOnDelete: set together with restoreOnRemove, its new name; allowed: only restoreOnRemove",
    ]);
  });

  describe("a tuner's metrics port on nodes the proxy may run on", () => {
    const proxy = {
      profile: "edge",
      listeners: [{ name: "web", mode: "http", port: 80, backend: "app" }],
      backends: [{ name: "app", servers: [{ name: "a", address: "10.0.0.1", port: 8080 }] }],
      kubernetes: { image: "ghcr.io/edgetune/edgetune-proxy:0.1.0", tunerImage: tuner, nodeSelector: { pool: "proxy" } },
    };
    const edge = { extends: "recommended", ports: { listenPorts: [80, 8404, 8405] } };
    const stack = (kubernetes: Record<string, unknown>, proxyKubernetes: Record<string, unknown> = {}) =>
      problems({
        profiles: { edge },
        nodeGroups: [
          { name: "p", target: "kubernetes", profile: "edge" },
          { name: "t", target: "kubernetes", profile: "edge", kubernetes: { image: tuner, ...kubernetes } },
        ],
        proxy: { ...proxy, kubernetes: { ...proxy.kubernetes, ...proxyKubernetes } },
      });

    it("may not be one HAProxy binds", () => {
      expect(stack({ metrics: { port: 8404 } })).toEqual([
        "nodeGroups[1].kubernetes.metrics.port: got 8404; the proxy's metrics endpoint binds it on the proxy's nodes; allowed: another port (its nodeSelector may select the proxy's nodes)",
      ]);
      expect(stack({ metrics: { port: 80 }, nodeSelector: { pool: "proxy", zone: "a" } })).toEqual([
        expect.stringMatching(/^nodeGroups\[1\]\.kubernetes\.metrics\.port: got 80; the proxy's listener "web" binds it/),
      ]);
    });

    it("may not be the proxy's tuning sidecar's", () => {
      expect(stack({ nodeSelector: { pool: "proxy" } })).toEqual([
        "nodeGroups[1].kubernetes.metrics.port: got 9477; the proxy's tuning sidecar (proxy.kubernetes.tuning.metrics.port) binds it on the proxy's nodes, which this group's nodeSelector may select; allowed: another port",
      ]);
      expect(stack({ metrics: { port: 9478 } })).toEqual([]);
      expect(stack({}, { tuning: { metrics: { port: 9478 } } })).toEqual([]);
      expect(stack({}, { tuning: { metrics: { port: 80 } } })).toEqual([
        "proxy.kubernetes.tuning.metrics.port: got 80; the proxy's listener \"web\" binds it on the proxy's nodes; allowed: another port",
      ]);
    });

    it("is free on nodes the proxy cannot run on, off the host network, or when off", () => {
      expect(stack({ metrics: { port: 8404 }, nodeSelector: { pool: "app" } })).toEqual([]);
      expect(stack({ metrics: { port: 8404 }, hostNetwork: false })).toEqual([]);
      expect(stack({ metrics: { port: 0 } })).toEqual([]);
    });
  });
});
