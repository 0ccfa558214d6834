/**
 * Which cluster kubectl talks to in the BenchmarkSuite's collect step: the one the suite was
 * given (its kubeconfig contents, kept secret, or a path), never the ambient one when the suite
 * runs on an explicit Kubernetes provider.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { collectCommand } from "../../../components/bench/k8s-jobs";
import { describeSystem, run } from "../../helpers/system";

const created: { type: string; name: string; inputs: any }[] = [];
const args = {
  namespace: "bench",
  scenarios: ["conn-rate" as const],
  proxyHost: "edgetune-proxy",
  proxyPodLabels: { "app.kubernetes.io/name": "edgetune-proxy" },
  images: { loadgen: "registry.example/edgetune-loadgen:2025.1" },
};
let BenchmarkSuite: typeof import("../../../components/bench/benchmark-suite").BenchmarkSuite;

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        created.push({ type: a.type, name: a.name, inputs: a.inputs });
        return { id: `${a.name}-id`, state: a.inputs };
      },
      call: () => ({}),
    },
    "edgetune",
    "kubeconfig",
    true,
  );
  ({ BenchmarkSuite } = await import("../../../components/bench/benchmark-suite"));
});

describe("BenchmarkSuite: the collect step's cluster", () => {
  it("refuses an explicit Kubernetes provider without the kubeconfig kubectl needs", () => {
    const provider = new k8s.Provider("other-cluster", { kubeconfig: "apiVersion: v1\nkind: Config\n" });
    expect(() => new BenchmarkSuite("refused", args, { providers: [provider] })).toThrow(
      /BenchmarkSuite "refused": an explicit Kubernetes provider needs args\.kubeconfig/,
    );
    expect(() => new BenchmarkSuite("refused2", args, { provider })).toThrow(/args\.kubeconfig/);
    expect(created.filter((c) => c.name.startsWith("refused"))).toEqual([]);
  });

  it("hands kubectl the given kubeconfig contents as a secret environment variable", async () => {
    const provider = new k8s.Provider("cluster", { kubeconfig: "apiVersion: v1\nkind: Config\n" });
    new BenchmarkSuite(
      "given",
      { ...args, kubeconfig: "apiVersion: v1\nkind: Config\nclusters: []\n" },
      { providers: { kubernetes: provider } },
    );
    await pulumi.runtime.disconnect();
    const collect = created.find((c) => c.type === "command:local:Command" && c.name.endsWith("-collect"))!;
    // One secret value makes the whole environment a secret for the engine.
    const env = collect.inputs.environment;
    expect(env[pulumi.runtime.specialSigKey]).toBe(pulumi.runtime.specialSecretSig);
    expect(env.value).toEqual({ EDGETUNE_KUBECONFIG: "apiVersion: v1\nkind: Config\nclusters: []\n" });
  });
});

describeSystem("collectCommand: a kubeconfig given as contents", ["dash"], () => {
  it("is the file kubectl reads, private to the run and removed after it", () => {
    const dir = mkdtempSync(join(tmpdir(), "edgetune-kubeconfig-"));
    // A stand-in kubectl: reports the Job complete and what KUBECONFIG held, and where.
    writeFileSync(
      join(dir, "kubectl"),
      `#!/bin/sh\ncase "$1" in get) printf Complete ;; logs) echo "file=$KUBECONFIG"; cat "$KUBECONFIG"; ls -l "$KUBECONFIG" | cut -c1-10 ;; esac\n`,
    );
    chmodSync(join(dir, "kubectl"), 0o755);
    const r = run("dash", ["-c", collectCommand("bench", "j", 10, 1)], {
      env: {
        ...process.env,
        PATH: `${dir}:${process.env.PATH}`,
        EDGETUNE_KUBECONFIG: "apiVersion: v1\nkind: Config\n",
        KUBECONFIG: "/ambient/config",
      },
    });
    expect(r.code, r.stderr).toBe(0);
    const [fileLine, ...rest] = r.stdout.trim().split("\n");
    const file = fileLine.replace(/^file=/, "");
    expect(file).not.toBe("/ambient/config");
    expect(rest).toEqual(["apiVersion: v1", "kind: Config", "-rw-------"]);
    expect(() => readFileSync(file)).toThrow(/ENOENT/);
  });
});
