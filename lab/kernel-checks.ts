/**
 * What this kernel can emulate, checked rather than assumed: in a scratch namespace (a veth
 * pair inside it, no host device touched), `tc qdisc add ... netem` and `... fq`, and the
 * defaults a fresh namespace has for keys a preset sets to the kernel's own value. The settings
 * table (components/lab/settings-table.ts) states its reasons from this. Needs root; run under the
 * lab lock.
 */
import { spawnSync } from "node:child_process";
import type { KernelChecks, QdiscProbe } from "../components/lab/settings-table";

function run(argv: string[]): { code: number; out: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", timeout: 10000, killSignal: "SIGKILL" });
  return { code: r.status ?? 124, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

/** Keys whose fresh-namespace value the table cites (the preset sets them to what the kernel already has, or a limit it never reaches). */
export const NAMESPACE_DEFAULT_KEYS = [
  "net.ipv4.tcp_window_scaling",
  "net.ipv4.tcp_sack",
  "net.ipv4.tcp_timestamps",
  "net.ipv4.tcp_max_tw_buckets",
  "net.ipv4.tcp_congestion_control",
  "net.ipv4.tcp_mtu_probing",
];

export function checkKernel(): KernelChecks {
  const ns = `edgetune-kcheck-${process.pid}`;
  const made = run(["ip", "netns", "add", ns]);
  if (made.code !== 0) throw new Error(`kernel check: ip netns add ${ns} failed: ${made.out}`);
  try {
    const link = run(["ip", "-n", ns, "link", "add", "kc0", "type", "veth", "peer", "name", "kc1"]);
    if (link.code !== 0) throw new Error(`kernel check: veth in ${ns} failed: ${link.out}`);
    run(["ip", "-n", ns, "link", "set", "kc0", "up"]);
    const probe = (kind: string, args: string[]): QdiscProbe => {
      const command = ["tc", "qdisc", "add", "dev", "kc0", "root", kind, ...args];
      const r = run(["ip", "netns", "exec", ns, ...command]);
      if (r.code === 0) run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "kc0", "root"]);
      return { available: r.code === 0, command: command.join(" "), output: r.out };
    };
    const qdiscs = { netem: probe("netem", ["delay", "10ms"]), fq: probe("fq", []), fq_codel: probe("fq_codel", []) };
    const namespaceDefaults: Record<string, string> = {};
    for (const key of NAMESPACE_DEFAULT_KEYS) {
      const r = run(["ip", "netns", "exec", ns, "cat", `/proc/sys/${key.replace(/\./g, "/")}`]);
      if (r.code === 0) namespaceDefaults[key] = r.out;
    }
    return { kernel: run(["uname", "-r"]).out, qdiscs, namespaceDefaults };
  } finally {
    run(["ip", "netns", "del", ns]);
  }
}
