import type { PresetName, TuningProfile } from "./profile-spec";
export { PRESET_NAMES } from "./profile-spec";

/**
 * NovaEdge's recommended kernel parameters (seed 000), exactly as published.
 * Note its ip_local_port_range 1024 65535 overlaps the Kubernetes NodePort
 * range and kubelet's port; profiles for Kubernetes nodes should add
 * `ports: { kubernetesNodePorts: true, kubelet: true }` so those ports are
 * reserved (see `planPorts`).
 */
const NOVAEDGE: Record<string, string | number> = {
  "net.core.somaxconn": 65535,
  "net.core.netdev_max_backlog": 65535,
  "net.ipv4.tcp_max_syn_backlog": 65535,
  "net.core.rmem_max": 16777216,
  "net.core.wmem_max": 16777216,
  "net.ipv4.tcp_rmem": "4096 87380 16777216",
  "net.ipv4.tcp_wmem": "4096 65536 16777216",
  "net.ipv4.tcp_fin_timeout": 10,
  "net.ipv4.tcp_tw_reuse": 1,
  "net.ipv4.ip_local_port_range": "1024 65535",
  "net.ipv4.tcp_fastopen": 3,
  "net.ipv4.tcp_slow_start_after_idle": 0,
  "net.ipv4.tcp_keepalive_time": 60,
  "net.ipv4.tcp_keepalive_intvl": 10,
  "net.ipv4.tcp_keepalive_probes": 6,
  "net.core.optmem_max": 65536,
  "net.ipv4.tcp_max_tw_buckets": 2000000,
  "net.ipv4.tcp_notsent_lowat": 16384,
};

export const PRESETS: Readonly<Record<PresetName, TuningProfile>> = {
  /** Changes nothing: the control in an A/B benchmark. */
  baseline: { description: "baseline: no changes (A/B control)" },
  /** The NovaEdge table, exactly. */
  recommended: { description: "recommended: NovaEdge production proxy table", sysctls: { ...NOVAEDGE } },
  /**
   * Large buffers for high bandwidth-delay paths (MarchProxy guide, seed 001),
   * bbr with fq, and file limits for a million connections.
   */
  throughput: {
    description: "throughput: large buffers, bbr + fq, high file limits",
    sysctls: {
      ...NOVAEDGE,
      "net.core.rmem_max": 134217728,
      "net.core.wmem_max": 134217728,
      "net.ipv4.tcp_rmem": "4096 87380 67108864",
      "net.ipv4.tcp_wmem": "4096 65536 67108864",
      "net.ipv4.tcp_notsent_lowat": 131072,
      "net.ipv4.tcp_congestion_control": "bbr",
      "net.core.default_qdisc": "fq",
      "net.ipv4.tcp_mtu_probing": 1,
      "net.ipv4.tcp_window_scaling": 1,
      "net.ipv4.tcp_sack": 1,
      "net.ipv4.tcp_timestamps": 1,
      "fs.file-max": 2097152,
      "fs.nr_open": 2097152,
    },
    limits: { nofileSoft: 1048576, nofileHard: 1048576 },
  },
  /** Low unsent-data watermark, busy polling and TCP Fast Open for request/response latency. */
  latency: {
    description: "latency: low notsent_lowat, busy polling, TFO",
    sysctls: {
      ...NOVAEDGE,
      "net.ipv4.tcp_notsent_lowat": 16384,
      "net.core.busy_poll": 50,
      "net.core.busy_read": 50,
      "net.ipv4.tcp_fastopen": 3,
      "net.ipv4.tcp_slow_start_after_idle": 0,
    },
  },
};
