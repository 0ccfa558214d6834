import { describe, expect, it } from "vitest";
import {
  bdpSizing,
  checkProfile,
  cpuMask,
  parseCpuList,
  planPorts,
  PRESETS,
  PRESET_NAMES,
  resolveProfile,
  SYSCTL_CATALOG,
  ValidationError,
} from "../../components";
import { join } from "node:path";
import { parseStack, readStackConfig } from "../../loader/stack-config";
import { renderStack } from "../../render/render";
import { kubernetesPortProblem, subtractRanges, unreservedNodePorts } from "../../components/tuning/ports";

const issuesOf = (input: unknown) => checkProfile("edge", input).issues;

describe("validation: every problem, each with its exact path", () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    [
      "non-integer value",
      { sysctls: { "net.core.somaxconn": "lots" } },
      'profiles.edge.sysctls["net.core.somaxconn"]',
      /got "lots"; allowed: an integer 1\.\.2147483647/,
    ],
    [
      "value out of range",
      { sysctls: { "net.ipv4.tcp_tw_reuse": 7 } },
      'profiles.edge.sysctls["net.ipv4.tcp_tw_reuse"]',
      /got 7; allowed: an integer 0\.\.2/,
    ],
    [
      "tuple of wrong arity",
      { sysctls: { "net.ipv4.tcp_rmem": "4096 87380" } },
      'profiles.edge.sysctls["net.ipv4.tcp_rmem"]',
      /3 space-separated integers/,
    ],
    [
      "unknown word",
      { sysctls: { "net.ipv4.tcp_congestion_control": "warp" } },
      'profiles.edge.sysctls["net.ipv4.tcp_congestion_control"]',
      /one of bbr, cubic/,
    ],
    [
      "unknown key outside the escape hatch",
      { sysctls: { "net.ipv4.tcp_syn_retries": 3 } },
      'profiles.edge.sysctls["net.ipv4.tcp_syn_retries"]',
      /unknown key.*extraSysctls/,
    ],
    [
      "key grammar in the escape hatch",
      { extraSysctls: { "net/../../etc/x": { value: 1 } } },
      'profiles.edge.extraSysctls["net/../../etc/x"]',
      /without "\.\."/,
    ],
    ["leading dot", { extraSysctls: { ".net.x": { value: 1 } } }, 'profiles.edge.extraSysctls[".net.x"]', /not starting with/],
    [
      "newline in a value",
      { extraSysctls: { "net.ipv4.tcp_syn_retries": { value: "3\nrm -rf /" } } },
      'profiles.edge.extraSysctls["net.ipv4.tcp_syn_retries"]',
      /control characters/,
    ],
    [
      "shell in a value",
      { extraSysctls: { "net.ipv4.tcp_syn_retries": { value: "$(touch /tmp/x)" } } },
      'profiles.edge.extraSysctls["net.ipv4.tcp_syn_retries"]',
      /allowed: an integer, space-separated integers, or a word/,
    ],
    [
      "nofile above nr_open",
      { limits: { nofileHard: 2000000 } },
      "profiles.edge.limits.nofileHard",
      /must not exceed fs\.nr_open \(1048576, the kernel default\)/,
    ],
    [
      "soft above hard",
      { limits: { nofileSoft: 70000, nofileHard: 65536 } },
      "profiles.edge.limits.nofileSoft",
      /must not exceed limits\.nofileHard/,
    ],
    ["unknown field", { sysctl: {} }, "profiles.edge", /unknown field "sysctl" \(did you mean "sysctls"\?\)/],
    ["unknown preset", { extends: "turbo" }, "profiles.edge.extends", /got "turbo"/],
    ["NIC name with a slash", { nics: [{ match: "eth0/../x" }] }, "profiles.edge.nics[0].match", /interface name or glob/],
    ["NIC name starting with a dash", { nics: [{ match: "-x" }] }, "profiles.edge.nics[0].match", /not starting with "-"/],
    ["bad cpulist", { nics: [{ match: "eth0", rps: { cpus: "0-a" } }] }, "profiles.edge.nics[0].rps.cpus", /a cpulist like/],
    ["reversed cpulist", { nics: [{ match: "eth0", xps: { cpus: "3-1" } }] }, "profiles.edge.nics[0].xps.cpus", /reversed/],
    [
      "rss with both forms",
      { nics: [{ match: "eth0", rss: { equal: 2, weights: [1, 1] } }] },
      "profiles.edge.nics[0].rss",
      /exactly one of equal or weights/,
    ],
    [
      "flow hash letters",
      { nics: [{ match: "eth0", rxFlowHash: { tcp4: "sd;reboot" } }] },
      "profiles.edge.nics[0].rxFlowHash.tcp4",
      /letters from "mvtsdfnr"/,
    ],
    [
      "too few ephemeral ports",
      { sysctls: { "net.ipv4.ip_local_port_range": "30000 40000" }, ports: { kubernetesNodePorts: true } },
      "profiles.edge.ports",
      /leaves 7233 ephemeral ports; at least 16384/,
    ],
    [
      "reversed port range",
      { sysctls: { "net.ipv4.ip_local_port_range": "60000 1024" } },
      'profiles.edge.sysctls["net.ipv4.ip_local_port_range"]',
      /must not exceed the last/,
    ],
    [
      "reservation set twice",
      { extends: "recommended", sysctls: { "net.ipv4.ip_local_reserved_ports": "80" }, ports: { listenPorts: [80] } },
      'profiles.edge.sysctls["net.ipv4.ip_local_reserved_ports"]',
      /either ports/,
    ],
    [
      "compare for a key not set",
      { compare: { "net.core.somaxconn": "exact" } },
      'profiles.edge.compare["net.core.somaxconn"]',
      /no sysctl/,
    ],
  ];
  it.each(cases)("%s", (_name, input, path, message) => {
    const issues = issuesOf(input);
    const hit = issues.find((i) => i.path === path);
    expect(hit, JSON.stringify(issues)).toBeDefined();
    expect(hit!.message).toMatch(message);
  });

  it("lists every problem in one error, applying nothing", () => {
    const bad = { sysctls: { "net.core.somaxconn": -1, "net.ipv4.tcp_fin_timeout": "x" }, limits: { nofileHard: 5_000_000 } };
    let err: unknown;
    try {
      resolveProfile("edge", bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    const e = err as ValidationError;
    expect(e.issues.map((i) => i.path).sort()).toEqual([
      "profiles.edge.limits.nofileHard",
      'profiles.edge.sysctls["net.core.somaxconn"]',
      'profiles.edge.sysctls["net.ipv4.tcp_fin_timeout"]',
    ]);
    expect(e.message).toMatch(/3 problems/);
  });

  it("accepts a raised nr_open with a matching nofile, and refuses one process allowed more files than the whole system", () => {
    const p = resolveProfile("edge", { sysctls: { "fs.nr_open": 4194304, "fs.file-max": 4000000 }, limits: { nofileHard: 2000000 } });
    expect(p.limits).toEqual({ nofileSoft: 2000000, nofileHard: 2000000, nproc: undefined });
    expect(() =>
      resolveProfile("edge", { sysctls: { "fs.nr_open": 4194304, "fs.file-max": 1000000 }, limits: { nofileHard: 2000000 } }),
    ).toThrow(/profiles\.edge\.limits\.nofileHard: got 2000000; must not exceed fs\.file-max \(1000000\)/);
  });
});

describe("presets", () => {
  it("baseline changes nothing", () => {
    const p = resolveProfile("b", { extends: "baseline" });
    expect(p.sysctls).toEqual([]);
    expect(p.limits).toBeUndefined();
    expect(p.nics).toEqual([]);
  });

  it("recommended is NovaEdge's 18 parameters exactly", () => {
    const p = resolveProfile("r", { extends: "recommended" });
    expect(Object.fromEntries(p.sysctls.map((s) => [s.key, s.value]))).toEqual({
      "net.core.somaxconn": "65535",
      "net.core.netdev_max_backlog": "65535",
      "net.ipv4.tcp_max_syn_backlog": "65535",
      "net.core.rmem_max": "16777216",
      "net.core.wmem_max": "16777216",
      "net.ipv4.tcp_rmem": "4096 87380 16777216",
      "net.ipv4.tcp_wmem": "4096 65536 16777216",
      "net.ipv4.tcp_fin_timeout": "10",
      "net.ipv4.tcp_tw_reuse": "1",
      "net.ipv4.ip_local_port_range": "1024 65535",
      "net.ipv4.tcp_fastopen": "3",
      "net.ipv4.tcp_slow_start_after_idle": "0",
      "net.ipv4.tcp_keepalive_time": "60",
      "net.ipv4.tcp_keepalive_intvl": "10",
      "net.ipv4.tcp_keepalive_probes": "6",
      "net.core.optmem_max": "65536",
      "net.ipv4.tcp_max_tw_buckets": "2000000",
      "net.ipv4.tcp_notsent_lowat": "16384",
    });
    // The seed's port range overlaps NodePorts: without a port plan the profile says so.
    expect(p.warnings.join("\n")).toMatch(/overlaps the Kubernetes NodePort range 30000-32767/);
  });

  it("throughput brings bbr + fq, large buffers and the bbr module", () => {
    const p = resolveProfile("t", { extends: "throughput" });
    const v = Object.fromEntries(p.sysctls.map((s) => [s.key, s.value]));
    expect(v["net.ipv4.tcp_congestion_control"]).toBe("bbr");
    expect(v["net.core.default_qdisc"]).toBe("fq");
    expect(v["net.core.rmem_max"]).toBe("134217728");
    expect(p.modules).toEqual(["sch_fq", "tcp_bbr"]);
    expect(p.limits?.nofileHard).toBe(1048576);
  });

  it("a profile overrides and removes preset keys", () => {
    const p = resolveProfile("o", { extends: "latency", sysctls: { "net.core.busy_poll": null, "net.core.somaxconn": 8192 } });
    const keys = p.sysctls.map((s) => s.key);
    expect(keys).not.toContain("net.core.busy_poll");
    expect(keys).toContain("net.core.busy_read");
    expect(p.sysctls.find((s) => s.key === "net.core.somaxconn")!.value).toBe("8192");
  });

  it("every preset resolves, and every key it sets is in the catalog", () => {
    for (const name of PRESET_NAMES) {
      const p = resolveProfile(name, { extends: name });
      for (const s of p.sysctls) expect(SYSCTL_CATALOG[s.key], s.key).toBeDefined();
      expect(PRESETS[name]).toBeDefined();
    }
  });

  it("comparison semantics come from the catalog and can be overridden", () => {
    const p = resolveProfile("c", { extends: "recommended", compare: { "net.core.somaxconn": "exact" } });
    const cmp = Object.fromEntries(p.sysctls.map((s) => [s.key, s.compare]));
    expect(cmp["net.core.somaxconn"]).toBe("exact");
    expect(cmp["net.ipv4.tcp_fin_timeout"]).toBe("at-most");
    expect(cmp["net.ipv4.tcp_max_syn_backlog"]).toBe("at-least");
  });
});

describe("port planning", () => {
  it("reserves NodePorts, kubelet and listen ports inside the seed's 1024-65535 range", () => {
    const plan = planPorts([1024, 65535], { kubernetesNodePorts: true, kubelet: true, listenPorts: [443, 8404, 8405] });
    if ("error" in plan) throw new Error(plan.error);
    expect(plan.reserved).toBe("443,8404-8405,10250,10256,30000-32767");
    expect(plan.ephemeralPorts).toBe(64512 - 2 - 2 - 2768);
    expect(plan.notes[0]).toMatch(/overlaps the NodePort range 30000-32767/);
  });

  it("a profile with a port plan renders ip_local_reserved_ports", () => {
    const p = resolveProfile("k", { extends: "recommended", ports: { kubernetesNodePorts: true, kubelet: true } });
    expect(p.sysctls.find((s) => s.key === "net.ipv4.ip_local_reserved_ports")!.value).toBe("10250,10256,30000-32767");
    expect(p.warnings.join()).not.toMatch(/NodePort/);
  });

  it("subtracts ranges: what is left of a range, in order", () => {
    expect(subtractRanges([1, 100], [])).toEqual([[1, 100]]);
    expect(subtractRanges([1, 100], [[1, 100]])).toEqual([]);
    expect(
      subtractRanges(
        [10, 100],
        [
          [50, 60],
          [1, 20],
          [55, 70],
          [100, 200],
        ],
      ),
    ).toEqual([
      [21, 49],
      [71, 99],
    ]);
  });

  it("finds the NodePorts a profile leaves unreserved, and says nothing for one that may run on Kubernetes", () => {
    const seed = resolveProfile("seed", { extends: "recommended" });
    expect(unreservedNodePorts(seed)).toEqual({ range: [1024, 65535], nodePortRange: [30000, 32767], unreserved: [[30000, 32767]] });
    expect(kubernetesPortProblem(seed, 'node group "x"')).toMatch(
      /^node group "x" applies profile "seed", whose ip_local_port_range 1024 65535/,
    );
    const reserved = resolveProfile("k", { extends: "recommended", ports: { kubernetesNodePorts: true } });
    expect(unreservedNodePorts(reserved).unreserved).toEqual([]);
    expect(kubernetesPortProblem(reserved, "x")).toBeUndefined();
    // The kernel default range starts right above the default NodePort range.
    expect(kubernetesPortProblem(resolveProfile("plain", {}), "x")).toBeUndefined();
  });

  it("rejects a reservation that leaves too few ephemeral ports", () => {
    const plan = planPorts([32768, 60999], { reserved: ["32768-50000"], minEphemeralPorts: 20000 });
    expect(plan).toEqual({ error: expect.stringMatching(/leaves 10999 ephemeral ports; at least 20000/) });
  });
});

describe("helpers", () => {
  it("BDP sizing: 10 Gbit/s × 10 ms = 12.5 MB, doubled for headroom", () => {
    const s = bdpSizing({ bandwidthBitsPerSecond: 10e9, rttMilliseconds: 10 });
    expect(s.bdpBytes).toBe(12_500_000);
    expect(s.bufferBytes).toBe(25_001_984);
    expect(s.sysctls["net.ipv4.tcp_rmem"]).toBe("4096 87380 25001984");
    // The sizing plugs straight into a profile.
    expect(() => resolveProfile("bdp", { sysctls: s.sysctls })).not.toThrow();
    expect(() => bdpSizing({ bandwidthBitsPerSecond: 0, rttMilliseconds: 1 })).toThrow(/must be > 0/);
  });

  it("cpulists become the kernel's comma-grouped hex masks", () => {
    expect(parseCpuList("0-3,6")).toEqual([0, 1, 2, 3, 6]);
    expect(cpuMask([0, 1])).toBe("3");
    expect(cpuMask([0, 32])).toBe("1,00000001");
    expect(cpuMask([35])).toBe("8,00000000");
  });
});

describe("buffers.bdp: socket buffers from the bandwidth-delay product", () => {
  const value = (p: ReturnType<typeof resolveProfile>, key: string) => p.sysctls.find((s) => s.key === key)?.value;

  it("sizes tcp_rmem/tcp_wmem max and rmem_max/wmem_max, replacing the preset's", () => {
    // 10 Gbit/s x 20 ms = 25,000,000 bytes, x2 headroom, rounded up to 4 KiB.
    const p = resolveProfile("wan", { extends: "recommended", buffers: { bdp: { gbps: 10, rttMs: 20 } } });
    expect(value(p, "net.core.rmem_max")).toBe("50003968");
    expect(value(p, "net.core.wmem_max")).toBe("50003968");
    expect(value(p, "net.ipv4.tcp_rmem")).toBe("4096 87380 50003968");
    expect(value(p, "net.ipv4.tcp_wmem")).toBe("4096 65536 50003968");
    expect(p.warnings.filter((w) => /exceeds net\.core/.test(w))).toEqual([]);
  });

  it("an explicit sysctl of the profile wins over the derived value; the others are still derived", () => {
    const p = resolveProfile("wan", {
      extends: "recommended",
      sysctls: { "net.ipv4.tcp_rmem": "4096 131072 8388608", "net.core.wmem_max": 4194304 },
      buffers: { bdp: { gbps: 1, rttMs: 100, headroom: 1 } },
    });
    expect(value(p, "net.ipv4.tcp_rmem")).toBe("4096 131072 8388608");
    expect(value(p, "net.core.wmem_max")).toBe("4194304");
    // 1 Gbit/s x 100 ms = 12.5 MB, headroom 1, rounded up to 4 KiB.
    expect(value(p, "net.core.rmem_max")).toBe("12500992");
    expect(value(p, "net.ipv4.tcp_wmem")).toBe("4096 65536 12500992");
    expect(p.bdp).toEqual({
      gbps: 1,
      rttMs: 100,
      headroom: 1,
      bdpBytes: 12500000,
      bufferBytes: 12500992,
      set: ["net.core.rmem_max", "net.ipv4.tcp_wmem"],
      keptExplicit: ["net.core.wmem_max", "net.ipv4.tcp_rmem"],
    });
  });

  it("PLAN.md says what it derived and which keys the profile kept", () => {
    const c = readStackConfig("prod", join(__dirname, "..", ".."));
    const profiles = c.profiles as Record<string, Record<string, unknown>>;
    profiles.edge = { ...profiles.edge, sysctls: { "net.core.wmem_max": 4194304 }, buffers: { bdp: { gbps: 10, rttMs: 20 } } };
    expect(renderStack(parseStack("prod", c))["PLAN.md"]).toContain(
      "Buffers (buffers.bdp): 10 Gbit/s × 20 ms = 25000000 bytes, × 2 headroom → 50003968 bytes in net.core.rmem_max, net.ipv4.tcp_rmem, net.ipv4.tcp_wmem (the profile's own value kept: net.core.wmem_max).",
    );
  });

  it("without buffers the preset's buffer sizes stay", () => {
    const p = resolveProfile("plain", { extends: "recommended" });
    expect(value(p, "net.core.rmem_max")).toBe(String(PRESETS.recommended.sysctls!["net.core.rmem_max"]));
  });

  it.each([
    [{ gbps: 0, rttMs: 10 }, "profiles.edge.buffers.bdp.gbps"],
    [{ gbps: 10, rttMs: -1 }, "profiles.edge.buffers.bdp.rttMs"],
    [{ gbps: 10, rttMs: 10, headroom: 0.5 }, "profiles.edge.buffers.bdp.headroom"],
    [{ gbps: 10, rttMs: 10, bandwidth: 3 }, "profiles.edge.buffers.bdp"],
  ])("refuses %j naming %s", (bdp, path) => {
    const issues = issuesOf({ buffers: { bdp } });
    expect(issues.map((i) => i.path)).toContain(path);
  });
});
