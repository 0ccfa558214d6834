import { copyFileSync, mkdirSync, mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { labAddresses, localLabEnvironment, renderLocalLabSteps } from "../../components";
import { BENCH_SCRIPT_DIR, jobScript, readResultLine } from "../../components/bench/job-log";
import { nstatValidity, parseNstat } from "../../components/bench/parsers";
import { LISTEN_COUNTERS, SCENARIO_LIST, scenarioInvocations, type Scenario } from "../../components/bench/scenarios";
import { loadStack } from "../../loader/stack-config";
import { readMachineFacts } from "../../loader/machine-facts";
import { buildImages, describeImages, runInRootfs, type ImageTarget } from "../helpers/images";
import { labNamespaces } from "../helpers/lab";
import { run } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");
const BENCH = join(ROOT, "components", "bench");

// The lab (lab.sh) with HAProxy from the proxy image's root filesystem (PROXY_ROOTFS, what
// `edgetune lab --proxy-from-image` sets), and every benchmark scenario's cluster Job script run
// inside the loadgen image's root filesystem from the client namespace, as the Job runs it:
// /bin/sh (dash), uid 65534, its ConfigMap at /etc/edgetune-bench, node from the image.
describeImages("the loadgen image runs every scenario's cluster command against the lab's proxy from the proxy image", () => {
  let roots: Record<ImageTarget, string>;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let steps: ReturnType<typeof renderLocalLabSteps>;
  const a = labAddresses();

  beforeAll(() => {
    expect(labNamespaces()).toEqual([]);
    roots = buildImages(["proxy", "loadgen"]);
    work = mkdtempSync(join(tmpdir(), "edgetune-image-lab-"));
    const labDir = join(work, "lab");
    const scripts = join(work, "bench");
    mkdirSync(labDir);
    mkdirSync(scripts);
    // What the Job's ConfigMap mounts at /etc/edgetune-bench.
    for (const f of ["wrk-report.lua", "wrk-paced.lua", "churn-client.js", "normalize.cjs"]) copyFileSync(join(BENCH, f), join(scripts, f));
    const plan = loadStack("local", ROOT);
    steps = renderLocalLabSteps({ profile: plan.nodeGroups[0].profile, proxy: plan.proxy!.spec, labDir, machine: readMachineFacts() });
    env = { ...process.env, ...localLabEnvironment(steps, labDir), PROXY_ROOTFS: roots.proxy };
    const create = run("/bin/sh", ["-c", steps.create], { env });
    if (create.code !== 0) {
      run("/bin/sh", ["-c", steps.delete], { env });
      throw new Error(`lab create failed (${create.code}): ${create.stderr}`);
    }
  }, 900_000);
  afterAll(() => {
    if (steps) {
      const del = run("/bin/sh", ["-c", steps.delete], { env });
      expect(del.code, del.stderr).toBe(0);
    }
    expect(labNamespaces()).toEqual([]);
    // No mount of the images' root filesystems outlives the lab.
    expect(run("grep", ["-c", roots.proxy, "/proc/mounts"]).stdout.trim()).toBe("0");
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("lab.sh proxy-start ran the image's HAProxy (chrooted) and it proxies to the lab's backend", () => {
    const pids = run("ip", ["netns", "pids", a.namespaces.proxy]).stdout.trim().split(/\s+/);
    const exes = pids.map((p) => {
      try {
        return readlinkSync(`/proc/${p}/exe`);
      } catch {
        return "";
      }
    });
    expect(exes).toContain(join(roots.proxy, "usr/sbin/haproxy"));
    expect(exes).not.toContain("/usr/sbin/haproxy");
    const r = run("ip", [
      "netns",
      "exec",
      a.namespaces.client,
      "curl",
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://${a.proxy}:80/`,
    ]);
    expect(r.stdout).toBe("200");
  });

  // The port each cluster tool loads, as k8s-jobs.ts chooses it: iperf3 needs the L4 listener,
  // the churn client the lab's client-closes-first tcp listener, wrk speaks HTTP.
  const portFor = (s: Scenario) => ({ iperf3: 443, "tcp-churn": 81 })[s.tool.cluster as string] ?? 80;

  for (const scenario of SCENARIO_LIST) {
    it(`${scenario.name} (${scenario.tool.cluster}): the Job script runs in the loadgen image and its output parses`, () => {
      const port = portFor(scenario);
      const invocations = scenarioInvocations(scenario, {
        environment: "cluster",
        host: a.proxy,
        port,
        quick: true,
        luaDir: BENCH_SCRIPT_DIR,
        rateRps: scenario.rateFractionOfMax ? 200 : undefined,
      });
      const script = jobScript(invocations, { scenario: scenario.name, profile: "tuned", target: `proxy ${a.proxy}:${port}` });
      const timeout = (invocations.reduce((s, i) => s + i.durationSeconds, 0) + 60) * 1000;
      const job = runInRootfs(
        a.namespaces.client,
        roots.loadgen,
        ["/bin/sh", "-c", script],
        { binds: { [join(work, "bench")]: BENCH_SCRIPT_DIR }, user: "65534:65534" },
        timeout,
      );
      expect(job.code, `${job.stderr}\n${job.stdout}`).toBe(0);
      const results = readResultLine(job.stdout, { scenario: scenario.name, profile: "tuned" });
      expect(results.map((r) => r.concurrency)).toEqual(invocations.map((i) => i.concurrency));
      for (const r of results) {
        expect(r.target).toBe(`proxy ${a.proxy}:${port}`);
        expect(r.gbps ?? r.connsPerSecond ?? r.rps ?? 0).toBeGreaterThan(0);
      }
    }, 180_000);
  }

  it("the counter Job's nstat runs in the loadgen image in the proxy's namespace and parses", () => {
    const r = runInRootfs(a.namespaces.proxy, roots.loadgen, [
      "/bin/sh",
      "-c",
      `nstat -n && sleep 1 && nstat -j -z ${LISTEN_COUNTERS.join(" ")}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const counters = parseNstat(r.stdout);
    for (const c of LISTEN_COUNTERS) expect(counters[c], c).toBeGreaterThanOrEqual(0);
    expect(Object.keys(nstatValidity(counters))).toEqual(expect.arrayContaining(["listenOverflows", "listenDrops", "retransmits"]));
  });
});
