import type { Compare, SysctlScope } from "./catalog";

export type {
  TuningProfile,
  PresetName,
  SysctlInput,
  ExtraSysctl,
  LimitsInput,
  HugepagesInput,
  NicTuning,
  ConntrackInput,
  PortPlanInput,
  OffloadFeature,
  FlowType,
  IrqbalanceMode,
} from "./profile-spec";
import type { FlowType, OffloadFeature, PresetName } from "./profile-spec";

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
  /** ethtool -C parameters in ethtool's names (adaptive-rx, rx-usecs, ...) with their values. */
  coalesce: Array<{ param: string; value: string }>;
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
  /** What tune.sh does about irqbalance, for every NIC together (it is one daemon per host). */
  irqbalance?: { mode: "ban"; cpus: string } | { mode: "stop" };
  /** Kernel modules to load (and persist through modules-load.d). */
  modules: string[];
  /** What port planning decided, for the render summary. */
  portPlan?: PortPlan;
  /** Non-fatal findings (e.g. tcp_rmem max above rmem_max). */
  warnings: string[];
  /** What buffers.bdp derived, for the render summary: the size, and the keys it set or left to the profile. */
  bdp?: { gbps: number; rttMs: number; headroom: number; bdpBytes: number; bufferBytes: number; set: string[]; keptExplicit: string[] };
}

export interface PortPlan {
  range: [number, number];
  reserved: string;
  ephemeralPorts: number;
  notes: string[];
  /** The cluster's NodePort range as the profile declares it (ports.nodePortRange), reserved or not. */
  nodePortRange: [number, number];
}
