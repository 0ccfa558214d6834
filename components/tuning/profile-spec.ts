/**
 * The spec of a tuning profile: the one place its shape, defaults, bounds and descriptions
 * are written. checkProfile (profile.ts) resolves a profile through it; the stack loader,
 * the components and the generated reference take it from here.
 */
import { z } from "zod";
import { grammar } from "../validation";

/** Huge pages beyond this (in GiB) are a typo on any machine edgetune targets, not a plan. */
const HUGEPAGES_CAP_GIB = 1024;

/** The built-in presets (presets.ts holds their contents). */
export const PRESET_NAMES = ["baseline", "recommended", "throughput", "latency"] as const;

const positiveInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const sysctlValue = z.union([z.number(), z.string(), z.array(z.number())]);
const compareEnum = z.enum(["exact", "at-least", "at-most"]);
const scopeEnum = z.enum(["netns", "netns-readonly", "host"]);
const port = z.number().int().min(1).max(65535);

export const OFFLOAD_FEATURES = ["tso", "gso", "gro", "lro", "rxChecksum", "txChecksum"] as const;
export const FLOW_TYPES = ["tcp4", "tcp6", "udp4", "udp6"] as const;

/**
 * irqbalance rewrites IRQ affinity every 10 s, so pinned NIC IRQs need it banned from those CPUs or stopped.
 * ban: IRQBALANCE_BANNED_CPULIST in /etc/default or /etc/sysconfig irqbalance, then a restart if it runs;
 * stop: stop and disable it (restore re-enables what was stopped); leave: do nothing.
 */
export const IRQBALANCE_MODES = ["ban", "stop", "leave"] as const;
const irqbalanceEnum = z.enum(IRQBALANCE_MODES);

export const nicSpec = z.strictObject({
  match: z.string().describe("Interface name or shell glob (`eth0`, `ens*`, `veth-p?`)."),
  offloads: z
    .strictObject(
      Object.fromEntries(OFFLOAD_FEATURES.map((f) => [f, z.boolean()])) as Record<(typeof OFFLOAD_FEATURES)[number], z.ZodBoolean>,
    )
    .partial()
    .optional()
    .describe("ethtool -K features: true on, false off."),
  channels: z
    .strictObject({
      combined: z.number().int().min(1).max(4096),
      rx: z.number().int().min(1).max(4096),
      tx: z.number().int().min(1).max(4096),
    })
    .partial()
    .optional()
    .describe("ethtool -L queue counts."),
  rings: z
    .strictObject({ rx: z.number().int().min(1).max(65536), tx: z.number().int().min(1).max(65536) })
    .partial()
    .optional()
    .describe("ethtool -G ring sizes, descriptors."),
  rss: z
    .strictObject({ equal: z.number().int().min(1).max(4096).optional(), weights: z.array(nonNegInt).min(1).max(4096).optional() })
    .optional()
    .describe("RSS indirection table (ethtool -X): spread over the first `equal` queues, or by `weights` per queue."),
  rxFlowHash: z
    .strictObject(Object.fromEntries(FLOW_TYPES.map((t) => [t, z.string()])) as Record<(typeof FLOW_TYPES)[number], z.ZodString>)
    .partial()
    .optional()
    .describe('ethtool -N rx-flow-hash fields per flow type, in ethtool\'s letters (e.g. "sdfn").'),
  rps: z
    .strictObject({
      cpus: z.string().describe('cpulist, e.g. "0-3"'),
      flowEntriesPerQueue: z
        .number()
        .int()
        .min(0)
        .max(1 << 30)
        .optional()
        .describe("RFS flow entries per rx queue (rps_flow_cnt)."),
    })
    .optional()
    .describe("Receive Packet Steering: CPUs for every rx queue, and RFS flow entries per queue."),
  xps: z
    .union([z.strictObject({ mode: z.literal("spread") }), z.strictObject({ cpus: z.string() })])
    .optional()
    .describe(
      'Transmit Packet Steering: `{ mode: spread }` maps tx queue i to CPU i mod nCPU; `{ cpus: "0-3" }` one cpulist for every queue.',
    ),
  irqAffinity: z
    .strictObject({
      cpus: z.string(),
      spread: z.boolean().default(true).describe("Round-robin the IRQs over `cpus`; false: every IRQ on all of them."),
    })
    .optional()
    .describe("IRQ affinity of the NIC's interrupts."),
  irqbalanceBannedCpus: z
    .string()
    .optional()
    .describe("CPUs irqbalance must not route IRQs to (IRQBALANCE_BANNED_CPULIST) when irqbalance is `ban`. Default: irqAffinity.cpus."),
  irqbalance: irqbalanceEnum
    .optional()
    .describe("What irqbalance does about this NIC's IRQ affinity; overrides the profile-level `irqbalance`."),
  coalesce: z
    .strictObject({
      adaptiveRx: z.boolean().describe("adaptive-rx: the driver picks rx coalescing from the traffic."),
      adaptiveTx: z.boolean().describe("adaptive-tx."),
      rxUsecs: z.number().int().min(0).max(100000).describe("rx-usecs: microseconds to delay an rx interrupt."),
      txUsecs: z.number().int().min(0).max(100000).describe("tx-usecs."),
      rxFrames: z.number().int().min(0).max(65536).describe("rx-frames: frames to gather before an rx interrupt."),
      txFrames: z.number().int().min(0).max(65536).describe("tx-frames."),
    })
    .partial()
    .optional()
    .describe("ethtool -C interrupt coalescing; recorded and restored like rings. Fewer interrupts per packet cost latency."),
});

export const portPlanSpec = z.strictObject({
  kubernetesNodePorts: z
    .boolean()
    .default(false)
    .describe(
      "Reserve the Kubernetes NodePort range. A stack refuses a profile on Kubernetes nodes whose ip_local_port_range overlaps the NodePorts unreserved.",
    ),
  nodePortRange: z
    .string()
    .default("30000-32767")
    .describe('The cluster\'s NodePort range as "first-last" (kube-apiserver --service-node-port-range).'),
  kubelet: z.boolean().default(false).describe("Reserve kubelet's port 10250 and kube-proxy's health port 10256."),
  listenPorts: z.array(port).default([]).describe("The proxy's listen ports."),
  reserved: z
    .array(z.union([z.number().int(), z.string()]))
    .default([])
    .describe('Further ports or "first-last" ranges.'),
  minEphemeralPorts: z
    .number()
    .int()
    .min(1)
    .max(65535)
    .default(16384)
    .describe("Fewest ephemeral ports the range must leave after reservations."),
});

export const tuningProfileSchema = z.strictObject({
  extends: z
    .enum(PRESET_NAMES)
    .optional()
    .describe("Preset this profile starts from (baseline, recommended, throughput, latency); its own fields override the preset's."),
  description: grammar.text(200).optional().describe("Free text carried into the rendered files' headers."),
  sysctls: z
    .record(z.string(), sysctlValue.nullable())
    .optional()
    .describe(
      'Known kernel parameters (the sysctl catalog); `null` removes one inherited from the preset. Tuples as "4096 87380 16777216" or [4096, 87380, 16777216].',
    ),
  compare: z.record(z.string(), compareEnum).optional().describe("Per-key override of the catalog's comparison: exact, at-least, at-most."),
  extraSysctls: z
    .record(
      z.string(),
      z.strictObject({
        value: sysctlValue,
        compare: compareEnum.optional().describe("Default: the catalog's for a catalog key, else exact."),
        scope: scopeEnum
          .optional()
          .describe(
            "Default: the catalog's for a catalog key, else host (the safe assumption: not settable from a pod's network namespace).",
          ),
      }),
    )
    .optional()
    .describe("Keys outside the catalog; they must still pass the key and value grammars."),
  limits: z
    .strictObject({
      nofileSoft: z.number().int().min(1024).describe("Soft RLIMIT_NOFILE. Default: nofileHard."),
      nofileHard: z
        .number()
        .int()
        .min(1024)
        .describe(
          "Hard RLIMIT_NOFILE; must not exceed fs.nr_open (the profile's, else the kernel default 1048576) nor fs.file-max when the profile sets it.",
        ),
      nproc: positiveInt.describe("RLIMIT_NPROC (soft and hard)."),
    })
    .partial()
    .optional()
    .describe("Per-process limits written to limits.d and a systemd manager drop-in."),
  hugepages: z
    .strictObject({
      pages2MiB: grammar
        .int(0, HUGEPAGES_CAP_GIB * 512)
        .describe(`2 MiB pages reserved at runtime (vm.nr_hugepages); at most ${HUGEPAGES_CAP_GIB} GiB worth.`),
      pages1GiB: grammar
        .int(0, HUGEPAGES_CAP_GIB)
        .describe(`1 GiB pages: kernel boot arguments, needs a reboot; at most ${HUGEPAGES_CAP_GIB}.`),
      nodeMemoryGiB: z
        .number()
        .positive()
        .optional()
        .describe("The nodes' memory, GiB: when given, huge pages may take at most 90 % of it (the kernel and the proxy need the rest)."),
    })
    .partial()
    .superRefine((h, ctx) => {
      const gib = (h.pages2MiB ?? 0) / 512 + (h.pages1GiB ?? 0);
      if (h.nodeMemoryGiB !== undefined && gib > h.nodeMemoryGiB * 0.9) {
        ctx.addIssue({
          code: "custom",
          path: [h.pages1GiB ? "pages1GiB" : "pages2MiB"],
          message: `${gib} GiB of huge pages on nodes of ${h.nodeMemoryGiB} GiB; allowed: at most 90 % of nodeMemoryGiB (the kernel and the proxy need the rest)`,
        });
      }
    })
    .optional()
    .describe("Huge pages."),
  nics: z.array(nicSpec).optional().describe("NIC settings, one entry per interface name or glob."),
  irqbalance: irqbalanceEnum
    .optional()
    .describe(
      "irqbalance for every NIC without its own `irqbalance`: ban (IRQBALANCE_BANNED_CPULIST = the NICs' IRQ CPUs, restart if running), stop (stop and disable; restore re-enables), leave. Default: ban when a NIC sets irqAffinity, else leave.",
    ),
  conntrack: z
    .strictObject({
      max: positiveInt.optional().describe("net.netfilter.nf_conntrack_max"),
      hashsize: positiveInt.optional().describe("nf_conntrack hash table buckets (module parameter hashsize); at most conntrack.max."),
      timeouts: z
        .strictObject({
          tcpEstablishedSeconds: positiveInt,
          tcpTimeWaitSeconds: positiveInt,
          tcpCloseWaitSeconds: positiveInt,
          tcpFinWaitSeconds: positiveInt,
        })
        .partial()
        .optional()
        .describe("Tracking lifetimes, seconds."),
      notrackPorts: z.array(port).default([]).describe("TCP ports whose traffic bypasses connection tracking (raw-table NOTRACK)."),
      rulesFormat: z.enum(["nftables", "iptables"]).default("nftables").describe("Rule syntax to render."),
    })
    .superRefine((c, ctx) => {
      // One bucket per tracked entry is already generous: more only costs memory.
      if (c.max !== undefined && c.hashsize !== undefined && c.hashsize > c.max) {
        ctx.addIssue({
          code: "custom",
          path: ["hashsize"],
          message: `got ${c.hashsize} buckets for a table of ${c.max} entries (max); allowed: at most max — more buckets than entries only cost memory (the kernel sizes it at max/4)`,
        });
      }
    })
    .prefault({})
    .describe("Connection tracking sizing and NOTRACK rules."),
  ports: portPlanSpec.optional().describe("Ephemeral port planning: ports that must never be picked as source ports."),
  buffers: z
    .strictObject({
      bdp: z
        .strictObject({
          gbps: z.number().positive().max(1600).describe("Path bandwidth one flow should fill, Gbit/s."),
          rttMs: z.number().positive().max(10000).describe("Round-trip time of that path, milliseconds."),
          headroom: z.number().min(1).max(16).default(2).describe("Multiplier over the bandwidth-delay product (kernel overhead, bursts)."),
        })
        .optional()
        .describe(
          "Size socket buffers from the bandwidth-delay product (gbps x rttMs / 8 x headroom, rounded up to 4 KiB): sets the max of net.ipv4.tcp_rmem/tcp_wmem and net.core.rmem_max/wmem_max, replacing the preset's values. A key the profile sets itself under sysctls or extraSysctls wins over the derived one. rmem_max/wmem_max are host-wide (read-only in a pod's network namespace). Default: unset, buffers stay as the preset and sysctls say.",
        ),
    })
    .optional()
    .describe("Socket buffer sizing."),
});

/** A profile as a user writes it. */
export type TuningProfile = z.input<typeof tuningProfileSchema>;
export type PresetName = NonNullable<TuningProfile["extends"]>;
export type SysctlInput = z.input<typeof sysctlValue>;
export type ExtraSysctl = NonNullable<TuningProfile["extraSysctls"]>[string];
export type LimitsInput = NonNullable<TuningProfile["limits"]>;
export type HugepagesInput = NonNullable<TuningProfile["hugepages"]>;
export type NicTuning = z.input<typeof nicSpec>;
export type ConntrackInput = NonNullable<TuningProfile["conntrack"]>;
export type PortPlanInput = z.input<typeof portPlanSpec>;
export type BuffersInput = NonNullable<TuningProfile["buffers"]>;
export type ResolvedPortPlanInput = z.output<typeof portPlanSpec>;
export type OffloadFeature = (typeof OFFLOAD_FEATURES)[number];
export type FlowType = (typeof FLOW_TYPES)[number];
export type IrqbalanceMode = (typeof IRQBALANCE_MODES)[number];
