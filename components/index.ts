/** edgetune's public API: the tuning profile model, presets, validation and renderers. */
export * from "./tuning";
// Public since they were exported from tuning/render (callers quote values for their own scripts);
// shWords, heredoc and readAsset stay internal.
export { shq, shqWord } from "./shell";
export * from "./k8s-namespace";
export * from "./nodes/cloud-init";
export * from "./nodes/k8s-tuner";
export * from "./nodes/remote-script";
export * from "./nodes/remote-host-tuning";
export * from "./nodes/aws-tuned-node-group";
export * from "./nodes/kubernetes-node-tuner";
export * from "./proxy/haproxy";
export * from "./proxy/k8s-proxy";
export * from "./proxy/policy";
export * from "./proxy/proxy-daemonset";
export * from "./bench/scenarios";
export * from "./bench/result";
export * from "./bench/parsers";
export * from "./bench/thresholds";
export * from "./bench/report";
export * from "./bench/job-log";
export * from "./bench/k8s-jobs";
export * from "./bench/benchmark-suite";
export * from "./bench/config";
export * from "./lab/topology";
export * from "./lab/local-lab";
