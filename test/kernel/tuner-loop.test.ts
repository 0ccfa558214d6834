import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { renderTunerLoop } from "../../components/nodes/k8s-tuner";
import { resolveProfile } from "../../components/tuning/profile";
import { renderTuneSh } from "../../components/tuning/render";
import { describeSystem } from "../helpers/system";
import { TestNode } from "../helpers/netns";
import { until } from "../helpers/wait";

const SOMAXCONN = "net.core.somaxconn";
const FAKE_API = join(__dirname, "..", "helpers", "fake-kube-api.cjs");

/**
 * The tuner container's loop (tuner.sh as the DaemonSet ships it) run for real in a network
 * namespace, against a stand-in Kubernetes API in the same namespace: a stop never un-tunes the
 * node, removal restores it exactly, status is visible without logs, NICs that come back are re-tuned.
 */
describeSystem("tuner loop (network namespace)", ["ip", "ethtool", "unshare", "mount", "curl", "jq", "socat"], () => {
  const nodes: TestNode[] = [];
  const dirs: string[] = [];
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const n of nodes) n.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function spawnIn(node: TestNode, argv: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
    // ip netns exec, env and unshare exec in place: the child's PID is the command's own.
    const child = spawn("ip", ["netns", "exec", node.name, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let out = "";
    child.stdout!.on("data", (b) => (out += String(b)));
    child.stderr!.on("data", (b) => (out += String(b)));
    // "close", not "exit": only then has everything the process wrote been read.
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    return { child, out: () => out, exited };
  }

  interface Options {
    env?: Record<string, string>;
    /** The profile, given the node (its veth's name). Default: somaxconn 12345. */
    profile?: (node: TestNode) => Record<string, unknown>;
    api?: boolean;
    nodeLabels?: Record<string, string>;
    /** Sysctls bind-mounted read-only in the tuner's own mount namespace: an apply that fails. */
    readOnly?: string[];
    /** Addresses on the node's veth before the tuner starts (CIDR notation). */
    addresses?: string[];
  }

  async function start(o: Options = {}) {
    const node = new TestNode("eB");
    nodes.push(node);
    // The stand-in API and the metrics endpoint listen on the namespace's loopback.
    node.must("ip", ["link", "set", "lo", "up"]);
    for (const a of o.addresses ?? []) node.must("ip", ["addr", "add", a, "dev", node.veth]);
    const before = node.sysctl(SOMAXCONN);
    const dir = mkdtempSync(join(tmpdir(), "edgetune-tuner-"));
    dirs.push(dir);
    writeFileSync(join(dir, "tune.sh"), renderTuneSh(resolveProfile("k8s", o.profile?.(node) ?? { sysctls: { [SOMAXCONN]: 12345 } })));
    writeFileSync(join(dir, "tuner.sh"), renderTunerLoop());
    writeFileSync(join(dir, "token"), "test-token\n");
    const stateFile = join(dir, "api-state.json");
    const patches = join(dir, "patches.log");
    const setApi = (s: { daemonset: "present" | "deleting" | "gone"; nodeLabels?: Record<string, string> }) =>
      writeFileSync(stateFile, JSON.stringify({ nodeLabels: o.nodeLabels ?? { pool: "proxy" }, ...s }));
    setApi({ daemonset: "present" });
    let apiUrl = "http://127.0.0.1:1"; // nothing listens there: the API is unreachable
    if (o.api !== false) {
      const api = spawnIn(node, [process.execPath, FAKE_API, stateFile, patches]);
      await until("the fake API's port", () => /^\d+\n/.test(api.out()));
      apiUrl = `http://127.0.0.1:${api.out().trim()}`;
    }
    const env = {
      TUNE_SH: join(dir, "tune.sh"),
      STATE_DIR: join(dir, "state"),
      ETC_ROOT: join(dir, "etc"),
      STATUS_FILE: join(dir, "run", "status"),
      EDGETUNE_SCOPE: "netns",
      NODE_NAME: "node-a",
      TUNER_NAME: "edge",
      VERIFY_INTERVAL_SECONDS: "1",
      KUBE_API: apiUrl,
      KUBE_TOKEN_FILE: join(dir, "token"),
      KUBE_CA_FILE: join(dir, "no-ca.crt"),
      POD_NAMESPACE: "edgetune-system",
      DAEMONSET_NAME: "edgetune-tuner-edge",
      NODE_SELECTOR: JSON.stringify({ pool: "proxy" }),
      ...o.env,
    };
    const envArgs = ["env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
    const tuner = join(dir, "tuner.sh");
    const ro = (o.readOnly ?? []).map((k) => `/proc/sys/${k.replace(/\./g, "/")}`);
    const t = spawnIn(
      node,
      ro.length
        ? [
            "env",
            `RO=${ro.join(" ")}`,
            "unshare",
            "-m",
            "sh",
            "-c",
            'for f in $RO; do mount --bind "$f" "$f" && mount -o remount,ro,bind "$f" "$f" || exit 9; done; exec "$@"',
            "sh",
            ...envArgs,
            "sh",
            tuner,
          ]
        : [...envArgs, "sh", tuner],
    );
    const log = t.out;
    const waitLog = (re: RegExp, what: string) =>
      until(what, () => re.test(log()), 15_000).catch((e) => Promise.reject(new Error(`${e.message}; log:\n${log()}`)));
    const ready = () => node.exec("env", [...envArgs.slice(1), "sh", tuner, "ready"]);
    // Only whole lines: the fake API may have created the file, or be mid-append, when this reads it.
    const patchLog = () =>
      existsSync(patches)
        ? readFileSync(patches, "utf8")
            .split("\n")
            .slice(0, -1)
            .filter((l) => l !== "")
            .map((l) => JSON.parse(l) as { auth: string; type: string; body: { metadata: { annotations: Record<string, string | null> } } })
        : [];
    return { node, dir, before, child: t.child, log, waitLog, exited: t.exited, setApi, ready, patchLog, env };
  }

  describe("a stop is not a removal", () => {
    it("applies, annotates the node and reports ready; SIGTERM while the DaemonSet still selects the node leaves it tuned", async () => {
      const t = await start();
      await t.waitLog(/edgetune: node=node-a apply rc=0 status=applied changed=1/, "the apply status line");
      expect(t.node.sysctl(SOMAXCONN)).toBe("12345");
      expect(t.ready().code).toBe(0);
      await until("the node annotation", () => t.patchLog().length > 0);
      const [patch] = t.patchLog();
      expect(patch.auth).toBe("Bearer test-token");
      expect(patch.type).toBe("application/merge-patch+json");
      expect(patch.body.metadata.annotations["tuning.edgetune.io/edge"]).toMatch(
        /^status=applied profile=k8s digest=sha256:[0-9a-f]+ changed=1 failed=0 skipped=0 at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
      );

      process.kill(t.child.pid!, "SIGTERM");
      expect(await t.exited).toBe(0);
      expect(t.log()).toMatch(/stopping; tuning left in place \(DaemonSet present and the node still selected/);
      expect(t.node.sysctl(SOMAXCONN)).toBe("12345");
      expect(existsSync(join(t.env.STATE_DIR, "sysctl"))).toBe(true);
    });

    it("when the API cannot tell removal from a stop, the tuning stays and the log says why", async () => {
      const t = await start({ api: false });
      await t.waitLog(/apply rc=0 status=applied/, "the apply status line");
      process.kill(t.child.pid!, "SIGTERM");
      expect(await t.exited).toBe(0);
      expect(t.log()).toMatch(
        /tuning left in place: removal cannot be told from a stop \(cannot read DaemonSet edgetune-system\/edgetune-tuner-edge \(HTTP 000\)\)/,
      );
      expect(t.node.sysctl(SOMAXCONN)).toBe("12345");
    });

    it("with restoreOnRemove off even a deleted DaemonSet leaves the tuning", async () => {
      const t = await start({ env: { RESTORE_ON_REMOVE: "0" } });
      await t.waitLog(/apply rc=0 status=applied/, "the apply status line");
      t.setApi({ daemonset: "gone" });
      process.kill(t.child.pid!, "SIGTERM");
      expect(await t.exited).toBe(0);
      expect(t.log()).toMatch(/tuning left in place \(restoreOnRemove off\)/);
      expect(t.node.sysctl(SOMAXCONN)).toBe("12345");
    });
  });

  describe("removal restores exactly", () => {
    for (const [what, change, reason] of [
      [
        "the DaemonSet deleted (pulumi destroy, foreground)",
        { daemonset: "deleting" },
        /DaemonSet edgetune-system\/edgetune-tuner-edge is being deleted/,
      ],
      ["the DaemonSet gone", { daemonset: "gone" }, /DaemonSet edgetune-system\/edgetune-tuner-edge is gone/],
      [
        "the node leaving the nodeSelector",
        { daemonset: "present", nodeLabels: { pool: "batch" } },
        /node no longer matches the nodeSelector \{"pool":"proxy"\}/,
      ],
    ] as const) {
      it(what, async () => {
        const t = await start();
        await t.waitLog(/apply rc=0 status=applied/, "the apply status line");
        await until("the node annotation", () => t.patchLog().length > 0);
        t.setApi(change);
        process.kill(t.child.pid!, "SIGTERM");
        expect(await t.exited).toBe(0);
        expect(t.log()).toMatch(new RegExp(`restore rc=0 \\(${reason.source}\\) restore status=restored restored=2 failed=0`));
        expect(t.log()).toMatch(/^removed +file +\S+\/sysctl\.d\/99-zz-edgetune\.conf$/m);
        expect(t.node.sysctl(SOMAXCONN)).toBe(t.before);
        expect(existsSync(t.env.STATE_DIR)).toBe(false);
        // The node no longer claims tuning it does not have.
        expect(t.patchLog().at(-1)!.body.metadata.annotations).toEqual({ "tuning.edgetune.io/edge": null });
      });
    }
  });

  it("drift is re-applied only with reapplyOnDrift, and only logged without it", async () => {
    const on = await start({ env: { REAPPLY_ON_DRIFT: "1" } });
    const off = await start({ env: { REAPPLY_ON_DRIFT: "0" } });
    await on.waitLog(/apply rc=0 status=applied/, "the apply status line");
    await off.waitLog(/apply rc=0 status=applied/, "the apply status line");
    on.node.setSysctl(SOMAXCONN, "1000");
    off.node.setSysctl(SOMAXCONN, "1000");
    await on.waitLog(/edgetune: node=node-a drift +sysctl +net\.core\.somaxconn/, "the drift log line");
    await until("the re-apply", () => on.node.sysctl(SOMAXCONN) === "12345");
    await off.waitLog(/verify status=drift \(reapplyOnDrift off\)/, "the drift report");
    expect(off.node.sysctl(SOMAXCONN)).toBe("1000");
  });

  it("a failed apply keeps the probe failing with the reason, and the metrics endpoint names it", async () => {
    const port = "19477";
    const t = await start({
      profile: () => ({ sysctls: { [SOMAXCONN]: 12345, "net.ipv4.tcp_fin_timeout": 17 } }),
      readOnly: [SOMAXCONN],
      env: { METRICS_PORT: port, METRICS_BIND: "127.0.0.1", VERIFY_INTERVAL_SECONDS: "3600" },
    });
    await t.waitLog(/apply rc=3 status=degraded changed=1 unchanged=0 skipped=0 failed=1/, "the degraded apply");
    const probe = t.ready();
    expect(probe.code).toBe(1);
    expect(probe.stdout).toMatch(/^not ready \(READY_WHEN=no-failures\): last apply status=degraded .*failed=1 /);
    // Kubelet runs the probe in the container, not the loop's shell: it reads the status file the loop wrote.
    const scrape = () => t.node.exec("curl", ["-sS", "-D", "-", `http://127.0.0.1:${port}/metrics`]);
    await until("the metrics endpoint", () => scrape().code === 0);
    const m = scrape().stdout;
    expect(m).toMatch(/^Content-Type: text\/plain; version=0\.0\.4/m);
    const labels = 'tuner="edge",node="node-a",profile="k8s"';
    expect(m).toContain(`edgetune_tuning_items{${labels},state="failed"} 1`);
    expect(m).toContain(`edgetune_tuning_items{${labels},state="applied"} 1`);
    expect(m).toContain(`edgetune_tuning_last_apply_success{${labels}} 0`);
    expect(m).toMatch(new RegExp(`edgetune_tuning_last_apply_timestamp_seconds\\{${labels}\\} \\d{10}`));
    expect(t.node.exec("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/other`]).stdout).toBe("404");
    // The loop writes the metrics file before it patches the node: the PATCH may land a moment later.
    await until("the node annotation", () => t.patchLog().length > 0);
    expect(t.patchLog()[0].body.metadata.annotations["tuning.edgetune.io/edge"]).toMatch(/^status=degraded .*failed=1 /);
  });

  it("serves metrics on the node's address inside METRICS_BIND_CIDR, and answers only sources in METRICS_ALLOW", async () => {
    const port = 19479;
    const t = await start({
      // 10.77.0.1: the node's internal address; 10.78.0.1: an allowed peer; 203.0.113.20: the internet.
      addresses: ["10.77.0.1/24", "10.78.0.1/24", "203.0.113.20/24"],
      env: {
        METRICS_PORT: String(port),
        METRICS_BIND_CIDR: "10.77.0.0/16",
        METRICS_ALLOW: "10.78.0.0/16",
        VERIFY_INTERVAL_SECONDS: "3600",
      },
    });
    await t.waitLog(/metrics on 10\.77\.0\.1:19479 for 10\.77\.0\.1 10\.78\.0\.0\/16/, "the metrics bind line");
    const scrape = (source: string) =>
      t.node.exec("curl", [
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        "--interface",
        source,
        `http://10.77.0.1:${port}/metrics`,
      ]);
    await until("the metrics endpoint", () => scrape("10.78.0.1").stdout === "200");
    const local = t.node
      .must("ss", ["-Hltn", `sport = :${port}`])
      .stdout.trim()
      .split("\n")
      .map((l) => l.split(/\s+/)[3]);
    expect(local).toEqual([`10.77.0.1:${port}`]);
    const outside = scrape("203.0.113.20");
    expect(outside.stdout).toBe("000");
    expect(outside.code).not.toBe(0);
    // The node itself (kubelet, a local check) is allowed.
    expect(scrape("10.77.0.1").stdout).toBe("200");
    // Not bound on the public address at all.
    expect(
      t.node.exec("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", `http://203.0.113.20:${port}/metrics`]).code,
    ).toBe(7);
  });

  it("a NIC deleted and re-created is re-tuned within NIC_POLL_SECONDS, without reapplyOnDrift", async () => {
    const t = await start({
      profile: (node) => ({ nics: [{ match: node.veth, offloads: { tso: false } }] }),
      env: {
        NIC_POLL_SECONDS: "1",
        VERIFY_INTERVAL_SECONDS: "3600",
        REAPPLY_ON_DRIFT: "0",
        METRICS_PORT: "19478",
        METRICS_BIND: "127.0.0.1",
      },
    });
    const tso = () => /^tcp-segmentation-offload: (\w+)/m.exec(t.node.must("ethtool", ["-k", t.node.veth]).stdout)?.[1];
    await t.waitLog(/apply rc=0 status=applied/, "the apply status line");
    expect(tso()).toBe("off");
    t.node.deleteVeth();
    t.node.addVeth();
    // The poll is 1 s: the deadline of 5 polls is a bound on a hang, not a measurement.
    await until("the re-created veth re-tuned", () => tso() === "off", 5_000).catch((e) =>
      Promise.reject(new Error(`${e.message}; log:\n${t.log()}`)),
    );
    await t.waitLog(/nic re-apply rc=0 status=applied changed=\d+ .*scope=nic/, "the re-apply log line");
    expect(t.log()).toMatch(new RegExp(`nic changed +offload +${t.node.veth} tso on -> off`));
    const scrape = () => t.node.exec("curl", ["-sS", "http://127.0.0.1:19478/metrics"]).stdout;
    await until("the re-apply counted in the metrics", () => /edgetune_tuning_nic_reapplies_total\{[^}]*\} [1-9]/.test(scrape()));
  });
});
