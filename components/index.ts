/** edgetune's public API: the tuning profile model, presets, validation and renderers. */
export * from "./validation";
export * from "./tuning";
// Public since they were exported from tuning/render (callers quote values for their own scripts);
// shWords, heredoc and readAsset stay internal.
export { shq, shqWord } from "./shell";
export * from "./k8s-namespace";
export * from "./nodes/cloud-init";
export * from "./nodes/k8s-tuner";
// The builder stays internal (k8s-tuner.ts and k8s-proxy.ts use it); its types name what they return.
export type { TunerPod, TunerPodInput } from "./nodes/tuner-pod";
export * from "./nodes/remote-script";
export * from "./nodes/remote-host-tuning-spec";
export * from "./nodes/remote-host-tuning";
export * from "./nodes/rollout";
export * from "./nodes/aws-tuned-node-group-spec";
export * from "./nodes/aws-tuned-node-group";
export * from "./nodes/kubernetes-node-tuner-spec";
export * from "./nodes/kubernetes-node-tuner";
export * from "./proxy/haproxy";
export * from "./proxy/k8s-proxy";
export * from "./proxy/policy";
export * from "./proxy/proxy-daemonset-spec";
export * from "./proxy/proxy-daemonset";
export * from "./bench/scenarios";
export * from "./bench/result";
export * from "./bench/parsers";
export * from "./bench/thresholds";
export * from "./bench/report";
export * from "./bench/job-log";
export * from "./bench/k8s-jobs";
export * from "./bench/benchmark-suite";
export * from "./bench/benchmark-suite-spec";
export * from "./lab/topology";
export * from "./lab/local-lab";
export * from "./lab/analysis";
