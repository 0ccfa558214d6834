import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH_SCRIPT_DIR, jobScript, NORMALIZER_FILE, TARGET_PLACEHOLDER } from "./job-log";
import type { ScenarioName } from "./result";
import { benchImagesSpec, type BenchImagesInput, type BenchmarkConfig } from "./benchmark-suite-spec";
import { PROXY_NODE_COUNTERS, SCENARIOS, scenarioInvocations } from "./scenarios";
import type * as k8s from "@pulumi/kubernetes";
import {
  edgetuneLabels,
  type ConfigMapObject,
  type DeploymentObject,
  type JobObject,
  type Plain,
  type RoleBindingObject,
  type RoleObject,
  type ServiceAccountObject,
  type ServiceObject,
} from "../k8s-namespace";
import { imageProblem } from "../validation";
import { shqWord } from "../shell";

/**
 * Pure builder of the benchmark's Kubernetes objects (plain specs, no Pulumi):
 * one Job per scenario and profile, the backend (HTTP echo + iperf3 server),
 * and a ConfigMap with the Lua scripts and the bundled normalizer. Every Job's
 * log ends with its normalized results as one JSON line (see job-log.ts).
 * BenchmarkSuite wires them; `edgetune render` prints them.
 *
 * No address is written down. Each scenario has a counters Job: a hostNetwork pod that
 * must share a node with a proxy pod (podAffinity on proxyPodLabels in the proxy's
 * namespace) and reads that node's nstat counters around the run. The load Job, with a
 * ServiceAccount that may only get/list pods in the bench namespace, asks the API for its
 * counters pod, waits until it runs, and targets that pod's hostIP: the proxy node whose
 * counters are read (the proxy is hostNetwork, so the node's address reaches it). The same
 * objects work applied by Pulumi or by kubectl from `edgetune render`. The backend is a
 * Service the proxy reaches by name (`<name>.<namespace>.svc.cluster.local`).
 */

/** The suite's resolved options for one profile's Jobs (benchmark-suite-spec.ts). */
export interface BenchJobsOptions extends Pick<
  BenchmarkConfig,
  "namespace" | "scenarios" | "httpPort" | "l4Port" | "churnPort" | "proxyPodLabels" | "httpLatencyRateRps"
> {
  /** A fixed address of the proxy instead of the counters pod's node. */
  proxyHost?: string;
  /** Namespace of the proxy pods; default edgetune-proxy. */
  proxyNamespace?: string;
  quick?: boolean;
  images: BenchImagesInput;
  /** Profile label of this run ("baseline", "tuned"); part of every name. */
  profile: string;
  /** Slack added to each Job's planned run time for activeDeadlineSeconds; default 120. */
  deadlineSlackSeconds?: number;
  /** Load generator requests; default 1 CPU / 256Mi (limits equal: a throttled client is an invalid run). */
  loadgenCpu?: string;
  loadgenMemory?: string;
}

export const LUA_DIR = BENCH_SCRIPT_DIR;
const NAME = "edgetune-bench";
/** The proxy DaemonSet's default namespace (proxy-daemonset-spec.ts). */
const DEFAULT_PROXY_NAMESPACE = "edgetune-proxy";
/** The label by which a load Job finds its counters pod. */
export const COUNTERS_FOR_LABEL = "edgetune.dev/counters-for";
/** How long after its counters pod starts a load Job may begin its runs. */
const LATE_SECONDS = 15;
// Pulumi would otherwise hold a Job's creation until it completes; the counter Job must
// be running *during* the load Job, and the collect command does the waiting for both.
const SKIP_AWAIT = { "pulumi.com/skipAwait": "true" };

/** Rejects `latest`, untagged and malformed references: a benchmark must be repeatable. */
export function checkPinnedImage(ref: string, key: string): void {
  const problem = imageProblem(ref);
  if (problem === "not an image reference")
    throw new Error(
      `${key}: image ${JSON.stringify(ref)} is not an image reference; allowed: registry/path[:tag][@sha256:digest] in lowercase`,
    );
  if (problem)
    throw new Error(`${key}: image ${JSON.stringify(ref)} is not pinned; allowed: a tag other than "latest" or an @sha256 digest`);
}

function labels(component: string, profile?: string): Record<string, string> {
  return { ...edgetuneLabels(NAME, component), ...(profile ? { "edgetune.dev/profile": profile } : {}) };
}

export interface BenchManifests {
  configMap: ConfigMapObject;
  /** The load Jobs' identity: get/list pods in the bench namespace, to find their counters pod. */
  serviceAccount: ServiceAccountObject;
  role: RoleObject;
  roleBinding: RoleBindingObject;
  backend: DeploymentObject;
  backendService: ServiceObject;
  /** One per scenario, in scenario order. */
  jobs: { scenario: ScenarioName; name: string; job: JobObject; deadlineSeconds: number }[];
  /** One per scenario: a hostNetwork pod on a proxy node reading its counters; the load Job targets its node. */
  counterJobs: { scenario: ScenarioName; name: string; job: JobObject }[];
}

export function buildBenchManifests(o: BenchJobsOptions): BenchManifests {
  checkPinnedImage(o.images.loadgen, "images.loadgen");
  if (o.images.backend !== undefined) checkPinnedImage(o.images.backend, "images.backend");
  const images = benchImagesSpec.parse(o.images);
  const backendImage = images.backend ?? images.loadgen;
  if (!/^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/.test(o.profile))
    throw new Error(`profile ${JSON.stringify(o.profile)}: allowed: lowercase letters, digits and "-", at most 20 characters`);
  if (!Object.keys(o.proxyPodLabels).length)
    throw new Error("proxyPodLabels: at least one label is needed to keep the load generator off the proxy's nodes");
  const slack = o.deadlineSlackSeconds ?? 120;
  const ns = o.namespace;
  const proxyNamespace = o.proxyNamespace ?? DEFAULT_PROXY_NAMESPACE;
  // namespaces: a term without it matches pods in the bench namespace only.
  const awayFromProxy = {
    labelSelector: { matchLabels: o.proxyPodLabels },
    namespaces: [proxyNamespace],
    topologyKey: "kubernetes.io/hostname",
  };

  const files = ["wrk-report.lua", "wrk-paced.lua", "churn-client.js", "nginx.conf", NORMALIZER_FILE];
  const configMap: ConfigMapObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `${NAME}-scripts`, namespace: ns, labels: labels("scripts") },
    data: Object.fromEntries(files.map((f) => [f, readFileSync(join(__dirname, f), "utf8")])),
  };
  const identity = `${NAME}-loadgen`;
  const serviceAccount: ServiceAccountObject = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: identity, namespace: ns, labels: labels("loadgen") },
  };
  const role: RoleObject = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: identity, namespace: ns, labels: labels("loadgen") },
    rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }],
  };
  const roleBinding: RoleBindingObject = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: identity, namespace: ns, labels: labels("loadgen") },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: identity },
    subjects: [{ kind: "ServiceAccount", name: identity, namespace: ns }],
  };
  const nobody = {
    allowPrivilegeEscalation: false,
    runAsNonRoot: true,
    runAsUser: 65534,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" as const },
  };

  const backendLabels = labels("backend");
  const backend: DeploymentObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: `${NAME}-backend`, namespace: ns, labels: backendLabels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { "app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "backend" } },
      template: {
        metadata: { labels: backendLabels },
        spec: {
          // Preferred, not required: a one-node cluster still gets a backend.
          affinity: {
            podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: awayFromProxy }] },
          },
          containers: [
            {
              name: "http-echo",
              image: backendImage,
              // nginx's prefix, pid and temp files in the writable /tmp (nginx.conf).
              command: ["/bin/sh", "-c", `mkdir -p /tmp/nginx && exec nginx -e stderr -p /tmp/nginx -c ${LUA_DIR}/nginx.conf`],
              ports: [{ name: "http", containerPort: 8080 }],
              resources: { requests: { cpu: "500m", memory: "128Mi" } },
              readinessProbe: { httpGet: { path: "/", port: 8080 } },
              volumeMounts: [
                { name: "scripts", mountPath: LUA_DIR, readOnly: true },
                { name: "work", mountPath: "/tmp" },
              ],
              securityContext: { ...nobody, readOnlyRootFilesystem: true },
            },
            {
              name: "iperf3",
              image: backendImage,
              command: ["iperf3", "-s", "-p", "5201"],
              ports: [{ name: "iperf3", containerPort: 5201 }],
              resources: { requests: { cpu: "500m", memory: "64Mi" } },
              readinessProbe: { tcpSocket: { port: 5201 } },
              securityContext: { ...nobody, readOnlyRootFilesystem: true },
            },
          ],
          volumes: [
            { name: "scripts", configMap: { name: `${NAME}-scripts` } },
            { name: "work", emptyDir: { sizeLimit: "64Mi" } },
          ],
        },
      },
    },
  };
  const backendService: ServiceObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: `${NAME}-backend`, namespace: ns, labels: backendLabels },
    spec: {
      selector: { "app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "backend" },
      ports: [
        { name: "http", port: 8080, targetPort: "http" },
        { name: "iperf3", port: 5201, targetPort: "iperf3" },
      ],
    },
  };

  const jobs: BenchManifests["jobs"] = [];
  const counterJobs: BenchManifests["counterJobs"] = [];
  for (const scenarioName of o.scenarios) {
    const scenario = SCENARIOS[scenarioName];
    const invocations = scenarioInvocations(scenario, {
      environment: "cluster",
      // The proxy node is known once the Job runs (job-log.ts's discovery).
      host: TARGET_PLACEHOLDER,
      // The cluster tool decides the port: iperf3 needs the L4 listener, tcp-churn the tcp
      // listener to the HTTP backend, wrk speaks HTTP.
      port: scenario.tool.cluster === "iperf3" ? o.l4Port : scenario.tool.cluster === "tcp-churn" ? o.churnPort : o.httpPort,
      quick: o.quick,
      luaDir: LUA_DIR,
      rateRps: scenario.rateFractionOfMax ? o.httpLatencyRateRps : undefined,
    });
    const runSeconds = invocations.reduce((a, i) => a + i.durationSeconds, 0);
    const deadlineSeconds = runSeconds + slack;
    const name = `${NAME}-${o.profile}-${scenarioName}`;
    const cname = `${name}-counters`;
    const jobLabels = labels("loadgen", o.profile);
    const cpu = o.loadgenCpu ?? "1";
    const memory = o.loadgenMemory ?? "256Mi";
    const container: Plain<k8s.types.input.core.v1.Container> = {
      name: "loadgen",
      image: o.images.loadgen,
      command: [
        "/bin/sh",
        "-c",
        jobScript(invocations, {
          scenario: scenarioName,
          profile: o.profile,
          target: TARGET_PLACEHOLDER,
          // Waits for the counters pod at most half the slack: the runs still fit the deadline.
          discover: {
            label: COUNTERS_FOR_LABEL,
            value: name,
            host: o.proxyHost,
            timeoutSeconds: Math.floor(slack / 2),
            maxLateSeconds: LATE_SECONDS,
          },
        }),
      ],
      volumeMounts: [
        { name: "scripts", mountPath: LUA_DIR, readOnly: true },
        // The script keeps the run's output here for the normalizer; the root filesystem stays read-only.
        { name: "work", mountPath: "/tmp" },
      ],
      resources: { requests: { cpu, memory }, limits: { cpu, memory } },
      securityContext: { ...nobody, readOnlyRootFilesystem: true },
    };
    jobs.push({
      scenario: scenarioName,
      name,
      deadlineSeconds,
      job: {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name, namespace: ns, labels: { ...jobLabels, "edgetune.dev/scenario": scenarioName }, annotations: SKIP_AWAIT },
        spec: {
          // A retried benchmark is a different benchmark: fail once, visibly.
          backoffLimit: 0,
          activeDeadlineSeconds: deadlineSeconds,
          ttlSecondsAfterFinished: 3600,
          template: {
            metadata: { labels: { ...jobLabels, "edgetune.dev/scenario": scenarioName } },
            spec: {
              restartPolicy: "Never",
              // The token (projected, short-lived) lets the script find its counters pod.
              serviceAccountName: identity,
              automountServiceAccountToken: true,
              affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [awayFromProxy] } },
              containers: [container],
              volumes: [
                { name: "scripts", configMap: { name: `${NAME}-scripts` } },
                { name: "work", emptyDir: { sizeLimit: "64Mi" } },
              ],
            },
          },
        },
      },
    });
    // Every scenario: the proxy node's counters before and after, from the node the load Job targets.
    const counterLabels = { ...labels("counters", o.profile), "edgetune.dev/scenario": scenarioName, [COUNTERS_FOR_LABEL]: name };
    // The load Job starts at most LATE_SECONDS after this pod (or refuses to run): the window
    // covers that, the runs and each tool's start-up, and ends before the next scenario starts.
    const window = LATE_SECONDS + runSeconds + 2 * invocations.length + 10;
    counterJobs.push({
      scenario: scenarioName,
      name: cname,
      job: {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: cname, namespace: ns, labels: counterLabels, annotations: SKIP_AWAIT },
        spec: {
          backoffLimit: 0,
          activeDeadlineSeconds: deadlineSeconds + 30,
          ttlSecondsAfterFinished: 3600,
          template: {
            metadata: { labels: counterLabels },
            spec: {
              restartPolicy: "Never",
              // The node's own counters: host network namespace, on a node running a proxy pod.
              hostNetwork: true,
              automountServiceAccountToken: false,
              affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [awayFromProxy] } },
              containers: [
                {
                  name: "nstat",
                  image: o.images.loadgen,
                  env: [{ name: "NSTAT_HISTORY", value: "/tmp/edgetune-nstat" }],
                  command: ["/bin/sh", "-c", `nstat -n && sleep ${window} && nstat -j -z ${PROXY_NODE_COUNTERS.join(" ")}`],
                  resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { cpu: "100m", memory: "32Mi" } },
                  securityContext: nobody,
                },
              ],
            },
          },
        },
      },
    });
  }
  return { configMap, serviceAccount, role, roleBinding, backend, backendService, jobs, counterJobs };
}

/**
 * The shell command that waits for a Job and prints its log (run by command.local.Command).
 * Exit status: 0 complete, 1 failed, 124 still running after `timeoutSeconds`.
 */
export function collectCommand(namespace: string, jobName: string, timeoutSeconds: number, pollSeconds = 5): string {
  const ns = shqWord(namespace);
  const job = shqWord(`job/${jobName}`);
  const polls = Math.max(1, Math.ceil(timeoutSeconds / pollSeconds));
  // A kubeconfig given as contents (BenchmarkSuite's `kubeconfig`) becomes a private file for this run.
  const kubeconfig = `if [ -n "\${EDGETUNE_KUBECONFIG:-}" ]; then KUBECONFIG=$(mktemp) || exit 1; trap 'rm -f "$KUBECONFIG"' EXIT; printf '%s' "$EDGETUNE_KUBECONFIG" >"$KUBECONFIG"; export KUBECONFIG; fi`;
  // `kubectl wait --for=condition=complete` would sit out the whole timeout on a failed
  // Job; polling both conditions returns as soon as either holds. The log is printed
  // either way: a failed Job's last line says why.
  const conditions = `'jsonpath={.status.conditions[?(@.status=="True")].type}'`;
  return [
    kubeconfig,
    "rc=124; i=0",
    `while [ "$i" -lt ${polls} ]; do c=$(kubectl get -n ${ns} ${job} -o ${conditions} 2>&1); case " $c " in *" Complete "*) rc=0; break ;; *" Failed "*) rc=1; break ;; esac; i=$((i + 1)); sleep ${pollSeconds}; done`,
    // kubectl's own error (no such Job, no access to the cluster) is the likeliest reason for a timeout.
    `[ "$rc" = 124 ] && echo "edgetune: ${jobName} did not finish within ${timeoutSeconds}s; kubectl's last answer: $c" >&2`,
    `kubectl logs -n ${ns} ${job}; exit "$rc"`,
  ].join("\n");
}
