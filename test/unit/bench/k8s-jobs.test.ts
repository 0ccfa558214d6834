import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Job } from "kubernetes-models/batch/v1/Job";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { describe, expect, it } from "vitest";
import {
  buildBenchManifests,
  checkPinnedImage,
  collectCommand,
  COUNTERS_FOR_LABEL,
  type BenchJobsOptions,
} from "../../../components/bench/k8s-jobs";
import { SCENARIO_NAMES } from "../../../components/bench/result";
import { SCENARIOS, scenarioInvocations } from "../../../components/bench/scenarios";
import { describeSystem, run } from "../../helpers/system";

const opts: BenchJobsOptions = {
  namespace: "edgetune-bench",
  profile: "tuned",
  scenarios: [...SCENARIO_NAMES],
  proxyNamespace: "edgetune-proxy",
  httpPort: 80,
  l4Port: 5201,
  churnPort: 81,
  proxyPodLabels: { "app.kubernetes.io/name": "edgetune-proxy" },
  images: { loadgen: "registry.example/edgetune-loadgen:2025.1" },
  httpLatencyRateRps: 2000,
};

describe("scenarioInvocations", () => {
  it("produces the exact argv per tool", () => {
    const base = { host: "10.0.0.2", port: 80, luaDir: "/lua" } as const;
    expect(scenarioInvocations(SCENARIOS["conn-burst"], { ...base, environment: "local" })[0].argv).toEqual([
      "wrk",
      "-t2",
      "-c2000",
      "-d10s",
      "--timeout",
      "2s",
      "-H",
      "Connection: close",
      "-s",
      "/lua/wrk-report.lua",
      "http://10.0.0.2:80/",
    ]);
    expect(scenarioInvocations(SCENARIOS["http-latency"], { ...base, environment: "local", rateRps: 1000, quick: true })[0].argv).toEqual([
      "wrk",
      "-t4",
      "-c4",
      "-d3s",
      "--timeout",
      "2s",
      "-s",
      "/lua/wrk-paced.lua",
      "http://10.0.0.2:80/",
      "--",
      "250",
    ]);
    // The cluster runs the same paced wrk as the lab: no fortio anywhere.
    expect(scenarioInvocations(SCENARIOS["http-latency"], { ...base, environment: "cluster", rateRps: 1000 })[0].argv).toEqual([
      "wrk",
      "-t8",
      "-c8",
      "-d10s",
      "--timeout",
      "2s",
      "-s",
      "/lua/wrk-paced.lua",
      "http://10.0.0.2:80/",
      "--",
      "125",
    ]);
    // port-churn in a cluster: the client-closes-first generator with the image's node, at the stated 5,000 conn/s.
    expect(scenarioInvocations(SCENARIOS["port-churn"], { ...base, environment: "cluster", port: 81 })[0].argv).toEqual([
      "node",
      "/lua/churn-client.js",
      "10.0.0.2",
      "81",
      "10",
      "16",
      "5000",
      "2",
    ]);
    expect(
      scenarioInvocations(SCENARIOS["l4-throughput"], { ...base, environment: "local", port: 5201 }).map((i) => i.argv.slice(-5)),
    ).toEqual([
      ["-P", "1", "-J", "--connect-timeout", "5000"],
      ["-P", "4", "-J", "--connect-timeout", "5000"],
    ]);
    expect(
      scenarioInvocations(SCENARIOS["port-churn"], { ...base, environment: "local", quick: true }).map((i) => [i.run, i.durationSeconds]),
    ).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
      [3, 3],
      [4, 3],
    ]);
  });

  it("rejects hosts, rates and durations that must not reach a command line", () => {
    const base = { environment: "local", port: 80, luaDir: "/lua" } as const;
    expect(() => scenarioInvocations(SCENARIOS["http-throughput"], { ...base, host: "x; rm -rf /" })).toThrow(
      /host "x; rm -rf \/" is not allowed/,
    );
    expect(() => scenarioInvocations(SCENARIOS["http-latency"], { ...base, host: "proxy" })).toThrow(
      /http-latency is constant-rate: pass rateRps/,
    );
    expect(() => scenarioInvocations(SCENARIOS["http-throughput"], { ...base, host: "proxy", durationSeconds: 0 })).toThrow(
      /durationSeconds 0/,
    );
  });
});

describe("buildBenchManifests", () => {
  const m = buildBenchManifests(opts);

  it("produces objects that validate against the Kubernetes schemas", () => {
    expect(() => new ConfigMap(m.configMap as never).validate()).not.toThrow();
    expect(() => new ServiceAccount(m.serviceAccount as never).validate()).not.toThrow();
    expect(() => new Role(m.role as never).validate()).not.toThrow();
    expect(() => new RoleBinding(m.roleBinding as never).validate()).not.toThrow();
    expect(() => new Deployment(m.backend as never).validate()).not.toThrow();
    expect(() => new Service(m.backendService as never).validate()).not.toThrow();
    for (const j of [...m.jobs, ...m.counterJobs]) expect(() => new Job(j.job as never).validate(), j.name).not.toThrow();
    expect(() =>
      new Job({ ...m.jobs[0].job, spec: { ...(m.jobs[0].job.spec as object), backoffLimit: "0" } } as never).validate(),
    ).toThrow();
  });

  it("gives every Job a deadline, no retries, a pinned image, guaranteed resources and anti-affinity to the proxy", () => {
    expect(m.jobs.map((j) => j.scenario)).toEqual([...SCENARIO_NAMES]);
    for (const { job, deadlineSeconds } of m.jobs) {
      const spec = job.spec as any;
      expect(spec.backoffLimit).toBe(0);
      expect(spec.activeDeadlineSeconds).toBe(deadlineSeconds);
      const pod = spec.template.spec;
      expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
        { labelSelector: { matchLabels: opts.proxyPodLabels }, namespaces: ["edgetune-proxy"], topologyKey: "kubernetes.io/hostname" },
      ]);
      const c = pod.containers[0];
      expect(c.image).not.toMatch(/:latest$/);
      expect(c.resources.requests).toEqual(c.resources.limits);
    }
    // port-churn: 5 runs × 10 s + slack.
    expect(m.jobs.find((j) => j.scenario === "port-churn")!.deadlineSeconds).toBe(170);
    // Every Job's log ends with the normalizer's line, naming the node it targeted.
    for (const { job, scenario } of m.jobs) {
      const c = (job.spec as any).template.spec.containers[0];
      expect(c.image).toBe(opts.images.loadgen);
      expect(c.command[2].split("\n").pop()).toBe(
        `exec node /etc/edgetune-bench/normalize.cjs --scenario ${scenario} --profile tuned --target "$target" < /tmp/edgetune-bench.log`,
      );
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    }
    // The backend is nginx and iperf3 from the loadgen image unless images.backend says otherwise.
    const backend = (m.backend.spec as any).template.spec.containers;
    expect(backend.map((c: any) => c.image)).toEqual([opts.images.loadgen, opts.images.loadgen]);
    expect(backend[0].command[2]).toBe("mkdir -p /tmp/nginx && exec nginx -e stderr -p /tmp/nginx -c /etc/edgetune-bench/nginx.conf");
    const other = buildBenchManifests({ ...opts, images: { ...opts.images, backend: "registry.example/echo:1.0" } });
    expect((other.backend.spec as any).template.spec.containers.map((c: any) => c.image)).toEqual([
      "registry.example/echo:1.0",
      "registry.example/echo:1.0",
    ]);
    expect(() => buildBenchManifests({ ...opts, images: { ...opts.images, backend: "nginx" } })).toThrow(/images\.backend: .*not pinned/);
    // No address anywhere: the Service gets its ClusterIP from the cluster.
    expect(JSON.stringify(m.backendService)).not.toContain("clusterIP");
  });

  it("reads the proxy node's counters around every scenario, from a hostNetwork pod next to a proxy pod", () => {
    expect(m.counterJobs.map((c) => c.scenario)).toEqual([...SCENARIO_NAMES]);
    m.counterJobs.forEach((c, i) => {
      expect(c.name).toBe(`${m.jobs[i].name}-counters`);
      const pod = (c.job.spec as any).template.spec;
      expect(pod.hostNetwork).toBe(true);
      expect(pod.automountServiceAccountToken).toBe(false);
      // The proxy pods live in the proxy's namespace: without `namespaces` the term would look in the bench namespace.
      expect(pod.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
        { labelSelector: { matchLabels: opts.proxyPodLabels }, namespaces: ["edgetune-proxy"], topologyKey: "kubernetes.io/hostname" },
      ]);
      // The load Job finds its counters pod by this label.
      expect((c.job.spec as any).template.metadata.labels[COUNTERS_FOR_LABEL]).toBe(m.jobs[i].name);
      expect(pod.containers[0].command[2]).toMatch(
        /^nstat -n && sleep \d+ && nstat -j -z TcpExtListenOverflows TcpExtListenDrops TcpRetransSegs TcpExtTCPSynRetrans TcpExtTW TcpExtTWRecycled TcpAttemptFails$/,
      );
    });
    // conn-burst: 15 s late start allowed + 2 × 10 s runs + 2 s start-up each + 10 s.
    expect((m.counterJobs.find((c) => c.scenario === "conn-burst")!.job.spec as any).template.spec.containers[0].command[2]).toContain(
      "sleep 49 ",
    );
  });

  it("gives the load Jobs an identity that may only read pods in the bench namespace", () => {
    expect(m.role.rules).toEqual([{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }]);
    expect(m.roleBinding.subjects).toEqual([{ kind: "ServiceAccount", name: m.serviceAccount.metadata.name, namespace: "edgetune-bench" }]);
    for (const { job } of m.jobs) {
      const pod = (job.spec as any).template.spec;
      expect(pod.serviceAccountName).toBe(m.serviceAccount.metadata.name);
      expect(pod.automountServiceAccountToken).toBe(true);
    }
  });

  it("ships the Lua scripts the argv points at and the normalizer the script ends with", () => {
    const data = m.configMap.data as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(["churn-client.js", "nginx.conf", "normalize.cjs", "wrk-paced.lua", "wrk-report.lua"]);
    // A ConfigMap holds at most 1 MiB.
    expect(Buffer.byteLength(JSON.stringify(data))).toBeLessThan(1024 * 1024);
    expect(data["wrk-report.lua"]).toContain("done = function(summary, latency, requests)");
  });

  it("refuses unpinned images and a missing rate", () => {
    expect(() => checkPinnedImage("fortio/fortio", "images.fortio")).toThrow(/not pinned/);
    expect(() => checkPinnedImage("fortio/fortio:latest", "images.fortio")).toThrow(/not pinned/);
    expect(() => checkPinnedImage("localhost:5000/wrk", "images.loadgen")).toThrow(/not pinned/);
    expect(() => checkPinnedImage(`wrk@sha256:${"a".repeat(64)}`, "x")).not.toThrow();
    // The reference lands in a pod spec and a shell script: anything but an image reference is refused.
    expect(() => checkPinnedImage("wrk:1.0.0;reboot", "images.loadgen")).toThrow(
      /images\.loadgen: image "wrk:1\.0\.0;reboot" is not an image reference/,
    );
    expect(() => buildBenchManifests({ ...opts, images: { loadgen: "debian" } })).toThrow(/images\.loadgen: image "debian" is not pinned/);
    expect(() => buildBenchManifests({ ...opts, httpLatencyRateRps: undefined })).toThrow(/pass rateRps/);
  });
});

describe("job log collection", () => {
  it("quotes argv in the Job script", () => {
    const script = (buildBenchManifests({ ...opts, scenarios: ["conn-rate"] }).jobs[0].job.spec as any).template.spec.containers[0]
      .command[2];
    expect(script).toContain(
      `wrk -t2 -c64 -d10s --timeout 2s -H 'Connection: close' -s /etc/edgetune-bench/wrk-report.lua http://"$target_url":80/ || rc=$?`,
    );
    const churn = (buildBenchManifests({ ...opts, scenarios: ["port-churn"] }).jobs[0].job.spec as any).template.spec.containers[0]
      .command[2];
    expect(churn).toContain(`node /etc/edgetune-bench/churn-client.js "$target" 81 10 16 5000 2 || rc=$?`);
  });
});

// The collect command with a stand-in kubectl whose Job status the test sets.
describeSystem("collectCommand (waits for the Job, prints its log)", ["dash", "shellcheck"], () => {
  const collect = (status: string, timeoutSeconds = 60) => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-collect-"));
    writeFileSync(
      join(dir, "kubectl"),
      `#!/bin/sh
echo "$*" >> ${dir}/calls
case "$1" in get) printf '%s' ${JSON.stringify(status)} ;; logs) echo "the log of $4" ;; esac
`,
    );
    chmodSync(join(dir, "kubectl"), 0o755);
    const r = run("dash", ["-c", collectCommand("bench", "edgetune-bench-tuned-conn-rate", timeoutSeconds, 1)], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    return { ...r, calls: readFileSync(join(dir, "calls"), "utf8").trim().split("\n") };
  };

  it("is shellcheck-clean POSIX sh", () => {
    const r = run("shellcheck", ["-s", "sh", "-"], {
      input: `#!/bin/sh\n${collectCommand("bench", "edgetune-bench-tuned-conn-rate", 180)}\n`,
    });
    expect(r.code, r.stdout).toBe(0);
  });

  it("prints the log once the Job completes", () => {
    const r = collect("SuccessCriteriaMet Complete");
    expect([r.code, r.stdout]).toEqual([0, "the log of job/edgetune-bench-tuned-conn-rate\n"]);
    expect(r.calls[0]).toBe(`get -n bench job/edgetune-bench-tuned-conn-rate -o jsonpath={.status.conditions[?(@.status=="True")].type}`);
  });

  it("returns at once with status 1 and the log when the Job failed, not after the timeout", () => {
    const r = collect("FailureTarget Failed", 600);
    expect([r.code, r.stdout]).toEqual([1, "the log of job/edgetune-bench-tuned-conn-rate\n"]);
    expect(r.calls).toHaveLength(2);
  });

  it("gives up after the timeout with status 124, still printing what the log has", () => {
    const r = collect("Suspended", 2);
    expect(r.code).toBe(124);
    expect(r.stderr).toContain("edgetune: edgetune-bench-tuned-conn-rate did not finish within 2s; kubectl's last answer: Suspended");
    expect(r.calls.filter((c) => c.startsWith("get"))).toHaveLength(2);
  });
});
