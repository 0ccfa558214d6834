import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeSystem, run } from "../helpers/system";

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

  it("runs tune.sh in the tuner, and installs the tools it calls", () => {
    const tuner = stage("tuner")!;
    const install = tuner.instructions
      .filter((i) => i.op === "RUN")
      .map((i) => i.args)
      .join(" ");
    for (const pkg of ["ethtool", "iproute2", "procps-ng"]) expect(install).toContain(pkg);
    expect(JSON.parse(tuner.instructions.find((i) => i.op === "ENTRYPOINT")!.args)).toEqual(["/bin/sh", "/etc/edgetune/tune.sh"]);
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
