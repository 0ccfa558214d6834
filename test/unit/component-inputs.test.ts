/**
 * Component arguments computed from other resources (Outputs) are checked when they resolve.
 * What a user then sees only shows in a running program: the deployment fails with the message
 * naming the field, and the objects that would have carried the value are never registered.
 * Each case is a small program run through the SDK's own loader (test/helpers/program.ts).
 */
import { describe, expect, it } from "vitest";
import { ofType, ROOT, runInlineProgram } from "../helpers/program";

const header = `
import * as pulumi from "@pulumi/pulumi";
import { KubernetesNodeTuner } from "${ROOT}/components/nodes/kubernetes-node-tuner";
import { ProxyDaemonSet } from "${ROOT}/components/proxy/proxy-daemonset";
import { resolveProfile } from "${ROOT}/components/tuning/profile";
const profile = resolveProfile("p", {
  extends: "recommended",
  ports: { kubernetesNodePorts: true, kubelet: true, listenPorts: [80, 8404, 8405] },
});
const proxy = { listeners: [{ name: "web", mode: "http" as const, port: 80, backend: "app" }], backends: [{ name: "app", servers: [{ name: "a", address: "10.0.0.1", port: 8080 }] }] };
// As an image built elsewhere in the program would arrive: known only once it resolves.
const later = (v: string) => pulumi.output(new Promise<string>((r) => setTimeout(() => r(v), 10)));
`;

describe("component arguments given as Outputs", () => {
  it("a tuner image that resolves to a latest tag fails the deployment naming the field; no DaemonSet is registered", () => {
    const run = runInlineProgram(`${header}new KubernetesNodeTuner("late", { profile, image: later("ghcr.io/example/tuner:latest") });`);
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toMatch(
      /KubernetesNodeTuner "late": invalid args: 1 problem\n\s+- image: got "ghcr\.io\/example\/tuner:latest"; allowed: an image reference pinned by tag or digest.*\(tag latest\)/,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(ofType(run, "kubernetes:apps/v1:DaemonSet")).toEqual([]);
  });

  it("a proxy image that resolves unpinned fails the same way; a pinned one is used as given", () => {
    const bad = runInlineProgram(
      `${header}new ProxyDaemonSet("edge", { profile, proxy, image: later("registry.example/proxy"), tuneNodes: false });`,
    );
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(
      /ProxyDaemonSet "edge": invalid options: 1 problem\n\s+- proxy\.image: got "registry\.example\/proxy"; allowed: an image reference pinned by tag or digest.*\(no tag, which means latest\)/,
    );
    expect(ofType(bad, "kubernetes:apps/v1:DaemonSet")).toEqual([]);
    const good = runInlineProgram(
      `${header}new ProxyDaemonSet("edge", { profile, proxy, image: later("registry.example/proxy:1.2.3"), tuneNodes: false });`,
    );
    expect(good.exitCode, good.stderr).toBe(0);
    expect(ofType(good, "kubernetes:apps/v1:DaemonSet")[0].inputs.spec.template.spec.containers[0].image).toBe(
      "registry.example/proxy:1.2.3",
    );
  });
});
