import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { renderTunerLoop } from "../../components/nodes/k8s-tuner";
import { resolveProfile } from "../../components/tuning/profile";
import { renderTuneSh } from "../../components/tuning/render";
import { describeSystem } from "../helpers/system";
import { TestNode } from "../helpers/netns";

/** Runs the tuner container's loop for real in a namespace: apply, drift → re-apply, SIGTERM → restore. */
describeSystem("tuner loop (network namespace)", ["ip"], () => {
  const SOMAXCONN = "net.core.somaxconn";
  const nodes: TestNode[] = [];
  const dirs: string[] = [];
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const n of nodes) n.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function start(env: Record<string, string>) {
    const node = new TestNode("eB");
    nodes.push(node);
    const before = node.sysctl(SOMAXCONN);
    const dir = mkdtempSync(join(tmpdir(), "edgetune-tuner-"));
    dirs.push(dir);
    writeFileSync(join(dir, "tune.sh"), renderTuneSh(resolveProfile("k8s", { sysctls: { [SOMAXCONN]: 12345 } })));
    writeFileSync(join(dir, "tuner.sh"), renderTunerLoop());
    const all = {
      TUNE_SH: join(dir, "tune.sh"),
      STATE_DIR: join(dir, "state"),
      ETC_ROOT: join(dir, "etc"),
      STATUS_FILE: join(dir, "run", "status"),
      EDGETUNE_SCOPE: "netns",
      NODE_NAME: "node-a",
      VERIFY_INTERVAL_SECONDS: "1",
      ...env,
    };
    // ip netns exec and env exec in place: the child's PID is the tuner shell's.
    const child = spawn(
      "ip",
      ["netns", "exec", node.name, "env", ...Object.entries(all).map(([k, v]) => `${k}=${v}`), "sh", join(dir, "tuner.sh")],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(child);
    let log = "";
    child.stdout!.on("data", (b) => (log += String(b)));
    child.stderr!.on("data", (b) => (log += String(b)));
    const waitFor = async (what: () => boolean, label: string) => {
      for (let i = 0; i < 100; i++) {
        if (what()) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for ${label}; log:\n${log}`);
    };
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    return { node, dir, before, child, log: () => log, waitFor, exited };
  }

  it("applies, re-applies on drift, and restores on SIGTERM when restoreOnDelete is set", async () => {
    const t = start({ REAPPLY_ON_DRIFT: "1", RESTORE_ON_DELETE: "1" });
    await t.waitFor(() => /edgetune: node=node-a apply rc=0 status=applied changed=1/.test(t.log()), "the apply status line");
    expect(t.node.sysctl(SOMAXCONN)).toBe("12345");
    expect(readFileSync(join(t.dir, "run", "status"), "utf8")).toMatch(/^status=applied /);

    t.node.setSysctl(SOMAXCONN, "1000");
    await t.waitFor(() => /edgetune: node=node-a drift +sysctl +net\.core\.somaxconn/.test(t.log()), "the drift log line");
    await t.waitFor(() => t.node.sysctl(SOMAXCONN) === "12345", "the re-apply");

    process.kill(t.child.pid!, "SIGTERM");
    expect(await t.exited).toBe(0);
    expect(t.log()).toMatch(/restore rc=0 \(restoreOnDelete\)/);
    // The original recorded by the first apply (the namespace default), not the drifted 1000.
    expect(t.node.sysctl(SOMAXCONN)).toBe(t.before);
  });

  it("logs drift without touching it, and leaves tuning in place on SIGTERM, when both options are off", async () => {
    const t = start({ REAPPLY_ON_DRIFT: "0", RESTORE_ON_DELETE: "0" });
    await t.waitFor(() => /apply rc=0 status=applied/.test(t.log()), "the apply status line");
    t.node.setSysctl(SOMAXCONN, "1000");
    await t.waitFor(() => /verify status=drift \(reapplyOnDrift off\)/.test(t.log()), "the drift report");
    expect(t.node.sysctl(SOMAXCONN)).toBe("1000");
    t.node.setSysctl(SOMAXCONN, "12345");
    process.kill(t.child.pid!, "SIGTERM");
    expect(await t.exited).toBe(0);
    expect(t.log()).toMatch(/tuning left in place/);
    expect(t.node.sysctl(SOMAXCONN)).toBe("12345");
  });
});
