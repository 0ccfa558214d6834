/**
 * Bad and hostile stack config, the way users meet it: every string a user can set carries an
 * injection attempt, every value a wrong type, YAML oddities, semantic conflicts. Each must be
 * one ValidationError naming the path — never a hang, a stack trace, a silently changed value,
 * a written file or an executed command.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump } from "js-yaml";
import { describe, expect, it } from "vitest";
import { parseStack } from "../../loader/stack-config";
import { formatPath, ValidationError, type PathSegment } from "../../components/validation";

const ROOT = join(__dirname, "..", "..");
const work = mkdtempSync(join(tmpdir(), "edgetune-hostile-"));
const CANARY = join(work, "canary");
/** Newline, command substitution, quotes, backtick: whatever reaches a shell, a file or YAML unescaped shows. */
const HOSTILE = `x\n$(touch ${CANARY})'"\`;`;

/** A valid stack with every section and target: the base each case changes in one place. */
const kitchenSink = (): Record<string, any> => ({
  profiles: {
    edge: {
      extends: "recommended",
      description: "edge proxies",
      ports: { kubernetesNodePorts: true, kubelet: true, listenPorts: [80, 443, 8404, 8405] },
      nics: [
        {
          match: "ens*",
          offloads: { gro: true },
          rps: { cpus: "0-3", flowEntriesPerQueue: 4096 },
          irqAffinity: { cpus: "0-3" },
          irqbalanceBannedCpus: "0-3",
          rxFlowHash: { tcp4: "sdfn" },
        },
      ],
      extraSysctls: { "net.ipv4.tcp_ecn": { value: 1 } },
      conntrack: { max: 262144, hashsize: 65536, notrackPorts: [80] },
    },
    tuned: { extends: "recommended", ports: { kubernetesNodePorts: true, kubelet: true, listenPorts: [80, 5201, 8404, 8405] } },
  },
  nodeGroups: [
    {
      name: "hosts",
      target: "ssh",
      profile: "edge",
      ssh: { hosts: [{ host: "192.0.2.10" }], user: "ops", sudo: true, privateKey: { secure: "v1:abc" }, stagingDir: "/var/tmp/et" },
    },
    {
      name: "asg",
      target: "aws",
      profile: "edge",
      aws: {
        imageId: "ami-0123456789abcdef0",
        instanceType: "c6in.xlarge",
        securityGroupIds: ["sg-0123456789abcdef0"],
        tags: { team: "edge" },
        autoScaling: { subnetIds: ["subnet-0123456789abcdef0"] },
      },
    },
    {
      name: "k8s",
      target: "kubernetes",
      profile: "tuned",
      kubernetes: {
        image: "ghcr.io/o/tuner:1.0.0",
        namespace: "tuning",
        nodeSelector: { "edgetune.io/pool": "proxy" },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "proxy", effect: "NoSchedule" }],
      },
    },
  ],
  proxy: {
    profile: "tuned",
    listeners: [{ name: "web", mode: "http", port: 80, backend: "app" }],
    backends: [
      { name: "app", healthCheck: { type: "http", path: "/healthz" }, servers: [{ name: "a1", address: "10.0.0.1", port: 8080 }] },
    ],
    management: { address: "hostIP", allowFrom: ["10.0.0.0/8", "fd00::/8"], podCidr: "100.64.0.0/10", exposePublicly: false },
    kubernetes: {
      image: "ghcr.io/o/proxy:1.0.0",
      tuneNodes: false,
      priorityClassName: "system-node-critical",
      resources: { requests: { cpu: "500m" } },
    },
  },
  benchmark: {
    namespace: "bench",
    profiles: ["edge", "tuned"],
    scenarios: ["http-throughput"],
    proxyHost: "10.0.1.10",
    proxyPodLabels: { "app.kubernetes.io/name": "edgetune-proxy" },
    images: { loadgen: "ghcr.io/o/loadgen:1.0.0" },
    kubeconfigPath: "/root/.kube/config",
  },
  capacity: { peakGbps: 100, perProxyGbps: 40 },
  lab: { variants: [{ name: "v", profile: "edge", scenarios: ["conn-rate"], why: "a reason" }] },
});

/** Every leaf (and every key of a free-form mapping) of a value, with its path. */
function leaves(v: unknown, path: PathSegment[] = []): Array<{ path: PathSegment[]; value: unknown }> {
  if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...path, i]));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
  return [{ path, value: v }];
}
function setAt(root: any, path: PathSegment[], value: unknown): void {
  let o = root;
  for (const p of path.slice(0, -1)) o = o[p];
  o[path[path.length - 1]] = value;
}
function problems(config: Record<string, unknown>): Array<{ path: string; message: string }> {
  try {
    parseStack("t", config);
    return [];
  } catch (e) {
    if (e instanceof ValidationError) return e.issues;
    throw e;
  }
}

describe("every field a user sets, set wrong", () => {
  it("the kitchen-sink stack is valid (each case below changes one thing)", () => {
    expect(problems(kitchenSink())).toEqual([]);
  });

  const strings = leaves(kitchenSink()).filter((l) => typeof l.value === "string" && l.path[l.path.length - 1] !== "secure");
  it(`an injection attempt in any of its ${strings.length} strings is refused at that path, and runs nothing`, () => {
    const unrefused: string[] = [];
    for (const l of strings) {
      const config = kitchenSink();
      setAt(config, l.path, HOSTILE);
      const found = problems(config);
      const at = formatPath(l.path);
      if (!found.some((p) => p.path === at || p.path.startsWith(`${at}.`) || p.path.startsWith(`${at}[`)))
        unrefused.push(`${at}: ${JSON.stringify(found.map((p) => p.path))}`);
    }
    expect(unrefused).toEqual([]);
    expect(existsSync(CANARY)).toBe(false);
  });

  it("an injection attempt as a key of any mapping is refused", () => {
    const unrefused: string[] = [];
    const mappings: PathSegment[][] = [
      ["profiles"],
      ["profiles", "edge", "extraSysctls"],
      ["nodeGroups", 1, "aws", "tags"],
      ["nodeGroups", 2, "kubernetes", "nodeSelector"],
      ["benchmark", "proxyPodLabels"],
      ["proxy", "kubernetes", "resources", "requests"],
    ];
    for (const path of mappings) {
      const config = kitchenSink();
      let o: any = config;
      for (const p of path) o = o[p];
      const [first] = Object.keys(o);
      o[HOSTILE] = o[first];
      const found = problems(config);
      if (!found.some((p) => p.path.startsWith(formatPath(path)) || p.path === "(root)"))
        unrefused.push(`${formatPath(path)}: ${JSON.stringify(found)}`);
    }
    expect(unrefused).toEqual([]);
  });

  const all = leaves(kitchenSink()).filter((l) => l.path[l.path.length - 1] !== "secure");
  it(`a value of the wrong type in any of its ${all.length} leaves is refused at that path`, () => {
    const unrefused: string[] = [];
    for (const l of all) {
      const config = kitchenSink();
      setAt(config, l.path, typeof l.value === "string" ? 42 : { nested: true });
      const at = formatPath(l.path);
      if (!problems(config).some((p) => p.path === at || p.path.startsWith(at))) unrefused.push(at);
    }
    expect(unrefused).toEqual([]);
  });

  it("a typo gets a suggestion", () => {
    const config = kitchenSink();
    config.nodeGroups[2].kubernetes.verifyIntervalSecond = 300;
    config.proxy.listenrs = [];
    const found = problems(config).map((p) => `${p.path}: ${p.message}`);
    expect(found).toContain('nodeGroups[2].kubernetes: unknown field "verifyIntervalSecond" (did you mean "verifyIntervalSeconds"?)');
    expect(found).toContain('proxy: unknown field "listenrs" (did you mean "listeners"?)');
  });
});

describe("only real problems", () => {
  it("a broken profile is reported once, not again by every section that names it", () => {
    const config = kitchenSink();
    config.profiles.tuned.sysctls = { "net.core.somaxconn": "many" };
    expect(problems(config).map((p) => p.path)).toEqual(['profiles.tuned.sysctls["net.core.somaxconn"]']);
  });

  it("a broken proxy section does not also ask for a proxy section", () => {
    const config: Record<string, any> = { ...kitchenSink(), nodeGroups: [{ name: "lab", target: "local", profile: "tuned" }] };
    config.proxy.listeners[0].port = "eighty";
    const found = problems(config);
    expect(found.map((p) => p.path)).toEqual(["proxy.listeners[0].port"]);
  });

  it("a port the user never set is named as the default it is", () => {
    const config = kitchenSink();
    config.profiles.tuned.ports.listenPorts = [80, 5201, 8405];
    expect(problems(config).map((p) => `${p.path}: ${p.message}`)).toEqual([
      expect.stringMatching(
        /^proxy\.metricsPort: port 8404 of the metrics endpoint \(its default port; metricsPort is not set\) is inside the ephemeral range/,
      ),
    ]);
  });
});

describe("plausibility", () => {
  const cases: Array<[string, (c: Record<string, any>) => void, RegExp]> = [
    [
      "huge pages beyond any machine",
      (c) => (c.profiles.edge.hugepages = { pages1GiB: 5000 }),
      /profiles\.edge\.hugepages\.pages1GiB: got 5000; allowed: an integer 0\.\.1024/,
    ],
    [
      "huge pages beyond the stated memory",
      (c) => (c.profiles.edge.hugepages = { pages2MiB: 30000, nodeMemoryGiB: 64 }),
      /hugepages\.pages2MiB: got 30000; 58\.59375 GiB of huge pages on nodes of 64 GiB; allowed: at most 90 %/,
    ],
    [
      "more conntrack buckets than entries",
      (c) => (c.profiles.edge.conntrack.hashsize = 1048576),
      /conntrack\.hashsize: got 1048576 buckets for a table of 262144 entries/,
    ],
    [
      "one process allowed more files than the system",
      (c) => Object.assign(c.profiles.edge, { sysctls: { "fs.file-max": 100000 }, limits: { nofileHard: 200000 } }),
      /limits\.nofileHard: got 200000; must not exceed fs\.file-max \(100000\)/,
    ],
    [
      "a host-global sysctl as a pod sysctl",
      (c) =>
        Object.assign(c.nodeGroups[2].kubernetes, {
          hostNetwork: false,
          podSysctls: [{ name: "net.core.netdev_max_backlog", value: "65535" }],
        }),
      /podSysctls\[0\]\.name: got "net\.core\.netdev_max_backlog"; net\.core\.netdev_max_backlog is host-global/,
    ],
    [
      "a nodeadm part that is no NodeConfig",
      (c) =>
        Object.assign(c.nodeGroups[1].aws, {
          userDataFormat: "eks-managed",
          imageId: undefined,
          autoScaling: undefined,
          nodeadmConfig: "kind: Pod\n",
        }),
      /aws\.nodeadmConfig: .*allowed: a nodeadm NodeConfig YAML document/,
    ],
    [
      "a benchmark target that is no host",
      (c) => (c.benchmark.proxyHost = "10.0.1.10; rm -rf /"),
      /benchmark\.proxyHost: got .*allowed: a host name/,
    ],
  ];
  for (const [name, change, expected] of cases) {
    it(name, () => {
      const config = JSON.parse(JSON.stringify(kitchenSink()));
      change(config);
      expect(
        problems(config)
          .map((p) => `${p.path}: ${p.message}`)
          .join("\n"),
      ).toMatch(expected);
    });
  }
});

describe("YAML a stack file must not be", () => {
  const stacks = join(work, "stacks");
  mkdirSync(stacks, { recursive: true });
  writeFileSync(join(work, "Pulumi.yaml"), readFileSync(join(ROOT, "Pulumi.yaml")));
  const valid = dump({
    config: {
      "edgetune:profiles": { p: {} },
      "edgetune:nodeGroups": [{ name: "g", target: "kubernetes", profile: "p", kubernetes: { image: "ghcr.io/o/t:1.0.0" } }],
    },
  });
  const cases: Record<string, { text: string | Buffer; expect: RegExp }> = {
    duplicate: { text: `${valid}config:\n  x: 1\n`, expect: /Pulumi\.duplicate\.yaml:\d+:\d+: Map keys must be unique/ },
    laughs: {
      text: `config:\n  edgetune:profiles:\n    a: &a [x,x,x,x,x,x,x,x,x]\n    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n    g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n`,
      expect: /more than 100 alias expansions/,
    },
    latin1: {
      text: Buffer.concat([Buffer.from(valid), Buffer.from("# caf"), Buffer.from([0xe9]), Buffer.from("\n")]),
      expect: /Pulumi\.latin1\.yaml:\d+:6: byte 0xe9 is not UTF-8/,
    },
    bigint: {
      text: valid.replace("profile: p", "profile: p\n      huge: 9007199254740993"),
      expect: /the integer 9007199254740993 cannot be held exactly/,
    },
    nan: { text: valid.replace("profile: p", "profile: p\n      n: .nan"), expect: /got "\.nan"; allowed: a finite number/ },
    overflow: { text: valid.replace("profile: p", "profile: p\n      n: 1e309"), expect: /got "1e309"; allowed: a finite number/ },
    tag: { text: valid.replace("profile: p", "profile: !!js/function p"), expect: /Unresolved tag: tag:yaml\.org,2002:js\/function/ },
    syntax: { text: `config:\n  edgetune:profiles: { p: "unclosed }\n`, expect: /Pulumi\.syntax\.yaml:\d+:\d+: / },
    list: { text: "- config\n", expect: /allowed: a mapping with a config key/ },
    scalar: { text: "config: 5\n", expect: /config: got 5; allowed: a mapping of config keys/ },
  };
  for (const [name, c] of Object.entries(cases)) writeFileSync(join(stacks, `Pulumi.${name}.yaml`), c.text);

  it("each is one error with its place in the file, parsed within a deadline (a hang is the failure)", () => {
    const tsx = join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");
    const r = spawnSync(process.execPath, [tsx, join(__dirname, "..", "helpers", "parse-child.ts"), work, ...Object.keys(cases)], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.signal, "killed: a stack file hung the loader").toBeNull();
    const results = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { stack: string; ms: number; ok: boolean; message?: string; crash?: string });
    expect(results.map((x) => x.stack)).toEqual(Object.keys(cases));
    for (const x of results) {
      expect(x.crash, `${x.stack}: a crash, not a message`).toBeUndefined();
      expect(x.ok, x.stack).toBe(false);
      expect(x.message, x.stack).toMatch(cases[x.stack].expect);
      // A bound, not a measurement: parsing a stack file takes milliseconds; a bomb takes minutes.
      expect(x.ms, `${x.stack} took ${x.ms} ms`).toBeLessThan(1000);
    }
  });

  it("render refuses each with exit code 1, no stack trace, and writes nothing", () => {
    for (const name of ["laughs", "nan", "duplicate"]) {
      const out = join(work, `out-${name}`);
      const r = spawnSync(process.execPath, [join(ROOT, "bin", "edgetune.js"), "render", "--stack", name, "--out", out, "--root", work], {
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.status, `${name}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(cases[name].expect);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(out)).toBe(false);
    }
    expect(readdirSync(work).filter((f) => f.startsWith("canary"))).toEqual([]);
  });
});
