import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { readResultLine } from "./job-log";
import { knownNow } from "../inputs";
import { buildBenchManifests, checkPinnedImage, collectCommand, DEFAULT_FORTIO_IMAGE, type BenchImages, type BenchManifests } from "./k8s-jobs";
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
  /** Images, pinned by tag or digest; each may be an Output (e.g. an ECR repository URL). */
  images: { [K in keyof BenchImages]: pulumi.Input<NonNullable<BenchImages[K]>> };
  /** Offered rate for http-latency, requests/s; needed when it is in `scenarios`. */
  httpLatencyRateRps?: number;
  /** Fixed ClusterIP of the backend Service (see BenchJobsOptions.backendClusterIP); default: assigned. */
  backendClusterIP?: string;
  thresholds?: Thresholds;
  /** Kubeconfig path for kubectl in the collect commands; default: kubectl's own ($KUBECONFIG or ~/.kube/config). */
  kubeconfigPath?: string;
  /**
   * Kubeconfig contents for kubectl in the collect commands (e.g. the one given to the Kubernetes
   * provider, or a cluster's kubeconfig output); kept secret. Required when the suite gets an
   * explicit Kubernetes provider: the Jobs would run on that cluster while kubectl read another.
   */
  kubeconfig?: pulumi.Input<string>;
}

/** kubectl's kubeconfig for the collect step: a file written from the secret contents, or a path. */
export const COLLECT_KUBECONFIG_ENV = "EDGETUNE_KUBECONFIG";

function hasKubernetesProvider(opts: pulumi.ComponentResourceOptions | undefined): boolean {
  const all = [opts?.provider, ...(Array.isArray(opts?.providers) ? opts.providers : Object.values(opts?.providers ?? {}))];
  return all.some((p) => p !== undefined && k8s.Provider.isInstance(p));
}

/** Builds the objects' structure only; never reaches an object (see the constructor). */
const STRUCTURE_ONLY_IMAGE = "structure.invalid/only:0";

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
    if (args.kubeconfig === undefined && args.kubeconfigPath === undefined && hasKubernetesProvider(opts)) {
      throw new Error(`BenchmarkSuite "${name}": an explicit Kubernetes provider needs args.kubeconfig (its kubeconfig) or args.kubeconfigPath: kubectl in the collect step would otherwise read the ambient KUBECONFIG, another cluster's perhaps`);
    }
    for (const [key, image] of Object.entries(args.images)) {
      const now = knownNow(image);
      if (now !== undefined) checkPinnedImage(now, `images.${key}`);
    }
    super("edgetune:bench:BenchmarkSuite", name, {}, opts);
    const profiles = args.profiles ?? ["tuned"];
    const environment: Record<string, pulumi.Input<string>> | undefined =
      args.kubeconfig !== undefined ? { [COLLECT_KUBECONFIG_ENV]: pulumi.secret(args.kubeconfig) } : args.kubeconfigPath ? { KUBECONFIG: args.kubeconfigPath } : undefined;
    const collected: pulumi.Output<BenchResult[]>[] = [];
    let previous: pulumi.Resource[] = [];
    const finished: pulumi.Resource[] = [];
    let shared: { configMap: k8s.core.v1.ConfigMap; backend: k8s.apps.v1.Deployment; service: k8s.core.v1.Service } | undefined;
    const images = pulumi.all([args.images.loadgen, args.images.fortio ?? DEFAULT_FORTIO_IMAGE]);

    for (const profile of profiles) {
      const options = {
        namespace: args.namespace,
        profile,
        scenarios: args.scenarios,
        quick: args.quick,
        proxyHost: args.proxyHost,
        httpPort: args.httpPort ?? 80,
        l4Port: args.l4Port ?? 5201,
        proxyPodLabels: args.proxyPodLabels,
        httpLatencyRateRps: args.httpLatencyRateRps,
        backendClusterIP: args.backendClusterIP,
      };
      // Which objects exist does not depend on the images (one Job per scenario, names from the
      // profile and scenario): the structure is built with a stand-in image, every object's
      // content from the real ones once they resolve.
      const m = buildBenchManifests({ ...options, images: { loadgen: STRUCTURE_ONLY_IMAGE, fortio: STRUCTURE_ONLY_IMAGE } });
      const real: pulumi.Output<BenchManifests> = images.apply(([loadgen, fortio]) => buildBenchManifests({ ...options, images: { loadgen, fortio } }));
      const part = <T>(pick: (x: BenchManifests) => Record<string, unknown>) => ({ metadata: real.apply((x) => pick(x).metadata as k8s.types.input.meta.v1.ObjectMeta), spec: real.apply((x) => pick(x).spec as T) });
      shared ??= {
        configMap: new k8s.core.v1.ConfigMap(`${name}-scripts`, { metadata: real.apply((x) => x.configMap.metadata as k8s.types.input.meta.v1.ObjectMeta), data: real.apply((x) => x.configMap.data as Record<string, string>) }, { parent: this }),
        backend: new k8s.apps.v1.Deployment(`${name}-backend`, part<k8s.types.input.apps.v1.DeploymentSpec>((x) => x.backend), { parent: this }),
        service: new k8s.core.v1.Service(`${name}-backend`, part<k8s.types.input.core.v1.ServiceSpec>((x) => x.backendService), { parent: this }),
      };
      const gates = args.beforeProfile?.(profile, [...finished]) ?? [];
      const base = [shared.configMap, shared.backend, shared.service, ...gates];
      m.jobs.forEach((j, index) => {
        // One Job at a time: two load generators would measure each other.
        const deps = [...base, ...previous];
        const counters = m.counterJobs.find((c) => c.scenario === j.scenario);
        const counterIndex = m.counterJobs.findIndex((c) => c.scenario === j.scenario);
        const counterJob = counters ? new k8s.batch.v1.Job(counters.name, part<k8s.types.input.batch.v1.JobSpec>((x) => x.counterJobs[counterIndex].job), { parent: this, dependsOn: deps }) : undefined;
        const job = new k8s.batch.v1.Job(j.name, part<k8s.types.input.batch.v1.JobSpec>((x) => x.jobs[index].job), {
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
      });
    }

    this.results = pulumi.all(collected).apply((rs) => rs.flat());
    const verdict = this.results.apply((rs) => evaluateThresholds(rs, args.thresholds ?? {}, profiles.length > 1 ? { profile: profiles[profiles.length - 1], baselineProfile: profiles[0] } : { profile: profiles[0] }));
    this.passed = verdict.apply((v) => v.passed);
    this.violations = verdict.apply((v) => v.violations);
    this.registerOutputs({ results: this.results, passed: this.passed, violations: this.violations });
  }
}
