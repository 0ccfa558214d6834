import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { renderTuneSh, resolveProfile } from "../../components";
import { FakeTree } from "../helpers/fake-tree";
import { describeSystem, run } from "../helpers/system";

const FAKE_ETHTOOL = join(__dirname, "..", "fixtures", "fake-ethtool.sh");
const trees: FakeTree[] = [];
afterEach(() => trees.splice(0).forEach((t) => t.destroy()));

/** A fake node with one 2-queue NIC "eth0", two IRQs and 2 CPUs. */
function fakeNode() {
  const tree = new FakeTree();
  trees.push(tree);
  const sys = tree.env.SYS_ROOT;
  for (const q of ["rx-0", "rx-1"]) {
    mkdirSync(join(sys, "class/net/eth0/queues", q), { recursive: true });
    writeFileSync(join(sys, "class/net/eth0/queues", q, "rps_cpus"), "00000000\n");
    writeFileSync(join(sys, "class/net/eth0/queues", q, "rps_flow_cnt"), "0\n");
  }
  for (const q of ["tx-0", "tx-1"]) {
    mkdirSync(join(sys, "class/net/eth0/queues", q), { recursive: true });
    writeFileSync(join(sys, "class/net/eth0/queues", q, "xps_cpus"), "00000000\n");
  }
  mkdirSync(join(sys, "devices/system/cpu"), { recursive: true });
  writeFileSync(join(sys, "devices/system/cpu/possible"), "0-1\n");
  const proc = tree.env.PROC_ROOT;
  writeFileSync(
    join(proc, "interrupts"),
    "           CPU0       CPU1\n 24:        10          0   PCI-MSI 1-edge      eth0-TxRx-0\n 25:         0         12   PCI-MSI 2-edge      eth0-TxRx-1\n 30:         1          1   PCI-MSI 3-edge      nvme0q0\n",
  );
  for (const irq of ["24", "25", "30"]) {
    mkdirSync(join(proc, "irq", irq), { recursive: true });
    writeFileSync(join(proc, "irq", irq, "smp_affinity_list"), "0-1\n");
  }
  mkdirSync(join(sys, "module/nf_conntrack/parameters"), { recursive: true });
  writeFileSync(join(sys, "module/nf_conntrack/parameters/hashsize"), "65536\n");
  const ethState = join(tree.root, "ethtool");
  mkdirSync(ethState);
  const env = { ...process.env, ...tree.env, ETHTOOL: FAKE_ETHTOOL, FAKE_ETHTOOL_STATE: ethState };
  return { tree, env, sys, proc, ethState };
}

const nicProfile = (over: Record<string, unknown> = {}) =>
  resolveProfile("nic", {
    nics: [
      {
        match: "eth*",
        offloads: { tso: true, lro: false, gro: true },
        channels: { combined: 4 },
        rings: { rx: 4096, tx: 1024 },
        rss: { equal: 2 },
        rxFlowHash: { tcp4: "sdfn" },
        rps: { cpus: "1", flowEntriesPerQueue: 2048 },
        xps: { mode: "spread" },
        irqAffinity: { cpus: "0-1", spread: true },
        ...over,
      },
    ],
    sysctls: { "net.core.rps_sock_flow_entries": 32768 },
    conntrack: { hashsize: 262144 },
  });

describeSystem(
  "tune.sh NIC settings through ethtool, sysfs and /proc/irq (fake node)",
  ["sh"],
  () => {
    it("applies every NIC setting, verifies clean, and restores the originals", () => {
      const { env, sys, proc, ethState, tree } = fakeNode();
      const script = join(tree.root, "tune.sh");
      writeFileSync(script, renderTuneSh(nicProfile()));
      const apply = run("sh", [script, "apply"], { env });
      expect(apply.code, apply.stdout).toBe(0);
      for (const line of [
        /^changed\s+offload\s+eth0 lro on -> off$/m,
        /^unchanged\s+offload\s+eth0 tso on$/m,
        /^changed\s+channel\s+eth0 combined 8 -> 4$/m,
        /^changed\s+ring\s+eth0 rx 256 -> 4096$/m,
        /^changed\s+rss\s+eth0 indirection 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 -> 0 1 0 1 0 1/m,
        /^changed\s+flowhash\s+eth0 tcp4 ds -> dfns$/m,
        /^changed\s+rps\s+eth0 rx-1\/rps_cpus 0 -> 2$/m,
        /^changed\s+rfs\s+eth0 rx-0\/rps_flow_cnt 0 -> 2048$/m,
        /^changed\s+xps\s+eth0 tx-1\/xps_cpus 0 -> 2$/m,
        /^changed\s+irq\s+eth0 24 0-1 -> 0$/m,
        /^changed\s+irq\s+eth0 25 0-1 -> 1$/m,
        /^changed\s+conntrack\s+hashsize 65536 -> 262144$/m,
      ])
        expect(apply.stdout).toMatch(line);
      expect(readFileSync(join(proc, "irq/30/smp_affinity_list"), "utf8")).toBe("0-1\n");
      expect(readFileSync(join(ethState, "eth0.hash.tcp4"), "utf8")).toBe("sdfn");
      const verify = run("sh", [script, "verify"], { env });
      expect(verify.code, verify.stdout).toBe(0);

      // Drift is named per setting.
      writeFileSync(join(ethState, "eth0.rx"), "512");
      writeFileSync(join(sys, "class/net/eth0/queues/rx-0/rps_cpus"), "3\n");
      const drift = run("sh", [script, "verify"], { env });
      expect(drift.code).toBe(4);
      expect(drift.stdout).toMatch(/^drift\s+ring\s+eth0 rx live="512" profile="4096"$/m);
      expect(drift.stdout).toMatch(/^drift\s+rps\s+eth0 rx-0\/rps_cpus live="3" profile="2"$/m);

      const restore = run("sh", [script, "restore"], { env });
      expect(restore.code, restore.stdout).toBe(0);
      expect(readFileSync(join(ethState, "eth0.combined"), "utf8")).toBe("8");
      expect(readFileSync(join(ethState, "eth0.large-receive-offload"), "utf8")).toBe("on");
      expect(readFileSync(join(ethState, "eth0.hash.tcp4"), "utf8")).toBe("ds");
      expect(readFileSync(join(proc, "irq/24/smp_affinity_list"), "utf8")).toBe("0-1\n");
      expect(readFileSync(join(sys, "class/net/eth0/queues/tx-1/xps_cpus"), "utf8")).toBe("0\n");
      expect(readFileSync(join(sys, "module/nf_conntrack/parameters/hashsize"), "utf8")).toBe("65536\n");
    });

    it("a mask naming CPUs the node does not have fails at apply time, changing nothing", () => {
      const { env, sys, tree } = fakeNode();
      const script = join(tree.root, "tune.sh");
      writeFileSync(script, renderTuneSh(resolveProfile("big", { nics: [{ match: "eth0", rps: { cpus: "0-7" } }] })));
      const r = run("sh", [script, "apply"], { env });
      expect(r.stdout).toMatch(/^failed\s+rps\s+eth0 \(mask ff names CPUs beyond the 2 this node has\)$/m);
      expect(readFileSync(join(sys, "class/net/eth0/queues/rx-0/rps_cpus"), "utf8")).toBe("00000000\n");
    });

    it("a feature the driver fixed, or a value it rejects, is a failed line; the rest applies", () => {
      const { env, ethState, tree } = fakeNode();
      writeFileSync(join(ethState, "eth0.large-receive-offload"), "off [fixed]");
      const script = join(tree.root, "tune.sh");
      writeFileSync(
        script,
        renderTuneSh(resolveProfile("fixed", { nics: [{ match: "eth0", offloads: { lro: true }, rings: { rx: 8192, tx: 512 } }] })),
      );
      const r = run("sh", [script, "apply"], { env });
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^failed\s+offload\s+eth0 lro \(fixed off \[fixed\] by the driver\)$/m);
      expect(r.stdout).toMatch(/^failed\s+ring\s+eth0 rx wanted "8192", reads "256" \(Invalid argument\)$/m);
      expect(r.stdout).toMatch(/^changed\s+ring\s+eth0 tx 256 -> 512$/m);
      // The rejected change recorded nothing: restore only touches what changed.
      const restore = run("sh", [script, "restore"], { env });
      expect(restore.stdout).not.toMatch(/ring\s+eth0 rx/);
      expect(restore.stdout).toMatch(/^restored\s+ring\s+eth0 tx 256$/m);
    });
  },
  false,
);
