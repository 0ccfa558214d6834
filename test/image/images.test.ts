import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { renderHaproxyConfig, type ProxySpec } from "../../components/proxy/haproxy";
import { renderTuneSh } from "../../components/tuning/render";
import { resolveProfile } from "../../components/tuning/profile";
import { buildImages, describeImages, netns, runInRootfs, startInRootfs, stopProcess, waitFor, type ImageTarget } from "../helpers/images";
import { run } from "../helpers/system";

// The images as they ship: built by scripts/build-images.sh (buildah over an mmdebstrap'd
// trixie base), their root filesystems exported, and each entrypoint run from that root
// filesystem (scripts/rootfs-run.sh: mount namespace + chroot) inside a network namespace.

const WARN = /^WARN kernel parameter below recommended value: (\S+) current="([^"]*)" recommended="([^"]*)"$/gm;

describeImages("the proxy image: its entrypoint checks the kernel and HAProxy serves through a rendered config", () => {
  const profile = resolveProfile("proxy", { extends: "recommended", ports: { listenPorts: [80, 8404, 8405] } });
  const spec: ProxySpec = {
    listeners: [{ name: "web", mode: "http", port: 80, backend: "app" }],
    backends: [{ name: "app", healthCheck: { type: "none" }, servers: [{ name: "a1", address: "127.0.0.1", port: 8080 }] }],
    management: { address: "127.0.0.1" },
    runtimeDir: "/tmp/run",
  };
  let roots: Record<ImageTarget, string>;
  let work: string;
  let ns: ReturnType<typeof netns> | undefined;
  const started: Array<Parameters<typeof stopProcess>[0]> = [];

  beforeAll(() => {
    roots = buildImages(["proxy", "loadgen"]);
    work = mkdtempSync(join(tmpdir(), "edgetune-image-proxy-"));
    writeFileSync(join(work, "haproxy.cfg"), renderHaproxyConfig(spec, { profile, nofileLimit: 4096 }));
    writeFileSync(join(work, "tune.sh"), renderTuneSh(profile));
    // The backend: nginx from the loadgen image (the benchmark's echo backend).
    writeFileSync(
      join(work, "nginx.conf"),
      [
        "daemon off; pid /tmp/nginx.pid; error_log stderr warn; worker_processes 1;",
        "events { worker_connections 256; }",
        "http { access_log off; client_body_temp_path /tmp/cb; proxy_temp_path /tmp/px; fastcgi_temp_path /tmp/fc;",
        "  uwsgi_temp_path /tmp/uw; scgi_temp_path /tmp/sc;",
        '  server { listen 127.0.0.1:8080; location / { return 200 "edgetune image backend\\n"; } } }',
        "",
      ].join("\n"),
    );
  }, 900_000);
  afterEach(async () => {
    for (const c of started.splice(0)) await stopProcess(c);
    ns?.del();
    ns = undefined;
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("starts HAProxy as uid 100 from the image, serves a request, and tune.sh check warned first", async () => {
    ns = netns("eIp");
    const backend = startInRootfs(ns.name, roots.loadgen, ["nginx", "-c", "/tmp/conf/nginx.conf"], {
      binds: { [work]: "/tmp/conf" },
      pidns: true,
    });
    started.push(backend.child);
    const proxy = startInRootfs(ns.name, roots.proxy, ["/usr/local/bin/edgetune-entrypoint"], {
      binds: { [join(work, "haproxy.cfg")]: "/etc/edgetune/haproxy.cfg", [join(work, "tune.sh")]: "/etc/edgetune/tune.sh" },
      env: { HAPROXY_CFG: "/etc/edgetune/haproxy.cfg", RUNTIME_DIR: "/tmp/run", EDGETUNE_SCOPE: "netns" },
      // The image's USER, as the pod spec runs it.
      user: "100:101",
      pidns: true,
    });
    started.push(proxy.child);
    const body = await waitFor(
      "a response through HAProxy",
      () => {
        if (proxy.child.exitCode !== null) throw new Error(`the entrypoint exited (${proxy.child.exitCode}):\n${proxy.log()}`);
        const r = run("ip", ["netns", "exec", ns!.name, "curl", "-s", "-m", "2", "http://127.0.0.1:80/"]);
        return r.code === 0 && r.stdout ? r.stdout : undefined;
      },
      20_000,
      () => `${proxy.log()}\n--- backend\n${backend.log()}`,
    );
    expect(body).toBe("edgetune image backend\n");
    const log = proxy.log();
    // tune.sh check, from inside the image, before HAProxy: the fresh namespace's defaults are below the profile.
    const warned = new Map([...log.matchAll(WARN)].map((m) => [m[1], { current: m[2], recommended: m[3] }]));
    expect(warned.get("net.core.somaxconn")).toEqual({ current: "4096", recommended: "65535" });
    expect(warned.has("net.ipv4.tcp_max_syn_backlog")).toBe(true);
    expect(log).toMatch(/^summary: check warnings=[1-9]\d* profile=proxy/m);
    expect(log).toMatch(/edgetune: maxconn \d+/);
    expect(log).not.toMatch(/ALERT/);
    // The HAProxy answering is the image's Debian 3.0 binary, running as the image's user: its
    // haproxy-netbind copy, since NET_BIND_SERVICE is in the bounding set here, whose file
    // capability (kept by the export) let uid 100 bind port 80.
    const pids = run("ip", ["netns", "pids", ns.name]).stdout.trim().split(/\s+/);
    const haproxy = pids
      .map((p) => ({
        p,
        exe: (() => {
          try {
            return readlinkSync(`/proc/${p}/exe`);
          } catch {
            return "";
          }
        })(),
      }))
      .filter((x) => /\/usr\/(sbin\/haproxy|local\/sbin\/haproxy-netbind)$/.test(x.exe));
    expect(haproxy.length).toBeGreaterThan(0);
    for (const h of haproxy) {
      expect(h.exe).toBe(join(roots.proxy, "usr/local/sbin/haproxy-netbind"));
      expect(run("sh", ["-c", `grep '^Uid:' /proc/${h.p}/status`]).stdout).toMatch(/^Uid:\s+100\s/);
    }
    const version = runInRootfs(ns.name, roots.proxy, ["haproxy", "-v"], { user: "100:101" });
    expect(version.stdout).toMatch(/^HAProxy version 3\.0\.\d+/);
  }, 60_000);
});

describeImages("the tuner image: the rendered tune.sh applies a profile to a network namespace", () => {
  const profile = resolveProfile("proxy", { extends: "recommended", ports: { listenPorts: [8000, 8404, 8405] } });
  let roots: Record<ImageTarget, string>;
  let work: string;
  let ns: ReturnType<typeof netns> | undefined;

  beforeAll(() => {
    roots = buildImages(["tuner"]);
    work = mkdtempSync(join(tmpdir(), "edgetune-image-tuner-"));
    writeFileSync(join(work, "tune.sh"), renderTuneSh(profile));
    mkdirSync(join(work, "state"));
    mkdirSync(join(work, "etc"));
  }, 900_000);
  afterAll(() => {
    ns?.del();
    rmSync(work, { recursive: true, force: true });
  });

  it("apply changes the namespace's sysctls, verify passes, restore puts them back", () => {
    ns = netns("eIt");
    const sysctl = (key: string) => run("ip", ["netns", "exec", ns!.name, "cat", `/proc/sys/${key.replace(/\./g, "/")}`]).stdout.trim();
    const before = { somaxconn: sysctl("net.core.somaxconn"), ports: sysctl("net.ipv4.ip_local_port_range") };
    expect(before.somaxconn).toBe("4096");
    // The image's entrypoint (/bin/sh /etc/edgetune/tune.sh) with its CMD's verb, as the tuner runs it.
    const tune = (verb: string) =>
      runInRootfs(ns!.name, roots.tuner, ["/bin/sh", "/etc/edgetune/tune.sh", verb], {
        binds: { [join(work, "tune.sh")]: "/etc/edgetune/tune.sh", [work]: "/edgetune" },
        env: { STATE_DIR: "/edgetune/state", ETC_ROOT: "/edgetune/etc", EDGETUNE_SCOPE: "netns", EDGETUNE_LOAD_MODULES: "0" },
      });
    const apply = tune("apply");
    // 3 = degraded: host-scope keys are skipped on purpose with EDGETUNE_SCOPE=netns; nothing may fail.
    expect([0, 3], apply.stdout + apply.stderr).toContain(apply.code);
    expect(apply.stdout).toMatch(/^summary: status=\w+ changed=[1-9]\d* .*failed=0 /m);
    expect(sysctl("net.core.somaxconn")).toBe("65535");
    expect(sysctl("net.ipv4.ip_local_port_range").replace(/\s+/g, " ")).not.toBe(before.ports.replace(/\s+/g, " "));
    const verify = tune("verify");
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^summary: verify status=ok /m);
    const restore = tune("restore");
    expect(restore.code, restore.stdout + restore.stderr).toBe(0);
    expect(sysctl("net.core.somaxconn")).toBe(before.somaxconn);
    expect(sysctl("net.ipv4.ip_local_port_range")).toBe(before.ports);
  });
});
