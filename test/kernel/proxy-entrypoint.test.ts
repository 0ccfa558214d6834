import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { renderTuneSh } from "../../components/tuning/render";
import { resolveProfile } from "../../components/tuning/profile";
import { TestNode } from "../helpers/netns";
import { describeSystem } from "../helpers/system";

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
