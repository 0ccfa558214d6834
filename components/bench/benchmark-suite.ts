import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { readResultLine } from "./job-log";
import { knownNow, refuseResolved } from "../inputs";
import { resolveWith, ValidationError } from "../validation";
import { benchImagesSpec, resolveBenchmarkSuiteOptions, type BenchImages, type BenchmarkSuiteOptions } from "./benchmark-suite-spec";
import { buildBenchManifests, collectCommand, type BenchManifests } from "./k8s-jobs";
import type { BenchResult } from "./result";
import { evaluateThresholds, type Violation } from "./thresholds";

/**
 * Arguments of BenchmarkSuite: the options of its spec (benchmark-suite-spec.ts, where every
 * default and bound is written), images also as Outputs, plus what only a program can give.
 */
export type BenchmarkSuiteArgs = Omit<BenchmarkSuiteOptions, "images"> & {
  /** Images, pinned by tag or digest; each may be an Output (e.g. an ECR repository URL). */
  images: { loadgen: pulumi.Input<string>; backend?: pulumi.Input<string> };
  /**
   * The namespace's name as an Output of its creation (the stack's own namespaces): every
   * object waits for it. Default: the namespace exists already.
   */
  namespaceReady?: pulumi.Input<string>;
  /**
   * Called before a profile's Jobs are created, with the collect steps of every run
   * so far: returns resources the profile's Jobs wait for. This is where the A/B
   * switch goes — e.g. a KubernetesNodeTuner for the tuned profile that itself
   * depends on `finishedSoFar`, so the baseline is measured on untuned nodes and the
   * tuned runs start once the nodes are tuned. Default: no gates.
   */
  beforeProfile?: (profile: string, finishedSoFar: pulumi.Resource[]) => pulumi.Resource[];
  /**
   * Kubeconfig contents for kubectl in the collect commands (e.g. the one given to the Kubernetes
   * provider, or a cluster's kubeconfig output); kept secret. Required when the suite gets an
   * explicit Kubernetes provider: the Jobs would run on that cluster while kubectl read another.
   */
  kubeconfig?: pulumi.Input<string>;
};

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
    const { beforeProfile, kubeconfig, images: imageInputs, namespaceReady, ...plain } = args;
    if (kubeconfig === undefined && plain.kubeconfigPath === undefined && hasKubernetesProvider(opts)) {
      throw new Error(
        `BenchmarkSuite "${name}": an explicit Kubernetes provider needs args.kubeconfig (its kubeconfig) or args.kubeconfigPath: kubectl in the collect step would otherwise read the ambient KUBECONFIG, another cluster's perhaps`,
      );
    }
    // Validate before super(); images given as Outputs are checked when they resolve.
    const imagesNow = knownNow(imageInputs);
    const r = resolveBenchmarkSuiteOptions({ ...plain, ...(imagesNow ? { images: imagesNow } : {}) }, [], imagesNow ? [] : ["images"]);
    if (!r.value) throw new ValidationError(r.issues, `BenchmarkSuite "${name}": invalid args`);
    super("edgetune:bench:BenchmarkSuite", name, {}, opts);
    const o = r.value;
    const profiles = o.profiles;
    const environment: Record<string, pulumi.Input<string>> | undefined =
      kubeconfig !== undefined
        ? { [COLLECT_KUBECONFIG_ENV]: pulumi.secret(kubeconfig) }
        : o.kubeconfigPath
          ? { KUBECONFIG: o.kubeconfigPath }
          : undefined;
    const collected: pulumi.Output<BenchResult[]>[] = [];
    let previous: pulumi.Resource[] = [];
    const finished: pulumi.Resource[] = [];
    let shared: pulumi.Resource[] | undefined;
    // Resolves once the namespace exists: the objects' content waits for it, and so do they.
    const images: pulumi.Output<BenchImages> = pulumi.all([imageInputs, namespaceReady ?? o.namespace]).apply(([resolved]) => {
      const late = resolveWith(benchImagesSpec, resolved, ["images"]);
      if (!late.value) return refuseResolved(late.issues, `BenchmarkSuite "${name}": invalid images`);
      return late.value;
    });

    for (const profile of profiles) {
      const options = { ...o, profile };
      // Which objects exist does not depend on the images (one Job per scenario, names from the
      // profile and scenario): the structure is built with a stand-in image, every object's
      // content from the real ones once they resolve.
      const m = buildBenchManifests({ ...options, images: { loadgen: STRUCTURE_ONLY_IMAGE } });
      const real: pulumi.Output<BenchManifests> = images.apply((imgs) => buildBenchManifests({ ...options, images: imgs }));
      shared ??= [
        new k8s.core.v1.ServiceAccount(`${name}-loadgen`, { metadata: real.serviceAccount.metadata }, { parent: this }),
        new k8s.rbac.v1.Role(`${name}-loadgen`, { metadata: real.role.metadata, rules: real.role.rules }, { parent: this }),
        new k8s.rbac.v1.RoleBinding(
          `${name}-loadgen`,
          { metadata: real.roleBinding.metadata, roleRef: real.roleBinding.roleRef, subjects: real.roleBinding.subjects },
          { parent: this },
        ),
        new k8s.core.v1.ConfigMap(`${name}-scripts`, { metadata: real.configMap.metadata, data: real.configMap.data }, { parent: this }),
        new k8s.apps.v1.Deployment(`${name}-backend`, { metadata: real.backend.metadata, spec: real.backend.spec }, { parent: this }),
        new k8s.core.v1.Service(
          `${name}-backend`,
          { metadata: real.backendService.metadata, spec: real.backendService.spec },
          { parent: this },
        ),
      ];
      const gates = beforeProfile?.(profile, [...finished]) ?? [];
      const base = [...shared, ...gates];
      m.jobs.forEach((j, index) => {
        // One Job at a time: two load generators would measure each other.
        const deps = [...base, ...previous];
        // Created first: the load Job waits for this pod and targets its node.
        const counters = m.counterJobs[index];
        const counterJob = new k8s.batch.v1.Job(
          counters.name,
          { metadata: real.apply((x) => x.counterJobs[index].job.metadata), spec: real.apply((x) => x.counterJobs[index].job.spec) },
          { parent: this, dependsOn: deps },
        );
        const job = new k8s.batch.v1.Job(
          j.name,
          { metadata: real.apply((x) => x.jobs[index].job.metadata), spec: real.apply((x) => x.jobs[index].job.spec) },
          { parent: this, dependsOn: [...deps, counterJob] },
        );
        // Waits for the Job and prints its log; the deadline bounds the wait.
        const collectJob = (jobName: string, jobResource: k8s.batch.v1.Job, waitSeconds: number, after: pulumi.Resource[]) =>
          new command.local.Command(
            `${jobName}-collect`,
            {
              create: collectCommand(o.namespace, jobName, waitSeconds),
              environment,
              triggers: [jobResource.metadata.uid],
              logging: "stderr",
            },
            { parent: this, dependsOn: [jobResource, ...after] },
          );
        const collect = collectJob(j.name, job, j.deadlineSeconds + 60, []);
        const counterCollect = collectJob(counters.name, counterJob, j.deadlineSeconds + 90, [collect]);
        collected.push(
          pulumi
            .all([collect.stdout, counterCollect.stdout])
            .apply(([log, c]) => readResultLine(log, { scenario: j.scenario, profile, counters: c })),
        );
        // The next scenario's counters start after this one's are read: windows never overlap.
        previous = [collect, counterCollect];
        finished.push(collect, counterCollect);
      });
    }

    this.results = pulumi.all(collected).apply((rs) => rs.flat());
    const verdict = this.results.apply((rs) =>
      evaluateThresholds(
        rs,
        o.thresholds,
        profiles.length > 1 ? { profile: profiles[profiles.length - 1], baselineProfile: profiles[0] } : { profile: profiles[0] },
      ),
    );
    this.passed = verdict.apply((v) => v.passed);
    this.violations = verdict.apply((v) => v.violations);
    this.registerOutputs({ results: this.results, passed: this.passed, violations: this.violations });
  }
}
