/**
 * The proxy image's entrypoint reloads on a config change and refuses an invalid one, with real
 * HAProxy (Debian's 2.6 here; the image ships 3.0, whose master CLI and reload behave the same for
 * what is asserted) in a network namespace, under HTTP load (keep-alive and new connections).
 * The config is laid out like a ConfigMap volume: haproxy.cfg -> ..data/haproxy.cfg, and an
 * update swaps the ..data symlink.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { renderHaproxyConfig, type ProxySpec } from "../../components/proxy/haproxy";
import { resolveProfile } from "../../components/tuning/profile";
import { TestNode } from "../helpers/netns";
import { describeSystem } from "../helpers/system";
import { until } from "../helpers/wait";

const ROOT = join(__dirname, "..", "..");
const ENTRYPOINT = join(ROOT, "proxy-image", "entrypoint.sh");
const LOAD = join(ROOT, "lab", "proofs", "change-load.cjs");

interface LoadReport {
  started: number;
  ended: number;
  counts: Record<"keepalive" | "fresh", { ok: number; failed: number; staleRetries: number; lastOk: number }>;
  failures: Array<{ t: number; mode: string; kind: string }>;
}

describeSystem(
  "proxy-image/entrypoint.sh reloads a changed config and refuses an invalid one under load",
  ["ip", "haproxy", "socat"],
  () => {
    const profile = resolveProfile("proxy", { extends: "recommended", ports: { listenPorts: [80, 81, 8404, 8405] } });
    let work: string;
    let runtimeDir: string;
    let node: TestNode;
    let backend: ChildProcess;
    let proxy: ChildProcess;
    let load: ChildProcess | undefined;
    let log = "";
    let version = 0;

    const spec = (extra: Partial<ProxySpec> = {}): ProxySpec => ({
      listeners: [{ name: "web", mode: "http", port: 80, address: "127.0.0.1", backend: "app" }],
      backends: [{ name: "app", healthCheck: { type: "none" }, servers: [{ name: "a1", address: "127.0.0.1", port: 9000 }] }],
      management: { address: "127.0.0.1" },
      runtimeDir,
      ...extra,
    });

    /** A ConfigMap update: a new timestamped directory, then ..data swapped to it in one rename. */
    function publish(text: string): void {
      const dir = join(work, "config", `..v${++version}`);
      mkdirSync(dir);
      writeFileSync(join(dir, "haproxy.cfg"), text);
      symlinkSync(`..v${version}`, join(work, "config", "..data_tmp"));
      renameSync(join(work, "config", "..data_tmp"), join(work, "config", "..data"));
    }

    const inNs = (cmd: string, args: string[]) => node.exec(cmd, args);
    const status = () => {
      try {
        return Object.fromEntries(
          readFileSync(join(runtimeDir, "config-status"), "utf8")
            .trim()
            .split("\n")
            .map((l) => l.split("=", 2)),
        );
      } catch {
        return {} as Record<string, string>;
      }
    };
    const workerPid = () =>
      /^Pid: (\d+)$/m.exec(node.exec("socat", ["-t", "2", "-", `UNIX-CONNECT:${runtimeDir}/admin.sock`], {}, "show info\n").stdout)?.[1];
    const get = (port: number, path = "/") =>
      inNs("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", `http://127.0.0.1:${port}${path}`]).stdout;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), "edgetune-reload-"));
      runtimeDir = join(work, "run");
      mkdirSync(join(work, "config"));
      node = new TestNode("eRl");
      inNs("ip", ["link", "set", "lo", "up"]);
      backend = spawn("ip", [
        "netns",
        "exec",
        node.name,
        process.execPath,
        "-e",
        "require('node:http').createServer((q, s) => s.end('ok')).listen(9000, '127.0.0.1')",
      ]);
      publish(renderHaproxyConfig(spec(), { profile }));
      symlinkSync("..data/haproxy.cfg", join(work, "config", "haproxy.cfg"));
      proxy = spawn("ip", ["netns", "exec", node.name, "sh", ENTRYPOINT], {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          PATH: process.env.PATH,
          HAPROXY_CFG: join(work, "config", "haproxy.cfg"),
          RUNTIME_DIR: runtimeDir,
          TUNE_SH: join(work, "no-tune.sh"),
          HAPROXY_BIN: "haproxy",
          CONFIG_POLL_SECONDS: "1",
        },
      });
      proxy.stdout!.on("data", (d) => (log += d));
      proxy.stderr!.on("data", (d) => (log += d));
      await until("HAProxy to serve through the listener", () => get(80) === "200", 20_000, 100);
    }, 30_000);

    afterAll(async () => {
      for (const p of [load, proxy, backend]) {
        if (p && p.exitCode === null && p.signalCode === null) {
          const exited = new Promise((r) => p.once("exit", r));
          p.kill("SIGTERM");
          await exited;
        }
      }
      node?.destroy();
      rmSync(work, { recursive: true, force: true });
    });

    it("loads a valid change by a reload (new worker, new listener) and refuses an invalid one, while requests keep succeeding", async () => {
      const running = spawn("ip", ["netns", "exec", node.name, process.execPath, LOAD, "127.0.0.1", "80", "2", "2"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      load = running;
      let out = "";
      let err = "";
      running.stdout!.on("data", (d) => (out += d));
      running.stderr!.on("data", (d) => (err += d));
      await until("the load to run", () => err.includes("running"), 10_000, 50);

      const firstWorker = workerPid();
      expect(firstWorker).toMatch(/^\d+$/);
      expect(get(81)).toBe("000");
      // Valid: a second listener. It can only be served after a reload of the new file.
      publish(
        renderHaproxyConfig(
          spec({ listeners: [...spec().listeners, { name: "extra", mode: "http", port: 81, address: "127.0.0.1", backend: "app" }] }),
          { profile },
        ),
      );
      await until("the watch to reload the valid change", () => status().reloads === "1", 20_000, 100);
      await until("the new worker to serve the new listener", () => get(81) === "200", 20_000, 100);
      const secondWorker = workerPid();
      expect(secondWorker).not.toBe(firstWorker);
      expect(status().state).toBe("reloaded");
      expect(log).toMatch(/^INFO edgetune: config changed \(cksum [\d-]+\): valid, HAProxy reloaded \(reload 1\)$/m);

      // Invalid: HAProxy cannot parse it. The running config must stay.
      const good = readFileSync(join(runtimeDir, "haproxy.cfg"), "utf8");
      publish(good.replace(/^global$/m, "global\n  edgetune-no-such-keyword on"));
      await until("the watch to refuse the invalid change", () => status().refusals === "1", 20_000, 100);
      const refusedAt = Date.now();
      expect(status()).toMatchObject({ state: "refused", reloads: "1" });
      expect(status().refused).not.toBe(status().loaded);
      expect(log).toMatch(
        /^ERROR edgetune: config refused \(cksum [\d-]+\): haproxy -c failed; still serving cksum [\d-]+: .*edgetune-no-such-keyword/m,
      );
      // What HAProxy would load on any later reload is still the last valid config.
      expect(readFileSync(join(runtimeDir, "haproxy.cfg"), "utf8")).toBe(good);
      expect(workerPid()).toBe(secondWorker);
      expect([get(80), get(81)]).toEqual(["200", "200"]);
      const done = new Promise((r) => running.once("exit", r));
      running.kill("SIGTERM");
      await done;
      const report = JSON.parse(out) as LoadReport;
      // Both kinds of client kept completing requests after the refusal.
      expect(report.counts.keepalive.lastOk).toBeGreaterThan(refusedAt);
      expect(report.counts.fresh.lastOk).toBeGreaterThan(refusedAt);
      // Across the reload and the refusal, no request failed.
      expect(report.failures).toEqual([]);
      expect(report.counts.keepalive.failed + report.counts.fresh.failed).toBe(0);
    }, 90_000);

    it("drain: the health endpoint answers 503 while the listeners still serve; SIGUSR1 then stops HAProxy", async () => {
      expect(get(8405, "/healthz")).toBe("200");
      const drain = spawn("ip", ["netns", "exec", node.name, "sh", ENTRYPOINT, "drain"], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { PATH: process.env.PATH, RUNTIME_DIR: runtimeDir, DRAIN_SECONDS: "3" },
      });
      let err = "";
      drain.stderr!.on("data", (d) => (err += d));
      await until("the health endpoint to turn 503", () => get(8405, "/healthz") === "503", 10_000, 50);
      expect(get(80)).toBe("200");
      const drained = await new Promise<number | null>((r) => drain.once("exit", (code) => r(code)));
      expect(drained).toBe(0);
      expect(err).toMatch(/^INFO edgetune: drain: health endpoint answers 503; soft stop in 3s$/m);
      // The drain only turned the health endpoint: traffic is served until the stop signal.
      expect([get(8405, "/healthz"), get(80)]).toEqual(["503", "200"]);
      const exited = new Promise<number | null>((r) => proxy.once("exit", (code) => r(code)));
      proxy.kill("SIGUSR1");
      expect(await exited).toBe(0);
    }, 60_000);
  },
);
