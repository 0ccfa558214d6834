import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { maxconnFitting, maxpipesFor, renderHaproxyConfig, validateProxySpec, type ProxySpec } from "../../components/proxy/haproxy";
import { PROXY_GID, PROXY_UID } from "../../components/proxy/k8s-proxy";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem, have, run } from "../helpers/system";

const IMAGE_DIR = join(__dirname, "..", "..", "proxy-image");

interface Stage {
  name?: string;
  from: string;
  instructions: Array<{ op: string; args: string }>;
}

/** Parses a Dockerfile into stages, resolving global ARG defaults in FROM lines. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const argsText = rest.join(" ");
    if (op.toUpperCase() === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(argsText);
      if (!m) throw new Error(`bad FROM: ${line}`);
      const from = m[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? `<unset ${a ?? b}>`);
      stages.push({ name: m[2], from, instructions: [] });
    } else if (stages.length === 0 && op.toUpperCase() === "ARG") {
      const [k, v] = argsText.split("=", 2);
      if (v !== undefined) args[k] = v;
    } else stages[stages.length - 1]?.instructions.push({ op: op.toUpperCase(), args: argsText });
  }
  return { args, stages };
}

/** Problems with an image reference: pinned means an exact version tag, a Debian point release or a digest. */
function imagePinProblem(ref: string): string | undefined {
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return undefined;
  // Debian numbers its point releases major.minor (13.2): that tag is exact.
  if (/^debian:\d+\.\d+(-slim)?$/.test(ref)) return undefined;
  const tag = /:([^/:]+)$/.exec(ref)?.[1];
  if (!tag) return `${ref}: no tag (means latest)`;
  if (/latest/i.test(tag)) return `${ref}: uses latest`;
  if (!/^v?\d+\.\d+\.\d+/.test(tag)) return `${ref}: tag ${tag} is not an exact x.y.z version`;
  return undefined;
}

const REPO = join(IMAGE_DIR, "..");

/** What the tuner image must carry (the contract of the tuner loop): each command, and the Debian package with it. */
const TUNER_CONTRACT_COMMANDS = ["sh", "sysctl", "ethtool", "ip", "nft", "iptables", "modprobe", "curl", "jq", "socat"];
const DEBIAN_PACKAGE_OF: Record<string, string> = {
  sh: "base", // dash, essential in every Debian base
  sysctl: "procps",
  ethtool: "ethtool",
  ip: "iproute2",
  nft: "nftables",
  iptables: "iptables",
  "iptables-restore": "iptables",
  modprobe: "kmod",
  curl: "curl",
  jq: "jq",
  socat: "socat",
  // Host-only: the host's irqbalance service; in a container tune.sh reports it missing.
  systemctl: "host",
};

/** Commands a script checks for before calling them (`command -v X`, `have X`, `have "$VAR"` with VAR=${VAR:-X}). */
function probedCommands(script: string): string[] {
  const defaults = Object.fromEntries([...script.matchAll(/^([A-Z_]+)=\$\{\1:-([\w.-]+)\}/gm)].map((m) => [m[1], m[2]]));
  const found = new Set<string>();
  for (const m of script.matchAll(/\b(?:command -v|have) +"?(\$\{?([A-Z_]+)\}?|[\w.-]+)"?/g)) {
    const name = m[2] !== undefined ? defaults[m[2]] : m[1];
    if (name && name !== "$1") found.add(name);
  }
  return [...found];
}

describe("proxy-image/Dockerfile shape", () => {
  const text = readFileSync(join(IMAGE_DIR, "Dockerfile"), "utf8");
  const { stages } = parseDockerfile(text);
  /** The packages a stage's RUN steps install with apt-get. */
  const installed = (s: Stage) =>
    s.instructions
      .filter((i) => i.op === "RUN")
      .flatMap((i) => [...i.args.matchAll(/\bapt-get install ((?:-\S+ )*)([^&|;]+)/g)].flatMap((m) => m[2].trim().split(/\s+/)));
  const stage = (name: string) => stages.find((s) => s.name === name);
  const lastUser = (s: Stage) => s.instructions.filter((i) => i.op === "USER").pop()?.args;

  it("has the proxy and tuner targets", () => {
    expect(stage("proxy")).toBeDefined();
    expect(stage("tuner")).toBeDefined();
  });

  it("builds every image from one pinned Debian trixie base, passed in as BASE", () => {
    expect(stages.map((s) => s.name).sort()).toEqual(["loadgen", "proxy", "tuner"]);
    for (const s of stages) {
      expect(imagePinProblem(s.from), s.from).toBeUndefined();
      expect(s.from).toMatch(/^debian:13\.\d+-slim$/);
    }
    expect(text).toMatch(/^FROM \$\{BASE\} AS proxy$/m);
  });

  it("installs Debian's HAProxy and fails the build on another branch than the LTS it promises", () => {
    const proxy = stage("proxy")!;
    expect(proxy.instructions).toContainEqual({ op: "ARG", args: "HAPROXY_BRANCH=3.0" });
    const install = installed(proxy);
    expect(install).toContain("haproxy");
    const run = proxy.instructions.find((i) => i.op === "RUN")!.args;
    expect(run).toContain('haproxy -v | grep -q "^HAProxy version ${HAPROXY_BRANCH}\\."');
    expect(run).toContain("setcap cap_net_bind_service=+ep /usr/local/sbin/haproxy-netbind");
  });

  it("runs the proxy as a numeric non-root user with the edgetune entrypoint", () => {
    const proxy = stage("proxy")!;
    const user = lastUser(proxy);
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user!.split(":")[0])).toBeGreaterThan(0);
    // The pod spec runs it as the same ids (runAsNonRoot is checked against the number).
    expect(user).toBe(`${PROXY_UID}:${PROXY_GID}`);
    const entrypoint = proxy.instructions.filter((i) => i.op === "ENTRYPOINT").pop()?.args;
    expect(JSON.parse(entrypoint!)).toEqual(["/usr/local/bin/edgetune-entrypoint"]);
    expect(
      proxy.instructions.some((i) => i.op === "COPY" && /\bentrypoint\.sh\s+\/usr\/local\/bin\/edgetune-entrypoint$/.test(i.args)),
    ).toBe(true);
    expect(existsSync(join(IMAGE_DIR, "entrypoint.sh"))).toBe(true);
  });

  it("runs tune.sh in the tuner, and installs every command tune.sh and tuner.sh call", () => {
    const tuner = stage("tuner")!;
    const packages = installed(tuner);
    const scripts = ["components/tuning/tune-engine.sh", "components/nodes/tuner.sh"].map((f) => readFileSync(join(REPO, f), "utf8"));
    const needed = new Set([...TUNER_CONTRACT_COMMANDS, ...probedCommands(scripts.join("\n"))]);
    for (const command of needed) {
      expect(Object.keys(DEBIAN_PACKAGE_OF), `${command}: which Debian package has it? add it to DEBIAN_PACKAGE_OF`).toContain(command);
      const pkg = DEBIAN_PACKAGE_OF[command];
      if (pkg !== "base" && pkg !== "host") expect(packages, `${command} (${pkg})`).toContain(pkg);
    }
    expect(JSON.parse(tuner.instructions.find((i) => i.op === "ENTRYPOINT")!.args)).toEqual(["/bin/sh", "/etc/edgetune/tune.sh"]);
  });

  it("finds the commands a script probes for, through the variables that name them", () => {
    const script =
      'NFT=${NFT:-nft}\nhave() { command -v "$1" >/dev/null 2>&1; }\nhave "$NFT" && have modprobe\ncommand -v socat >/dev/null\n';
    expect(probedCommands(script).sort()).toEqual(["modprobe", "nft", "socat"]);
  });

  it("builds the loadgen image with every program the benchmark Jobs run", () => {
    const loadgen = stage("loadgen")!;
    // wrk + iperf3 for the load, iproute2 for nstat (counter Jobs), nodejs for the normalizer, nginx as the echo backend.
    for (const pkg of ["wrk", "iperf3", "iproute2", "nodejs", "nginx-light"]) expect(installed(loadgen)).toContain(pkg);
    // Everything from Debian: no binary copied in from another image.
    expect(loadgen.instructions.filter((i) => i.op === "COPY")).toEqual([]);
    expect(lastUser(loadgen)).toBe("65534:65534");
  });

  it("the lint itself rejects what it must", () => {
    expect(imagePinProblem("haproxy:latest")).toMatch(/latest/);
    expect(imagePinProblem("haproxy")).toMatch(/no tag/);
    expect(imagePinProblem("haproxy:3.2-alpine")).toMatch(/exact/);
    expect(imagePinProblem("registry:5000/haproxy")).toMatch(/no tag/);
    expect(imagePinProblem(`haproxy@sha256:${"a".repeat(64)}`)).toBeUndefined();
  });
});

describeSystem(
  "proxy-image/entrypoint.sh lint",
  ["shellcheck"],
  () => {
    it("is shellcheck-clean as POSIX sh", () => {
      const r = run("shellcheck", ["-s", "sh", join(IMAGE_DIR, "entrypoint.sh")]);
      expect(r.code, r.stdout).toBe(0);
    });
  },
  false,
);

describe("proxy-image/entrypoint.sh fits maxconn into the real fd limit by the renderer's formula", () => {
  const profile = resolveProfile("proxy", { extends: "recommended", ports: { listenPorts: [80, 5201, 8404, 8405] } });
  const spliced: ProxySpec = {
    listeners: [
      { name: "web", mode: "http", port: 80, backend: "app" },
      { name: "bulk", mode: "tcp", port: 5201, backend: "bulk" },
    ],
    backends: [
      { name: "app", servers: [{ name: "a1", address: "10.0.0.1", port: 8080 }] },
      { name: "bulk", servers: [{ name: "b1", address: "10.0.0.2", port: 5201 }] },
    ],
  };
  const copied: ProxySpec = { ...spliced, listeners: [spliced.listeners[0]], backends: [spliced.backends[0]] };
  const work = mkdtempSync(join(tmpdir(), "edgetune-entry-fit-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  // Stands in for HAProxy: shows the environment and limits it was started with.
  const fake = join(work, "haproxy");
  writeFileSync(fake, '#!/bin/sh\necho "maxconn=${EDGETUNE_MAXCONN:-} maxpipes=${EDGETUNE_MAXPIPES:-} soft=$(ulimit -S -n)"\n', {
    mode: 0o755,
  });
  const hard = Number(run("sh", ["-c", "ulimit -H -n"]).stdout.trim()) || 1024;
  const shells = ["sh", "dash", "busybox"].filter(have);

  const start = (shell: string, cfg: string, nofile: number, env: Record<string, string> = {}) => {
    const sh = shell === "busybox" ? ["busybox", "sh"] : [shell];
    // Lowering a hard limit needs no privilege; the soft one starts low, as many runtimes leave it.
    const script = `ulimit -n ${nofile} && ulimit -S -n ${Math.min(nofile, 256)} && exec ${sh.join(" ")} ${join(IMAGE_DIR, "entrypoint.sh")}`;
    const r = run(sh[0], [...sh.slice(1), "-c", script], {
      env: {
        PATH: process.env.PATH,
        HAPROXY_BIN: fake,
        HAPROXY_CFG: cfg,
        TUNE_SH: join(work, "none"),
        RUNTIME_DIR: join(work, "run"),
        // The stand-in exits at once; the config watch is test/kernel/proxy-reload.test.ts's.
        CONFIG_POLL_SECONDS: "0",
        ...env,
      },
    });
    const m = /^maxconn=(\d*) maxpipes=(\d*) soft=(\d+)$/m.exec(r.stdout);
    return {
      code: r.code,
      stderr: r.stderr,
      maxconn: Number(m?.[1] || NaN),
      maxpipes: m?.[2] ? Number(m[2]) : undefined,
      soft: Number(m?.[3]),
    };
  };

  for (const [name, spec] of [
    ["splicing", spliced],
    ["not splicing", copied],
  ] as const) {
    it(`${name}: the same maxconn and maxpipes as the renderer for every limit, in every sh here, the soft limit raised to the hard one`, () => {
      // Rendered for a node with more fds than this machine gives: the entrypoint must lower it.
      const cfg = join(work, `${name}.cfg`);
      writeFileSync(cfg, renderHaproxyConfig(spec, { profile, nofileLimit: 1048576 }));
      const { globals } = validateProxySpec(spec, { profile, nofileLimit: 1048576 });
      for (const shell of shells)
        for (const nofile of [...new Set([1024, 2000, 4096, hard])].filter((n) => n <= hard)) {
          const r = start(shell, cfg, nofile);
          expect(r.code, `${shell} ${nofile}: ${r.stderr}`).toBe(0);
          const want = Math.min(globals.maxconn, Math.max(1, maxconnFitting(nofile, globals.budget)));
          expect([r.maxconn, r.maxpipes], `${shell} ulimit ${nofile}`).toEqual([want, maxpipesFor(want, globals.budget)]);
          expect(r.soft).toBe(nofile);
          // One line says what it chose and why.
          expect(r.stderr.split("\n").filter((l) => /edgetune: maxconn/.test(l))).toEqual([
            expect.stringMatching(
              new RegExp(
                `^WARN edgetune: maxconn ${want}(, maxpipes \\d+)? \\(not ${globals.maxconn} from the config\\): ulimit -Hn ${nofile} fits`,
              ),
            ),
          ]);
        }
    });
  }

  it("keeps the configured value when the limit holds it, and honours EDGETUNE_MAXCONN within the limit", () => {
    const cfg = join(work, "small.cfg");
    writeFileSync(cfg, renderHaproxyConfig({ ...spliced, maxconn: 300 }, { profile, nofileLimit: 4096 }));
    const r = start("sh", cfg, Math.min(hard, 4096));
    expect([r.code, r.maxconn, r.maxpipes]).toEqual([0, 300, 75]);
    expect(r.stderr).toMatch(/^INFO edgetune: maxconn 300, maxpipes 75 from the config: ulimit -Hn \d+ fits/m);
    expect(start("sh", cfg, 4096, { EDGETUNE_MAXCONN: "1000" })).toMatchObject({ code: 0, maxconn: 1000, maxpipes: 250 });
    expect(start("sh", cfg, 1024, { EDGETUNE_MAXCONN: "100000" }).maxconn).toBe(
      maxconnFitting(1024, validateProxySpec(spliced, { profile, nofileLimit: 4096 }).globals.budget),
    );
    for (const value of ["lots", "0", "1e9", "99999999999999999999"]) {
      const bad = start("sh", cfg, 4096, { EDGETUNE_MAXCONN: value });
      expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining(`EDGETUNE_MAXCONN=${value}; allowed: an integer 1-999999999`)]);
    }
  });

  it("leaves a config without the budget line as it is", () => {
    const cfg = join(work, "own.cfg");
    writeFileSync(cfg, "global\n  maxconn 100\n");
    const r = start("sh", cfg, 1024);
    expect([r.code, r.maxconn]).toEqual([0, NaN]);
    expect(r.stderr).toContain(`INFO edgetune: no edgetune fd budget line in ${cfg}; maxconn is what the config says`);
  });
});
