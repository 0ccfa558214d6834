import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { renderHaproxyConfig, type ProxySpec } from "../../components/proxy/haproxy";
import { resolveProfile } from "../../components/tuning/profile";
import { TestNode } from "../helpers/netns";
import { describeSystem } from "../helpers/system";

/**
 * cpuMap: auto as HAProxy applies it: each thread's CPU affinity, read from /proc, is the
 * CPU the rendered cpu-map gives it. The profile puts the NIC's IRQs on CPU 1 and RPS on
 * CPU 0, so the two threads must land on 0 and 1, one each.
 */
describeSystem("cpuMap: auto pins HAProxy's threads to the profile's NIC CPUs", ["haproxy", "ss"], () => {
  let node: TestNode;
  let dir = "";
  let haproxy: ChildProcess;
  let log = "";

  beforeAll(async () => {
    if (availableParallelism() < 2) throw new Error("this test needs 2 CPUs to tell pinned threads apart");
    dir = mkdtempSync(join(tmpdir(), "edgetune-cpumap-"));
    node = new TestNode("eCm", 1);
    node.must("ip", ["link", "set", "lo", "up"]);
    const profile = resolveProfile("pinned", { nics: [{ match: "eth*", irqAffinity: { cpus: "1" }, rps: { cpus: "0" } }] });
    const spec: ProxySpec = {
      listeners: [{ name: "web", mode: "http", port: 80, backend: "none" }],
      backends: [{ name: "none", healthCheck: { type: "none" }, servers: [{ name: "n1", address: "127.0.0.1", port: 8081 }] }],
      cpuMap: "auto",
      management: { address: "127.0.0.1" },
      runtimeDir: dir,
    };
    const cfg = join(dir, "haproxy.cfg");
    writeFileSync(cfg, renderHaproxyConfig(spec, { profile, cpus: availableParallelism(), nofileLimit: 4096 }));
    // No -W: one process, so its threads are the tasks of the PID we started (ip netns exec execs).
    haproxy = spawn("ip", ["netns", "exec", node.name, "haproxy", "-db", "-f", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    haproxy.stdout?.on("data", (d) => (log += d));
    haproxy.stderr?.on("data", (d) => (log += d));
    for (let i = 0; i < 100 && !node.exec("ss", ["-Hltn", "sport = :8405"]).stdout.includes("LISTEN"); i++) {
      if (haproxy.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!node.exec("ss", ["-Hltn", "sport = :8405"]).stdout.includes("LISTEN")) throw new Error(`haproxy did not start: ${log}`);
  });

  afterAll(async () => {
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = new Promise((r) => haproxy.once("exit", r));
      haproxy.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (haproxy.exitCode === null && haproxy.signalCode === null) haproxy.kill("SIGKILL");
    }
    node?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs two threads, thread 1 on CPU 0 and thread 2 on CPU 1", () => {
    const tasks = readdirSync(`/proc/${haproxy.pid}/task`);
    const allowed = tasks.map(
      (t) => /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${haproxy.pid}/task/${t}/status`, "utf8"))?.[1],
    );
    expect(allowed.sort(), log).toEqual(["0", "1"]);
  });
});
