import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { SCENARIO_NAMES } from "../../components";
import type { LabReport } from "../../components/lab/analysis";
import { hostSysctls, labNamespaces, processesUnder } from "../helpers/lab";
import { describeSystem, run } from "../helpers/system";
import { until } from "../helpers/wait";
import { loadStack } from "../../loader/stack-config";
import { readMachineFacts } from "../../loader/machine-facts";
import { renderStack } from "../../render/render";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "edgetune.js");

describeSystem("edgetune lab (quick)", ["ip", "haproxy", "nginx", "iperf3", "wrk", "curl", "nstat", "setpriv"], () => {
  it("runs every scenario for baseline and tuned, reports valid figures, and leaves the machine as it was", () => {
    expect(labNamespaces(), "no lab may be running before the test").toEqual([]);
    const before = hostSysctls();
    const dir = mkdtempSync(join(tmpdir(), "edgetune-labtest-"));
    const r = spawnSync("node", [CLI, "lab", "--quick", "--json", "--report-dir", dir], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 600_000,
      maxBuffer: 64 << 20,
    });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(r.stdout) as LabReport;

    for (const scenario of SCENARIO_NAMES) {
      for (const profile of ["baseline", "tuned"]) {
        const rs = report.results.filter((x) => x.scenario === scenario && x.profile === profile);
        expect(rs.length, `${scenario}/${profile} has results`).toBeGreaterThan(0);
        const valid = rs.filter((x) => x.validity.valid);
        expect(valid.length, `${scenario}/${profile} has a valid result: ${JSON.stringify(rs.map((x) => x.validity))}`).toBeGreaterThan(0);
        for (const x of valid)
          expect((x.rps ?? 0) + (x.gbps ?? 0) + (x.connsPerSecond ?? 0), `${scenario}/${profile} throughput`).toBeGreaterThan(0);
      }
    }
    // The physical limit on the path is measured in the same run.
    expect(report.results.some((x) => x.profile === "direct" && x.scenario === "http-throughput")).toBe(true);
    expect(report.results.some((x) => x.profile === "forward" && x.scenario === "l4-throughput")).toBe(true);
    expect(report.paths.find((p) => p.scenario === "l4-throughput")?.proxyOverForward).toBeGreaterThan(0);
    // The stack's variants ran on their own scenarios only, and are compared with tuned.
    expect(report.results.filter((x) => x.profile === "rps-on").map((x) => x.scenario)).toEqual(["http-throughput"]);
    expect([...new Set(report.results.filter((x) => x.profile === "offloads-off").map((x) => x.scenario))]).toEqual(["l4-throughput"]);
    expect(report.variants.map((v) => `${v.variant} ${v.scenario}`)).toEqual(
      expect.arrayContaining(["rps-on http-throughput", "offloads-off l4-throughput"]),
    );
    for (const v of report.variants) expect(["hurts", "helps", "within noise"]).toContain(v.verdict);
    // Peers, limits and intervals: the paired slices ran every arm on their scenarios, in the same run.
    const sliced = ["http-throughput", "http-latency", "l4-throughput", "conn-rate"] as const;
    for (const scenario of sliced)
      for (const arm of [
        "baseline",
        "tuned",
        "haproxy-stock",
        "nginx",
        ...(scenario === "l4-throughput" ? ["forward"] : scenario === "http-latency" ? [] : ["direct"]),
      ]) {
        const rs = report.results.filter((x) => x.scenario === scenario && x.profile === arm);
        expect(rs.length, `${scenario}/${arm} ran in slices`).toBeGreaterThanOrEqual(report.slices!.rounds);
        expect(
          rs.some((x) => (x.rps ?? 0) + (x.gbps ?? 0) + (x.connsPerSecond ?? 0) > 0),
          `${scenario}/${arm} carried traffic`,
        ).toBe(true);
      }
    expect(report.measurements).toHaveLength(report.results.length);
    for (const [i, m] of report.measurements!.entries()) {
      expect(m.result).toBe(i);
      expect(m.cpu!.totalSeconds, `run ${i} has CPU`).toBeGreaterThan(0);
    }
    // Every sliced run knows where its threads ran, and proxied L4 runs what they cost per GB.
    const slicedRuns = report.measurements!.filter((m) => m.slice !== undefined);
    expect(slicedRuns.filter((m) => m.placement?.some((p) => p.namespace.endsWith("-proxy"))).length).toBeGreaterThan(
      slicedRuns.length / 2,
    );
    for (const [i, r] of report.results.entries())
      if (r.scenario === "l4-throughput" && report.measurements![i].slice !== undefined)
        expect(report.measurements![i].cpuSecondsPerGB, `l4 run ${i} CPU per GB`).toBeGreaterThan(0);
    for (const denominator of ["baseline", "haproxy-stock", "nginx", "forward", "direct"]) {
      const c = report.slices!.comparisons.find((x) => x.denominator === denominator && x.quantity === "rate");
      expect(c, `tuned / ${denominator} has an interval`).toBeDefined();
      expect(c!.lo).toBeLessThanOrEqual(c!.ratio);
      expect(c!.hi).toBeGreaterThanOrEqual(c!.ratio);
    }
    const md = readFileSync(report.files.markdown, "utf8");
    expect(md).toContain("## Peers, limits and intervals (paired slices)");
    expect(md).toMatch(/^- (Finding|Not a finding): /m);
    expect(readFileSync(report.files.svg, "utf8")).toContain("tuned / nginx");
    expect(readFileSync(report.files.markdown, "utf8")).toMatch(/### Variants: the tuned profile with one setting changed/);
    // Outputs a person reads.
    expect(readFileSync(report.files.markdown, "utf8")).toMatch(/\| scenario \|/);
    expect(readFileSync(report.files.svg, "utf8")).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    expect(JSON.parse(readFileSync(report.files.json, "utf8")).results.length).toBe(report.results.length);
    expect(r.stderr).toMatch(/torn down/);
    // What HAProxy ran with is what `edgetune render` shows for the stack on this machine, byte for byte.
    const rendered = renderStack(loadStack("local", ROOT), { machine: readMachineFacts() });
    expect(readFileSync(join(dir, "lab", "haproxy-tuned.cfg"), "utf8")).toBe(rendered["proxy/haproxy.cfg"]);

    // Cleanup: no namespace, no process started from the lab dir, every host sysctl as before.
    expect(labNamespaces()).toEqual([]);
    expect(processesUnder(dir)).toBe("");
    expect(hostSysctls()).toEqual(before);
  }, 600_000);

  it("cleans up on Ctrl-C during a load phase: namespaces, processes and host sysctls", async () => {
    const before = hostSysctls();
    const dir = mkdtempSync(join(tmpdir(), "edgetune-labint-"));
    const child = spawn("node", [CLI, "lab", "--quick", "--scenarios", "l4-throughput,http-throughput", "--report-dir", dir], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
    // Interrupt while a load generator runs, once the proxy has been started and tuned: wrk
    // (http-throughput) runs with a script from the lab dir. No load phase within the
    // deadline fails the test rather than interrupting some other phase.
    try {
      await until(
        "a load generator of the lab to run",
        () => {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`the lab exited (${child.exitCode ?? child.signalCode}) before a load phase`);
          return run("pgrep", ["-f", `${dir}/lab/wrk-`]).code === 0;
        },
        60_000,
        50,
      );
    } catch (e) {
      child.kill("SIGINT");
      await exited;
      throw new Error(`${(e as Error).message}; lab stderr:\n${stderr.slice(-3000)}`);
    }
    expect(existsSync(join(dir, "lab", "haproxy-baseline.cfg"))).toBe(true);
    child.kill("SIGINT");
    const code = await exited;
    expect(code).toBe(1);
    expect(stderr).toMatch(/interrupted: cleaning up/);
    // Stopped where it was interrupted: the tuned profile (after baseline's load) never ran.
    expect(stderr).not.toMatch(/\[1\/1\] tuned\b/);
    expect(stderr).toMatch(/torn down/);
    expect(labNamespaces()).toEqual([]);
    expect(processesUnder(dir)).toBe("");
    expect(hostSysctls()).toEqual(before);
  }, 120_000);

  it("refuses clearly without root, and names the Debian package of a missing tool", () => {
    // A user without root runs the lab from their own clone. Reproduced honestly: nobody gets
    // a clone of its own in a private (0700) home, not this checkout, which may sit where
    // nobody cannot go (a clone in root's 0700 home) — that would test the checkout's
    // permissions, not the lab's refusal. The copy holds what `node bin/edgetune.js` loads
    // (its node_modules included: the CLI imports the whole package); owned by nobody,
    // like a clone is its user's.
    const home = mkdtempSync(join(tmpdir(), "edgetune-user-"));
    try {
      const clone = join(home, "edgetune");
      for (const part of [
        "bin",
        "cli",
        "lab",
        "loader",
        "render",
        "infra",
        "components",
        "stacks",
        "Pulumi.yaml",
        "package.json",
        "tsconfig.json",
      ]) {
        cpSync(join(ROOT, part), join(clone, part), { recursive: true });
      }
      // cp -a: ~35k files, and .bin's relative links kept as links; node_modules may itself be a link.
      const copied = run("cp", ["-a", realpathSync(join(ROOT, "node_modules")), join(clone, "node_modules")]);
      expect(copied.code, copied.stderr).toBe(0);
      const owned = run("chown", ["-R", "65534:65534", home]);
      expect(owned.code, owned.stderr).toBe(0);
      chmodSync(home, 0o700);
      // Debian's PATH for users who are not root (login.defs ENV_PATH): no sbin directories,
      // where haproxy, nginx, ethtool, ip and sysctl live.
      const userEnv = { PATH: "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games", HOME: home, TMPDIR: tmpdir() };
      // By path: the child's PATH is what is being varied.
      const setpriv = run("sh", ["-c", "command -v setpriv"]).stdout.trim();
      const asUser = (env: Record<string, string>) =>
        run(
          setpriv,
          ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, join(clone, "bin", "edgetune.js"), "lab", "--quick"],
          { cwd: clone, env },
        );

      const refused = asUser(userEnv);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toMatch(/needs root/);
      // Every tool is installed (the describe checks it): the sbin ones are only off this
      // user's PATH, and sudo's (secure_path) has them. Claiming them missing would send the
      // user to install packages they have.
      expect(refused.stderr).not.toMatch(/missing tools/);

      // Without wrk on any PATH, the refusal names its package too.
      const noWrk = asUser({ ...userEnv, PATH: "/nonexistent" });
      expect(noWrk.code, noWrk.stderr).toBe(1);
      expect(noWrk.stderr).toMatch(/needs root/);
      expect(noWrk.stderr).toMatch(/missing tools: .*\bwrk\b.*apt-get install -y .*\bwrk\b/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }

    // A PATH with node and nothing else.
    const bin = mkdtempSync(join(tmpdir(), "edgetune-path-"));
    symlinkSync(process.execPath, join(bin, "node"));
    const noTools = run(process.execPath, [CLI, "lab", "--quick"], { cwd: ROOT, env: { ...process.env, PATH: bin } });
    expect(noTools.code).toBe(1);
    expect(noTools.stderr).toMatch(/missing tools: .*wrk.*apt-get install -y .*\bwrk\b/);
  });
});
