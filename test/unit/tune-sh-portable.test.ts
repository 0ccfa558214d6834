import { mkdtempSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { PRESET_NAMES, renderTuneSh, resolveProfile, shq } from "../../components";
import type { ResolvedProfile } from "../../components";
import { FakeTree } from "../helpers/fake-tree";
import { describeSystem, run } from "../helpers/system";

const scriptFor = (profile: ResolvedProfile): string => {
  const dir = mkdtempSync(join(tmpdir(), "edgetune-sh-"));
  const path = join(dir, "tune.sh");
  writeFileSync(path, renderTuneSh(profile), { mode: 0o755 });
  return path;
};

const trees: FakeTree[] = [];
afterEach(() => trees.splice(0).forEach((t) => t.destroy()));

const withNics = (name: string) =>
  resolveProfile(name, {
    extends: name as never,
    limits: { nofileHard: 1048576 },
    hugepages: { pages1GiB: 2 },
    conntrack: { hashsize: 65536, notrackPorts: [80, 443] },
    nics: [
      {
        match: "eth*",
        offloads: { tso: true, gro: true },
        channels: { combined: 4 },
        rings: { rx: 4096 },
        rss: { equal: 4 },
        rxFlowHash: { tcp4: "sdfn" },
        rps: { cpus: "0-1", flowEntriesPerQueue: 4096 },
        xps: { mode: "spread" },
        irqAffinity: { cpus: "0-1" },
        irqbalanceBannedCpus: "0",
        coalesce: { adaptiveRx: false, rxUsecs: 8 },
      },
    ],
  });

describeSystem(
  "tune.sh is portable POSIX sh (test 10)",
  ["shellcheck", "dash", "busybox"],
  () => {
    for (const preset of PRESET_NAMES) {
      it(`${preset}: shellcheck clean, dash -n, and a busybox sh apply/verify/restore cycle on a fake tree`, () => {
        const script = scriptFor(withNics(preset));
        const sc = run("shellcheck", ["-s", "sh", "-S", "style", script]);
        expect(sc.stdout + sc.stderr, "shellcheck").toBe("");
        expect(sc.code).toBe(0);
        expect(run("dash", ["-n", script]).code).toBe(0);

        const tree = new FakeTree();
        trees.push(tree);
        const env = { ...process.env, ...tree.env, ETHTOOL: "/nonexistent-ethtool", NFT: "/nonexistent-nft" };
        const apply = run("busybox", ["sh", script, "apply"], { env });
        // No NIC matches eth* in the fake tree and there is no ethtool: degraded, never aborted.
        expect(apply.stdout).toMatch(/^summary: status=degraded /m);
        expect(apply.code).toBe(3);
        const profile = resolveProfile(preset, { extends: preset });
        for (const s of profile.sysctls) {
          const live = tree.sysctl(s.key);
          if (s.compare === "exact") expect(live, s.key).toBe(s.value);
        }
        expect(apply.stdout).toMatch(/reboot-required\s+kernel-args hugepagesz=1G hugepages=2/);
        const verify = run("busybox", ["sh", script, "verify"], { env });
        expect(verify.stdout).toMatch(/^summary: verify status=ok /m);
        // check's own probes (huge pages, conntrack, proxy fds, NIC counters over 1 s) under busybox too.
        const check = run("busybox", ["sh", script, "check"], { env: { ...env, EDGETUNE_CHECK_INTERVAL: "1", PROXY_PID: "1" } });
        expect(check.stderr).toBe("");
        expect(check.stdout).toMatch(/^WARN huge pages short: 1GiB allocated="0" wanted="2"$/m);
        expect(check.stdout).toMatch(/^summary: check warnings=\d+ /m);
        const restore = run("busybox", ["sh", script, "restore"], { env });
        expect(restore.code).toBe(0);
        expect(tree.sysctl("net.core.somaxconn")).toBe("4096");
        expect(tree.has("etc/security/limits.d/99-edgetune.conf")).toBe(false);
      });
    }
  },
  false,
);

describeSystem(
  "injection: hostile values never execute (test 7)",
  ["sh", "dash", "busybox"],
  () => {
    const hostile = [
      "'",
      "$(touch CANARY)",
      "`touch CANARY`",
      "; touch CANARY",
      "&& touch CANARY",
      "a\ntouch CANARY",
      "'; touch CANARY; '",
      "\\'$(touch CANARY)",
    ];

    it("every hostile string is rejected by validation, wherever it appears", () => {
      for (const h of hostile) {
        const v = h.replace(/CANARY/g, "/tmp/x");
        expect(() => resolveProfile("h", { extraSysctls: { "net.x": { value: v } } }), v).toThrow(/extraSysctls/);
        expect(() => resolveProfile("h", { extraSysctls: { [`net.${v}`]: { value: 1 } } }), v).toThrow();
        expect(() => resolveProfile("h", { nics: [{ match: v }] }), v).toThrow(/nics\[0\]\.match/);
        expect(() => resolveProfile("h", { nics: [{ match: "eth0", rps: { cpus: v } }] }), v).toThrow(/rps\.cpus/);
      }
      // Descriptions only reach comments and quoted heredocs, but never with a line break.
      expect(() => resolveProfile("h", { description: "x\ntouch /tmp/x" })).toThrow(/description/);
    });

    it("quoting alone keeps them literal: shq round-trips through sh, dash and busybox", () => {
      const dir = mkdtempSync(join(tmpdir(), "edgetune-inj-"));
      for (const shell of [["sh"], ["dash"], ["busybox", "sh"]]) {
        for (const h of hostile) {
          const r = run(shell[0], [...shell.slice(1), "-c", `printf '%s' ${shq(h)}`], { cwd: dir });
          expect(r.stdout).toBe(h);
        }
      }
      expect(existsSync(join(dir, "CANARY"))).toBe(false);
    });

    it("a rendered tune.sh carrying hostile values (validation bypassed) writes them literally and runs nothing", () => {
      const base = resolveProfile("h", { extends: "baseline" });
      const tree = new FakeTree();
      trees.push(tree);
      const canary = join(tree.root, "CANARY");
      const evil = (h: string) => h.replace(/CANARY/g, canary);
      // Keys with spaces and quotes cannot exist in /proc/sys, so the value is the carrier here,
      // and the key is a real (fake-tree) file that receives it.
      const items = hostile
        .filter((h) => !h.includes("\n"))
        .map((h, i) => ({ key: `net.evil.k${i}`, value: evil(h), compare: "exact" as const, scope: "netns" as const, known: false }));
      for (const it of items) tree.setSysctl(it.key, "0");
      const script = scriptFor({ ...base, name: "h", sysctls: items });
      const env = { ...process.env, ...tree.env };
      for (const shell of [["sh"], ["dash"], ["busybox", "sh"]]) {
        run(shell[0], [...shell.slice(1), script, "apply"], { env, cwd: tree.root });
        run(shell[0], [...shell.slice(1), script, "verify"], { env, cwd: tree.root });
        run(shell[0], [...shell.slice(1), script, "restore"], { env, cwd: tree.root });
      }
      expect(existsSync(canary)).toBe(false);
      run("sh", [script, "apply"], { env, cwd: tree.root });
      items.forEach((it) =>
        expect(readFileSync(tree.sysctlPath(it.key), "utf8").replace(/\n$/, "")).toBe(it.value.replace(/\s+/g, " ").trim()),
      );
      expect(existsSync(canary)).toBe(false);
    });
  },
  false,
);

it("ships the engine without its comment lines, blank lines and indentation, keeping its header and the shellcheck directives", () => {
  const engine = readFileSync(join(__dirname, "..", "..", "components", "tuning", "tune-engine.sh"), "utf8");
  const shipped = renderTuneSh(resolveProfile("c", { extends: "recommended" }));
  const tail = shipped.slice(shipped.indexOf(engine.split("\n")[0]));
  // The header (exit codes, environment) is for whoever reads the script on a node.
  expect(tail.startsWith(engine.slice(0, engine.indexOf("\n\n")))).toBe(true);
  const body = tail.split("\n").slice(engine.slice(0, engine.indexOf("\n\n")).split("\n").length + 1);
  expect(body.filter((l) => /^\s*#/.test(l) && !/# shellcheck /.test(l))).toEqual([]);
  expect(body.filter((l) => l.trim() === "")).toEqual([""]);
  const directives = (t: string) =>
    t
      .split("\n")
      .filter((l) => /^\s*# shellcheck /.test(l))
      .map((l) => l.trim());
  expect(directives(tail)).toEqual(directives(engine));
  // Every code line of the source ships, in order, but the blocks for items this profile has none of.
  const lines = engine.split("\n");
  const unused = new Set(["nic_coalesce", "irqbalance", "hugepages_check"]);
  let skip = false;
  const code = lines.filter((l) => {
    const only = /^# only: (\w+)$/.exec(l);
    if (only) skip = unused.has(only[1]);
    if (l === "# end only") skip = false;
    return !skip && l.trim() !== "" && !/^\s*#/.test(l);
  });
  const trimmed = (ls: string[]) => ls.map((l) => l.trim());
  expect(trimmed(body.filter((l) => l.trim() !== "" && !/^\s*# shellcheck /.test(l)))).toEqual(trimmed(code));
  expect(shipped).not.toMatch(/^irqbalance_stop\(\)/m);
  // A profile with the item gets the block.
  expect(renderTuneSh(resolveProfile("s", { irqbalance: "stop", nics: [{ match: "eth0", irqAffinity: { cpus: "0" } }] }))).toMatch(
    /^irqbalance_stop\(\) \{$/m,
  );
});
