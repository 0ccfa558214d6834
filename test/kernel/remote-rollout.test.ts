import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { renderRemoteCommands } from "../../components/nodes/remote-script";
import { renderGateCommand, renderRebootedCheck } from "../../components/nodes/rollout";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem, run } from "../helpers/system";
import { TestNode } from "../helpers/netns";

/**
 * The host side of a rolling apply, with the real rendered scripts: two hosts of one batch are
 * applied, one drifts, and its gate (what the next batch depends on) exits non-zero naming it
 * while the other passes. The Pulumi wiring of the same gates is under mocks in nodes-components.
 */
describeSystem("SSH rollout gates (network namespaces)", ["ip", "sha256sum"], () => {
  const nodes: TestNode[] = [];
  const dirs: string[] = [];
  const SOMAXCONN = "net.core.somaxconn";
  const profile = resolveProfile("roll", { sysctls: { [SOMAXCONN]: 23456 } });
  afterAll(() => {
    for (const n of nodes) n.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function host(name: string) {
    const node = new TestNode("eR");
    nodes.push(node);
    const dir = mkdtempSync(join(tmpdir(), "edgetune-rollout-"));
    dirs.push(dir);
    const env = { STATE_DIR: join(dir, "state"), ETC_ROOT: join(dir, "etc"), EDGETUNE_SCOPE: "netns" };
    const installPath = join(dir, "lib", "tune.sh");
    const cmds = renderRemoteCommands(profile, { stagingDir: join(dir, "staging"), installPath, sudo: false, systemRoot: dir, env });
    // As remote.Command runs a script: as the SSH command, with its stdin (tune.sh for apply).
    const sh = (script: string, stdin = "") => node.exec("sh", ["-c", script], {}, stdin);
    const gate = (stopOnFailure: boolean) => sh(renderGateCommand({ host: name, installPath, sudo: false, env, stopOnFailure }));
    return { node, cmds, sh, gate };
  }

  it("a host that fails verify after apply fails its gate with its name; a good host passes", () => {
    const a = host("edge-a.example");
    const b = host("edge-b.example");
    for (const h of [a, b]) expect(h.sh(h.cmds.apply, h.cmds.payload).code).toBe(0);
    // Something on host b undoes the tuning between apply and gate (another agent, a bad item).
    b.node.setSysctl(SOMAXCONN, "1024");

    const passed = a.gate(true);
    expect(passed.code, passed.stderr).toBe(0);
    expect(passed.stdout).toMatch(/^gate: status=passed host=edge-a\.example$/m);

    const failed = b.gate(true);
    expect(failed.code).not.toBe(0);
    expect(failed.stdout).toMatch(/^gate: status=failed host=edge-b\.example verify-exit=4$/m);
    expect(failed.stderr).toMatch(/rollout stopped: host edge-b\.example failed tune\.sh verify \(exit 4\)/);
    // verify itself says which setting drifted, so the error tells the operator what and where.
    expect(failed.stdout).toMatch(/drift\s+sysctl\s+net\.core\.somaxconn/);

    // stopOnFailure: false reports and lets the rollout go on.
    const goOn = b.gate(false);
    expect(goOn.code).toBe(0);
    expect(goOn.stdout).toMatch(/^gate: status=failed host=edge-b\.example/m);
    for (const h of [a, b]) expect(h.sh(h.cmds.restore).code).toBe(0);
  });

  it("the after-reboot check fails while the boot id is the old one, passes on a new one or when no reboot was scheduled", () => {
    const now = run("cat", ["/proc/sys/kernel/random/boot_id"]).stdout.trim();
    const check = (old: string) => run("sh", ["-s"], { input: renderRebootedCheck("edge-a.example", old) });
    const same = check(now);
    expect(same.code).toBe(1);
    expect(same.stderr).toMatch(/host edge-a\.example did not reboot/);
    expect(check("00000000-0000-4000-8000-000000000000")).toMatchObject({ code: 0, stdout: expect.stringMatching(/reboot: status=done/) });
    expect(check("")).toMatchObject({ code: 0, stdout: expect.stringMatching(/reboot: status=not-needed/) });
  });
});
