import type { Compare, SysctlScope } from "./catalog";

/** A sysctl value as written in config: an integer, a tuple of integers, or a word. */
export type SysctlInput = number | string | number[];

/** Names of the built-in presets. */
export type PresetName = "baseline" | "recommended" | "throughput" | "latency";

/**
 * The one typed tuning profile everything renders from.
 * All fields are optional; a profile that sets nothing changes nothing.
 */
export interface TuningProfile {
  /** Preset whose settings this profile starts from; its own fields override the preset's. @default none */
  extends?: PresetName;
  /** Free text carried into the rendered files' headers. */
  description?: string;
  /**
   * Known kernel parameters (see `SYSCTL_CATALOG`). `null` removes a key inherited from the preset.
   * Tuples may be given as "4096 87380 16777216" or [4096, 87380, 16777216].
   */
  sysctls?: Record<string, SysctlInput | null>;
  /** Per-key override of the catalog's comparison (`exact`, `at-least`, `at-most`). */
  compare?: Record<string, Compare>;
  /** Escape hatch for keys outside the catalog; they must still pass the key grammar and the value grammar. */
  extraSysctls?: Record<string, ExtraSysctl>;
  /** Per-process resource limits written to limits.d and a systemd manager drop-in. */
  limits?: LimitsInput;
  /** Huge pages. */
  hugepages?: HugepagesInput;
  /** NIC settings, one entry per interface name or glob pattern. */
  nics?: NicTuning[];
  /** Connection tracking sizing and NOTRACK rules. */
  conntrack?: ConntrackInput;
  /** Ephemeral port planning: which ports must never be picked as source ports. */
  ports?: PortPlanInput;
}

export interface ExtraSysctl {
  value: SysctlInput;
  /** @default "exact" */
  compare?: Compare;
  /** @default "host" (the safe assumption: not settable from a pod's network namespace) */
  scope?: SysctlScope;
}

export interface LimitsInput {
  /** Soft RLIMIT_NOFILE. @default nofileHard */
  nofileSoft?: number;
  /** Hard RLIMIT_NOFILE; must not exceed fs.nr_open. */
  nofileHard?: number;
  /** RLIMIT_NPROC (soft and hard). @default unchanged */
  nproc?: number;
}

export interface HugepagesInput {
  /** 2 MiB pages reserved at runtime through vm.nr_hugepages. @default unchanged */
  pages2MiB?: number;
  /** 1 GiB pages: rendered as kernel boot arguments; needs a reboot. @default none */
  pages1GiB?: number;
}

export type OffloadFeature = "tso" | "gso" | "gro" | "lro" | "rxChecksum" | "txChecksum";
export type FlowType = "tcp4" | "tcp6" | "udp4" | "udp6";

export interface NicTuning {
  /** Interface name or shell glob (`eth0`, `ens*`, `veth-p?`). */
  match: string;
  /** ethtool -K features: true on, false off. */
  offloads?: Partial<Record<OffloadFeature, boolean>>;
  /** ethtool -L queue counts. */
  channels?: { combined?: number; rx?: number; tx?: number };
  /** ethtool -G ring sizes in descriptors. */
  rings?: { rx?: number; tx?: number };
  /** RSS indirection table (ethtool -X): spread over the first `equal` queues, or by weight per queue. */
  rss?: { equal?: number; weights?: number[] };
  /** ethtool -N rx-flow-hash fields per flow type, in ethtool's letters (e.g. "sdfn"). */
  rxFlowHash?: Partial<Record<FlowType, string>>;
  /** Receive Packet Steering: CPUs (cpulist, e.g. "0-3") for every rx queue, and RFS flow entries per queue. */
  rps?: { cpus: string; flowEntriesPerQueue?: number };
  /** Transmit Packet Steering: "spread" maps tx queue i to CPU i mod nCPU; or one cpulist for every queue. */
  xps?: { mode: "spread" } | { cpus: string };
  /** IRQ affinity for the NIC's interrupts: "spread" round-robin over `cpus`, or all on `cpus`. */
  irqAffinity?: { cpus: string; spread?: boolean };
  /** CPUs irqbalance must not route IRQs to (IRQBALANCE_BANNED_CPULIST). */
  irqbalanceBannedCpus?: string;
}

export interface ConntrackInput {
  /** net.netfilter.nf_conntrack_max */
  max?: number;
  /** nf_conntrack hash table buckets (module parameter hashsize). */
  hashsize?: number;
  timeouts?: {
    tcpEstablishedSeconds?: number;
    tcpTimeWaitSeconds?: number;
    tcpCloseWaitSeconds?: number;
    tcpFinWaitSeconds?: number;
  };
  /** TCP ports whose traffic bypasses connection tracking (raw-table NOTRACK). @default [] */
  notrackPorts?: number[];
  /** Rule syntax to render. @default "nftables" */
  rulesFormat?: "nftables" | "iptables";
}

export interface PortPlanInput {
  /** Reserve the Kubernetes NodePort range. @default false */
  kubernetesNodePorts?: boolean;
  /** NodePort range as "first-last". @default "30000-32767" */
  nodePortRange?: string;
  /** Reserve kubelet's port 10250 (and 10256 kube-proxy health). @default false */
  kubelet?: boolean;
  /** The proxy's listen ports. @default [] */
  listenPorts?: number[];
  /** Further ports or "first-last" ranges. @default [] */
  reserved?: Array<number | string>;
  /** Fewest ephemeral ports the range must leave after reservations. @default 16384 */
  minEphemeralPorts?: number;
}

/** A sysctl after validation: the value normalized to the kernel's text form. */
export interface ResolvedSysctl {
  key: string;
  value: string;
  compare: Compare;
  scope: SysctlScope;
  /** Whether the key is in the catalog (false: came through extraSysctls). */
  known: boolean;
  module?: string;
}

export interface ResolvedNic {
  match: string;
  offloads: Array<{ feature: OffloadFeature; on: boolean }>;
  channels?: { combined?: number; rx?: number; tx?: number };
  rings?: { rx?: number; tx?: number };
  rss?: { equal?: number; weights?: number[] };
  rxFlowHash: Array<{ flowType: FlowType; fields: string }>;
  /** Hex mask (kernel format, comma-grouped) and the cpulist it came from. */
  rps?: { mask: string; cpus: string; flowEntriesPerQueue?: number };
  xps?: { mode: "spread" } | { mask: string; cpus: string };
  irqAffinity?: { cpus: string; spread: boolean };
  irqbalanceBannedCpus?: string;
}

/** A profile after preset expansion, defaults and validation: what the renderers take. */
export interface ResolvedProfile {
  name: string;
  description?: string;
  extends?: PresetName;
  sysctls: ResolvedSysctl[];
  limits?: { nofileSoft: number; nofileHard: number; nproc?: number };
  hugepages: { pages2MiB?: number; pages1GiB?: number };
  /** Kernel command line arguments the profile needs; applying them needs a reboot. */
  kernelArgs: string[];
  nics: ResolvedNic[];
  conntrack: { hashsize?: number; notrackPorts: number[]; rulesFormat: "nftables" | "iptables" };
  /** Kernel modules to load (and persist through modules-load.d). */
  modules: string[];
  /** What port planning decided, for the render summary. */
  portPlan?: PortPlan;
  /** Non-fatal findings (e.g. tcp_rmem max above rmem_max). */
  warnings: string[];
}

export interface PortPlan {
  range: [number, number];
  reserved: string;
  ephemeralPorts: number;
  notes: string[];
}
