import { gzipSync } from "node:zlib";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseApplySummary, renderRemoteCommands, type RemoteCommands } from "../../components/nodes/remote-script";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem } from "../helpers/system";
import { TestNode } from "../helpers/netns";

/**
 * Replays, with the real rendered scripts, what Pulumi does to RemoteHostTuning's
 * remote.Command when the profile changes: the command's delete/create (tune.sh on the
 * create's stdin, as remote.Command sends it) in the order deleteBeforeReplace gives — and
 * the default create-before-delete order, to show why it is wrong.
 */
describeSystem("remote.Command replacement order (network namespace)", ["ip", "sha256sum"], () => {
  const nodes: TestNode[] = [];
  const dirs: string[] = [];
  const SOMAXCONN = "net.core.somaxconn";
  const FIN = "net.ipv4.tcp_fin_timeout";

  // Both keys are per network namespace, so the host's values are never touched.
  const oldProfile = resolveProfile("old", { sysctls: { [SOMAXCONN]: 8192, [FIN]: 15 } });
  // The new profile drops tcp_fin_timeout: only a restore before the new apply puts it back.
  const newProfile = resolveProfile("new", { sysctls: { [SOMAXCONN]: 16384 } });

  function host(): { node: TestNode; dir: string; render: (p: typeof oldProfile) => RemoteCommands } {
    const node = new TestNode("eA");
    nodes.push(node);
    const dir = mkdtempSync(join(tmpdir(), "edgetune-remote-"));
    dirs.push(dir);
    const opts = {
      stagingDir: join(dir, "staging"),
      installPath: join(dir, "lib", "tune.sh"),
      sudo: false,
      // The unit and udev rule go under the temporary root too: never into this machine's /etc.
      systemRoot: dir,
      env: { STATE_DIR: join(dir, "state"), ETC_ROOT: join(dir, "etc"), EDGETUNE_SCOPE: "netns" },
    };
    return { node, dir, render: (p) => renderRemoteCommands(p, opts) };
  }

  /** What remote.Command does: the script as the SSH command (`sh -c`), `stdin` on its standard input. */
  function sh(node: TestNode, script: string, stdin = "") {
    return node.exec("sh", ["-c", script], {}, stdin);
  }
  const apply = (node: TestNode, cmds: RemoteCommands) => sh(node, cmds.apply, cmds.payload);

  let baseline: { somaxconn: string; fin: string };
  beforeAll(() => {
    const probe = host().node;
    baseline = { somaxconn: probe.sysctl(SOMAXCONN), fin: probe.sysctl(FIN) };
    // The test only means something if both profiles move the values away from the defaults.
    expect(Number(baseline.somaxconn)).toBeLessThan(8192);
    expect(Number(baseline.fin)).toBeGreaterThan(15);
  });

  afterAll(() => {
    for (const n of nodes) n.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("deleteBeforeReplace: create → replace (old restore, new apply) → destroy leaves the node as it was", () => {
    const { node, dir, render } = host();
    const before = { somaxconn: node.sysctl(SOMAXCONN), fin: node.sysctl(FIN) };
    const oldCmds = render(oldProfile);
    const newCmds = render(newProfile);

    // pulumi up #1: create.
    const created = apply(node, oldCmds);
    expect(created.code, created.stderr).toBe(0);
    expect(parseApplySummary(created.stdout)).toMatchObject({ status: "applied", changed: 2, failed: 0, profile: "old" });
    expect(node.sysctl(SOMAXCONN)).toBe("8192");
    expect(node.sysctl(FIN)).toBe("15");

    // pulumi up #2 (profile changed): deleteBeforeReplace runs the old resource's delete and only
    // then the new create.
    const deleted = sh(node, oldCmds.restore);
    expect(deleted.code, deleted.stdout + deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/summary: restore status=restored restored=\d+ failed=0/);
    expect(node.sysctl(SOMAXCONN)).toBe(before.somaxconn);
    expect(node.sysctl(FIN)).toBe(before.fin);
    const replaced = apply(node, newCmds);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(parseApplySummary(replaced.stdout)).toMatchObject({ status: "applied", changed: 1, profile: "new" });
    expect(node.sysctl(SOMAXCONN)).toBe("16384");
    // The key the new profile dropped is back at the node's own value, not left at the old profile's.
    expect(node.sysctl(FIN)).toBe(before.fin);

    // pulumi destroy.
    const destroyed = sh(node, newCmds.restore);
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(node.sysctl(SOMAXCONN)).toBe(before.somaxconn);
    expect(node.sysctl(FIN)).toBe(before.fin);
    // Nothing of edgetune is left: installed script, state, /etc files.
    for (const sub of ["lib", "state", "etc/sysctl.d", "etc/systemd/system/edgetune-tune.service", "staging"])
      expect(existsSync(join(dir, sub)), sub).toBe(false);
  });

  it("the default create-before-delete order would undo the new tuning", () => {
    const { node, render } = host();
    const before = node.sysctl(SOMAXCONN);
    const oldCmds = render(oldProfile);
    const newCmds = render(newProfile);
    expect(apply(node, oldCmds).code).toBe(0);

    const created = apply(node, newCmds);
    expect(created.code).toBe(0);
    expect(node.sysctl(SOMAXCONN)).toBe("16384");
    // The old resource's delete runs last and restores the originals it recorded...
    expect(sh(node, oldCmds.restore).code).toBe(0);
    // ...so the "successful" update leaves the node untuned, and the dropped key was still wrong in between.
    expect(node.sysctl(SOMAXCONN)).toBe(before);
  });

  it("refuses to run a received tune.sh that differs from the rendered one, and a truncated one", () => {
    const { node, dir, render } = host();
    const cmds = render(oldProfile);
    const before = node.sysctl(SOMAXCONN);
    const evil = gzipSync("#!/bin/sh\necho 1234 > /proc/sys/net/core/somaxconn\n").toString("base64");
    for (const stdin of [evil, cmds.payload.slice(0, cmds.payload.length / 2), ""]) {
      const r = sh(node, cmds.apply, stdin);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/differs from the rendered one|could not unpack tune\.sh/);
      expect(node.sysctl(SOMAXCONN)).toBe(before);
      // Neither the received script nor its temporary copy stays where restore would run it.
      expect(existsSync(join(dir, "lib", "tune.sh"))).toBe(false);
      expect(existsSync(join(dir, "lib", "tune.sh.new"))).toBe(false);
    }
  });

  it("restore removes what an earlier version staged for the same tune.sh (upgrade in place)", () => {
    const { node, dir, render } = host();
    const cmds = render(oldProfile);
    // What CopyToRemote put on the host before tune.sh travelled on stdin.
    const staged = join(dir, "staging", cmds.tuneShSha256.slice(0, 16));
    mkdirSync(join(staged, "etc", "sysctl.d"), { recursive: true });
    writeFileSync(join(staged, "tune.sh"), cmds.tuneSh);
    writeFileSync(join(staged, "etc", "sysctl.d", "99-zz-edgetune.conf"), "x\n");
    expect(apply(node, cmds).code).toBe(0);
    const r = sh(node, cmds.restore);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(existsSync(join(dir, "staging"))).toBe(false);
  });
});
