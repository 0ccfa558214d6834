import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { renderTuneSh, resolveProfile } from "../../components";
import { ValidationError } from "../../components/validation";
import { FakeTree } from "../helpers/fake-tree";
import { describeSystem, run } from "../helpers/system";

const FAKE_ETHTOOL = join(__dirname, "..", "fixtures", "fake-ethtool.sh");
const trees: FakeTree[] = [];
afterEach(() => trees.splice(0).forEach((t) => t.destroy()));

// A systemctl that keeps irqbalance's state in files and logs every call.
const FAKE_SYSTEMCTL = `#!/bin/sh
S=$FAKE_SYSTEMCTL_DIR
echo "$*" >>"$S/log"
q=0
[ "$2" = --quiet ] && q=1
case $1 in
  is-active) st=$(cat "$S/active"); [ $q = 1 ] || echo "$st"; [ "$st" = active ] ;;
  is-enabled) st=$(cat "$S/enabled"); echo "$st"; [ "$st" = enabled ] ;;
  try-restart) exit 0 ;;
  disable) echo inactive >"$S/active"; echo disabled >"$S/enabled" ;;
  enable) echo enabled >"$S/enabled" ;;
  start) echo active >"$S/active" ;;
esac
`;

/** A fake node: NIC eth0 with one rx queue, fake ethtool and systemctl, irqbalance in the given state. */
function fakeNode(irqbalance: { active: string; enabled: string } = { active: "active", enabled: "enabled" }) {
  const tree = new FakeTree();
  trees.push(tree);
  mkdirSync(join(tree.env.SYS_ROOT, "class/net/eth0/queues/rx-0"), { recursive: true });
  const bin = join(tree.root, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "systemctl"), FAKE_SYSTEMCTL);
  chmodSync(join(bin, "systemctl"), 0o755);
  const sd = join(tree.root, "systemd");
  mkdirSync(sd);
  writeFileSync(join(sd, "active"), `${irqbalance.active}\n`);
  writeFileSync(join(sd, "enabled"), `${irqbalance.enabled}\n`);
  const ethState = join(tree.root, "ethtool");
  mkdirSync(ethState);
  const env = {
    ...process.env,
    ...tree.env,
    PATH: `${bin}:${process.env.PATH}`,
    ETHTOOL: FAKE_ETHTOOL,
    FAKE_ETHTOOL_STATE: ethState,
    FAKE_ETHTOOL_LOG: join(tree.root, "ethtool.log"),
    FAKE_SYSTEMCTL_DIR: sd,
    EDGETUNE_CHECK_INTERVAL: "0",
  };
  const calls = (f: "ethtool.log" | "systemd/log") => (existsSync(join(tree.root, f)) ? readFileSync(join(tree.root, f), "utf8") : "");
  const script = (name: string, profile: unknown) => {
    const path = join(tree.root, `${name}.sh`);
    writeFileSync(path, renderTuneSh(resolveProfile(name, profile)));
    return (mode: string, extra: Record<string, string> = {}) => run("sh", [path, mode], { env: { ...env, ...extra } });
  };
  return { tree, env, etc: tree.env.ETC_ROOT, ethState, calls, script };
}

describeSystem(
  "tune.sh fleet items on a fake node: coalescing, irqbalance, conntrack hashsize at boot, check",
  ["sh"],
  () => {
    it("coalescing: ethtool -C per parameter, read back, verified, and restored to the originals", () => {
      const { ethState, calls, script } = fakeNode();
      const tune = script("coal", { nics: [{ match: "eth*", coalesce: { adaptiveRx: false, rxUsecs: 64, txFrames: 16, rxFrames: 8 } }] });
      const apply = tune("apply");
      expect(apply.stdout).toMatch(/^changed\s+coalesce\s+eth0 adaptive-rx on -> off$/m);
      expect(apply.stdout).toMatch(/^changed\s+coalesce\s+eth0 rx-usecs 3 -> 64$/m);
      expect(apply.stdout).toMatch(/^changed\s+coalesce\s+eth0 tx-frames 0 -> 16$/m);
      // The driver does not report rx-frames (n/a): named, not set, and the run is degraded.
      expect(apply.stdout).toMatch(/^skipped-unsupported\s+coalesce\s+eth0 rx-frames/m);
      expect(apply.code).toBe(3);
      const set = calls("ethtool.log")
        .split("\n")
        .filter((l) => l.startsWith("-C"));
      expect(set).toEqual(["-C eth0 adaptive-rx off", "-C eth0 rx-usecs 64", "-C eth0 tx-frames 16"]);
      expect(tune("verify").stdout).toMatch(/^ok\s+coalesce\s+eth0 rx-usecs 64$/m);
      writeFileSync(join(ethState, "eth0.rx-usecs"), "10");
      expect(tune("verify").stdout).toMatch(/^drift\s+coalesce\s+eth0 rx-usecs live="10" profile="64"$/m);
      const restore = tune("restore");
      expect(restore.code, restore.stdout).toBe(0);
      expect(readFileSync(join(ethState, "eth0.rx-usecs"), "utf8")).toBe("3");
      expect(readFileSync(join(ethState, "eth0.adaptive-rx"), "utf8")).toBe("on");
      expect(readFileSync(join(ethState, "eth0.tx-frames"), "utf8")).toBe("0");
    });

    it("irqbalance ban on Debian: banned CPUs in /etc/default/irqbalance, a restart when it runs, the file back on restore", () => {
      const { etc, calls, script } = fakeNode();
      mkdirSync(join(etc, "default"));
      const original = "# Debian's file\nIRQBALANCE_BANNED_CPULIST=7\nIRQBALANCE_ARGS=--policyscript=/x\n";
      writeFileSync(join(etc, "default/irqbalance"), original);
      mkdirSync(join(etc, "sysconfig"));
      const tune = script("ban", {
        nics: [
          { match: "eth0", irqAffinity: { cpus: "0-1" } },
          { match: "eth1", irqAffinity: { cpus: "3" } },
        ],
      });
      const apply = tune("apply");
      expect(apply.stdout).toMatch(/^changed\s+file\s+\S+\/default\/irqbalance$/m);
      expect(apply.stdout).toMatch(/^restarted\s+service\s+irqbalance$/m);
      expect(readFileSync(join(etc, "default/irqbalance"), "utf8")).toBe(
        "# Debian's file\nIRQBALANCE_ARGS=--policyscript=/x\nIRQBALANCE_BANNED_CPULIST=0-1,3\n",
      );
      expect(existsSync(join(etc, "sysconfig/irqbalance"))).toBe(false);
      expect(calls("systemd/log")).toMatch(/^try-restart irqbalance$/m);
      // Unchanged file: no second restart.
      const again = tune("apply");
      expect(again.stdout).not.toMatch(/restarted/);
      expect(calls("systemd/log").match(/try-restart/g)).toHaveLength(1);
      expect(tune("verify").code).toBe(0);
      const restore = tune("restore");
      expect(restore.code, restore.stdout).toBe(0);
      expect(readFileSync(join(etc, "default/irqbalance"), "utf8")).toBe(original);
      expect(calls("systemd/log").match(/try-restart/g)).toHaveLength(2);
    });

    it("irqbalance ban on RHEL writes /etc/sysconfig/irqbalance, and does not start an irqbalance that is not running", () => {
      const { etc, calls, script } = fakeNode({ active: "inactive", enabled: "disabled" });
      mkdirSync(join(etc, "sysconfig"));
      writeFileSync(join(etc, "sysconfig/irqbalance"), "IRQBALANCE_ARGS=\n");
      const tune = script("rhel", { nics: [{ match: "eth0", irqbalanceBannedCpus: "2-3" }] });
      const apply = tune("apply");
      expect(apply.code, apply.stdout).toBe(0);
      expect(readFileSync(join(etc, "sysconfig/irqbalance"), "utf8")).toBe("IRQBALANCE_ARGS=\nIRQBALANCE_BANNED_CPULIST=2-3\n");
      expect(existsSync(join(etc, "default/irqbalance"))).toBe(false);
      expect(calls("systemd/log")).not.toMatch(/try-restart|start/);
      tune("restore");
      expect(readFileSync(join(etc, "sysconfig/irqbalance"), "utf8")).toBe("IRQBALANCE_ARGS=\n");
    });

    it("irqbalance stop: stopped and disabled, verify names it running again, restore (or a profile without it) re-enables it", () => {
      const { calls, script, tree } = fakeNode();
      const tune = script("stop", { irqbalance: "stop", nics: [{ match: "eth0", irqAffinity: { cpus: "0" } }] });
      const apply = tune("apply");
      expect(apply.stdout).toMatch(/^changed\s+service\s+irqbalance active enabled -> stopped$/m);
      expect(calls("systemd/log")).toMatch(/^disable --now irqbalance$/m);
      expect(tune("verify").stdout).toMatch(/^ok\s+service\s+irqbalance stopped$/m);
      writeFileSync(join(tree.root, "systemd/active"), "active\n");
      const drift = tune("verify");
      expect(drift.code).toBe(4);
      expect(drift.stdout).toMatch(/^drift\s+service\s+irqbalance active/m);
      // Stopped again by a second apply, which keeps the first record (active enabled).
      tune("apply");
      const restore = tune("restore");
      expect(restore.stdout).toMatch(/^restored\s+service\s+irqbalance active enabled$/m);
      expect(readFileSync(join(tree.root, "systemd/active"), "utf8")).toBe("active\n");
      expect(readFileSync(join(tree.root, "systemd/enabled"), "utf8")).toBe("enabled\n");

      tune("apply");
      const leave = script("leave", { irqbalance: "leave", nics: [{ match: "eth0", irqAffinity: { cpus: "0" } }] })("apply");
      expect(leave.stdout).toMatch(/^restored\s+service\s+irqbalance active enabled$/m);
      expect(readFileSync(join(tree.root, "systemd/active"), "utf8")).toBe("active\n");
    });

    it("conntrack hashsize is written to modprobe.d for the next module load, and removed on restore", () => {
      const { etc, script } = fakeNode();
      const tune = script("ct", { conntrack: { hashsize: 262144 } });
      tune("apply");
      const conf = join(etc, "modprobe.d/edgetune-conntrack.conf");
      expect(readFileSync(conf, "utf8")).toMatch(/^options nf_conntrack hashsize=262144$/m);
      tune("restore");
      expect(existsSync(conf)).toBe(false);
      expect(existsSync(join(etc, "modprobe.d"))).toBe(false);
    });

    describe("check", () => {
      const profile = { hugepages: { pages2MiB: 512, pages1GiB: 2 } };

      it("one WARN line each: huge pages short, conntrack ≥ 80 %, proxy fds ≥ 80 %, NIC counters rising", () => {
        const { tree, env } = fakeNode();
        tree.setSysctl("vm.nr_hugepages", "100");
        tree.setSysctl("net.netfilter.nf_conntrack_count", "850");
        tree.setSysctl("net.netfilter.nf_conntrack_max", "1000");
        const proc = join(tree.env.PROC_ROOT, "4242");
        mkdirSync(join(proc, "fd"), { recursive: true });
        writeFileSync(
          join(proc, "limits"),
          "Limit                     Soft Limit           Hard Limit           Units\nMax open files            100                  4096                 files\n",
        );
        for (let i = 0; i < 90; i++) writeFileSync(join(proc, "fd", String(i)), "");
        const stats = join(tree.env.SYS_ROOT, "class/net/eth0/statistics");
        mkdirSync(stats);
        for (const c of ["rx_dropped", "rx_errors", "tx_errors", "rx_missed_errors"]) writeFileSync(join(stats, c), "10\n");
        const s = join(tree.root, "check.sh");
        writeFileSync(s, renderTuneSh(resolveProfile("check", profile)));
        // The counters rise while check waits between its two reads.
        const r = run(
          "sh",
          ["-c", '(sleep 0.3; echo 15 >"$1/rx_dropped"; echo 11 >"$1/rx_missed_errors") & exec sh "$2" check', "sh", stats, s],
          {
            env: { ...env, PROXY_PID: "4242", EDGETUNE_CHECK_INTERVAL: "1" },
          },
        );
        const warns = r.stdout.split("\n").filter((l) => l.startsWith("WARN"));
        expect(warns).toEqual([
          'WARN huge pages short: 2MiB allocated="100" wanted="512"',
          'WARN huge pages short: 1GiB allocated="0" wanted="2"',
          'WARN conntrack table near full: nf_conntrack_count current="850" max="1000" (85%)',
          'WARN proxy file descriptors near the limit: pid 4242 open="90" limit="100" (90%)',
          "WARN NIC drop/error counters rising: eth0 rx_dropped +5 rx_missed_errors +1 (over 1s)",
        ]);
        expect(r.stdout).toMatch(/^summary: check warnings=5 /m);
      });

      it("no WARN when the pages are there, the tables have room and the counters stand still", () => {
        const { tree, script } = fakeNode();
        tree.setSysctl("vm.nr_hugepages", "512");
        mkdirSync(join(tree.env.SYS_ROOT, "kernel/mm/hugepages/hugepages-1048576kB"), { recursive: true });
        writeFileSync(join(tree.env.SYS_ROOT, "kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"), "2\n");
        tree.setSysctl("net.netfilter.nf_conntrack_count", "799");
        tree.setSysctl("net.netfilter.nf_conntrack_max", "1000");
        const r = script("ok", profile)("check", { EDGETUNE_CHECK_INTERVAL: "1", PROXY_PID: "999999" });
        expect(r.stdout.split("\n").filter((l) => l.startsWith("WARN"))).toEqual([]);
        expect(r.stdout).toMatch(/^summary: check warnings=0 /m);
      });
    });
  },
  false,
);

describe("profile: RFS global table and irqbalance choices", () => {
  const sysctl = (p: ReturnType<typeof resolveProfile>, key: string) => p.sysctls.find((s) => s.key === key);

  it("flow entries per queue bring rps_sock_flow_entries: the kernel docs' 32768, or a power of two covering one queue", () => {
    const small = resolveProfile("rfs", { nics: [{ match: "eth0", rps: { cpus: "0-3", flowEntriesPerQueue: 4096 } }] });
    expect(sysctl(small, "net.core.rps_sock_flow_entries")).toMatchObject({ value: "32768", compare: "at-least", scope: "host" });
    const big = resolveProfile("rfs", { nics: [{ match: "eth0", rps: { cpus: "0", flowEntriesPerQueue: 40000 } }] });
    expect(sysctl(big, "net.core.rps_sock_flow_entries")?.value).toBe("65536");
    expect(renderTuneSh(small)).toMatch(/^ {2}sysctl_item 'net\.core\.rps_sock_flow_entries' '32768' 'at-least' 'host'$/m);
    // An explicit size is the profile's to choose; RPS without RFS needs no table.
    const own = resolveProfile("rfs", {
      sysctls: { "net.core.rps_sock_flow_entries": 131072 },
      nics: [{ match: "eth0", rps: { cpus: "0", flowEntriesPerQueue: 4096 } }],
    });
    expect(sysctl(own, "net.core.rps_sock_flow_entries")?.value).toBe("131072");
    expect(
      sysctl(resolveProfile("rps", { nics: [{ match: "eth0", rps: { cpus: "0" } }] }), "net.core.rps_sock_flow_entries"),
    ).toBeUndefined();
  });

  it("refuses flow entries with the global table explicitly 0, naming the key and the NIC", () => {
    expect(() =>
      resolveProfile("rfs", {
        sysctls: { "net.core.rps_sock_flow_entries": 0 },
        nics: [{ match: "eth0", rps: { cpus: "0", flowEntriesPerQueue: 2048 } }],
      }),
    ).toThrow(/profiles\.rfs\.sysctls\["net\.core\.rps_sock_flow_entries"\]: got 0 while nics\[0\]\.rps\.flowEntriesPerQueue is 2048/);
  });

  it("irqbalance: ban by default with irqAffinity (the NICs' CPUs together), a profile-level or per-NIC choice, conflicts refused", () => {
    expect(
      resolveProfile("a", {
        nics: [
          { match: "eth0", irqAffinity: { cpus: "2-3" } },
          { match: "eth1", irqAffinity: { cpus: "0,3" } },
        ],
      }).irqbalance,
    ).toEqual({
      mode: "ban",
      cpus: "0,2-3",
    });
    expect(resolveProfile("b", { nics: [{ match: "eth0", rps: { cpus: "0" } }] }).irqbalance).toBeUndefined();
    expect(resolveProfile("c", { irqbalance: "stop", nics: [{ match: "eth0", irqAffinity: { cpus: "1" } }] }).irqbalance).toEqual({
      mode: "stop",
    });
    expect(
      resolveProfile("d", { irqbalance: "stop", nics: [{ match: "eth0", irqAffinity: { cpus: "1" }, irqbalance: "leave" }] }).irqbalance,
    ).toBeUndefined();
    const conflict = () =>
      resolveProfile("e", {
        nics: [
          { match: "eth0", irqAffinity: { cpus: "1" } },
          { match: "eth1", irqAffinity: { cpus: "2" }, irqbalance: "stop" },
        ],
      });
    expect(conflict).toThrow(ValidationError);
    expect(conflict).toThrow(/nics\[1\]\.irqbalance.*got "stop" while nics\[0\] bans CPUs/);
    expect(() => resolveProfile("f", { nics: [{ match: "eth0", irqbalance: "ban" }] })).toThrow(
      /nics\[0\]\.irqbalance.*got "ban" with neither irqAffinity nor irqbalanceBannedCpus/,
    );
    expect(() => resolveProfile("g", { irqbalance: "sometimes" })).toThrow(/irqbalance/);
  });

  it("coalesce values are bounded by the spec", () => {
    expect(() => resolveProfile("h", { nics: [{ match: "eth0", coalesce: { rxUsecs: -1 } }] })).toThrow(/nics\[0\]\.coalesce\.rxUsecs/);
    expect(resolveProfile("i", { nics: [{ match: "eth0", coalesce: { adaptiveTx: true, rxUsecs: 0 } }] }).nics[0].coalesce).toEqual([
      { param: "adaptive-tx", value: "on" },
      { param: "rx-usecs", value: "0" },
    ]);
  });
});
