 
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Job } from "kubernetes-models/batch/v1/Job";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { describe, expect, it } from "vitest";
import { buildBenchManifests, checkPinnedImage, collectCommand, jobScript, parseJobLog, type BenchJobsOptions } from "../../../components/bench/k8s-jobs";
import { SCENARIO_NAMES } from "../../../components/bench/result";
import { SCENARIOS, scenarioInvocations } from "../../../components/bench/scenarios";

const fixture = (name: string) => readFileSync(join(__dirname, "../../fixtures/bench", name), "utf8");

const opts: BenchJobsOptions = {
  namespace: "edgetune-bench",
  profile: "tuned",
  scenarios: [...SCENARIO_NAMES],
  proxyHost: "edgetune-proxy.edgetune.svc",
  httpPort: 80,
  l4Port: 5201,
  proxyPodLabels: { "app.kubernetes.io/name": "edgetune-proxy" },
  images: { loadgen: "registry.example/edgetune-loadgen:2025.1" },
  httpLatencyRateRps: 2000,
};

describe("scenarioInvocations", () => {
  it("produces the exact argv per tool", () => {
    const base = { host: "10.0.0.2", port: 80, luaDir: "/lua" } as const;
    expect(scenarioInvocations(SCENARIOS["conn-burst"], { ...base, environment: "local" })[0].argv).toEqual(["wrk", "-t2", "-c2000", "-d10s", "--timeout", "2s", "-H", "Connection: close", "-s", "/lua/wrk-report.lua", "http://10.0.0.2:80/"]);
    expect(scenarioInvocations(SCENARIOS["http-latency"], { ...base, environment: "local", rateRps: 1000, quick: true })[0].argv).toEqual(["wrk", "-t4", "-c4", "-d3s", "--timeout", "2s", "-s", "/lua/wrk-paced.lua", "http://10.0.0.2:80/", "--", "250"]);
    expect(scenarioInvocations(SCENARIOS["http-latency"], { ...base, environment: "cluster", rateRps: 1000 })[0].argv).toEqual(["fortio", "load", "-qps", "1000", "-c", "8", "-t", "10s", "-p", "50,90,99,99.9", "-timeout", "2s", "-json", "-", "http://10.0.0.2:80/"]);
    expect(scenarioInvocations(SCENARIOS["l4-throughput"], { ...base, environment: "local", port: 5201 }).map((i) => i.argv.slice(-5))).toEqual([
      ["-P", "1", "-J", "--connect-timeout", "5000"],
      ["-P", "4", "-J", "--connect-timeout", "5000"],
    ]);
    expect(scenarioInvocations(SCENARIOS["port-churn"], { ...base, environment: "local", quick: true }).map((i) => [i.run, i.durationSeconds])).toEqual([[0, 3], [1, 3], [2, 3], [3, 3], [4, 3]]);
  });

  it("rejects hosts, rates and durations that must not reach a command line", () => {
    const base = { environment: "local", port: 80, luaDir: "/lua" } as const;
    expect(() => scenarioInvocations(SCENARIOS["http-throughput"], { ...base, host: "x; rm -rf /" })).toThrow(/host "x; rm -rf \/" is not allowed/);
    expect(() => scenarioInvocations(SCENARIOS["http-latency"], { ...base, host: "proxy" })).toThrow(/http-latency is constant-rate: pass rateRps/);
    expect(() => scenarioInvocations(SCENARIOS["http-throughput"], { ...base, host: "proxy", durationSeconds: 0 })).toThrow(/durationSeconds 0/);
  });
});

describe("buildBenchManifests", () => {
  const m = buildBenchManifests(opts);

  it("produces objects that validate against the Kubernetes schemas", () => {
    expect(() => new ConfigMap(m.configMap as never).validate()).not.toThrow();
    expect(() => new Deployment(m.backend as never).validate()).not.toThrow();
    expect(() => new Service(m.backendService as never).validate()).not.toThrow();
    for (const j of [...m.jobs, ...m.counterJobs]) expect(() => new Job(j.job as never).validate(), j.name).not.toThrow();
    expect(() => new Job({ ...m.jobs[0].job, spec: { ...(m.jobs[0].job.spec as object), backoffLimit: "0" } } as never).validate()).toThrow();
  });

  it("gives every Job a deadline, no retries, a pinned image, guaranteed resources and anti-affinity to the proxy", () => {
    expect(m.jobs.map((j) => j.scenario)).toEqual([...SCENARIO_NAMES]);
    for (const { job, deadlineSeconds } of m.jobs) {
      const spec = job.spec as any;
      expect(spec.backoffLimit).toBe(0);
      expect(spec.activeDeadlineSeconds).toBe(deadlineSeconds);
      const pod = spec.template.spec;
      expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([{ labelSelector: { matchLabels: opts.proxyPodLabels }, topologyKey: "kubernetes.io/hostname" }]);
      const c = pod.containers[0];
      expect(c.image).not.toMatch(/:latest$/);
      expect(c.resources.requests).toEqual(c.resources.limits);
    }
    // port-churn: 5 runs × 10 s + slack.
    expect(m.jobs.find((j) => j.scenario === "port-churn")!.deadlineSeconds).toBe(170);
    expect((m.jobs.find((j) => j.scenario === "http-latency")!.job.spec as any).template.spec.containers[0].image).toBe("fortio/fortio:1.69.5");
  });

  it("reads conn-burst's listen counters on a proxy node with a hostNetwork Job", () => {
    expect(m.counterJobs.map((c) => c.scenario)).toEqual(["conn-burst"]);
    const pod = (m.counterJobs[0].job.spec as any).template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels).toEqual(opts.proxyPodLabels);
    expect(pod.containers[0].command[2]).toMatch(/^nstat -n && sleep 35 && nstat -j -z TcpExtListenOverflows TcpExtListenDrops/);
  });

  it("ships the Lua scripts the argv points at", () => {
    const data = m.configMap.data as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(["wrk-paced.lua", "wrk-report.lua"]);
    expect(data["wrk-report.lua"]).toContain("done = function(summary, latency, requests)");
  });

  it("refuses unpinned images and a missing rate", () => {
    expect(() => checkPinnedImage("fortio/fortio", "images.fortio")).toThrow(/not pinned/);
    expect(() => checkPinnedImage("fortio/fortio:latest", "images.fortio")).toThrow(/not pinned/);
    expect(() => checkPinnedImage("localhost:5000/wrk", "images.loadgen")).toThrow(/not pinned/);
    expect(() => checkPinnedImage(`wrk@sha256:${"a".repeat(64)}`, "x")).not.toThrow();
    expect(() => buildBenchManifests({ ...opts, images: { loadgen: "debian" } })).toThrow(/images\.loadgen: image "debian" is not pinned/);
    expect(() => buildBenchManifests({ ...opts, httpLatencyRateRps: undefined })).toThrow(/pass rateRps/);
  });
});

describe("job log collection", () => {
  it("quotes argv in the Job script and waits for the Job before reading its log", () => {
    const script = jobScript(scenarioInvocations(SCENARIOS["conn-rate"], { environment: "cluster", host: "proxy", port: 80, luaDir: "/etc/edgetune-bench" }));
    expect(script).toContain("wrk -t2 -c64 -d10s --timeout 2s -H 'Connection: close' -s /etc/edgetune-bench/wrk-report.lua http://proxy:80/ || rc=$?");
    expect(collectCommand("bench", "edgetune-bench-tuned-conn-rate", 180)).toBe(
      "kubectl wait -n bench --for=condition=complete --timeout=180s job/edgetune-bench-tuned-conn-rate; rc=$?; kubectl logs -n bench job/edgetune-bench-tuned-conn-rate; exit $rc",
    );
  });

  it("splits a Job log into per-run results with client CPU from `times` and proxy counters", () => {
    const run = (i: number, out: string, times: string) =>
      `### edgetune-run {"scenario":"conn-burst","tool":"wrk","run":${i},"concurrency":2000,"durationSeconds":3}\n${out}### edgetune-times\n0m0.01s 0m0.00s\n${times}\n`;
    const log = `### edgetune-nproc 4\n${run(0, fixture("wrk-burst.txt"), "0m1.20s 0m3.00s")}${run(1, fixture("wrk-connclose.txt"), "0m3.00s 0m6.90s")}### edgetune-end 0\n`;
    const rs = parseJobLog(log, { scenario: "conn-burst", profile: "baseline", counters: fixture("nstat-burst.json") });
    expect(rs.map((r) => r.run)).toEqual([0, 1]);
    // run 0: 4.2 CPU-s over 3 s on 2 wrk threads = 70 %; run 1: (9.9 - 4.2) / 6 = 95 % → saturated.
    expect(rs[0].validity.clientCpuPercent).toBeCloseTo(70, 6);
    expect(rs[0].validity.valid).toBe(true);
    expect(rs[1].validity.valid).toBe(false);
    expect(rs[0].validity.listenOverflows).toBe(15333);
    expect(rs[0].connsPerSecond).toBeGreaterThan(0);
  });

  it("fails clearly on a log without the benchmark markers", () => {
    expect(() => parseJobLog("Error from server (NotFound)", { scenario: "conn-rate", profile: "tuned" })).toThrow(/no "### edgetune-run" marker/);
  });
});
