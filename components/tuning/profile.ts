import { z } from "zod";
import { CONTROL, formatPath, resolveWith, show, ValidationError, type PathSegment, type ValidationIssue } from "../validation";
import { SYSCTL_CATALOG, keyGrammarProblem, moduleForValue, type Compare, type SysctlMeta, type SysctlValueType } from "./catalog";
import { bdpSizing } from "./bdp";
import { cpuMask, formatCpuList, parseCpuList } from "./cpus";
import { formatRanges, KERNEL_PORT_RANGE_DEFAULT, KUBERNETES_NODEPORT_RANGE, overlapCount, planPorts, type PortRange } from "./ports";
import { PRESETS } from "./presets";
import { nicSpec, OFFLOAD_FEATURES, tuningProfileSchema } from "./profile-spec";

export { tuningProfileSchema } from "./profile-spec";
import type { ResolvedNic, ResolvedProfile, ResolvedSysctl, SysctlInput, TuningProfile } from "./types";

function describeType(t: SysctlValueType): string {
  switch (t.kind) {
    case "int":
      return `an integer ${t.min}..${t.max}`;
    case "tuple":
      return `${t.arity} space-separated integers, each ${t.min}..${t.max}`;
    case "word":
      return `one of ${t.words.join(", ")}`;
    case "portlist":
      return 'comma-separated ports or ranges, e.g. "10250,30000-32767"';
  }
}

/** Normalizes a sysctl value to the kernel's text form, or returns the problem. */
export function normalizeValue(value: SysctlInput, type: SysctlValueType | undefined): { value: string } | { problem: string } {
  const allowed = type ? describeType(type) : "an integer, space-separated integers, or a word of [A-Za-z0-9_-]";
  const fail = { problem: `got ${show(value)}; allowed: ${allowed}` };
  if (typeof value === "string" && CONTROL.test(value))
    return { problem: `got ${show(value)}; control characters and newlines are not allowed` };
  const parts: string[] = Array.isArray(value)
    ? value.map(String)
    : typeof value === "number"
      ? [String(value)]
      : value.trim().split(/[ \t]+/);
  const ints = parts.every((p) => /^-?\d{1,19}$/.test(p)) ? parts.map(Number) : undefined;
  if (!type) {
    if (ints && ints.length >= 1 && ints.length <= 8 && ints.every(Number.isSafeInteger)) return { value: ints.join(" ") };
    if (parts.length === 1 && /^[A-Za-z0-9_-]{1,64}$/.test(parts[0])) return { value: parts[0] };
    if (parts.length === 1 && /^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/.test(parts[0])) return { value: parts[0] };
    return fail;
  }
  switch (type.kind) {
    case "int":
      if (!ints || ints.length !== 1 || !Number.isInteger(ints[0]) || ints[0] < type.min || ints[0] > type.max) return fail;
      return { value: String(ints[0]) };
    case "tuple":
      if (!ints || ints.length !== type.arity || ints.some((n) => !Number.isInteger(n) || n < type.min || n > type.max)) return fail;
      return { value: ints.join(" ") };
    case "word":
      if (parts.length !== 1 || !type.words.includes(parts[0])) return fail;
      return { value: parts[0] };
    case "portlist": {
      const text = Array.isArray(value) ? value.join(",") : String(value).trim();
      if (text === "") return { value: "" };
      if (!/^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/.test(text)) return fail;
      return { value: text };
    }
  }
}

/** Expands `extends`: the preset first, then the profile's own fields on top. */
export function mergeWithPreset(profile: TuningProfile): TuningProfile {
  const preset = profile.extends ? PRESETS[profile.extends] : undefined;
  if (!preset) return profile;
  return {
    ...preset,
    ...profile,
    description: profile.description ?? preset.description,
    sysctls: { ...preset.sysctls, ...profile.sysctls },
    compare: { ...preset.compare, ...profile.compare },
    extraSysctls: { ...preset.extraSysctls, ...profile.extraSysctls },
    limits: preset.limits || profile.limits ? { ...preset.limits, ...profile.limits } : undefined,
  };
}

/** The profile's coalesce fields and ethtool -C's names for them. */
const COALESCE_PARAMS = [
  ["adaptiveRx", "adaptive-rx"],
  ["adaptiveTx", "adaptive-tx"],
  ["rxUsecs", "rx-usecs"],
  ["txUsecs", "tx-usecs"],
  ["rxFrames", "rx-frames"],
  ["txFrames", "tx-frames"],
] as const;

/** The kernel docs' (scaling.rst) global RFS table for a moderately loaded server. */
const RFS_TABLE_DEFAULT = 32768;

const NIC_NAME = /^[A-Za-z0-9_.:@*?-]{1,32}$/;
const FLOW_FIELDS = /^[mvtsdfnr]{1,8}$/;
const KERNEL_NR_OPEN_DEFAULT = 1048576;

function resolveNic(nic: z.output<typeof nicSpec>, path: PathSegment[], issues: ValidationIssue[]): ResolvedNic {
  const at = (...s: PathSegment[]) => formatPath([...path, ...s]);
  if (!NIC_NAME.test(nic.match) || nic.match.startsWith("-")) {
    issues.push({
      path: at("match"),
      message: `got ${show(nic.match)}; allowed: an interface name or glob of [A-Za-z0-9_.:@*?-], 1-32 characters, not starting with "-"`,
    });
  } else if (!/[*?]/.test(nic.match) && nic.match.length > 15) {
    issues.push({ path: at("match"), message: `got ${show(nic.match)}; interface names are at most 15 characters (IFNAMSIZ)` });
  }
  const out: ResolvedNic = {
    match: nic.match,
    offloads: OFFLOAD_FEATURES.filter((f) => nic.offloads?.[f] !== undefined).map((f) => ({ feature: f, on: nic.offloads![f]! })),
    channels: nic.channels,
    rings: nic.rings,
    rxFlowHash: [],
    coalesce: COALESCE_PARAMS.filter(([f]) => nic.coalesce?.[f] !== undefined).map(([f, param]) => {
      const v = nic.coalesce![f]!;
      return { param, value: typeof v === "boolean" ? (v ? "on" : "off") : String(v) };
    }),
  };
  if (nic.rss) {
    if ((nic.rss.equal === undefined) === (nic.rss.weights === undefined)) {
      issues.push({ path: at("rss"), message: `got ${show(nic.rss)}; allowed: exactly one of equal or weights` });
    } else if (nic.rss.weights && nic.rss.weights.every((w) => w === 0)) {
      issues.push({ path: at("rss", "weights"), message: `got ${show(nic.rss.weights)}; at least one weight must be > 0` });
    }
    out.rss = nic.rss;
  }
  for (const [flowType, fields] of Object.entries(nic.rxFlowHash ?? {}) as Array<[ResolvedNic["rxFlowHash"][number]["flowType"], string]>) {
    if (!FLOW_FIELDS.test(fields))
      issues.push({
        path: at("rxFlowHash", flowType),
        message: `got ${show(fields)}; allowed: ethtool rx-flow-hash letters from "mvtsdfnr", e.g. "sdfn"`,
      });
    out.rxFlowHash.push({ flowType, fields });
  }
  const cpuField = (value: string, ...seg: PathSegment[]): string | undefined => {
    const cpus = parseCpuList(value);
    if (typeof cpus === "string") {
      issues.push({ path: at(...seg), message: `got ${show(value)}; allowed: ${cpus}` });
      return undefined;
    }
    return cpuMask(cpus);
  };
  if (nic.rps) {
    const mask = cpuField(nic.rps.cpus, "rps", "cpus");
    if (mask) out.rps = { mask, cpus: nic.rps.cpus, flowEntriesPerQueue: nic.rps.flowEntriesPerQueue };
  }
  if (nic.xps) {
    if ("mode" in nic.xps) out.xps = { mode: "spread" };
    else {
      const mask = cpuField(nic.xps.cpus, "xps", "cpus");
      if (mask) out.xps = { mask, cpus: nic.xps.cpus };
    }
  }
  if (nic.irqAffinity && cpuField(nic.irqAffinity.cpus, "irqAffinity", "cpus"))
    out.irqAffinity = { cpus: nic.irqAffinity.cpus, spread: nic.irqAffinity.spread };
  if (nic.irqbalanceBannedCpus !== undefined) cpuField(nic.irqbalanceBannedCpus, "irqbalanceBannedCpus");
  return out;
}

/**
 * Validates a profile (preset expanded) and resolves it into what the
 * renderers take. Collects every problem; returns them instead of throwing so
 * a stack loader can report all profiles at once.
 */
export function checkProfile(
  name: string,
  input: unknown,
  prefix: readonly PathSegment[] = ["profiles", name],
): { profile?: ResolvedProfile; issues: ValidationIssue[] } {
  const parsed = resolveWith(tuningProfileSchema, input ?? {}, prefix);
  if (!parsed.value) return { issues: parsed.issues };
  const issues: ValidationIssue[] = [];
  const warnings: string[] = [];
  // Parsed again after the merge: the preset's fields get the spec's defaults too.
  const p = tuningProfileSchema.parse(mergeWithPreset(parsed.value));
  const at = (...s: PathSegment[]) => formatPath([...prefix, ...s]);

  const sysctls = new Map<string, ResolvedSysctl>();
  const addSysctl = (
    key: string,
    raw: SysctlInput,
    meta: SysctlMeta | undefined,
    path: PathSegment[],
    extra?: { compare?: Compare; scope?: ResolvedSysctl["scope"] },
  ) => {
    const grammar = keyGrammarProblem(key);
    if (grammar) {
      issues.push({ path: at(...path), message: `key ${show(key)} is not allowed; allowed: ${grammar}` });
      return;
    }
    const norm = normalizeValue(raw, meta?.type);
    if ("problem" in norm) {
      issues.push({ path: at(...path), message: norm.problem });
      return;
    }
    if (sysctls.has(key)) {
      issues.push({
        path: at(...path),
        message: `key ${show(key)} is set twice (sysctls, extraSysctls or a shorthand such as conntrack/hugepages)`,
      });
      return;
    }
    sysctls.set(key, {
      key,
      value: norm.value,
      compare: p.compare?.[key] ?? extra?.compare ?? meta?.compare ?? "exact",
      scope: extra?.scope ?? meta?.scope ?? "host",
      known: meta !== undefined,
      module: moduleForValue(key, norm.value),
    });
  };

  // buffers.bdp replaces the preset's buffer sizes, but never a key the profile itself writes:
  // an explicit value is a decision, the derived one a default.
  const own = new Set([...Object.keys(parsed.value.sysctls ?? {}), ...Object.keys(parsed.value.extraSysctls ?? {})]);
  const bdp = p.buffers?.bdp;
  const sizing = bdp && bdpSizing({ bandwidthBitsPerSecond: bdp.gbps * 1e9, rttMilliseconds: bdp.rttMs, headroom: bdp.headroom });
  const derived = sizing ? Object.entries(sizing.sysctls).filter(([key]) => !own.has(key)) : [];
  const derivedKeys = new Set(derived.map(([key]) => key));

  for (const [key, value] of Object.entries(p.sysctls ?? {})) {
    if (value === null || derivedKeys.has(key)) continue;
    const meta = SYSCTL_CATALOG[key];
    if (!meta && !keyGrammarProblem(key)) {
      issues.push({
        path: at("sysctls", key),
        message: `unknown key ${show(key)}; allowed: a key from the catalog (SYSCTL_CATALOG), or declare it under extraSysctls`,
      });
      continue;
    }
    addSysctl(key, value, meta, ["sysctls", key]);
  }
  for (const [key, extra] of Object.entries(p.extraSysctls ?? {})) {
    if (derivedKeys.has(key)) continue;
    addSysctl(key, extra.value, SYSCTL_CATALOG[key], ["extraSysctls", key], {
      compare: extra.compare,
      scope: extra.scope ?? SYSCTL_CATALOG[key]?.scope ?? "host",
    });
  }
  for (const key of Object.keys(p.compare ?? {})) {
    if (!sysctls.has(key) && (p.sysctls?.[key] === undefined || p.sysctls[key] === null)) {
      issues.push({ path: at("compare", key), message: `no sysctl ${show(key)} in this profile to compare` });
    }
  }

  // Shorthands that are sysctls underneath.
  for (const [key, value] of derived) addSysctl(key, value, SYSCTL_CATALOG[key], ["buffers", "bdp"]);
  const ct = p.conntrack;
  if (ct?.max !== undefined)
    addSysctl("net.netfilter.nf_conntrack_max", ct.max, SYSCTL_CATALOG["net.netfilter.nf_conntrack_max"], ["conntrack", "max"]);
  const timeoutKeys = {
    tcpEstablishedSeconds: "net.netfilter.nf_conntrack_tcp_timeout_established",
    tcpTimeWaitSeconds: "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
    tcpCloseWaitSeconds: "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    tcpFinWaitSeconds: "net.netfilter.nf_conntrack_tcp_timeout_fin_wait",
  } as const;
  for (const [field, key] of Object.entries(timeoutKeys) as Array<[keyof typeof timeoutKeys, string]>) {
    const v = ct?.timeouts?.[field];
    if (v !== undefined) addSysctl(key, v, SYSCTL_CATALOG[key], ["conntrack", "timeouts", field]);
  }
  if (p.hugepages?.pages2MiB !== undefined)
    addSysctl("vm.nr_hugepages", p.hugepages.pages2MiB, SYSCTL_CATALOG["vm.nr_hugepages"], ["hugepages", "pages2MiB"]);

  // Port planning: reserve what must never become an ephemeral source port.
  const rangeValue = sysctls.get("net.ipv4.ip_local_port_range")?.value;
  const range: PortRange = rangeValue ? (rangeValue.split(" ").map(Number) as PortRange) : KERNEL_PORT_RANGE_DEFAULT;
  let portPlan: ResolvedProfile["portPlan"];
  if (rangeValue && range[0] > range[1])
    issues.push({
      path: at("sysctls", "net.ipv4.ip_local_port_range"),
      message: `got ${show(rangeValue)}; the first port must not exceed the last`,
    });
  else if (p.ports) {
    const plan = planPorts(range, p.ports);
    if ("error" in plan) issues.push({ path: at("ports"), message: plan.error });
    else {
      portPlan = plan;
      if (sysctls.has("net.ipv4.ip_local_reserved_ports")) {
        issues.push({
          path: at("sysctls", "net.ipv4.ip_local_reserved_ports"),
          message: "set either ports (planned reservations) or this key, not both",
        });
      } else if (plan.reserved !== "") {
        addSysctl("net.ipv4.ip_local_reserved_ports", plan.reserved, SYSCTL_CATALOG["net.ipv4.ip_local_reserved_ports"], ["ports"]);
      }
    }
  } else if (rangeValue && overlapCount(range, [KUBERNETES_NODEPORT_RANGE]) > 0) {
    warnings.push(
      `ip_local_port_range ${rangeValue} overlaps the Kubernetes NodePort range ${formatRanges([KUBERNETES_NODEPORT_RANGE])}: on Kubernetes nodes set ports.kubernetesNodePorts (and ports.kubelet) so those ports are reserved (a stack refuses this profile on Kubernetes nodes)`,
    );
  }

  // Cross-checks between keys.
  const num = (key: string) => (sysctls.has(key) ? Number(sysctls.get(key)!.value.split(" ").pop()) : undefined);
  for (const [tcp, core] of [
    ["net.ipv4.tcp_rmem", "net.core.rmem_max"],
    ["net.ipv4.tcp_wmem", "net.core.wmem_max"],
  ] as const) {
    const t = num(tcp);
    const c = num(core);
    if (t !== undefined && c !== undefined && t > c)
      warnings.push(
        `${tcp} max ${t} exceeds ${core} ${c}: autotuned sockets may grow to ${t}, but buffers set with SO_RCVBUF/SO_SNDBUF stop at ${c}`,
      );
  }
  let limits: ResolvedProfile["limits"];
  if (p.limits && (p.limits.nofileHard !== undefined || p.limits.nofileSoft !== undefined || p.limits.nproc !== undefined)) {
    const hard = p.limits.nofileHard ?? p.limits.nofileSoft;
    const soft = p.limits.nofileSoft ?? hard;
    if (hard !== undefined && soft !== undefined) {
      if (soft > hard)
        issues.push({ path: at("limits", "nofileSoft"), message: `got ${soft}; must not exceed limits.nofileHard (${hard})` });
      const nrOpen = num("fs.nr_open") ?? KERNEL_NR_OPEN_DEFAULT;
      if (hard > nrOpen) {
        issues.push({
          path: at("limits", "nofileHard"),
          message: `got ${hard}; must not exceed fs.nr_open (${nrOpen}${num("fs.nr_open") === undefined ? ", the kernel default" : ""}): raise sysctls["fs.nr_open"] too`,
        });
      }
      const fileMax = num("fs.file-max");
      if (fileMax !== undefined && hard > fileMax)
        issues.push({
          path: at("limits", "nofileHard"),
          message: `got ${hard}; must not exceed fs.file-max (${fileMax}): one process could exhaust the system-wide file table — raise sysctls["fs.file-max"] too`,
        });
      limits = { nofileSoft: soft, nofileHard: hard, nproc: p.limits.nproc };
    } else if (p.limits.nproc !== undefined) {
      issues.push({
        path: at("limits"),
        message: "nproc alone is not supported: set nofileHard as well (limits are written as one coherent file)",
      });
    }
  }

  const nics = (p.nics ?? []).map((nic, i) => resolveNic(nic, [...prefix, "nics", i], issues));
  resolveRfsTable(p, sysctls, addSysctl, issues, at);
  const irqbalance = resolveIrqbalance(p, issues, at);
  const kernelArgs = p.hugepages?.pages1GiB ? ["hugepagesz=1G", `hugepages=${p.hugepages.pages1GiB}`] : [];
  const modules = new Set<string>();
  for (const s of sysctls.values()) if (s.module) modules.add(s.module);
  if (ct?.hashsize !== undefined || (ct?.notrackPorts?.length ?? 0) > 0) modules.add("nf_conntrack");

  if (issues.length > 0) return { issues };
  return {
    issues,
    profile: {
      name,
      description: p.description,
      extends: p.extends,
      sysctls: [...sysctls.values()].sort((a, b) => a.key.localeCompare(b.key)),
      limits,
      hugepages: { ...p.hugepages },
      kernelArgs,
      nics,
      irqbalance,
      conntrack: { hashsize: ct.hashsize, notrackPorts: [...new Set(ct.notrackPorts)].sort((a, b) => a - b), rulesFormat: ct.rulesFormat },
      modules: [...modules].sort(),
      portPlan,
      warnings,
      ...(bdp && sizing
        ? {
            bdp: {
              ...bdp,
              bdpBytes: sizing.bdpBytes,
              bufferBytes: sizing.bufferBytes,
              set: [...derivedKeys].sort(),
              keptExplicit: Object.keys(sizing.sysctls)
                .filter((k) => !derivedKeys.has(k))
                .sort(),
            },
          }
        : {}),
    },
  };
}

type Parsed = z.output<typeof tuningProfileSchema>;

/**
 * RFS steers by two tables: rps_flow_cnt per rx queue and the global rps_sock_flow_entries. With the global one
 * at 0 (the kernel default) RFS does nothing, so a profile with flow entries per queue gets the global table too:
 * at least the kernel docs' 32768, raised to a power of two (the kernel rounds up anyway) that covers one queue's
 * table. The queue count is only known on the host; the docs size the global table by expected connections.
 */
function resolveRfsTable(
  p: Parsed,
  sysctls: Map<string, ResolvedSysctl>,
  addSysctl: (key: string, raw: SysctlInput, meta: SysctlMeta | undefined, path: PathSegment[]) => void,
  issues: ValidationIssue[],
  at: (...s: PathSegment[]) => string,
): void {
  const key = "net.core.rps_sock_flow_entries";
  const rfs = (p.nics ?? []).flatMap((n, i) => ((n.rps?.flowEntriesPerQueue ?? 0) > 0 ? [{ i, per: n.rps!.flowEntriesPerQueue! }] : []));
  if (rfs.length === 0) return;
  const explicit = sysctls.get(key);
  if (explicit?.value === "0") {
    issues.push({
      path: at(p.sysctls?.[key] !== undefined ? "sysctls" : "extraSysctls", key),
      message: `got 0 while nics[${rfs[0].i}].rps.flowEntriesPerQueue is ${rfs[0].per}; RFS needs the global flow table: allowed: a positive size, or leave it unset and edgetune sets it`,
    });
    return;
  }
  if (explicit) return;
  const per = Math.max(...rfs.map((r) => r.per));
  addSysctl(key, Math.max(RFS_TABLE_DEFAULT, 2 ** Math.ceil(Math.log2(per))), SYSCTL_CATALOG[key], ["nics", rfs[0].i, "rps"]);
}

/** irqbalance is one daemon per host: the NICs' choices combine into one, and ban and stop together are refused. */
function resolveIrqbalance(p: Parsed, issues: ValidationIssue[], at: (...s: PathSegment[]) => string): ResolvedProfile["irqbalance"] {
  const banned = new Set<number>();
  const modes = new Map<string, number>();
  (p.nics ?? []).forEach((nic, i) => {
    const mode = nic.irqbalance ?? p.irqbalance ?? (nic.irqAffinity || nic.irqbalanceBannedCpus ? "ban" : "leave");
    if (!modes.has(mode)) modes.set(mode, i);
    if (mode !== "ban") return;
    const list = nic.irqbalanceBannedCpus ?? nic.irqAffinity?.cpus;
    if (list === undefined) {
      issues.push({
        path: at("nics", i, "irqbalance"),
        message: `got "ban" with neither irqAffinity nor irqbalanceBannedCpus on this NIC; allowed: name the CPUs (irqbalanceBannedCpus), or stop or leave`,
      });
      return;
    }
    const cpus = parseCpuList(list);
    if (typeof cpus !== "string") cpus.forEach((c) => banned.add(c));
  });
  if (modes.has("ban") && modes.has("stop")) {
    issues.push({
      path: at("nics", modes.get("stop")!, "irqbalance"),
      message: `got "stop" while nics[${modes.get("ban")}] bans CPUs from irqbalance; irqbalance is one daemon per host: allowed: the same choice (ban or stop) for every NIC, or leave`,
    });
    return undefined;
  }
  if (modes.has("stop")) return { mode: "stop" };
  if (banned.size === 0) return undefined;
  return { mode: "ban", cpus: formatCpuList([...banned].sort((a, b) => a - b)) };
}

/** Validates and resolves one profile; throws `ValidationError` listing every problem. */
export function resolveProfile(name: string, input: unknown, prefix?: readonly PathSegment[]): ResolvedProfile {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name))
    throw new ValidationError(
      [
        {
          path: formatPath(prefix ?? ["profiles"]),
          message: `profile name ${show(name)}; allowed: lowercase letters, digits and "-", 1-63 characters`,
        },
      ],
      "invalid tuning profile",
    );
  const { profile, issues } = checkProfile(name, input, prefix);
  if (!profile) throw new ValidationError(issues, `invalid tuning profile "${name}"`);
  return profile;
}
