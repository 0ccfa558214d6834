import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { readResultLine } from "./job-log";
import { buildBenchManifests, collectCommand, type BenchImages } from "./k8s-jobs";
import type { BenchResult, ScenarioName } from "./result";
import { evaluateThresholds, type Thresholds, type Violation } from "./thresholds";

export interface BenchmarkSuiteArgs {
  /** Namespace for the backend and the Jobs; must exist. */
  namespace: string;
  /** Scenarios to run, in this order, one Job each. */
  scenarios: ScenarioName[];
  /**
   * Profile labels to run, in order; default ["tuned"]. With ["baseline", "tuned"]
   * the baseline Jobs finish before the tuned ones start, on the same nodes.
   */
  profiles?: string[];
  /**
   * Called before a profile's Jobs are created, with the collect steps of every run
   * so far: returns resources the profile's Jobs wait for. This is where the A/B
   * switch goes — e.g. a KubernetesNodeTuner for the tuned profile that itself
   * depends on `finishedSoFar`, so the baseline is measured on untuned nodes and the
   * tuned runs start once the nodes are tuned. Default: no gates.
   */
  beforeProfile?: (profile: string, finishedSoFar: pulumi.Resource[]) => pulumi.Resource[];
  /** Short durations (`--quick` variants); default false. */
  quick?: boolean;
  /** The proxy's Service name (or node address) as the load generator reaches it. */
  proxyHost: string;
  /** HTTP listener port; default 80. */
  httpPort?: number;
  /** L4 (TCP) listener port for iperf3; default 5201. */
  l4Port?: number;
  /** The proxy DaemonSet's pod labels: load generators never share a node with them. */
  proxyPodLabels: Record<string, string>;
  images: BenchImages;
  /** Offered rate for http-latency, requests/s; needed when it is in `scenarios`. */
  httpLatencyRateRps?: number;
  /** Fixed ClusterIP of the backend Service (see BenchJobsOptions.backendClusterIP); default: assigned. */
  backendClusterIP?: string;
  thresholds?: Thresholds;
  /** Kubeconfig path for kubectl in the collect commands; default: kubectl's own ($KUBECONFIG or ~/.kube/config). */
  kubeconfigPath?: string;
}

/**
 * Runs benchmark Jobs against a proxy and turns their logs into typed outputs.
 * The collect step is a command.local.Command running kubectl on the machine
 * that runs `pulumi up`: it needs kubectl and a kubeconfig for the cluster.
 */
export class BenchmarkSuite extends pulumi.ComponentResource {
  /** Every run's normalized result. */
  readonly results: pulumi.Output<BenchResult[]>;
  readonly passed: pulumi.Output<boolean>;
  readonly violations: pulumi.Output<Violation[]>;

  constructor(name: string, args: BenchmarkSuiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edgetune:bench:BenchmarkSuite", name, {}, opts);
    const profiles = args.profiles ?? ["tuned"];
    const environment = args.kubeconfigPath ? { KUBECONFIG: args.kubeconfigPath } : undefined;
    const collected: pulumi.Output<BenchResult[]>[] = [];
    let previous: pulumi.Resource[] = [];
    const finished: pulumi.Resource[] = [];
    let shared: { configMap: k8s.core.v1.ConfigMap; backend: k8s.apps.v1.Deployment; service: k8s.core.v1.Service } | undefined;

    for (const profile of profiles) {
      const m = buildBenchManifests({
        namespace: args.namespace,
        profile,
        scenarios: args.scenarios,
        quick: args.quick,
        proxyHost: args.proxyHost,
        httpPort: args.httpPort ?? 80,
        l4Port: args.l4Port ?? 5201,
        proxyPodLabels: args.proxyPodLabels,
        images: args.images,
        httpLatencyRateRps: args.httpLatencyRateRps,
        backendClusterIP: args.backendClusterIP,
      });
      shared ??= {
        configMap: new k8s.core.v1.ConfigMap(`${name}-scripts`, m.configMap as k8s.core.v1.ConfigMapArgs, { parent: this }),
        backend: new k8s.apps.v1.Deployment(`${name}-backend`, m.backend as unknown as k8s.apps.v1.DeploymentArgs, { parent: this }),
        service: new k8s.core.v1.Service(`${name}-backend`, m.backendService as k8s.core.v1.ServiceArgs, { parent: this }),
      };
      const gates = args.beforeProfile?.(profile, [...finished]) ?? [];
      const base = [shared.configMap, shared.backend, shared.service, ...gates];
      for (const j of m.jobs) {
        // One Job at a time: two load generators would measure each other.
        const deps = [...base, ...previous];
        const counters = m.counterJobs.find((c) => c.scenario === j.scenario);
        const counterJob = counters ? new k8s.batch.v1.Job(counters.name, counters.job as k8s.batch.v1.JobArgs, { parent: this, dependsOn: deps }) : undefined;
        const job = new k8s.batch.v1.Job(j.name, j.job as k8s.batch.v1.JobArgs, {
          parent: this,
          dependsOn: counterJob ? [...deps, counterJob] : deps,
        });
        const collect = new command.local.Command(`${j.name}-collect`, {
          create: collectCommand(args.namespace, j.name, j.deadlineSeconds + 60),
          environment,
          triggers: [job.metadata.uid],
          logging: "stderr",
        }, { parent: this, dependsOn: [job] });
        const counterLog = counters
          ? new command.local.Command(`${counters.name}-collect`, {
              create: collectCommand(args.namespace, counters.name, j.deadlineSeconds + 90),
              environment,
              triggers: [counterJob!.metadata.uid],
              logging: "stderr",
            }, { parent: this, dependsOn: [counterJob!, collect] }).stdout
          : pulumi.output(undefined);
        collected.push(pulumi.all([collect.stdout, counterLog]).apply(([log, c]) => readResultLine(log, { scenario: j.scenario, profile, counters: c })));
        previous = [collect];
        finished.push(collect);
      }
    }

    this.results = pulumi.all(collected).apply((rs) => rs.flat());
    const verdict = this.results.apply((rs) => evaluateThresholds(rs, args.thresholds ?? {}, profiles.length > 1 ? { profile: profiles[profiles.length - 1], baselineProfile: profiles[0] } : { profile: profiles[0] }));
    this.passed = verdict.apply((v) => v.passed);
    this.violations = verdict.apply((v) => v.violations);
    this.registerOutputs({ results: this.results, passed: this.passed, violations: this.violations });
  }
}
