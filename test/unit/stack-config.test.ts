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

  it("takes the SSH rollout and reboot policy from the stack, with their defaults, and names a bad one by its key", () => {
    const ssh = (extra: Record<string, unknown>) => ({
      profiles,
      nodeGroups: [
        { name: "h", target: "ssh", profile: "edge", ssh: { hosts: [{ host: "10.0.0.1" }], privateKey: { secure: "v1:abc" }, ...extra } },
      ],
    });
    const plain = parseStack("t", ssh({})).nodeGroups[0].ssh!;
    expect(plain).toMatchObject({ rollout: { pauseSeconds: 0, stopOnFailure: true }, reboot: "never", rebootTimeoutSeconds: 600 });
    const set = parseStack("t", ssh({ rollout: { maxUnavailable: "25%", pauseSeconds: 60 }, reboot: "allowed" })).nodeGroups[0].ssh!;
    expect(set).toMatchObject({ rollout: { maxUnavailable: "25%", pauseSeconds: 60, stopOnFailure: true }, reboot: "allowed" });
    expect(problems(ssh({ rollout: { batchSize: 2, maxUnavailable: 1 }, reboot: "always" }))).toEqual([
      expect.stringMatching(/^nodeGroups\[0\]\.ssh\.rollout\.maxUnavailable: .*batchSize or maxUnavailable, not both/),
      expect.stringMatching(/^nodeGroups\[0\]\.ssh\.reboot: .*"always".*never.*allowed/),
    ]);
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
  const nodeGroups = [
    { name: "k", target: "ssh", profile: "edge", ssh: { hosts: [{ host: "10.0.0.1" }], privateKey: { secure: "v1:abc" } } },
  ];

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
  // Kubernetes nodes' profiles must keep NodePorts out of the ephemeral range (tested below).
  const profiles = { edge: { extends: "recommended", ports: { kubernetesNodePorts: true } } };

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
    const edge = { extends: "recommended", ports: { kubernetesNodePorts: true, listenPorts: [80, 8404, 8405] } };
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

    it("a tuner group named like the proxy instance would share its node annotation", () => {
      const found = problems({
        profiles: { edge },
        nodeGroups: [
          { name: "p", target: "kubernetes", profile: "edge" },
          { name: "proxy", target: "kubernetes", profile: "edge", kubernetes: { image: tuner, metrics: { port: 9478 } } },
        ],
        proxy,
      });
      expect(found).toEqual([
        expect.stringMatching(/^nodeGroups\[1\]\.name: got "proxy"; .*tuning\.edgetune\.io\/proxy .*allowed: another name$/),
      ]);
    });

    it("is free on nodes the proxy cannot run on, off the host network, or when off", () => {
      expect(stack({ metrics: { port: 8404 }, nodeSelector: { pool: "app" } })).toEqual([]);
      expect(stack({ metrics: { port: 8404 }, hostNetwork: false })).toEqual([]);
      expect(stack({ metrics: { port: 0 } })).toEqual([]);
    });
  });
});

describe("stack config: ephemeral ports on Kubernetes nodes", () => {
  // The recommended preset's ip_local_port_range 1024 65535 covers the NodePort range 30000-32767.
  const reserving = { kubernetesNodePorts: true, kubelet: true, listenPorts: [80, 8404, 8405] };
  const proxy = (profile: string, kubernetes: Record<string, unknown>) => ({
    profile,
    listeners: [{ name: "web", mode: "http", port: 80, backend: "app" }],
    backends: [{ name: "app", servers: [{ name: "a1", address: "10.0.0.1", port: 8080 }] }],
    kubernetes: { image: "proxy:1.0.0", tunerImage: "tuner:1.0.0", ...kubernetes },
  });
  const tunerGroup = (profile: string) => ({ name: "app-nodes", target: "kubernetes", profile, kubernetes: { image: "tuner:1.0.0" } });

  it("refuses a tuner group whose range overlaps the NodePorts unreserved, naming the group, the range and the fix", () => {
    const p = problems({ profiles: { app: { extends: "recommended" } }, nodeGroups: [tunerGroup("app")] });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^nodeGroups\[0\]\.profile: node group "app-nodes" \(its tuner DaemonSet\) applies profile "app"/);
    expect(p[0]).toContain("ip_local_port_range 1024 65535 overlaps the Kubernetes NodePort range 30000-32767");
    expect(p[0]).toContain("leaves 30000-32767 unreserved");
    expect(p[0]).toContain("set profiles.app.ports.kubernetesNodePorts: true");
    // The fix it names is enough.
    expect(problems({ profiles: { app: { extends: "recommended", ports: reserving } }, nodeGroups: [tunerGroup("app")] })).toEqual([]);
  });

  it("a ports section that does not reserve the NodePorts is refused too (the profile alone never warned about it)", () => {
    const profiles = { app: { extends: "recommended", ports: { listenPorts: [80] } } };
    expect(problems({ profiles, nodeGroups: [tunerGroup("app")] })).toEqual([
      expect.stringMatching(/^nodeGroups\[0\]\.profile: .*30000-32767/),
    ]);
  });

  it("accepts a range clear of the NodePorts, the kernel default, and reservations made through the sysctl itself", () => {
    for (const profile of [
      { sysctls: { "net.ipv4.ip_local_port_range": "32768 65535" } },
      { sysctls: { "net.core.somaxconn": 8192 } },
      { extends: "recommended", sysctls: { "net.ipv4.ip_local_reserved_ports": "30000-32767" } },
    ])
      expect(problems({ profiles: { app: profile }, nodeGroups: [tunerGroup("app")] }), JSON.stringify(profile)).toEqual([]);
  });

  it("checks the cluster's own NodePort range when the profile declares one, and names what is left unreserved", () => {
    const range = { "net.ipv4.ip_local_port_range": "32768 65535" };
    // Clear of the default NodePort range.
    expect(problems({ profiles: { app: { sysctls: range } }, nodeGroups: [tunerGroup("app")] })).toEqual([]);
    // A cluster whose --service-node-port-range reaches into it.
    const declared = { sysctls: range, ports: { nodePortRange: "30000-44999" } };
    expect(problems({ profiles: { app: declared }, nodeGroups: [tunerGroup("app")] })).toEqual([
      expect.stringMatching(/overlaps the Kubernetes NodePort range 30000-44999 and leaves 32768-44999 unreserved/),
    ]);
    // Partly reserved by hand: only the rest is named.
    const partly = { "net.ipv4.ip_local_port_range": "1024 65535", "net.ipv4.ip_local_reserved_ports": "30000-31000" };
    expect(problems({ profiles: { app: { sysctls: partly } }, nodeGroups: [tunerGroup("app")] })).toEqual([
      expect.stringMatching(/overlaps the Kubernetes NodePort range 30000-32767 and leaves 31001-32767 unreserved/),
    ]);
    expect(
      problems({
        profiles: { app: { sysctls: range, ports: { nodePortRange: "30000-44999", kubernetesNodePorts: true } } },
        nodeGroups: [tunerGroup("app")],
      }),
    ).toEqual([]);
    expect(problems({ profiles: { app: { ports: { nodePortRange: "30000-" } } }, nodeGroups: [tunerGroup("app")] })).toEqual([
      expect.stringMatching(/^profiles\.app\.ports: nodePortRange "30000-": /),
    ]);
  });

  it("refuses the profile the proxy's init container applies, once, and only when it tunes the nodes", () => {
    const profiles = { edge: { extends: "recommended", ports: { listenPorts: [80, 8404, 8405] } } };
    // No Kubernetes group: the rendered manifests still tune whatever nodes they are applied to.
    expect(problems({ profiles, nodeGroups: [{ name: "lab", target: "local", profile: "edge" }], proxy: proxy("edge", {}) })).toEqual([
      expect.stringMatching(
        /^proxy\.profile: the proxy DaemonSet's tuning init container \(proxy\.kubernetes\.tuneNodes\) applies profile "edge", whose ip_local_port_range 1024 65535/,
      ),
    ]);
    // A group it tunes carries the problem instead, once.
    const imageless = [
      { name: "proxy-nodes", target: "kubernetes", profile: "edge" },
      { name: "more", target: "kubernetes", profile: "edge" },
    ];
    expect(problems({ profiles, nodeGroups: imageless, proxy: proxy("edge", {}) })).toEqual([
      expect.stringMatching(/^nodeGroups\[0\]\.profile: node group "proxy-nodes" \(tuned by the proxy's init container\)/),
    ]);
    // tuneNodes: false puts no profile on the nodes.
    expect(
      problems({ profiles, nodeGroups: [{ name: "lab", target: "local", profile: "edge" }], proxy: proxy("edge", { tuneNodes: false }) }),
    ).toEqual([]);
  });

  it("an EKS managed node group is a Kubernetes node group; a plain EC2 group is not", () => {
    const profiles = { edge: { extends: "recommended" } };
    const aws = (userDataFormat: string) => ({
      name: "eks-edge",
      target: "aws",
      profile: "edge",
      aws: userDataFormat === "eks-managed" ? { userDataFormat } : { userDataFormat, imageId: "ami-0123456789abcdef0" },
    });
    expect(problems({ profiles, nodeGroups: [aws("eks-managed")] })).toEqual([
      expect.stringMatching(/^nodeGroups\[0\]\.profile: node group "eks-edge" \(an EKS managed node group's launch template\)/),
    ]);
    expect(problems({ profiles, nodeGroups: [aws("cloud-config")] })).toEqual([]);
  });
});
