import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { maxconnFitting, maxpipesFor, renderHaproxyConfig, validateProxySpec, type ProxySpec } from "../../components/proxy/haproxy";
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

/** Problems with an image reference: pinned means an exact version tag or a digest. */
function imagePinProblem(ref: string): string | undefined {
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return undefined;
  const tag = /:([^/:]+)$/.exec(ref)?.[1];
  if (!tag) return `${ref}: no tag (means latest)`;
  if (/latest/i.test(tag)) return `${ref}: uses latest`;
  if (!/^v?\d+\.\d+\.\d+/.test(tag)) return `${ref}: tag ${tag} is not an exact x.y.z version`;
  return undefined;
}

const REPO = join(IMAGE_DIR, "..");

/** What the tuner image must carry (the contract of the tuner loop): each command, and the Alpine package with it. */
const TUNER_CONTRACT_COMMANDS = ["sh", "sysctl", "ethtool", "ip", "nft", "iptables", "modprobe", "curl", "jq", "socat"];
const ALPINE_PACKAGE_OF: Record<string, string> = {
  sh: "base", // busybox, in the base image
  sysctl: "procps-ng",
  ethtool: "ethtool",
  ip: "iproute2",
  nft: "nftables",
  iptables: "iptables",
  "iptables-restore": "iptables",
  modprobe: "kmod",
  curl: "curl",
  jq: "jq",
  socat: "socat",
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
  const { stages } = parseDockerfile(readFileSync(join(IMAGE_DIR, "Dockerfile"), "utf8"));
  const stage = (name: string) => stages.find((s) => s.name === name);
  const lastUser = (s: Stage) => s.instructions.filter((i) => i.op === "USER").pop()?.args;

  it("has the proxy and tuner targets", () => {
    expect(stage("proxy")).toBeDefined();
    expect(stage("tuner")).toBeDefined();
  });

  it("pins every base image to an exact version, never latest", () => {
    for (const s of stages) expect(imagePinProblem(s.from), s.from).toBeUndefined();
    expect(stage("proxy")!.from).toMatch(/^haproxy:3\.2\.\d+/);
  });

  it("runs the proxy as a numeric non-root user with the edgetune entrypoint", () => {
    const proxy = stage("proxy")!;
    const user = lastUser(proxy);
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user!.split(":")[0])).toBeGreaterThan(0);
    const entrypoint = proxy.instructions.filter((i) => i.op === "ENTRYPOINT").pop()?.args;
    expect(JSON.parse(entrypoint!)).toEqual(["/usr/local/bin/edgetune-entrypoint"]);
    expect(
      proxy.instructions.some((i) => i.op === "COPY" && /\bentrypoint\.sh\s+\/usr\/local\/bin\/edgetune-entrypoint$/.test(i.args)),
    ).toBe(true);
    expect(existsSync(join(IMAGE_DIR, "entrypoint.sh"))).toBe(true);
  });

  it("runs tune.sh in the tuner, and installs every command tune.sh and tuner.sh call", () => {
    const tuner = stage("tuner")!;
    expect(tuner.from).toMatch(/^alpine:/);
    const packages = tuner.instructions
      .filter((i) => i.op === "RUN")
      .flatMap((i) => [...i.args.matchAll(/\bapk add (?:--no-cache )?([^&|;]+)/g)].flatMap((m) => m[1].trim().split(/\s+/)));
    const scripts = ["components/tuning/tune-engine.sh", "components/nodes/tuner.sh"].map((f) => readFileSync(join(REPO, f), "utf8"));
    const needed = new Set([...TUNER_CONTRACT_COMMANDS, ...probedCommands(scripts.join("\n"))]);
    for (const command of needed) {
      expect(Object.keys(ALPINE_PACKAGE_OF), `${command}: which Alpine package has it? add it to ALPINE_PACKAGE_OF`).toContain(command);
      const pkg = ALPINE_PACKAGE_OF[command];
      if (pkg !== "base") expect(packages, `${command} (${pkg})`).toContain(pkg);
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
    expect(loadgen.from).toMatch(/^node:\d+\.\d+\.\d+-bookworm-slim$/);
    const install = loadgen.instructions
      .filter((i) => i.op === "RUN")
      .map((i) => i.args)
      .join(" ");
    // wrk + iperf3 for the load, iproute2 for nstat (counter Jobs); node is the base image's.
    for (const pkg of ["wrk", "iperf3", "iproute2"]) expect(install.split(/\s+/)).toContain(pkg);
    expect(stage("fortio")!.from).toMatch(/^fortio\/fortio:\d+\.\d+\.\d+$/);
    expect(loadgen.instructions).toContainEqual({ op: "COPY", args: "--from=fortio /usr/bin/fortio /usr/local/bin/fortio" });
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
