import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ERROR_KIND,
  jobScript,
  normalizeJobLog,
  readResultLine,
  resultLine,
  TARGET_PLACEHOLDER,
  usableCpus,
} from "../../../components/bench/job-log";
import { SCENARIO_NAMES } from "../../../components/bench/result";
import { normalizeMain } from "../../../components/bench/normalize-cli";
import { SCENARIOS, scenarioInvocations } from "../../../components/bench/scenarios";
import { describeSystem, run } from "../../helpers/system";

const ROOT = join(__dirname, "../../..");
const FIXTURES = join(ROOT, "test/fixtures/bench");
const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8");
const BUNDLE = join(ROOT, "components/bench/normalize.cjs");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { bundle } = require(join(ROOT, "scripts/bundle-normalizer.js")) as { bundle: () => Promise<string> };

const runLog = (i: number, tool: string, out: string, times: string, concurrency = 2000) =>
  `### edgetune-run {"scenario":"conn-burst","tool":"${tool}","run":${i},"concurrency":${concurrency},"durationSeconds":3}\n${out}### edgetune-times\n0m0.01s 0m0.00s\n${times}\n`;
const burstLog = `### edgetune-nproc 4\n${runLog(0, "wrk", fixture("wrk-burst.txt"), "0m1.20s 0m3.00s")}${runLog(1, "wrk", fixture("wrk-connclose.txt"), "0m3.00s 0m6.90s")}### edgetune-end 0\n`;

describe("normalizeJobLog (what the Job's normalizer does)", () => {
  it("splits the log into per-run results with client CPU from `times`", () => {
    const rs = normalizeJobLog(burstLog, { scenario: "conn-burst", profile: "baseline", target: "proxy" });
    expect(rs.map((r) => [r.run, r.profile, r.target])).toEqual([
      [0, "baseline", "proxy"],
      [1, "baseline", "proxy"],
    ]);
    // run 0: 4.2 CPU-s over 3 s on 2 wrk threads = 70 %; run 1: (9.9 - 4.2) / 6 = 95 % → saturated.
    expect(rs[0].validity.clientCpuPercent).toBeCloseTo(70, 6);
    expect(rs[0].validity.valid).toBe(true);
    expect(rs[1].validity.valid).toBe(false);
    expect(rs[0].connsPerSecond).toBeGreaterThan(0);
  });

  // The cluster's http-latency: wrk-paced with 8 threads, on a node with 8 CPUs, in a container limited to 2.
  const pacedLog = (quota: string) =>
    `### edgetune-nproc 8\n### edgetune-cpu-quota ${quota}\n${runLog(0, "wrk-paced", fixture("wrk-paced.txt"), "0m2.70s 0m3.00s", 8).replace(/conn-burst/, "http-latency")}### edgetune-end 0\n`;

  it("measures client CPU against the container's CPU quota, not the node's CPUs", () => {
    // cpu.max "200000 100000": 2 CPUs. 5.7 CPU-s over 3 s on 2 CPUs = 95 % → the client was saturated.
    const [limited] = normalizeJobLog(pacedLog("200000 100000"), { scenario: "http-latency", profile: "tuned" });
    expect(limited.validity.clientCpuPercent).toBeCloseTo(95, 6);
    expect(limited.validity.valid).toBe(false);
    expect(limited.validity.reasons[0]).toMatch(/load generator CPU 95\.0% >= 90%/);
    // Without a quota (cgroup v2 "max", v1 "-1") nproc decides: 5.7 / (3 × 8) = 23.75 %, valid.
    for (const quota of ["max 100000", "-1 100000", "unknown"]) {
      const [free] = normalizeJobLog(pacedLog(quota), { scenario: "http-latency", profile: "tuned" });
      expect(free.validity.clientCpuPercent, quota).toBeCloseTo(23.75, 6);
      expect(free.validity.valid, quota).toBe(true);
    }
  });

  it("reads cgroup v2 and v1 quotas, fractional ones included", () => {
    const log = (quota: string) => `### edgetune-nproc 8\n### edgetune-cpu-quota ${quota}\n`;
    expect(usableCpus(log("200000 100000"))).toBe(2);
    expect(usableCpus(log("150000 100000"))).toBe(1.5);
    expect(usableCpus(log("max 100000"))).toBe(8);
    // v1: cpu.cfs_quota_us and cpu.cfs_period_us; -1 is unlimited.
    expect(usableCpus(log("50000 100000"))).toBe(0.5);
    expect(usableCpus(log("-1 100000"))).toBe(8);
    // A quota above the node's CPUs: nproc.
    expect(usableCpus(log("1600000 100000"))).toBe(8);
    expect(usableCpus("### edgetune-nproc 4\n")).toBe(4);
    // iperf3 and node use one core: a half-CPU container is saturated at half a core.
    const churn = `### edgetune-nproc 8\n### edgetune-cpu-quota 50000 100000\n${runLog(
      0,
      "tcp-churn",
      fixture("wrk-connclose.txt")
        .replace(/[\s\S]*?(\{"edgetune_wrk")/, "$1")
        .replace('"edgetune_wrk":1', '"edgetune_wrk":1,"tool":"tcp-churn"'),
      "0m0.70s 0m0.80s",
      16,
    ).replace(/conn-burst/, "port-churn")}### edgetune-end 0\n`;
    const [r] = normalizeJobLog(churn, { scenario: "port-churn", profile: "tuned" });
    expect(r.validity.clientCpuPercent).toBeCloseTo(100, 6);
  });

  it("fails with the reason when the log has no runs, was cut short, or a tool failed", () => {
    expect(() => normalizeJobLog("Error from server (NotFound)", { scenario: "conn-rate", profile: "tuned" })).toThrow(
      /no "### edgetune-run" marker/,
    );
    expect(() => normalizeJobLog(burstLog.replace("### edgetune-end 0\n", ""), { scenario: "conn-burst", profile: "tuned" })).toThrow(
      /no "### edgetune-end" marker: the script was cut short/,
    );
    expect(() =>
      normalizeJobLog(burstLog.replace("### edgetune-end 0", "### edgetune-end 1"), { scenario: "conn-burst", profile: "tuned" }),
    ).toThrow(/exited with status 1/);
    const broken = burstLog.replace(/\{"edgetune_wrk".*\n/, "");
    expect(() => normalizeJobLog(broken, { scenario: "conn-burst", profile: "tuned" })).toThrow(
      /run 0 \(wrk, concurrency 2000\): wrk: no \{"edgetune_wrk"/,
    );
  });
});

describe("readResultLine (the collect step)", () => {
  const ctx = { scenario: "conn-burst", profile: "baseline" } as const;
  const results = normalizeJobLog(burstLog, ctx);
  const log = `${burstLog}${resultLine(ctx, { results })}\n`;

  it("returns the last line's results and merges the proxy node's listen counters into validity", () => {
    expect(readResultLine(log, ctx)).toEqual(results);
    const merged = readResultLine(log, { ...ctx, counters: fixture("nstat-burst.json") });
    expect(merged[0].validity.listenOverflows).toBe(15333);
    // Counters are data: they neither validate nor invalidate a run.
    expect(merged.map((r) => r.validity.valid)).toEqual(results.map((r) => r.validity.valid));
  });

  it("merges the proxy node's counters into every scenario's results", () => {
    const counters = JSON.stringify({
      kernel: {
        TcpExtListenOverflows: 7,
        TcpExtListenDrops: 8,
        TcpRetransSegs: 9,
        TcpExtTCPSynRetrans: 1,
        TcpExtTW: 41000,
        TcpExtTWRecycled: 0,
        TcpAttemptFails: 12,
      },
    });
    for (const scenario of SCENARIO_NAMES) {
      const c = { scenario, profile: "tuned" } as const;
      const line = resultLine(c, { results: results.map((r) => ({ ...r, scenario })) });
      const [merged] = readResultLine(`${line}\n`, { ...c, counters });
      expect(merged.validity, scenario).toMatchObject({
        listenOverflows: 7,
        listenDrops: 8,
        retransmits: 9,
        timeWait: 41000,
        attemptFails: 12,
      });
    }
  });

  it("refuses a log that does not end with a result line for this Job", () => {
    expect(() => readResultLine(burstLog, ctx)).toThrow(/the last line is not edgetune's result JSON: "### edgetune-end 0"/);
    expect(() => readResultLine(log, { scenario: "conn-burst", profile: "tuned" })).toThrow(
      /expected the tuned conn-burst Job's results, got baseline conn-burst/,
    );
    const tampered = log.replace(/"rps":[\d.]+/, '"rps":"fast"');
    expect(() => readResultLine(tampered, ctx)).toThrow(/not a valid result line: results\.0\.rps/);
    const failed = `${resultLine(ctx, { error: "wrk: no report" })}\n`;
    expect(() => readResultLine(failed, ctx)).toThrow(/the baseline conn-burst Job reported: wrk: no report/);
  });
});

describe("normalize.cjs (the bundle the Job runs)", () => {
  it("is up to date with its sources (regenerate: npm run bundle)", async () => {
    expect(readFileSync(BUNDLE, "utf8") === (await bundle())).toBe(true);
  }, 60_000);

  it("prints the same results as the in-process parsers as its only stdout line", () => {
    const r = run(process.execPath, [BUNDLE, "--scenario", "conn-burst", "--profile", "baseline"], { input: burstLog });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(readResultLine(r.stdout, { scenario: "conn-burst", profile: "baseline" })).toEqual(
      normalizeJobLog(burstLog, { scenario: "conn-burst", profile: "baseline" }),
    );
  });

  it("ends with an error line and status 1 when there is nothing to report, 2 on bad arguments", () => {
    const r = run(process.execPath, [BUNDLE, "--scenario", "conn-rate", "--profile", "tuned"], { input: "OOMKilled\n" });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).kind).toBe(ERROR_KIND);
    expect(r.stderr).toMatch(/no "### edgetune-run" marker/);
    expect(normalizeMain(["--scenario", "http"], "").code).toBe(2);
    expect(normalizeMain(["--scenario", "http"], "").stderr).toMatch(/--scenario "http": allowed: http-throughput, /);
    expect(normalizeMain(["--scenario", "conn-rate"], "").stderr).toMatch(/--profile is required/);
  });
});

// The Job's script under dash (Debian's /bin/sh, as in the loadgen image), with
// stand-ins for wrk that print captured output: the plumbing (markers, `times`,
// tee, exit status, last line) is what is under test; lab/bench-job.test.ts runs
// it with the real tools.
describeSystem("the Job script's plumbing", ["dash", "shellcheck"], () => {
  const setup = (wrkBody: string) => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-jobscript-"));
    writeFileSync(join(dir, "wrk"), `#!/bin/sh\n${wrkBody}\n`);
    chmodSync(join(dir, "wrk"), 0o755);
    writeFileSync(join(dir, "normalize.cjs"), readFileSync(BUNDLE));
    const invocations = scenarioInvocations(SCENARIOS["conn-rate"], {
      environment: "cluster",
      host: "edgetune-proxy.edgetune.svc",
      port: 80,
      luaDir: dir,
      quick: true,
    });
    const script = jobScript(invocations, {
      scenario: "conn-rate",
      profile: "tuned",
      target: "edgetune-proxy.edgetune.svc",
      scriptDir: dir,
      node: process.execPath,
      logFile: join(dir, "run.log"),
    });
    return { dir, script, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } };
  };

  it("is shellcheck-clean POSIX sh and quotes every argument", () => {
    const { script } = setup("exit 0");
    expect(script).toContain("-H 'Connection: close'");
    const r = run("shellcheck", ["-s", "sh", "-"], { input: `#!/bin/sh\n${script}\n` });
    expect(r.code, r.stdout).toBe(0);
  });

  it("keeps the tools' output in the log and ends it with the normalized results", () => {
    const { dir, script, env } = setup(`cat ${join(FIXTURES, "wrk-connclose.txt")}`);
    const r = run("dash", ["-c", script], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Requests/sec:  99959.55");
    const [res] = readResultLine(r.stdout, { scenario: "conn-rate", profile: "tuned" });
    expect(res.target).toBe("edgetune-proxy.edgetune.svc");
    expect(res.connsPerSecond).toBeCloseTo(201628 / 2.017096, 3);
    expect(res.validity.clientCpuPercent).toBeGreaterThanOrEqual(0);
    expect(readFileSync(join(dir, "run.log"), "utf8")).toMatch(/### edgetune-end 0\n$/);
  });

  it("records the container's CPU quota beside nproc", () => {
    const { dir, script, env } = setup(`cat ${join(FIXTURES, "wrk-connclose.txt")}`);
    expect(run("dash", ["-c", script], { env }).code).toBe(0);
    expect(readFileSync(join(dir, "run.log"), "utf8")).toMatch(
      /^### edgetune-nproc \d+\n### edgetune-cpu-quota (max \d+|-?\d+ \d+|unknown)\n/,
    );
  });

  it("fails the Job, with the reason as the last line, when a load generator fails", () => {
    const { script, env } = setup(`cat ${join(FIXTURES, "wrk-connclose.txt")}; echo "unable to connect to edgetune-proxy:80" >&2; exit 1`);
    const r = run("dash", ["-c", script], { env });
    expect(r.code).toBe(1);
    expect(() => readResultLine(r.stdout, { scenario: "conn-rate", profile: "tuned" })).toThrow(/exited with status 1/);
    expect(r.stderr).toContain("unable to connect to edgetune-proxy:80");
  });
});

// The discovery prelude under dash with the real jq and a stand-in curl answering as the API
// would: the pods labelled for this Job, as `GET /api/v1/namespaces/<ns>/pods` lists them.
describeSystem("the Job script's proxy-node discovery", ["dash", "shellcheck", "jq"], () => {
  const pod = (node: string, hostIP: string | undefined, startedAt: string | undefined) => ({
    spec: { nodeName: node },
    status: {
      ...(hostIP ? { hostIP } : {}),
      containerStatuses: [{ state: startedAt ? { running: { startedAt } } : { waiting: { reason: "ContainerCreating" } } }],
    },
  });
  const setup = (items: unknown[], host?: string) => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-discovery-"));
    writeFileSync(join(dir, "pods.json"), JSON.stringify({ kind: "PodList", items }));
    // Records its arguments; answers with the pod list.
    writeFileSync(join(dir, "curl"), `#!/bin/sh\necho "$*" >> ${dir}/calls\ncat ${dir}/pods.json\n`);
    writeFileSync(join(dir, "wrk"), `#!/bin/sh\necho "wrk $*" >> ${dir}/calls\ncat ${join(FIXTURES, "wrk-connclose.txt")}\n`);
    writeFileSync(join(dir, "sleep"), "#!/bin/sh\nexit 0\n");
    for (const f of ["curl", "wrk", "sleep"]) chmodSync(join(dir, f), 0o755);
    writeFileSync(join(dir, "normalize.cjs"), readFileSync(BUNDLE));
    const invocations = scenarioInvocations(SCENARIOS["conn-rate"], {
      environment: "cluster",
      host: TARGET_PLACEHOLDER,
      port: 80,
      luaDir: dir,
      quick: true,
    });
    const script = jobScript(invocations, {
      scenario: "conn-rate",
      profile: "tuned",
      target: TARGET_PLACEHOLDER,
      scriptDir: dir,
      node: process.execPath,
      logFile: join(dir, "run.log"),
      discover: {
        label: "edgetune.dev/counters-for",
        value: "edgetune-bench-tuned-conn-rate",
        host,
        timeoutSeconds: 4,
        maxLateSeconds: 15,
      },
    }).replace(/^sa=.*$/m, `sa=${dir}`);
    writeFileSync(join(dir, "token"), "t0ken");
    writeFileSync(join(dir, "namespace"), "edgetune-bench");
    writeFileSync(join(dir, "ca.crt"), "");
    const r = run("dash", ["-c", script], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
    const calls = readFileSync(join(dir, "calls"), "utf8").trim().split("\n");
    return { ...r, calls, script };
  };
  const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

  it("is shellcheck-clean POSIX sh", () => {
    const { script } = setup([pod("b", "10.0.0.2", now())]);
    const r = run("shellcheck", ["-s", "sh", "-"], { input: `#!/bin/sh\n${script}\n` });
    expect(r.code, r.stdout).toBe(0);
  });

  it("targets the running counters pod's node, the lowest node name when there are several", () => {
    const r = setup([pod("node-b", "10.0.0.2", now()), pod("node-a", "10.0.0.1", now()), pod("node-0", undefined, undefined)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls[0]).toBe(
      "-fsS --max-time 5 --cacert " +
        `${r.calls[0].split(" ")[4]} -H Authorization: Bearer t0ken https://kubernetes.default.svc/api/v1/namespaces/edgetune-bench/pods?labelSelector=edgetune.dev%2Fcounters-for%3Dedgetune-bench-tuned-conn-rate`,
    );
    expect(r.calls[1]).toMatch(/^wrk .* http:\/\/10\.0\.0\.1:80\/$/);
    expect(r.stdout).toContain("### edgetune-proxy-node 10.0.0.1");
    const [res] = readResultLine(r.stdout, { scenario: "conn-rate", profile: "tuned" });
    expect(res.target).toBe("10.0.0.1");
  });

  it("brackets an IPv6 node address in URLs only", () => {
    const r = setup([pod("node-a", "fd00::1", now())]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls[1]).toMatch(/ http:\/\/\[fd00::1\]:80\/$/);
    expect(readResultLine(r.stdout, { scenario: "conn-rate", profile: "tuned" })[0].target).toBe("fd00::1");
  });

  it("keeps a configured proxyHost as the target, still waiting for the counters pod", () => {
    const r = setup([pod("node-a", "10.0.0.1", now())], "proxy.example");
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls[1]).toMatch(/ http:\/\/proxy\.example:80\/$/);
  });

  it("ends with the error line when no counters pod runs, or when it started too long ago", () => {
    const none = setup([pod("node-a", "10.0.0.1", undefined)]);
    expect(none.code).toBe(1);
    expect(none.calls).toHaveLength(2);
    expect(() => readResultLine(none.stdout, { scenario: "conn-rate", profile: "tuned" })).toThrow(
      /reported: no running pod labelled edgetune\.dev\/counters-for=edgetune-bench-tuned-conn-rate .* within 4s/,
    );
    const stale = setup([pod("node-a", "10.0.0.1", new Date(Date.now() - 60_000).toISOString())]);
    expect(stale.code).toBe(1);
    expect(() => readResultLine(stale.stdout, { scenario: "conn-rate", profile: "tuned" })).toThrow(
      /the counters pod started more than 15s before this Job could run/,
    );
  });
});
