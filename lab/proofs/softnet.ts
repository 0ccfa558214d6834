/**
 * softnet: many small UDP flows into the proxy namespace until a CPU's backlog queue (the one
 * netif_rx and RPS enqueue to, bounded by net.core.netdev_max_backlog) overflows, counted in
 * /proc/net/softnet_stat's second column. A veth delivers through that queue, but a sender
 * that enqueues also processes its packets at once (softirq at bh-enable): the queue only
 * grows when another CPU enqueues faster than its owner drains it. So the scenario makes that
 * happen as on a real node: RPS steers the proxy veth's packets to CPU 0, the senders run on
 * CPU 1, and each new flow costs CPU 0 a conntrack entry (an nftables `ct state new` rule,
 * as any node with kube-proxy or a firewall has).
 *
 * netdev_max_backlog exists only in the host's namespace: for this run the scenario sets the
 * host's value to the profile's (the kernel default, 1000, for a profile that does not set
 * it) and puts the previous value back afterwards, also when the run fails.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assessValidity, RESULT_SCHEMA_VERSION, type BenchResult } from "../../components/bench/result";
import { ProofOutputError } from "./proof-util";
import type { ProofContext, ProofScenario } from "./types";

export interface SoftnetCpu {
  processed: number;
  dropped: number;
  timeSqueeze: number;
}

/** /proc/net/softnet_stat: one line per CPU of hex columns; processed, dropped, time_squeeze are the first three. */
export function parseSoftnetStat(text: string): SoftnetCpu[] {
  const lines = text.split("\n").filter((l) => l.trim());
  if (!lines.length) throw new ProofOutputError("softnet_stat", "no CPU lines");
  return lines.map((line, i) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || !f.every((x) => /^[0-9a-f]+$/i.test(x)))
      throw new ProofOutputError("softnet_stat", `line ${i + 1} is not hex columns: ${JSON.stringify(line.slice(0, 60))}`);
    return { processed: parseInt(f[0], 16), dropped: parseInt(f[1], 16), timeSqueeze: parseInt(f[2], 16) };
  });
}

/** after − before summed over CPUs; a counter that went backwards (u32 wrap) counts from 0. */
export function softnetDelta(before: readonly SoftnetCpu[], after: readonly SoftnetCpu[]): SoftnetCpu {
  const d = { processed: 0, dropped: 0, timeSqueeze: 0 };
  after.forEach((a, i) => {
    const b = before[i] ?? { processed: 0, dropped: 0, timeSqueeze: 0 };
    for (const k of ["processed", "dropped", "timeSqueeze"] as const) d[k] += a[k] >= b[k] ? a[k] - b[k] : a[k];
  });
  return d;
}

const BACKLOG_PATH = "/proc/sys/net/core/netdev_max_backlog";
/** The kernel's default netdev_max_backlog: what a profile that does not set it runs with. */
export const KERNEL_NETDEV_MAX_BACKLOG = 1000;

/** conntrack for every new flow in the proxy namespace: per-flow work on the CPU that drains the backlog. */
const NFT_RULES = `table inet edgetune_softnet {
  chain pre {
    type filter hook prerouting priority 0;
    ct state new counter
  }
}
`;

export const softnet: ProofScenario = {
  name: "softnet",
  summary: "small UDP flows steered to one CPU's backlog until it overflows: softnet_stat drops at the profile's netdev_max_backlog",
  shows: "per-CPU backlog drops (softnet_stat column 2) at the default netdev_max_backlog (1000) against the tuned value",
  settings: ["net.core.netdev_max_backlog"],
  inQuick: true,
  tools: { hping3: "hping3", nft: "nftables", taskset: "util-linux" },
  run(ctx: ProofContext): BenchResult[] {
    const wanted = ctx.profile.sysctls.find((s) => s.key === "net.core.netdev_max_backlog")?.value ?? String(KERNEL_NETDEV_MAX_BACKLOG);
    const seconds = ctx.durationSeconds ?? (ctx.quick ? 3 : 8);
    const senders = 2;
    const previous = readFileSync(BACKLOG_PATH, "utf8").trim();
    const proxyNs = ctx.a.namespaces.proxy;
    const sh = (ns: string, script: string, ...args: string[]) => {
      const r = ctx.exec(ns, ["sh", "-c", script, "sh", ...args], { timeoutMs: (seconds + 10) * 1000 });
      if (r.code !== 0) throw new ProofOutputError("softnet", `${script.slice(0, 60)}… exited ${r.code}: ${r.stderr.trim().slice(-300)}`);
      return r;
    };
    try {
      if (previous !== wanted) writeFileSync(BACKLOG_PATH, wanted);
      const set = readFileSync(BACKLOG_PATH, "utf8").trim();
      if (set !== wanted) throw new ProofOutputError("softnet", `host netdev_max_backlog is ${set} after writing ${wanted}`);
      ctx.progress(
        `lab: softnet (${ctx.label}): host net.core.netdev_max_backlog ${wanted} for this run (was ${previous}, restored after)`,
      );
      // RPS to CPU 0 on every receive queue of the proxy's client-side veth.
      sh(proxyNs, 'for q in /sys/class/net/et-pc/queues/rx-*/rps_cpus; do echo 1 > "$q" || exit 1; done');
      const nft = ctx.exec(proxyNs, ["nft", "-f", "-"], { input: NFT_RULES, timeoutMs: 10_000 });
      if (nft.code !== 0) throw new ProofOutputError("softnet", `nft: ${nft.stderr.trim()}`);
      const beforeText = readFileSync("/proc/net/softnet_stat", "utf8");
      const before = parseSoftnetStat(beforeText);
      const t0 = Date.now();
      // Each sender a UDP flood of 16-byte payloads from an incrementing source port (a new flow
      // per packet), on CPU 1, stopped by timeout: bounded whatever hping3 does.
      sh(
        ctx.a.namespaces.client,
        'n=$1 s=$2 dst=$3; i=0; while [ "$i" -lt "$n" ]; do timeout -s INT "$s" taskset -c 1 hping3 --udp --flood -q -d 16 -p $((9000 + i)) "$dst" >/dev/null 2>&1 & i=$((i + 1)); done; wait',
        String(senders),
        String(seconds),
        ctx.a.proxy,
      );
      const elapsed = (Date.now() - t0) / 1000;
      const afterText = readFileSync("/proc/net/softnet_stat", "utf8");
      writeFileSync(join(ctx.labDir, `softnet-${ctx.label}-${ctx.run}.out`), `${beforeText}---\n${afterText}`);
      const d = softnetDelta(before, parseSoftnetStat(afterText));
      const measures = {
        netdevMaxBacklog: Number(wanted),
        softnetDrops: d.dropped,
        softnetProcessed: d.processed,
        softnetTimeSqueeze: d.timeSqueeze,
        senders,
        floodSeconds: seconds,
      };
      return [
        {
          schemaVersion: RESULT_SCHEMA_VERSION,
          scenario: "softnet",
          profile: ctx.label,
          run: ctx.run,
          tool: "lab-driver",
          durationSeconds: Math.max(0.001, elapsed),
          concurrency: senders,
          target: `proxy ${ctx.a.proxy} udp`,
          errors: {},
          validity: assessValidity({}, d.processed),
          measures,
        },
      ];
    } finally {
      if (readFileSync(BACKLOG_PATH, "utf8").trim() !== previous) writeFileSync(BACKLOG_PATH, previous);
    }
  },
};
