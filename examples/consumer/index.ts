/**
 * A Pulumi project of its own that uses edgetune the way any other project
 * would: everything comes from the package name "edgetune" (its public API,
 * dist/components/index.js through package.json `exports`), never from
 * paths into the edgetune repository.
 *
 * It deploys one HAProxy DaemonSet on Kubernetes nodes tuned with a custom
 * profile: NovaEdge's `recommended` table, adjusted for a Kubernetes node.
 */
import * as pulumi from "@pulumi/pulumi";
import { ProxyDaemonSet, resolveProfile, type ProxySpec, type TuningProfile } from "edgetune";

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

const edge = new ProxyDaemonSet("edge", {
  profile,
  proxy,
  image: "ghcr.io/edgetune/edgetune-proxy:0.1.0",
  tunerImage: "ghcr.io/edgetune/edgetune-tuner:0.1.0",
  nodeSelector: { "node-role.kubernetes.io/proxy": "" },
  podDisruptionBudget: { maxUnavailable: 1 },
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
