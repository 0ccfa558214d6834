/**
 * A Pulumi project of its own that uses edgetune the way any other project
 * would: everything comes from the package name "edgetune" (its public API,
 * dist/components/index.js through package.json `exports`), never from
 * paths into the edgetune repository.
 *
 * It shows what a platform team's own stack does with edgetune's components:
 * - a proxy image computed from another resource (an ECR repository's URL, an Output);
 * - two tuner groups in one namespace, created once here (`createNamespace: false`);
 * - an explicit Kubernetes provider for the cluster, passed with `opts.providers`;
 * - a stack reference reading an edgetune stack's outputs (the `eks` stack's launch template)
 *   for an EKS managed node group.
 */
import * as aws from "@pulumi/aws";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  edgetuneLabels,
  KubernetesNodeTuner,
  privilegedNamespace,
  ProxyDaemonSet,
  resolveProfile,
  type ProxySpec,
  type TuningProfile,
} from "edgetune";

const config = new pulumi.Config();

/** The profile as a user would write it: a preset plus what this fleet needs. */
export const profileInput: TuningProfile = {
  extends: "recommended",
  description: "consumer example: recommended, adjusted for Kubernetes proxy nodes",
  sysctls: {
    // A shorter keepalive than the preset's 60 s: idle client connections behind a cloud LB are cut at 350 s anyway,
    // and dead peers should free their slots sooner.
    "net.ipv4.tcp_keepalive_time": 30,
  },
  // recommended opens ip_local_port_range to 1024-65535, which overlaps the NodePort range and kubelet's ports:
  // reserve them so an outgoing connection never takes a port a Service or the kubelet needs.
  ports: { kubernetesNodePorts: true, kubelet: true, listenPorts: [80, 8404, 8405] },
  limits: { nofileSoft: 1048576, nofileHard: 1048576 },
  nics: [
    {
      match: "ens*",
      // LRO merges segments the proxy forwards unchanged; GRO is the safe coalescing.
      offloads: { gro: true, lro: false },
      rps: { cpus: "0-3", flowEntriesPerQueue: 4096 },
    },
  ],
};

/** Throws a ValidationError naming every bad field before anything is registered. */
export const profile = resolveProfile("k8s-proxy", profileInput);
/** The cache nodes only need the latency preset. */
const cacheProfile = resolveProfile("cache", { extends: "latency", ports: { kubernetesNodePorts: true, kubelet: true } });

// The cluster, explicitly: every Kubernetes object below goes to it, not to the ambient kubeconfig.
const cluster = new k8s.Provider("cluster", { kubeconfig: config.requireSecret("kubeconfig") });
const onCluster = { providers: { kubernetes: cluster } };

// Images this team builds from proxy-image/ and pushes to its own registry: the repository URL
// is only known once the repository exists, so the image is an Output.
const proxyRepo = new aws.ecr.Repository("edgetune-proxy", { imageTagMutability: "IMMUTABLE" });
const tunerRepo = new aws.ecr.Repository("edgetune-tuner", { imageTagMutability: "IMMUTABLE" });
const release = config.get("edgetuneRelease") ?? "0.1.0";
const proxyImage = pulumi.interpolate`${proxyRepo.repositoryUrl}:${release}`;
const tunerImage = pulumi.interpolate`${tunerRepo.repositoryUrl}:${release}`;

// One namespace for both tuner groups, created once: each component creating it would fail the
// second time (AlreadyExists).
const tuning = new k8s.core.v1.Namespace(
  "edgetune-system",
  privilegedNamespace("edgetune-system", edgetuneLabels("edgetune", "namespace", "edgetune-system"), "v1.33"),
  { provider: cluster },
);
const shared = { image: tunerImage, namespace: tuning.metadata.name, createNamespace: false };
const edgeTuner = new KubernetesNodeTuner(
  "edge-nodes",
  { ...shared, profile, nodeSelector: { "node-role.kubernetes.io/proxy": "" } },
  onCluster,
);
const cacheTuner = new KubernetesNodeTuner(
  "cache-nodes",
  { ...shared, profile: cacheProfile, nodeSelector: { "node-role.kubernetes.io/cache": "" } },
  onCluster,
);

const proxy: ProxySpec = {
  listeners: [{ name: "http", mode: "http", port: 80, backend: "web" }],
  backends: [
    {
      name: "web",
      healthCheck: { type: "http", path: "/healthz" },
      servers: [
        { name: "web-1", address: "10.0.1.10", port: 8080, softLimit: 2000, hardLimit: 4000 },
        { name: "web-2", address: "10.0.1.11", port: 8080, softLimit: 2000, hardLimit: 4000 },
      ],
    },
  ],
};

// The proxy nodes are tuned by edgeTuner above, so the proxy pods need no privileged tuning sidecar.
const edge = new ProxyDaemonSet(
  "edge",
  {
    profile,
    proxy,
    image: proxyImage,
    tuneNodes: false,
    nodeSelector: { "node-role.kubernetes.io/proxy": "" },
    podDisruptionBudget: { maxUnavailable: 1 },
  },
  onCluster,
);

// An edgetune stack of the same organization: its `eks` stack renders a launch template with the
// tuning user-data; this program's EKS managed node group runs on it.
const edgetuneEks = new pulumi.StackReference(config.get("edgetuneEksStack") ?? "organization/edgetune/eks");
const launchTemplate = edgetuneEks
  .requireOutput("nodeGroups")
  .apply((g) => (g as Record<string, { launchTemplateId: string; launchTemplateVersion: number }>)["eks-edge"]);
const nodeGroup = new aws.eks.NodeGroup("edge", {
  clusterName: config.require("eksClusterName"),
  nodeRoleArn: config.require("nodeRoleArn"),
  subnetIds: config.requireObject<string[]>("subnetIds"),
  scalingConfig: { minSize: 2, desiredSize: 3, maxSize: 6 },
  instanceTypes: ["c6in.xlarge"],
  launchTemplate: { id: launchTemplate.launchTemplateId, version: launchTemplate.launchTemplateVersion.apply(String) },
});

export const namespace = edge.namespace;
export const daemonSetName = edge.daemonSetName;
/** Changes exactly when the rendered config, tune.sh or an image changes: a changed value means the pods roll. */
export const configChecksum = edge.checksum;
/** What port planning reserved (net.ipv4.ip_local_reserved_ports), for the reader of `pulumi stack output`. */
export const reservedPorts = profile.portPlan?.reserved;
export const profileWarnings = profile.warnings;
// Outputs of the component are plain pulumi Outputs: usable by the rest of this program.
export const proxySummary = pulumi.interpolate`${edge.namespace}/${edge.daemonSetName}`;
export const tunerNamespaces = pulumi.all([edgeTuner.namespace, cacheTuner.namespace]);
export const eksNodeGroup = nodeGroup.nodeGroupName;
// The components' children are typed properties (as pulumi-eks exposes its node groups' parts).
export const tunerDaemonSets = pulumi.all([edgeTuner.daemonSet.metadata.name, cacheTuner.daemonSet.metadata.name]);
export const proxyConfigMap = edge.configMap.metadata.name;
