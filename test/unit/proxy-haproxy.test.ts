import { readdirSync } from "node:fs";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  checkProxySpec,
  fdBudgetLine,
  maxconnFitting,
  maxpipesFor,
  renderHaproxyConfig,
  validateProxySpec,
  type ProxySpec,
} from "../../components/proxy/haproxy";
import { PRESET_NAMES } from "../../components/tuning/presets";
import { resolveProfile } from "../../components/tuning/profile";
import { loadStack, parseStack, readStackConfig } from "../../loader/stack-config";
import { renderStack } from "../../render/render";
import { describeSystem, run } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");
const profile = resolveProfile("edge", { extends: "recommended", ports: { listenPorts: [80, 5201, 8404, 8405] } });
const spec: ProxySpec = {
  listeners: [
    { name: "web", mode: "http", port: 80, backend: "app" },
    { name: "bulk", mode: "tcp", port: 5201, backend: "stream" },
  ],
  backends: [
    {
      name: "app",
      healthCheck: { type: "http", path: "/healthz", expectStatus: 200 },
      servers: [{ name: "a1", address: "10.0.0.1", port: 8080, softLimit: 100, hardLimit: 250 }],
    },
    { name: "stream", servers: [{ name: "s1", address: "10.0.0.2", port: 5201 }] },
  ],
};
const issuesOf = (input: unknown, p = profile) => checkProxySpec(input, { profile: p }).issues;
/** The value HAProxy runs with unless the environment says otherwise (the entrypoint's). */
const rendered = (cfg: string, key: "maxconn" | "maxpipes") =>
  Number(new RegExp(`^ {2}presetenv EDGETUNE_${key.toUpperCase()} (\\d+)$`, "m").exec(cfg)?.[1] ?? NaN);

describe("renderHaproxyConfig: global tuning derived from the node", () => {
  it("sets the listen backlog to the profile's somaxconn, or the kernel default without one", () => {
    expect(renderHaproxyConfig(spec, { profile })).toMatch(/bind 0\.0\.0\.0:80 shards by-thread backlog 65535 tfo$/m);
    const bare = resolveProfile("bare", { ports: { listenPorts: [] } });
    expect(renderHaproxyConfig(spec, { profile: bare })).toMatch(/bind 0\.0\.0\.0:80 shards by-thread backlog 4096$/m);
  });

  it("fits maxconn and maxpipes into RLIMIT_NOFILE (2 fds per connection, 2 per pipe)", () => {
    const cfg = renderHaproxyConfig(spec, { profile, cpus: 2, nofileLimit: 20000 });
    const maxconn = rendered(cfg, "maxconn");
    const maxpipes = rendered(cfg, "maxpipes");
    expect(2 * maxconn + 2 * maxpipes).toBeLessThanOrEqual(20000 - 64);
    expect(maxconn).toBeGreaterThan(7000);
    expect(maxpipes).toBe(Math.floor(maxconn / 4));
  });

  it("takes maxconn and maxpipes from the environment, the rendered values as defaults, and writes the formula for the entrypoint", () => {
    const cfg = renderHaproxyConfig(spec, { profile, cpus: 2, nofileLimit: 20000 });
    const global = cfg.slice(cfg.indexOf("global\n"), cfg.indexOf("\ndefaults"));
    // presetenv before use: HAProxy expands "${...}" while it parses, line by line.
    expect(global.split("\n").filter((l) => /EDGETUNE_/.test(l))).toEqual([
      `  presetenv EDGETUNE_MAXCONN ${rendered(cfg, "maxconn")}`,
      `  presetenv EDGETUNE_MAXPIPES ${rendered(cfg, "maxpipes")}`,
      '  maxconn "${EDGETUNE_MAXCONN}"',
      '  maxpipes "${EDGETUNE_MAXPIPES}"',
    ]);
    const { globals } = validateProxySpec(spec, { profile, cpus: 2, nofileLimit: 20000 });
    expect(cfg).toContain(
      `\n# edgetune-fd-budget: maxconn=${globals.maxconn} reserved-fds=${globals.reservedFds} fds-per-conn=5/2 pipes-per-conn=1/4\nglobal\n`,
    );
    expect(maxconnFitting(20000, globals.budget)).toBe(globals.maxconn);
    expect(maxpipesFor(globals.maxconn, globals.budget)).toBe(globals.maxpipes);
    const noSplice = validateProxySpec({ ...spec, listeners: [spec.listeners[0]] }, { profile, cpus: 2, nofileLimit: 20000 }).globals;
    expect(fdBudgetLine(noSplice.maxconn, noSplice.budget)).toBe(
      `# edgetune-fd-budget: maxconn=${noSplice.maxconn} reserved-fds=${noSplice.reservedFds} fds-per-conn=2/1`,
    );
  });

  it("leaves pipes out of the budget when nothing splices", () => {
    const noSplice: ProxySpec = { ...spec, listeners: [spec.listeners[0], { ...spec.listeners[1], splice: "off" }] };
    const cfg = renderHaproxyConfig(noSplice, { profile, cpus: 2, nofileLimit: 20000 });
    expect(cfg).not.toMatch(/maxpipes|splice/);
    expect(rendered(cfg, "maxconn")).toBeGreaterThan(9500);
  });

  it("renders tune.pipesize only when set and something splices", () => {
    expect(renderHaproxyConfig(spec, { profile, cpus: 2, nofileLimit: 20000 })).not.toMatch(/tune\.pipesize/);
    expect(renderHaproxyConfig({ ...spec, pipesize: 1048576 }, { profile, cpus: 2, nofileLimit: 20000 })).toMatch(
      /^ {2}tune\.pipesize 1048576$/m,
    );
    const noSplice: ProxySpec = { ...spec, pipesize: 1048576, listeners: [spec.listeners[0], { ...spec.listeners[1], splice: "off" }] };
    expect(renderHaproxyConfig(noSplice, { profile, cpus: 2, nofileLimit: 20000 })).not.toMatch(/tune\.pipesize/);
    expect(issuesOf({ ...spec, pipesize: 100 }).map((i) => i.path)).toContain("proxy.pipesize");
  });

  it("logs failed sessions only by default, every session or none on request", () => {
    const frontends = (accessLog?: ProxySpec["accessLog"]) => {
      const cfg = renderHaproxyConfig({ ...spec, ...(accessLog ? { accessLog } : {}) }, { profile, cpus: 2, nofileLimit: 20000 });
      expect(cfg).toMatch(/^ {2}log stdout format raw local0 info$/m);
      return spec.listeners.map((l) =>
        cfg
          .split(`frontend ${l.name}\n`)[1]
          .split("\n\n")[0]
          .split("\n")
          .filter((x) => /^ {2}(no log|option (http|tcp)log|option dontlog-normal)$/.test(x)),
      );
    };
    expect(frontends()).toEqual([
      ["  option httplog", "  option dontlog-normal"],
      ["  option tcplog", "  option dontlog-normal"],
    ]);
    expect(frontends("all")).toEqual([["  option httplog"], ["  option tcplog"]]);
    expect(frontends("off")).toEqual([["  no log"], ["  no log"]]);
    expect(issuesOf({ ...spec, accessLog: "some" as never }).map((i) => i.path)).toContain("proxy.accessLog");
  });

  it("uses the profile's nofileHard when the node does not say, and rejects a maxconn that does not fit", () => {
    const big = resolveProfile("big", { extends: "throughput", ports: { listenPorts: [80, 5201, 8404, 8405] } });
    expect(rendered(renderHaproxyConfig(spec, { profile: big }), "maxconn")).toBeGreaterThan(400000);
    expect(issuesOf({ ...spec, maxconn: 100000 })).toEqual([
      expect.objectContaining({ path: "proxy.maxconn", message: expect.stringContaining("RLIMIT_NOFILE 65536 allows at most") }),
    ]);
  });

  it("sets threads from the CPUs, or leaves them to HAProxy", () => {
    expect(renderHaproxyConfig(spec, { profile, cpus: 4 })).toMatch(/^ {2}nbthread 4$/m);
    expect(renderHaproxyConfig(spec, { profile })).not.toMatch(/nbthread/);
    expect(renderHaproxyConfig({ ...spec, threads: 3 }, { profile, cpus: 8 })).toMatch(/^ {2}nbthread 3$/m);
  });

  it("renders splice modes, per-server limits and health checks", () => {
    const cfg = renderHaproxyConfig(spec, { profile });
    expect(cfg).toContain("  option splice-request\n  option splice-response");
    expect(
      renderHaproxyConfig({ ...spec, listeners: [spec.listeners[0], { ...spec.listeners[1], splice: "auto" }] }, { profile }),
    ).toContain("option splice-auto");
    expect(cfg).toContain("server a1 10.0.0.1:8080 maxconn 100 maxqueue 150 check inter 2s");
    expect(cfg).toContain("option httpchk GET /healthz\n  http-check expect status 200");
    expect(cfg).toMatch(/backend stream\n {2}mode tcp\n {2}balance leastconn/);
    expect(cfg).toContain("hard-stop-after 30s");
    expect(cfg).toMatch(/frontend metrics[\s\S]*use-service prometheus-exporter if \{ path \/metrics \}/);
    expect(cfg).toMatch(/frontend health[\s\S]*monitor-uri \/healthz/);
  });
});

/** A profile whose NIC takes IRQs on CPUs 0-1 and steers packets (RPS) to 4 as well. */
const pinned = resolveProfile("pinned", {
  extends: "recommended",
  ports: { listenPorts: [80, 5201, 8404, 8405] },
  nics: [{ match: "ens*", irqAffinity: { cpus: "0-1" }, rps: { cpus: "1,4" } }],
});

describe("renderHaproxyConfig: TCP Fast Open follows the profile", () => {
  const binds = (cfg: string) => cfg.split("\n").filter((l) => /^ {2}bind /.test(l));
  it("turns on tfo on every listener's bind when tcp_fastopen has the server bit, and not on the service endpoints", () => {
    for (const value of [2, 3]) {
      const p = resolveProfile("tfo", { sysctls: { "net.ipv4.tcp_fastopen": value }, ports: { listenPorts: [80, 5201, 8404, 8405] } });
      const b = binds(renderHaproxyConfig(spec, { profile: p }));
      expect(b.filter((l) => / tfo$/.test(l))).toEqual([
        "  bind 0.0.0.0:80 shards by-thread backlog 4096 tfo",
        "  bind 0.0.0.0:5201 shards by-thread backlog 4096 tfo",
      ]);
      expect(b.filter((l) => /:840[45]"?$/.test(l))).toHaveLength(2);
    }
  });
  it("leaves tfo off for a client-only value (1), 0, or no tcp_fastopen at all", () => {
    for (const sysctls of [{ "net.ipv4.tcp_fastopen": 1 }, { "net.ipv4.tcp_fastopen": 0 }, {}]) {
      const p = resolveProfile("notfo", { sysctls, ports: { listenPorts: [80, 5201, 8404, 8405] } });
      const cfg = renderHaproxyConfig(spec, { profile: p });
      expect(cfg).not.toMatch(/ tfo/);
      expect(validateProxySpec(spec, { profile: p }).globals.tfo).toBe(false);
    }
  });
});

describe("renderHaproxyConfig: cpuMap pins threads to the NICs' CPUs", () => {
  it("auto: one thread per IRQ/RPS CPU, in order, whatever the node's CPU count", () => {
    const cfg = renderHaproxyConfig({ ...spec, cpuMap: "auto" }, { profile: pinned, cpus: 8 });
    expect(cfg).toMatch(/^ {2}nbthread 3$/m);
    expect(cfg).toMatch(/^ {2}cpu-map auto:1\/1-3 0-1 4$/m);
    expect(validateProxySpec({ ...spec, cpuMap: "auto" }, { profile: pinned }).globals.cpuMap).toMatchObject({
      cpus: [0, 1, 4],
      cpuList: "0-1,4",
    });
  });
  it("off (the default) renders no cpu-map", () => {
    expect(renderHaproxyConfig(spec, { profile: pinned, cpus: 8 })).not.toMatch(/cpu-map/);
  });
  it("refuses auto without a CPU set in the profile, a contradicting threads, and CPUs the node lacks", () => {
    expect(issuesOf({ ...spec, cpuMap: "auto" })).toEqual([
      {
        path: "proxy.cpuMap",
        message: expect.stringMatching(
          /^got "auto"; profile "edge" names no CPU set for its NICs: set nics\[\]\.irqAffinity\.cpus or nics\[\]\.rps\.cpus/,
        ),
      },
    ]);
    expect(issuesOf({ ...spec, cpuMap: "auto", threads: 2 }, pinned)).toEqual([
      {
        path: "proxy.threads",
        message: expect.stringMatching(
          /^got 2; cpuMap: auto runs one thread per NIC CPU of profile "pinned" \(0-1,4\), so threads must be 3 or unset/,
        ),
      },
    ]);
    expect(checkProxySpec({ ...spec, cpuMap: "auto" }, { profile: pinned, cpus: 4 }).issues).toEqual([
      { path: "proxy.cpuMap", message: expect.stringMatching(/names CPU 4 \(0-1,4\), but this node has 4 CPUs \(0-3\)/) },
    ]);
    expect(issuesOf({ ...spec, cpuMap: "pinned" })[0]).toMatchObject({ path: "proxy.cpuMap" });
  });
});

describe("checkProxySpec: clear errors naming the path", () => {
  it("reports port collisions, including with the service endpoints", () => {
    const issues = issuesOf({ ...spec, listeners: [spec.listeners[0], { ...spec.listeners[1], port: 80 }], metricsPort: 8405 });
    expect(issues.map((i) => i.path)).toEqual(["proxy.listeners[1].port", "proxy.healthPort"]);
    expect(issues[0].message).toContain('port 80 is already used by listener "web" (proxy.listeners[0].port)');
  });

  it("rejects listen ports inside the ephemeral range unless the profile reserves them", () => {
    const unreserved = resolveProfile("unreserved", { extends: "recommended" });
    const issues = issuesOf(spec, unreserved);
    // Port 80 is below the range; the others are inside it.
    expect(issues.map((i) => i.path)).toEqual(["proxy.listeners[1].port", "proxy.metricsPort", "proxy.healthPort"]);
    expect(issues[0].message).toContain("ip_local_port_range 1024 65535");
    expect(issues[0].message).toContain("profiles.unreserved.ports.listenPorts");
    // The kernel default range 32768-60999 does not contain these ports.
    expect(issuesOf(spec, resolveProfile("plain", {}))).toEqual([]);
  });

  it("rejects backends without servers, unknown backends, bad limits and unknown fields", () => {
    const issues = issuesOf({
      listeners: [
        { name: "web", mode: "http", port: 80, backend: "nope" },
        { name: "h", mode: "http", port: 81, backend: "empty", splice: "always" },
      ],
      backends: [
        { name: "empty", servers: [] },
        { name: "lim", servers: [{ name: "s", address: "10.0.0.1", port: 1, softLimit: 10, hardLimit: 10 }] },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual([
      "proxy.backends[0].servers",
      "proxy.backends[1].servers[0].hardLimit",
      "proxy.listeners[0].backend",
      "proxy.listeners[1].splice",
    ]);
    expect(issuesOf({ ...spec, listeners: [{ ...spec.listeners[0], colour: "red" }] })[0]).toEqual({
      path: "proxy.listeners[0]",
      message: 'unknown field "colour"',
    });
    expect(issuesOf({ ...spec, listeners: [{ ...spec.listeners[0], port: 70000 }] })[0].path).toBe("proxy.listeners[0].port");
  });

  it("rejects one backend used in two modes, and names with spaces that would break the config", () => {
    expect(issuesOf({ ...spec, listeners: [spec.listeners[0], { ...spec.listeners[1], backend: "app" }] }).map((i) => i.path)).toEqual([
      "proxy.listeners[1].mode",
    ]);
    expect(issuesOf({ ...spec, backends: [{ ...spec.backends[0], name: "app x" }, spec.backends[1]] }).map((i) => i.path)).toContain(
      "proxy.backends[0].name",
    );
    expect(
      issuesOf({
        ...spec,
        backends: [spec.backends[0], { name: "stream", servers: [{ name: "s1", address: "1.2.3.4 check", port: 1 }] }],
      }).map((i) => i.path),
    ).toEqual(["proxy.backends[1].servers[0].address"]);
  });
});

describeSystem(
  "haproxy -c accepts every rendered config",
  ["haproxy"],
  () => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-hacfg-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const check = (cfg: string, label: string) => {
      const path = join(dir, `${label}.cfg`);
      // haproxy -c creates no sockets, but the runtime dir must exist for the stats socket line to parse.
      writeFileSync(path, cfg.replace(/\/var\/run\/haproxy/g, dir));
      // As the pod sets it from status.hostIP (the default management address).
      const r = run("haproxy", ["-c", "-f", path], { env: { ...process.env, EDGETUNE_MANAGEMENT_ADDRESS: "10.0.0.5" } });
      expect(r.code, `${label}: ${r.stdout}${r.stderr}`).toBe(0);
      // A server named by DNS that does not resolve here starts down (init-addr …,none): the only warning allowed.
      const warnings = (r.stdout + r.stderr).split("\n").filter((l) => /\[WARNING\]/.test(l));
      expect(warnings.filter((l) => !/could not resolve address '[a-z0-9.-]+\.svc\.cluster\.local', disabling server/.test(l))).toEqual([]);
    };
    for (const preset of PRESET_NAMES) {
      it(`preset ${preset}`, () => {
        const p = resolveProfile(preset, { extends: preset, ports: { listenPorts: [80, 5201, 8404, 8405] } });
        check(renderHaproxyConfig(spec, { profile: p, cpus: 2, nofileLimit: 20000 }), preset);
      });
    }
    it("cpuMap: auto with TFO", () => {
      const cfg = renderHaproxyConfig({ ...spec, cpuMap: "auto" }, { profile: pinned, cpus: 8, nofileLimit: 20000 });
      expect(cfg).toMatch(/ tfo$/m);
      check(cfg, "cpumap");
    });
    it("every stack with a proxy section", () => {
      const stacks = readdirSync(join(ROOT, "stacks"))
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => !!s);
      let checked = 0;
      for (const stack of stacks) {
        const plan = loadStack(stack, ROOT) as ReturnType<typeof loadStack> & { proxy?: { spec: ProxySpec; profile: string } };
        if (!plan.proxy) continue;
        check(
          renderHaproxyConfig(plan.proxy.spec, { profile: plan.profiles[plan.proxy.profile], cpus: 2, nofileLimit: 20000 }),
          `stack-${stack}`,
        );
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
    });
  },
  false,
);

describe("a stack with cpuMap: auto", () => {
  const config = (nics: unknown[]) => {
    const c = readStackConfig("prod", ROOT);
    const profiles = c.profiles as Record<string, Record<string, unknown>>;
    profiles.proxy = { ...profiles.proxy, nics };
    c.proxy = { ...(c.proxy as object), cpuMap: "auto" };
    return c;
  };
  it("renders the thread → CPU mapping in PLAN.md and the cpu-map line in haproxy.cfg", () => {
    const files = renderStack(parseStack("prod", config([{ match: "ens*", irqAffinity: { cpus: "2-3" }, rps: { cpus: "6" } }])));
    expect(files["PLAN.md"]).toContain(
      'HAProxy placement (cpuMap: auto): 3 threads, thread 1→CPU 2, thread 2→CPU 3, thread 3→CPU 6 — the CPUs of profile "proxy"\'s NIC IRQ affinity and RPS (`cpu-map auto:1/1-3 2-3 6`).',
    );
    expect(files["proxy/haproxy.cfg"]).toMatch(/^ {2}nbthread 3\n(?: {2}#.*\n)? {2}cpu-map auto:1\/1-3 2-3 6$/m);
  });
  it("refuses it when the proxy's profile names no NIC CPU set, naming the key", () => {
    expect(() => parseStack("prod", config([{ match: "ens*", offloads: { gro: true } }]))).toThrow(
      /proxy\.cpuMap: got "auto"; profile "proxy" names no CPU set for its NICs/,
    );
  });
});
