/**
 * What edgetune knows about each kernel parameter it manages.
 *
 * The catalog is the single source for validation (type, range), for where a
 * key can be applied (a network namespace, a pod, only the host) and for the
 * comparison a node's live value is judged by. Keys outside it are accepted
 * only through `TuningProfile.extraSysctls`.
 */

/** Where a sysctl lives, as measured on Linux 6.x (see LAB-NOTES). */
export type SysctlScope =
  /** Per network namespace and writable from inside it. */
  | "netns"
  /** Visible in a network namespace but read-only there: only the host (init netns) can set it. */
  | "netns-readonly"
  /** Global: absent from a network namespace, or shared with the host when written from one. */
  | "host";

/**
 * How a live value is compared with the profile's value.
 * - `exact`: must equal.
 * - `at-least`: a higher live value is kept and is not drift (TuneD's `>`).
 * - `at-most`: a lower live value is kept and is not drift (TuneD's `<`).
 * Tuples compare element by element.
 */
export type Compare = "exact" | "at-least" | "at-most";

export type SysctlValueType =
  | { kind: "int"; min: number; max: number }
  | { kind: "tuple"; arity: number; min: number; max: number }
  | { kind: "word"; words: readonly string[] }
  /** Comma-separated ports and port ranges (ip_local_reserved_ports). */
  | { kind: "portlist" };

export interface SysctlMeta {
  type: SysctlValueType;
  scope: SysctlScope;
  compare: Compare;
  /** Kubernetes version from which kubelet allows the key in `securityContext.sysctls` without `--allowed-unsafe-sysctls`. */
  kubeletSafeSince?: string;
  /** Oldest kernel that has the key ("major.minor"). */
  minKernel: string;
  /** Kernel module that must be loaded for the key to exist. */
  module?: string;
  /** Unit of the value, for documentation. */
  unit?: string;
  description: string;
}

const INT_MAX = 2147483647;
const UINT_MAX = 4294967295;
const bool = { kind: "int", min: 0, max: 1 } as const;
const int = (min: number, max: number) => ({ kind: "int", min, max }) as const;
const tuple = (arity: number, min: number, max: number) => ({ kind: "tuple", arity, min, max }) as const;

export const CONGESTION_CONTROLS = [
  "bbr",
  "cubic",
  "reno",
  "htcp",
  "dctcp",
  "hybla",
  "westwood",
  "vegas",
  "illinois",
  "bic",
  "highspeed",
  "scalable",
  "yeah",
  "lp",
  "nv",
  "cdg",
] as const;
export const QDISCS = ["fq", "fq_codel", "pfifo_fast", "cake", "sfq", "noqueue"] as const;

export const SYSCTL_CATALOG: Readonly<Record<string, SysctlMeta>> = {
  // --- NovaEdge's recommended table (seed 000) ---
  "net.core.somaxconn": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-least",
    minKernel: "2.6",
    description: "Cap on every listen() backlog; the effective backlog is min(listen backlog, somaxconn).",
  },
  "net.core.netdev_max_backlog": {
    type: int(1, INT_MAX),
    scope: "host",
    compare: "at-least",
    unit: "packets",
    minKernel: "2.6",
    description: "Packets queued per CPU when the softirq cannot keep up.",
  },
  "net.ipv4.tcp_max_syn_backlog": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-least",
    minKernel: "2.6",
    description: "Half-open connections remembered per listener.",
  },
  "net.core.rmem_max": {
    type: int(1, INT_MAX),
    scope: "netns-readonly",
    compare: "at-least",
    unit: "bytes",
    minKernel: "2.6",
    description: "Largest receive buffer a socket may request with SO_RCVBUF.",
  },
  "net.core.wmem_max": {
    type: int(1, INT_MAX),
    scope: "netns-readonly",
    compare: "at-least",
    unit: "bytes",
    minKernel: "2.6",
    description: "Largest send buffer a socket may request with SO_SNDBUF.",
  },
  "net.ipv4.tcp_rmem": {
    type: tuple(3, 1, INT_MAX),
    scope: "netns",
    compare: "at-least",
    kubeletSafeSince: "1.32",
    unit: "bytes",
    minKernel: "2.6",
    description: "TCP receive buffer autotuning: min default max.",
  },
  "net.ipv4.tcp_wmem": {
    type: tuple(3, 1, INT_MAX),
    scope: "netns",
    compare: "at-least",
    kubeletSafeSince: "1.32",
    unit: "bytes",
    minKernel: "2.6",
    description: "TCP send buffer autotuning: min default max.",
  },
  "net.ipv4.tcp_fin_timeout": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-most",
    kubeletSafeSince: "1.29",
    unit: "seconds",
    minKernel: "2.6",
    description: "Time an orphaned socket stays in FIN-WAIT-2.",
  },
  "net.ipv4.tcp_tw_reuse": {
    type: int(0, 2),
    scope: "netns",
    compare: "exact",
    minKernel: "2.6",
    description: "Reuse TIME_WAIT sockets for outgoing connections: 0 off, 1 on, 2 loopback only.",
  },
  "net.ipv4.ip_local_port_range": {
    type: tuple(2, 1, 65535),
    scope: "netns",
    compare: "exact",
    kubeletSafeSince: "1.22",
    minKernel: "2.6",
    description: "Ephemeral source ports: first last.",
  },
  "net.ipv4.tcp_fastopen": {
    type: int(0, 0x7ff),
    scope: "netns",
    compare: "exact",
    minKernel: "3.7",
    description: "TCP Fast Open bitmask: 1 client, 2 server, 3 both.",
  },
  "net.ipv4.tcp_slow_start_after_idle": {
    type: bool,
    scope: "netns",
    compare: "exact",
    minKernel: "2.6",
    description: "Reset cwnd after idle: 0 keeps it warm.",
  },
  "net.ipv4.tcp_keepalive_time": {
    type: int(1, 32767),
    scope: "netns",
    compare: "at-most",
    kubeletSafeSince: "1.29",
    unit: "seconds",
    minKernel: "2.6",
    description: "Idle time before the first keepalive probe.",
  },
  "net.ipv4.tcp_keepalive_intvl": {
    type: int(1, 32767),
    scope: "netns",
    compare: "at-most",
    kubeletSafeSince: "1.29",
    unit: "seconds",
    minKernel: "2.6",
    description: "Interval between keepalive probes.",
  },
  "net.ipv4.tcp_keepalive_probes": {
    type: int(1, 127),
    scope: "netns",
    compare: "at-most",
    kubeletSafeSince: "1.29",
    minKernel: "2.6",
    description: "Unanswered probes before a connection is dropped.",
  },
  "net.core.optmem_max": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-least",
    unit: "bytes",
    minKernel: "2.6",
    description: "Ancillary buffer per socket.",
  },
  "net.ipv4.tcp_max_tw_buckets": {
    type: int(0, INT_MAX),
    scope: "netns",
    compare: "at-least",
    minKernel: "2.6",
    description: "TIME_WAIT sockets held before the kernel destroys them early.",
  },
  "net.ipv4.tcp_notsent_lowat": {
    type: int(1, UINT_MAX),
    scope: "netns",
    compare: "at-most",
    unit: "bytes",
    minKernel: "3.12",
    description: "Unsent bytes above which a socket stops being writable (less bufferbloat).",
  },
  // --- congestion control and queueing (seed 001, throughput preset) ---
  "net.ipv4.tcp_congestion_control": {
    type: { kind: "word", words: CONGESTION_CONTROLS },
    scope: "netns",
    compare: "exact",
    minKernel: "2.6",
    description: "Default congestion control; bbr needs tcp_bbr (4.9+), and a namespace may only pick algorithms the host allows.",
  },
  "net.core.default_qdisc": {
    type: { kind: "word", words: QDISCS },
    scope: "host",
    compare: "exact",
    minKernel: "3.12",
    description: "Qdisc attached to new interfaces; fq pairs with bbr.",
  },
  "net.ipv4.tcp_timestamps": {
    type: int(0, 2),
    scope: "netns",
    compare: "exact",
    minKernel: "2.6",
    description: "RFC 7323 timestamps (needed by tcp_tw_reuse).",
  },
  "net.ipv4.tcp_sack": { type: bool, scope: "netns", compare: "exact", minKernel: "2.6", description: "Selective acknowledgements." },
  "net.ipv4.tcp_dsack": { type: bool, scope: "netns", compare: "exact", minKernel: "2.6", description: "Duplicate SACKs." },
  "net.ipv4.tcp_window_scaling": { type: bool, scope: "netns", compare: "exact", minKernel: "2.6", description: "Windows above 64 KiB." },
  "net.ipv4.tcp_mtu_probing": {
    type: int(0, 2),
    scope: "netns",
    compare: "exact",
    minKernel: "2.6",
    description: "Packetization-layer path MTU discovery.",
  },
  "net.ipv4.tcp_syncookies": {
    type: int(0, 2),
    scope: "netns",
    compare: "exact",
    kubeletSafeSince: "1.22",
    minKernel: "2.6",
    description: "SYN cookies when the SYN queue overflows.",
  },
  "net.mptcp.enabled": { type: bool, scope: "netns", compare: "exact", minKernel: "5.6", description: "Allow MPTCP sockets." },
  "net.core.rmem_default": {
    type: int(1, INT_MAX),
    scope: "netns-readonly",
    compare: "at-least",
    unit: "bytes",
    minKernel: "2.6",
    description: "Default receive buffer of non-TCP sockets.",
  },
  "net.core.wmem_default": {
    type: int(1, INT_MAX),
    scope: "netns-readonly",
    compare: "at-least",
    unit: "bytes",
    minKernel: "2.6",
    description: "Default send buffer of non-TCP sockets.",
  },
  "net.ipv4.tcp_mem": {
    type: tuple(3, 1, Number.MAX_SAFE_INTEGER),
    scope: "host",
    compare: "at-least",
    unit: "pages",
    minKernel: "2.6",
    description: "System-wide TCP memory: low pressure high, in pages.",
  },
  "net.ipv4.ip_local_reserved_ports": {
    type: { kind: "portlist" },
    scope: "netns",
    compare: "exact",
    kubeletSafeSince: "1.27",
    minKernel: "2.6",
    description: "Ports never picked as ephemeral source ports.",
  },
  "net.ipv4.ip_forward": { type: bool, scope: "netns", compare: "exact", minKernel: "2.6", description: "Route between interfaces." },
  "net.ipv4.ip_unprivileged_port_start": {
    type: int(0, 65536),
    scope: "netns",
    compare: "exact",
    kubeletSafeSince: "1.22",
    minKernel: "4.11",
    description: "First port an unprivileged process may bind.",
  },
  // --- softirq, RFS, busy polling (seed 002, latency preset) ---
  "net.core.netdev_budget": {
    type: int(1, INT_MAX),
    scope: "host",
    compare: "at-least",
    unit: "packets",
    minKernel: "2.6",
    description: "Packets one NAPI softirq run may process.",
  },
  "net.core.netdev_budget_usecs": {
    type: int(1, INT_MAX),
    scope: "host",
    compare: "at-least",
    unit: "microseconds",
    minKernel: "4.12",
    description: "Time one NAPI softirq run may take.",
  },
  "net.core.rps_sock_flow_entries": {
    type: int(0, INT_MAX),
    scope: "host",
    compare: "at-least",
    minKernel: "2.6",
    description: "RFS global flow table size (rounded up to a power of two).",
  },
  "net.core.busy_poll": {
    type: int(0, INT_MAX),
    scope: "host",
    compare: "exact",
    unit: "microseconds",
    minKernel: "3.11",
    description: "Busy-poll time for poll/select.",
  },
  "net.core.busy_read": {
    type: int(0, INT_MAX),
    scope: "host",
    compare: "exact",
    unit: "microseconds",
    minKernel: "3.11",
    description: "Busy-poll time for blocking reads.",
  },
  // --- file descriptors and memory (seeds 003, 004) ---
  "fs.file-max": {
    type: int(1, Number.MAX_SAFE_INTEGER),
    scope: "host",
    compare: "at-least",
    minKernel: "2.6",
    description: "System-wide open file limit.",
  },
  "fs.nr_open": {
    type: int(1024, 1073741816),
    scope: "host",
    compare: "at-least",
    minKernel: "2.6",
    description: "Ceiling for any process's RLIMIT_NOFILE.",
  },
  "vm.nr_hugepages": {
    type: int(0, INT_MAX),
    scope: "host",
    compare: "at-least",
    unit: "2 MiB pages",
    minKernel: "2.6",
    description: "Persistent huge pages of the default size.",
  },
  // --- connection tracking (seeds 001, 002) ---
  "net.netfilter.nf_conntrack_max": {
    type: int(1, INT_MAX),
    scope: "netns-readonly",
    compare: "at-least",
    module: "nf_conntrack",
    minKernel: "2.6",
    description: "Tracked connections before new ones are dropped.",
  },
  "net.netfilter.nf_conntrack_tcp_timeout_established": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-most",
    module: "nf_conntrack",
    unit: "seconds",
    minKernel: "2.6",
    description: "Tracking lifetime of an established TCP flow (default 5 days).",
  },
  "net.netfilter.nf_conntrack_tcp_timeout_time_wait": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-most",
    module: "nf_conntrack",
    unit: "seconds",
    minKernel: "2.6",
    description: "Tracking lifetime in TIME_WAIT.",
  },
  "net.netfilter.nf_conntrack_tcp_timeout_close_wait": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-most",
    module: "nf_conntrack",
    unit: "seconds",
    minKernel: "2.6",
    description: "Tracking lifetime in CLOSE_WAIT.",
  },
  "net.netfilter.nf_conntrack_tcp_timeout_fin_wait": {
    type: int(1, INT_MAX),
    scope: "netns",
    compare: "at-most",
    module: "nf_conntrack",
    unit: "seconds",
    minKernel: "2.6",
    description: "Tracking lifetime in FIN_WAIT.",
  },
};

/** Bottlerocket's sysctl key grammar. */
const KEY_RE = /^[a-zA-Z0-9./_-]{1,128}$/;

/** Why a sysctl key is unacceptable, or undefined when it passes the grammar. */
export function keyGrammarProblem(key: string): string | undefined {
  if (!KEY_RE.test(key)) return "a key of 1-128 characters from [a-zA-Z0-9./_-]";
  if (key.includes("..")) return 'a key without ".."';
  if (key.startsWith(".") || key.startsWith("/")) return 'a key not starting with "." or "/"';
  return undefined;
}

/** Module a congestion control algorithm needs, where it is not built in everywhere. */
export function moduleForValue(key: string, value: string): string | undefined {
  if (key === "net.ipv4.tcp_congestion_control" && value !== "cubic" && value !== "reno") return `tcp_${value}`;
  if (key === "net.core.default_qdisc" && value !== "pfifo_fast" && value !== "noqueue") return `sch_${value}`;
  return SYSCTL_CATALOG[key]?.module;
}
