import { lstatSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { UDEV_RULE_PATH, UNIT_NAME, UNIT_PATH } from "../../components/nodes/persistence";
import { parseApplySummary, renderRemoteCommands } from "../../components/nodes/remote-script";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem, run } from "../helpers/system";
import { TestNode } from "../helpers/netns";

/**
 * The SSH target's persistence, replayed with the real rendered scripts: apply installs and
 * enables the unit and udev rule (under a temporary system root, so the machine's systemd is never
 * touched), a "reboot" (the namespace deleted and created again) loses every live setting, and
 * the unit's own ExecStart, run as systemd would at boot, brings them all back.
 */
describeSystem("SSH persistence across a simulated reboot (network namespace)", ["ip", "sha256sum", "systemctl"], () => {
  const nodes: TestNode[] = [];
  const dirs: string[] = [];
  const SOMAXCONN = "net.core.somaxconn";
  afterAll(() => {
    for (const n of nodes) n.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  // The wants link is absolute inside the system root, so only lstat sees it from outside.
  const present = (p: string) => {
    try {
      lstatSync(p);
      return true;
    } catch {
      return false;
    }
  };

  /** What systemd does with a oneshot unit at boot: its Environment= lines, then ExecStart. */
  function runUnit(node: TestNode, unitText: string) {
    const env = [...unitText.matchAll(/^Environment="([A-Z_]+)=([^"]*)"$/gm)].map((m) => `${m[1]}=${m[2]}`);
    const exec = /^ExecStart=(.+)$/m.exec(unitText)?.[1].split(" ") ?? [];
    const ok = (/^SuccessExitStatus=(.+)$/m.exec(unitText)?.[1] ?? "").split(" ").map(Number);
    const r = run("ip", ["netns", "exec", node.name, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", ...env, ...exec]);
    return { ...r, success: r.code === 0 || ok.includes(r.code) };
  }

  it("apply installs and enables the unit; after a reboot its ExecStart restores every setting; restore removes it", () => {
    const node = new TestNode("eP");
    nodes.push(node);
    const dir = mkdtempSync(join(tmpdir(), "edgetune-persist-"));
    dirs.push(dir);
    const sysroot = join(dir, "root");
    const cmds = renderRemoteCommands(
      resolveProfile("persist", {
        sysctls: { [SOMAXCONN]: 12345 },
        nics: [{ match: node.veth, rps: { cpus: "0" } }],
      }),
      {
        stagingDir: join(dir, "staging"),
        installPath: join(dir, "lib", "tune.sh"),
        sudo: false,
        systemRoot: sysroot,
        env: { STATE_DIR: join(dir, "state"), ETC_ROOT: join(sysroot, "etc"), EDGETUNE_SCOPE: "netns" },
      },
    );
    const rps = () =>
      node
        .must("cat", [`/sys/class/net/${node.veth}/queues/rx-1/rps_cpus`])
        .stdout.trim()
        .replace(/^0*(?=.)/, "");
    const defaults = { somaxconn: node.sysctl(SOMAXCONN), rps: rps() };
    // Only meaningful if the profile moves both away from a fresh namespace's values.
    expect(defaults).not.toMatchObject({ somaxconn: "12345" });
    expect(defaults.rps).toBe("0");

    // As remote.Command runs it: the script as the SSH command, tune.sh on stdin.
    const applied = node.exec("sh", ["-c", cmds.apply], {}, cmds.payload);
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(parseApplySummary(applied.stdout)).toMatchObject({ status: "applied", profile: "persist" });
    expect(applied.stdout).toMatch(/^persistence: status=installed unit=edgetune-tune\.service rule=/m);
    const unitFile = join(sysroot, UNIT_PATH);
    const ruleFile = join(sysroot, UDEV_RULE_PATH);
    const wants = join(sysroot, "etc/systemd/system/multi-user.target.wants", UNIT_NAME);
    expect(readFileSync(unitFile, "utf8")).toBe(cmds.unit);
    expect(readFileSync(ruleFile, "utf8")).toBe(cmds.udevRule);
    expect(readFileSync(ruleFile, "utf8")).toContain(`KERNEL=="${node.veth}"`);
    // Enabled: the symlink systemd follows at boot.
    expect(lstatSync(wants).isSymbolicLink()).toBe(true);
    expect({ somaxconn: node.sysctl(SOMAXCONN), rps: rps() }).toEqual({ somaxconn: "12345", rps: "1" });

    // Reboot: a new network namespace under the same name, with fresh defaults and a fresh NIC.
    node.destroy();
    node.must("ip", ["netns", "add", node.name], false);
    node.addVeth();
    expect({ somaxconn: node.sysctl(SOMAXCONN), rps: rps() }).toEqual(defaults);

    // Boot: systemd starts every unit multi-user.target wants.
    expect(present(wants)).toBe(true);
    const boot = runUnit(node, readFileSync(unitFile, "utf8"));
    expect(boot.success, boot.stdout + boot.stderr).toBe(true);
    expect({ somaxconn: node.sysctl(SOMAXCONN), rps: rps() }).toEqual({ somaxconn: "12345", rps: "1" });

    // pulumi destroy: unit, wants link and rule gone, the values back.
    const restored = node.exec("sh", ["-c", cmds.restore]);
    expect(restored.code, restored.stdout + restored.stderr).toBe(0);
    for (const f of [unitFile, ruleFile, wants]) expect(present(f), f).toBe(false);
    expect({ somaxconn: node.sysctl(SOMAXCONN), rps: rps() }).toEqual(defaults);
  });
});
