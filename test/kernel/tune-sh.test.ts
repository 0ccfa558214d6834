import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { renderTuneSh, resolveProfile, SYSCTL_CATALOG } from "../../components";
import { loadStack } from "../../loader/stack-config";
import { TestNode } from "../helpers/netns";
import { describeSystem, run } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");

function parseSysctlFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^(-?)([^#=\s][^=]*?)\s*=\s*(.*)$/.exec(line);
    if (m && !m[1]) out[m[2]] = m[3];
  }
  return out;
}

function satisfies(live: string, want: string, compare: string): boolean {
  if (compare === "exact") return live === want;
  const l = live.split(" ").map(Number);
  return want
    .split(" ")
    .map(Number)
    .every((w, i) => (compare === "at-least" ? l[i] >= w : l[i] <= w));
}

const filesUnder = (dir: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => join(d.parentPath, d.name))
    : [];

describeSystem(
  "tune.sh against the real kernel in network namespaces",
  ["ip", "ethtool", "sysctl", "unshare", "mount", "nft", "iptables"],
  () => {
    let work: string;
    let node: TestNode;
    let env: Record<string, string>;
    const script = (name: string, profile: unknown): string => {
      const path = join(work, `${name}.sh`);
      writeFileSync(path, renderTuneSh(resolveProfile(name, profile)), { mode: 0o755 });
      return path;
    };
    const tune = (path: string, mode: string, extra: Record<string, string> = {}) => node.exec("sh", [path, mode], { ...env, ...extra });

    beforeAll(() => {
      work = mkdtempSync(join(tmpdir(), "edgetune-kernel-"));
    });
    afterAll(() => rmSync(work, { recursive: true, force: true }));
    beforeEach(() => {
      node = new TestNode("ek");
      const state = mkdtempSync(join(work, "state-"));
      env = { STATE_DIR: join(state, "state"), ETC_ROOT: join(state, "etc"), EDGETUNE_SCOPE: "netns" };
    });
    afterEach(() => node.destroy());

    describe("the local stack's rendered tune.sh (edgetune render --stack local)", () => {
      let localScript: string;
      beforeAll(() => {
        const out = join(work, "render-local");
        const r = run("node", [join(ROOT, "bin/edgetune.js"), "render", "--stack", "local", "--out", out], { cwd: ROOT });
        expect(r.code, r.stderr).toBe(0);
        localScript = join(out, "lab", "tune.sh");
      });
      // The profile the script was rendered from, as the stack loader resolves it.
      const profile = () => loadStack("local", ROOT).nodeGroups[0].profile;

      it("1: apply sets every per-namespace key as rendered; a second apply changes nothing", () => {
        const first = tune(localScript, "apply");
        expect(first.stdout).toMatch(/^summary: status=(applied|degraded) changed=\d+/m);
        const written = parseSysctlFile(readFileSync(join(env.ETC_ROOT, "sysctl.d/99-zz-edgetune.conf"), "utf8"));
        const netnsKeys = profile().sysctls.filter((s) => s.scope === "netns");
        expect(netnsKeys.length).toBeGreaterThan(10);
        for (const s of netnsKeys) {
          const live = node.sysctl(s.key);
          expect(live, s.key).toBe(written[s.key]);
          expect(satisfies(live, s.value, s.compare), `${s.key}=${live} vs ${s.compare} ${s.value}`).toBe(true);
        }
        expect(node.sysctl("net.core.somaxconn")).toBe("65535");
        // The listeners, the metrics/health ports, kubelet's and the NodePorts (the local stack's proxy tunes Kubernetes nodes too).
        const reserved = profile().sysctls.find((s) => s.key === "net.ipv4.ip_local_reserved_ports")!.value;
        expect(reserved).toMatch(/^80,443,8404-8405,.*30000-32767/);
        expect(node.sysctl("net.ipv4.ip_local_reserved_ports")).toBe(reserved);
        const second = tune(localScript, "apply");
        expect(second.stdout).toMatch(/^summary: status=\w+ changed=0 /m);
        expect(second.stdout).not.toMatch(/^changed /m);
      });

      it("2: verify passes, names a hand-changed key, restore puts every original back and is idempotent", () => {
        const before = Object.fromEntries(
          profile()
            .sysctls.filter((s) => s.scope === "netns")
            .map((s) => [s.key, node.sysctl(s.key)]),
        );
        expect(tune(localScript, "apply").code).not.toBe(1);
        const ok = tune(localScript, "verify");
        expect(ok.code, ok.stdout).toBe(0);
        expect(ok.stdout).toMatch(/^summary: verify status=ok /m);

        node.setSysctl("net.ipv4.tcp_fin_timeout", "30");
        node.setSysctl("net.ipv4.tcp_tw_reuse", "0");
        const drift = tune(localScript, "verify");
        expect(drift.code).toBe(4);
        expect(drift.stdout).toMatch(/^drift\s+sysctl\s+net\.ipv4\.tcp_fin_timeout live="30" profile="10" \(at-most\)/m);
        expect(drift.stdout).toMatch(/^drift\s+sysctl\s+net\.ipv4\.tcp_tw_reuse live="0" profile="1"/m);

        const restore = tune(localScript, "restore");
        expect(restore.code, restore.stdout).toBe(0);
        for (const [key, value] of Object.entries(before)) expect(node.sysctl(key), key).toBe(value);
        expect(filesUnder(env.ETC_ROOT)).toEqual([]);
        expect(existsSync(env.STATE_DIR)).toBe(false);
        const again = tune(localScript, "restore");
        expect(again.code).toBe(0);
        expect(again.stdout).toMatch(/status=nothing/);
      });
    });

    it("3: an absent key and an absent NIC are skipped, exit is degraded, the rest is applied", () => {
      const s = script("absent", {
        sysctls: { "net.core.somaxconn": 30000, "net.core.netdev_max_backlog": 30000 },
        nics: [{ match: "nosuchnic0", offloads: { tso: true } }],
      });
      // netdev_max_backlog is host-only: absent inside a namespace, so with EDGETUNE_SCOPE=all it is "missing".
      const r = tune(s, "apply", { EDGETUNE_SCOPE: "all" });
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^skipped-missing\s+sysctl\s+net\.core\.netdev_max_backlog/m);
      expect(r.stdout).toMatch(/^skipped-missing\s+nic\s+nosuchnic0/m);
      expect(r.stdout).toMatch(/^changed\s+sysctl\s+net\.core\.somaxconn 4096 -> 30000/m);
      expect(r.stdout).toMatch(/^summary: status=degraded changed=1 unchanged=0 skipped=2 failed=0/m);
      expect(node.sysctl("net.core.somaxconn")).toBe("30000");
      // The absent key still goes to sysctl.d, marked "-" so boot does not fail on it.
      expect(readFileSync(join(env.ETC_ROOT, "sysctl.d/99-zz-edgetune.conf"), "utf8")).toMatch(/^-net\.core\.netdev_max_backlog = 30000$/m);
    });

    it("4a: a value the kernel rejects is a failed line; the old value stays and the rest applies", () => {
      // tcp_syn_retries is capped at 127 by the kernel: 1000 is rejected with EINVAL.
      const s = script("invalid", {
        sysctls: { "net.ipv4.tcp_fin_timeout": 15 },
        extraSysctls: { "net.ipv4.tcp_syn_retries": { value: 1000, scope: "netns" } },
      });
      const before = node.sysctl("net.ipv4.tcp_syn_retries");
      const r = tune(s, "apply");
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^failed\s+sysctl\s+net\.ipv4\.tcp_syn_retries wrote "1000", reads "\d+"/m);
      expect(node.sysctl("net.ipv4.tcp_syn_retries")).toBe(before);
      expect(node.sysctl("net.ipv4.tcp_fin_timeout")).toBe("15");
      // Nothing changed for the failed key, so restore has nothing to put back for it.
      expect(tune(s, "restore").stdout).not.toMatch(/tcp_syn_retries/);
    });

    it("4b: a read-only key (read-only bind mount of a fake tree) is a failed line with the old value untouched", () => {
      const fake = join(work, `ro-${node.name}`);
      mkdirSync(join(fake, "net/core"), { recursive: true });
      writeFileSync(join(fake, "net/core/somaxconn"), "4096\n");
      writeFileSync(join(fake, "net/core/optmem_max"), "20480\n");
      mkdirSync(join(fake, "rw/net/core"), { recursive: true });
      const s = script("ro", { sysctls: { "net.core.somaxconn": 65535 } });
      const r = run(
        "unshare",
        ["-m", "sh", "-c", 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && exec sh "$2" apply', "sh", fake, s],
        {
          env: { ...process.env, ...env, PROC_SYS_ROOT: fake },
        },
      );
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^failed\s+sysctl\s+net\.core\.somaxconn wrote "65535", reads "4096" \(Read-only file system\)/m);
      expect(r.stdout).toMatch(/^summary: status=failed /m);
      expect(readFileSync(join(fake, "net/core/somaxconn"), "utf8")).toBe("4096\n");
    });

    it("5: at-least keeps a higher value; check warns only below recommended and changes nothing", () => {
      const s = script("atleast", { extends: "recommended" });
      node.setSysctl("net.core.somaxconn", "100000");
      node.setSysctl("net.ipv4.tcp_fin_timeout", "5");
      const check = tune(s, "check");
      expect(check.code).toBe(0);
      // NovaEdge compared strings and warned about fin_timeout=5; a better value is no warning.
      expect(check.stdout).not.toMatch(/somaxconn|tcp_fin_timeout/);
      expect(check.stdout).toMatch(
        /^WARN kernel parameter below recommended value: net\.ipv4\.tcp_max_syn_backlog current="2048" recommended="65535"$/m,
      );
      expect(check.stdout).toMatch(
        /^WARN kernel parameter above recommended maximum: net\.ipv4\.tcp_keepalive_time current="7200" recommended="60"$/m,
      );
      expect(node.sysctl("net.ipv4.tcp_max_syn_backlog")).toBe("2048");
      expect(existsSync(env.STATE_DIR)).toBe(false);

      const apply = tune(s, "apply");
      expect(apply.stdout).toMatch(/^unchanged\s+sysctl\s+net\.core\.somaxconn 100000 \(kept: at-least 65535\)/m);
      expect(apply.stdout).toMatch(/^unchanged\s+sysctl\s+net\.ipv4\.tcp_fin_timeout 5 \(kept: at-most 10\)/m);
      expect(node.sysctl("net.core.somaxconn")).toBe("100000");
      expect(tune(s, "verify").stdout).toMatch(/^ok\s+sysctl\s+net\.core\.somaxconn 100000 \(at-least 65535\)/m);
      const after = tune(s, "check");
      expect(after.stdout.match(/^WARN .*$/gm) ?? []).toEqual(
        // Only keys a namespace cannot set remain below recommended.
        (after.stdout.match(/^WARN .*$/gm) ?? []).filter((l) => /rmem_max|wmem_max/.test(l)),
      );
    });

    it("6: NIC offloads and RPS masks apply and verify; a recreated veth is drift; re-apply fixes it", () => {
      const s = script("nic", {
        nics: [
          { match: node.veth, offloads: { tso: false, gso: false }, channels: { rx: 2 }, rps: { cpus: "0", flowEntriesPerQueue: 1024 } },
        ],
      });
      const rxChannels = () => /Current hardware settings:[\s\S]*?^RX:\s+(\d+)/m.exec(node.must("ethtool", ["-l", node.veth]).stdout)?.[1];
      const rps = () =>
        node
          .must("cat", [`/sys/class/net/${node.veth}/queues/rx-1/rps_cpus`])
          .stdout.replace(/[,\s]/g, "")
          .replace(/^0+/, "");
      const apply = tune(s, "apply");
      // RFS brings the global flow table, a host-only key: in a namespace that is named, and the run is degraded.
      expect(apply.code, apply.stdout).toBe(3);
      expect(apply.stdout).toMatch(/^skipped-scope\s+sysctl\s+net\.core\.rps_sock_flow_entries /m);
      expect(apply.stdout).toMatch(/^summary: status=degraded .* skipped=1 failed=0 /m);
      expect(apply.stdout).toMatch(new RegExp(`^changed\\s+offload\\s+${node.veth} tso on -> off`, "m"));
      expect(node.must("ethtool", ["-k", node.veth]).stdout).toMatch(/^tcp-segmentation-offload: off/m);
      expect(rxChannels()).toBe("2");
      expect(rps()).toBe("1");
      // rx-0 and rx-1 remain after the channel change; every one gets the mask.
      expect(apply.stdout.match(/^changed\s+rps /gm)?.length).toBeGreaterThanOrEqual(2);
      expect(tune(s, "verify").code).toBe(0);

      node.deleteVeth();
      node.addVeth();
      const drift = tune(s, "verify");
      expect(drift.code).toBe(4);
      expect(drift.stdout).toMatch(new RegExp(`^drift\\s+offload\\s+${node.veth} tso live="on" profile="off"`, "m"));
      expect(drift.stdout).toMatch(new RegExp(`^drift\\s+rps\\s+${node.veth} rx-0/rps_cpus live="0" profile="1"`, "m"));
      const fix = tune(s, "apply");
      expect(fix.stdout).toMatch(/^changed\s+offload/m);
      expect(tune(s, "verify").code).toBe(0);
      expect(tune(s, "restore").code).toBe(0);
      expect(node.must("ethtool", ["-k", node.veth]).stdout).toMatch(/^tcp-segmentation-offload: on/m);
      expect(rxChannels()).toBe(String(node.queues));
    });

    it("6b: EDGETUNE_ONLY=nic re-applies a recreated NIC's settings and leaves drifted sysctls to the drift policy", () => {
      const s = script("nic-only", {
        sysctls: { "net.core.somaxconn": 4242 },
        nics: [{ match: node.veth, offloads: { tso: false }, rps: { cpus: "0" } }],
      });
      expect(tune(s, "apply").code).toBe(0);
      node.setSysctl("net.core.somaxconn", "1000");
      node.deleteVeth();
      node.addVeth();
      const r = tune(s, "apply", { EDGETUNE_ONLY: "nic" });
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/^summary: status=applied .* scope=nic$/m);
      expect(r.stdout).toMatch(new RegExp(`^changed\\s+offload\\s+${node.veth} tso on -> off`, "m"));
      expect(r.stdout).not.toMatch(/^\S+\s+(sysctl|file|module)\s/m);
      expect(node.sysctl("net.core.somaxconn")).toBe("1000");
      expect(node.must("ethtool", ["-k", node.veth]).stdout).toMatch(/^tcp-segmentation-offload: off/m);
      // Anything else is a usage error, before any item runs.
      const bad = tune(s, "apply", { EDGETUNE_ONLY: "sysctl" });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/EDGETUNE_ONLY=sysctl; allowed: nic or unset/);
    });

    it("6c: a profile change restores exactly what the new profile no longer sets, and keeps the first originals", () => {
      const fin0 = node.sysctl("net.ipv4.tcp_fin_timeout");
      const som0 = node.sysctl("net.core.somaxconn");
      const a = script("before", {
        sysctls: { "net.core.somaxconn": 4242, "net.ipv4.tcp_fin_timeout": 17 },
        nics: [{ match: node.veth, offloads: { tso: false, gso: false } }],
      });
      const b = script("after", { sysctls: { "net.core.somaxconn": 5151 }, nics: [{ match: node.veth, offloads: { gso: false } }] });
      expect(tune(a, "apply").code).toBe(0);
      const change = tune(b, "apply");
      expect(change.code, change.stdout).toBe(0);
      expect(change.stdout).toMatch(new RegExp(`^restored\\s+sysctl\\s+net\\.ipv4\\.tcp_fin_timeout ${fin0}$`, "m"));
      expect(change.stdout).toMatch(new RegExp(`^restored\\s+offload\\s+${node.veth} tso on$`, "m"));
      expect(change.stdout).not.toMatch(/^restored\s+(sysctl\s+net\.core\.somaxconn|offload\s+\S+ gso)/m);
      expect(change.stdout).toMatch(/^summary: status=applied .*restored=2 /m);
      expect(node.sysctl("net.ipv4.tcp_fin_timeout")).toBe(fin0);
      expect(node.sysctl("net.core.somaxconn")).toBe("5151");
      const offloads = node.must("ethtool", ["-k", node.veth]).stdout;
      expect(offloads).toMatch(/^tcp-segmentation-offload: on/m);
      expect(offloads).toMatch(/^generic-segmentation-offload: off/m);
      // A second apply of the same profile restores nothing more; restore goes back to the first originals.
      expect(tune(b, "apply").stdout).toMatch(/restored=0 /);
      expect(tune(b, "restore").code).toBe(0);
      expect(node.sysctl("net.core.somaxconn")).toBe(som0);
      expect(node.must("ethtool", ["-k", node.veth]).stdout).toMatch(/^generic-segmentation-offload: on/m);
    });

    it("8: on a full filesystem a file is either old or new, never truncated, with no stray temp or *.conf", () => {
      const etc = join(work, `tmpfs-${node.name}`);
      mkdirSync(etc, { recursive: true });
      expect(run("mount", ["-t", "tmpfs", "-o", "size=64k", "edgetune-test", etc]).code).toBe(0);
      try {
        const target = join(etc, "sysctl.d/99-zz-edgetune.conf");
        mkdirSync(join(etc, "sysctl.d"));
        writeFileSync(target, "# old\nnet.core.somaxconn = 1024\n");
        run("sh", ["-c", `dd if=/dev/zero of="${etc}/fill" bs=4k 2>/dev/null; true`]);
        const s = script("full", { sysctls: { "net.core.somaxconn": 4097 } });
        const r = tune(s, "apply", { ETC_ROOT: etc });
        expect(r.stdout).toMatch(/^failed\s+file\s+.*99-zz-edgetune\.conf \(write failed; previous file left in place\)/m);
        expect(readFileSync(target, "utf8")).toBe("# old\nnet.core.somaxconn = 1024\n");
        expect(readdirSync(join(etc, "sysctl.d"))).toEqual(["99-zz-edgetune.conf"]);
        // With space again the same apply writes the new file whole.
        rmSync(join(etc, "fill"));
        tune(s, "apply", { ETC_ROOT: etc });
        expect(readFileSync(target, "utf8")).toMatch(/^net\.core\.somaxconn = 4097$/m);
        expect(readdirSync(join(etc, "sysctl.d"))).toEqual(["99-zz-edgetune.conf"]);
      } finally {
        run("umount", [etc]);
      }
    });

    it("9: sysctl --system ends with edgetune's values over 99-sysctl.conf, and verify names an /etc/sysctl.conf override", () => {
      expect(existsSync("/etc/sysctl.conf"), "procps ships /etc/sysctl.conf").toBe(true);
      const s = script("prec", { sysctls: { "net.core.somaxconn": 65535, "net.ipv4.tcp_fin_timeout": 10 } });
      const conflict = join(work, `conflict-${node.name}.conf`);
      writeFileSync(conflict, "net.ipv4.tcp_fin_timeout = 45\n");
      // Inside the namespace's own mount namespace: empty sysctl dirs, a conflicting 99-sysctl.conf
      // that sorts before edgetune's file, and /etc/sysctl.conf (read last by procps) replaced.
      const body = [
        "set -e",
        'for d in /etc/sysctl.d /run/sysctl.d /usr/local/lib/sysctl.d /usr/lib/sysctl.d /lib/sysctl.d; do if [ -d "$d" ]; then mount -t tmpfs edgetune-test "$d"; fi; done',
        "printf 'net.core.somaxconn = 1024\\n' > /etc/sysctl.d/99-sysctl.conf",
        'mount --bind "$2" /etc/sysctl.conf',
        'STATE_DIR="$3" ETC_ROOT=/etc EDGETUNE_SCOPE=netns sh "$1" apply >/dev/null || true',
        "sysctl --system >/dev/null 2>&1 || true",
        "echo somaxconn=$(cat /proc/sys/net/core/somaxconn) fin=$(cat /proc/sys/net/ipv4/tcp_fin_timeout)",
        'STATE_DIR="$3" ETC_ROOT=/etc sh "$1" verify || echo "verify-exit=$?"',
        'STATE_DIR="$3" ETC_ROOT=/etc sh "$1" restore >/dev/null',
      ].join("\n");
      const r = node.exec("sh", ["-c", body, "sh", s, conflict, join(work, `state-prec-${node.name}`)]);
      // 99-sysctl.conf sorts before 99-zz-edgetune.conf: edgetune's somaxconn wins.
      expect(r.stdout).toMatch(/somaxconn=65535/);
      // procps reads /etc/sysctl.conf after every sysctl.d file: its value wins, and verify says so.
      expect(r.stdout).toMatch(/fin=45/);
      expect(r.stdout).toMatch(/^drift\s+sysctl\s+net\.ipv4\.tcp_fin_timeout live="45" profile="10"/m);
      expect(r.stdout).toMatch(/^overridden\s+sysctl\s+net\.ipv4\.tcp_fin_timeout by \/etc\/sysctl\.conf \(sets "45"/m);
      expect(r.stdout).not.toMatch(/overridden\s+sysctl\s+net\.core\.somaxconn/);
      expect(r.stdout).toMatch(/verify-exit=4/);
    });

    it("conntrack NOTRACK rules for the proxy's ports, as nftables or iptables, apply, verify and restore", () => {
      for (const rulesFormat of ["nftables", "iptables"] as const) {
        const s = script(`notrack-${rulesFormat}`, { conntrack: { notrackPorts: [443, 80], rulesFormat } });
        const apply = tune(s, "apply");
        expect(apply.code, apply.stdout).toBe(0);
        if (rulesFormat === "nftables") {
          expect(node.must("nft", ["list", "table", "inet", "edgetune_notrack"]).stdout).toMatch(/tcp dport \{ 80, 443 \} notrack/);
        } else {
          expect(node.must("iptables", ["-t", "raw", "-S", "PREROUTING"]).stdout).toMatch(
            /-A PREROUTING -p tcp -m tcp --dport 443 -j NOTRACK/,
          );
        }
        expect(tune(s, "verify").code).toBe(0);
        expect(tune(s, "restore").code).toBe(0);
        expect(node.exec("nft", ["list", "table", "inet", "edgetune_notrack"]).code).not.toBe(0);
        expect(node.must("iptables", ["-t", "raw", "-S"]).stdout).not.toMatch(/NOTRACK/);
      }
    });

    it("the catalog's namespace scopes match this kernel", () => {
      for (const [key, meta] of Object.entries(SYSCTL_CATALOG)) {
        if (meta.module) continue;
        const present = node.exec("test", ["-e", `/proc/sys/${key.replace(/\./g, "/")}`]).code === 0;
        if (meta.scope === "netns") expect(present, `${key} should exist in a namespace`).toBe(true);
      }
      // Host-only keys the lab notes name are absent from a namespace.
      for (const key of ["net.core.netdev_max_backlog", "net.core.rps_sock_flow_entries", "net.core.default_qdisc"]) {
        expect(node.exec("test", ["-e", `/proc/sys/${key.replace(/\./g, "/")}`]).code, key).not.toBe(0);
      }
    });
  },
);
