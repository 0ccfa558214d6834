import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { maxconnFitting, maxpipesFor, renderHaproxyConfig, validateProxySpec, type ProxySpec } from "../../components/proxy/haproxy";
import { renderTuneSh } from "../../components/tuning/render";
import { resolveProfile } from "../../components/tuning/profile";
import { TestNode } from "../helpers/netns";
import { describeSystem, run } from "../helpers/system";

const ENTRYPOINT = join(__dirname, "..", "..", "proxy-image", "entrypoint.sh");
const WARN =
  /^WARN kernel parameter (?:below recommended value|above recommended maximum|differs from recommended value): (\S+) current="([^"]*)" recommended="([^"]*)"$/;

function satisfies(live: string, want: string, compare: string): boolean {
  if (compare === "exact") return live === want;
  const l = live.split(" ").map(Number);
  return want
    .split(" ")
    .map(Number)
    .every((w, i) => (compare === "at-least" ? l[i] >= w : l[i] <= w));
}

describeSystem("proxy-image/entrypoint.sh in a network namespace", ["ip", "sh"], () => {
  const profile = resolveProfile("proxy", { extends: "recommended", ports: { listenPorts: [80, 5201, 8404, 8405] } });
  // A pod's network namespace can only have its per-namespace keys tuned.
  const netnsKeys = profile.sysctls.filter((s) => s.scope === "netns");
  let work: string;
  let node: TestNode;
  let env: Record<string, string>;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "edgetune-entry-"));
    writeFileSync(join(work, "tune.sh"), renderTuneSh(profile));
    // Stands in for HAProxy: shows what the entrypoint exec'd, then exits.
    writeFileSync(join(work, "fake-haproxy"), '#!/bin/sh\necho "EXEC $*"\n', { mode: 0o755 });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  beforeEach(() => {
    node = new TestNode("eBe");
    const state = mkdtempSync(join(work, "state-"));
    env = {
      TUNE_SH: join(work, "tune.sh"),
      HAPROXY_BIN: join(work, "fake-haproxy"),
      HAPROXY_CFG: "/etc/haproxy/test.cfg",
      RUNTIME_DIR: join(state, "run"),
      EDGETUNE_SCOPE: "netns",
      STATE_DIR: join(state, "state"),
      ETC_ROOT: join(state, "etc"),
    };
  });
  afterEach(() => node.destroy());

  const entrypoint = () => {
    const r = node.exec("sh", [ENTRYPOINT], env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.split("\n");
  };

  it("warns once per kernel parameter below the profile in a fresh namespace, with live and recommended values, then execs HAProxy", () => {
    const lines = entrypoint();
    const warned = new Map(
      lines
        .map((l) => WARN.exec(l))
        .filter((m) => m !== null)
        .map((m) => [m[1], { current: m[2], recommended: m[3] }]),
    );
    // Each WARN names a real gap: the value read from this namespace, and the profile's value.
    for (const [key, w] of warned) {
      expect(netnsKeys.map((s) => s.key)).toContain(key);
      expect(w.current).toBe(node.sysctl(key));
      expect(w.recommended).toBe(profile.sysctls.find((s) => s.key === key)!.value);
    }
    // The fresh-namespace defaults LAB-NOTES lists are all below NovaEdge's table.
    for (const key of [
      "net.core.somaxconn",
      "net.ipv4.tcp_max_syn_backlog",
      "net.ipv4.tcp_fin_timeout",
      "net.ipv4.ip_local_port_range",
      "net.ipv4.tcp_tw_reuse",
    ]) {
      expect(warned.has(key), key).toBe(true);
    }
    expect(warned.get("net.core.somaxconn")).toEqual({ current: "4096", recommended: "65535" });
    // Keys already at the profile's value are not reported.
    const satisfied = netnsKeys.filter((s) => !warned.has(s.key));
    for (const s of satisfied)
      expect(satisfies(node.sysctl(s.key), s.value, s.compare), `${s.key}=${node.sysctl(s.key)} vs ${s.compare} ${s.value}`).toBe(true);
    // Nothing was changed by the check.
    expect(node.sysctl("net.core.somaxconn")).toBe("4096");
    const exec = lines.find((l) => l.startsWith("EXEC "));
    expect(exec).toBe(`EXEC -W -db -S ${env.RUNTIME_DIR}/master.sock -f /etc/haproxy/test.cfg`);
    // The check runs before HAProxy starts.
    expect(lines.findIndex((l) => l.startsWith("WARN"))).toBeLessThan(lines.indexOf(exec!));
  });

  it("prints no WARN after tune.sh apply", () => {
    const apply = node.exec("sh", [env.TUNE_SH, "apply"], env);
    // 3 = degraded: host-scope keys are skipped on purpose with EDGETUNE_SCOPE=netns; nothing may fail.
    expect([0, 3], apply.stdout + apply.stderr).toContain(apply.code);
    expect(apply.stdout).toMatch(/^summary: status=\w+ changed=[1-9]\d* .*failed=0 /m);
    const lines = entrypoint();
    expect(lines.filter((l) => l.startsWith("WARN"))).toEqual([]);
    expect(lines).toContain("summary: check warnings=0 profile=proxy");
    expect(lines.some((l) => l.startsWith("EXEC -W -db"))).toBe(true);
  });

  it("refuses to start when the runtime directory is not writable", () => {
    const r = node.exec("sh", [ENTRYPOINT], { ...env, RUNTIME_DIR: "/proc/edgetune-nope" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not writable");
    expect(r.stdout).not.toContain("EXEC");
  });
});

describeSystem(
  "proxy-image/entrypoint.sh starts the real HAProxy with a maxconn its fd limit holds",
  ["ip", "sh", "haproxy", "prlimit"],
  () => {
    const profile = resolveProfile("proxy", { extends: "recommended", ports: { listenPorts: [80, 5201, 8404, 8405] } });
    let work: string;
    let node: TestNode;
    let haproxy: ChildProcess | undefined;
    let log = "";

    beforeEach(() => {
      work = mkdtempSync(join(tmpdir(), "edgetune-entry-haproxy-"));
      node = new TestNode("eHa");
      log = "";
    });
    afterEach(async () => {
      // Stopped by its own PID: `ip netns exec`, prlimit and the entrypoint each exec the next, so it is HAProxy's master.
      if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
        const exited = new Promise((r) => haproxy!.once("exit", r));
        haproxy.kill("SIGTERM");
        await exited;
      }
      haproxy = undefined;
      node.destroy();
      rmSync(work, { recursive: true, force: true });
    });

    const spec = (runtimeDir: string, extra: Partial<ProxySpec> = {}): ProxySpec => ({
      listeners: [
        { name: "web", mode: "http", port: 80, backend: "app" },
        { name: "bulk", mode: "tcp", port: 5201, backend: "bulk" },
      ],
      // Nothing listens there and nothing checks them: HAProxy only has to start.
      backends: [
        { name: "app", healthCheck: { type: "none" }, servers: [{ name: "a1", address: "127.0.0.1", port: 8080 }] },
        { name: "bulk", healthCheck: { type: "none" }, servers: [{ name: "b1", address: "127.0.0.1", port: 5202 }] },
      ],
      management: { address: "127.0.0.1" },
      runtimeDir,
      ...extra,
    });

    /** The entrypoint as the container runs it, in a namespace, under `prlimit` when given a limit. */
    function start(cfg: string, runtimeDir: string, nofile?: number): ChildProcess {
      const limit = nofile ? ["prlimit", `--nofile=${nofile}:${nofile}`] : [];
      const child = spawn("ip", ["netns", "exec", node.name, ...limit, "sh", ENTRYPOINT], {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          PATH: process.env.PATH,
          HAPROXY_CFG: cfg,
          RUNTIME_DIR: runtimeDir,
          TUNE_SH: join(work, "no-tune.sh"),
          HAPROXY_BIN: "haproxy",
        },
      });
      child.stdout.on("data", (d) => (log += d));
      child.stderr.on("data", (d) => (log += d));
      haproxy = child;
      return child;
    }

    function command(path: string, line: string): Promise<string> {
      return new Promise((resolve, reject) => {
        const sock = createConnection(path);
        let data = "";
        sock.setTimeout(5000, () => sock.destroy(new Error("admin socket timeout")));
        sock.on("connect", () => sock.write(`${line}\n`));
        sock.on("data", (d) => (data += d));
        sock.on("end", () => resolve(data));
        sock.on("error", reject);
      });
    }

    /** `show info` of the running worker, once its admin socket answers. */
    async function info(runtimeDir: string, child: ChildProcess): Promise<Record<string, string>> {
      const end = Date.now() + 15_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`HAProxy exited (${child.exitCode}): ${log}`);
        const out = await command(join(runtimeDir, "admin.sock"), "show info").catch(() => ""); // not listening yet
        if (/^Maxconn: \d+$/m.test(out)) return Object.fromEntries([...out.matchAll(/^([\w-]+): (.*)$/gm)].map((m) => [m[1], m[2]]));
        if (Date.now() > end) throw new Error(`HAProxy's admin socket did not answer show info: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    it("under ulimit -Hn 4096 it lowers maxconn and maxpipes to what fits, and HAProxy starts with them", async () => {
      const runtimeDir = join(work, "run");
      const s = spec(runtimeDir);
      // Rendered for a node whose runtime gives a million fds; this one gives 4096.
      const cfg = join(work, "haproxy.cfg");
      writeFileSync(cfg, renderHaproxyConfig(s, { profile, nofileLimit: 1048576 }));
      const { globals } = validateProxySpec(s, { profile, nofileLimit: 1048576 });
      const want = maxconnFitting(4096, globals.budget);
      expect(want).toBeLessThan(globals.maxconn);
      const i = await info(runtimeDir, start(cfg, runtimeDir, 4096));
      expect(Number(i.Maxconn)).toBe(want);
      expect(Number(i.Maxpipes)).toBe(maxpipesFor(want, globals.budget));
      // What HAProxy sized itself to fits the limit it was given.
      expect(Number(i.Maxsock)).toBeLessThanOrEqual(4096);
      expect(Number(i["Ulimit-n"])).toBeLessThanOrEqual(4096);
      expect(log).toMatch(
        new RegExp(
          `^WARN edgetune: maxconn ${want}, maxpipes \\d+ \\(not ${globals.maxconn} from the config\\): ulimit -Hn 4096 fits`,
          "m",
        ),
      );
      expect(log).not.toMatch(/ALERT/);
    });

    it("without the entrypoint, HAProxy refuses that config under that limit", () => {
      const runtimeDir = join(work, "run-direct");
      const cfg = join(work, "direct.cfg");
      writeFileSync(cfg, renderHaproxyConfig(spec(runtimeDir), { profile, nofileLimit: 1048576 }));
      // What the entrypoint prevents; `timeout` bounds the case where it would start after all.
      const r = node.exec("prlimit", ["--nofile=4096:4096", "timeout", "10", "haproxy", "-W", "-db", "-f", cfg]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/\[ALERT\].*Cannot raise FD limit to \d+, limit is 4096/);
    });

    it("under a limit that holds the configured maxconn it keeps it", async () => {
      const runtimeDir = join(work, "run");
      const s = spec(runtimeDir);
      const hard = Number(run("sh", ["-c", "ulimit -H -n"]).stdout.trim());
      // Rendered for a node with fewer fds than this machine's limit: it fits as rendered.
      const assumed = Math.min(hard, 8192);
      const cfg = join(work, "haproxy.cfg");
      writeFileSync(cfg, renderHaproxyConfig(s, { profile, nofileLimit: assumed }));
      const { globals } = validateProxySpec(s, { profile, nofileLimit: assumed });
      const i = await info(runtimeDir, start(cfg, runtimeDir));
      expect([Number(i.Maxconn), Number(i.Maxpipes)]).toEqual([globals.maxconn, globals.maxpipes]);
      expect(log).toMatch(
        new RegExp(
          `^INFO edgetune: maxconn ${globals.maxconn}, maxpipes ${globals.maxpipes} from the config: ulimit -Hn ${hard} fits`,
          "m",
        ),
      );
    });
  },
);
