import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_KIND, jobScript, normalizeJobLog, readResultLine, resultLine } from "../../../components/bench/job-log";
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

  it("reads fortio's JSON for the cluster's http-latency runs", () => {
    const log = `### edgetune-nproc 2\n${runLog(0, "fortio", fixture("fortio-format-sample.json"), "0m0.50s 0m1.00s", 8).replace(/conn-burst/, "http-latency")}### edgetune-end 0\n`;
    const [r] = normalizeJobLog(log, { scenario: "http-latency", profile: "tuned" });
    expect(r.tool).toBe("fortio");
    expect(r.latency?.method).toBe("fortio");
    expect(r.rps).toBeGreaterThan(0);
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

  it("fails the Job, with the reason as the last line, when a load generator fails", () => {
    const { script, env } = setup(`cat ${join(FIXTURES, "wrk-connclose.txt")}; echo "unable to connect to edgetune-proxy:80" >&2; exit 1`);
    const r = run("dash", ["-c", script], { env });
    expect(r.code).toBe(1);
    expect(() => readResultLine(r.stdout, { scenario: "conn-rate", profile: "tuned" })).toThrow(/exited with status 1/);
    expect(r.stderr).toContain("unable to connect to edgetune-proxy:80");
  });
});
