/**
 * `edgetune status` as users run it: bin/edgetune.js, with a fake kubectl first on PATH that
 * records its arguments and prints a node list shaped like `kubectl get nodes -o json`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  fleetStatus,
  formatAge,
  parseNodeList,
  parseTuningAnnotation,
  renderStatusTable,
  stackTuners,
  statusExitCode,
  type ClusterNode,
  type StatusRow,
} from "../../cli/status";
import { profileDigest } from "../../components/tuning/render";
import { loadStack } from "../../loader/stack-config";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "edgetune.js");
const work = mkdtempSync(join(tmpdir(), "edgetune-status-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const dev = loadStack("dev", ROOT);
const digestOf = (profile: string) => profileDigest(dev.profiles[profile]);

/** The fixture with the digests the dev stack renders now and `at` times relative to now. */
function devNodes(now = Date.now()): { items: Array<{ metadata: { name: string } }> } {
  const text = readFileSync(join(ROOT, "test", "fixtures", "kubectl", "nodes-dev.json"), "utf8")
    .replace(/\{\{digest:([a-z-]+)\}\}/g, (_, p: string) => digestOf(p))
    .replace(/\{\{at:(\d+)\}\}/g, (_, s: string) => new Date(now - Number(s) * 1000).toISOString().replace(/\.\d+Z$/, "Z"));
  return JSON.parse(text);
}

// Records every argument on its own line, then answers as kubectl would.
const bin = mkdtempSync(join(work, "bin-"));
writeFileSync(
  join(bin, "kubectl"),
  '#!/bin/sh\nprintf \'%s\\n\' "$@" > "$FAKE_KUBECTL_ARGS"\nif [ -n "${FAKE_KUBECTL_FAIL:-}" ]; then echo "$FAKE_KUBECTL_FAIL" >&2; exit 1; fi\ncat "$FAKE_KUBECTL_NODES"\n',
  { mode: 0o755 },
);

function status(args: string[], nodes: unknown, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(work, "run-"));
  writeFileSync(join(dir, "nodes.json"), typeof nodes === "string" ? nodes : JSON.stringify(nodes));
  const r = spawnSync(process.execPath, [CLI, "status", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      FAKE_KUBECTL_ARGS: join(dir, "args"),
      FAKE_KUBECTL_NODES: join(dir, "nodes.json"),
      ...env,
    },
  });
  let kubectlArgs: string[] | undefined;
  try {
    kubectlArgs = readFileSync(join(dir, "args"), "utf8").split("\n").slice(0, -1);
  } catch {
    kubectlArgs = undefined;
  }
  return { code: r.status, out: r.stdout, err: r.stderr, kubectlArgs };
}

describe("edgetune status through bin/edgetune.js and kubectl", () => {
  it("prints one row per node and tuner, with stale digests, missing and failed tuning, and exits 1", () => {
    const r = status(["--stack", "dev", "--kubeconfig", "/etc/kube/config", "--context=-dev"], devNodes());
    expect(r.code, r.err).toBe(1);
    // Flags are passed through as one word each: "-dev" stays the context's value.
    expect(r.kubectlArgs).toEqual([
      "get",
      "nodes",
      "-o",
      "json",
      "--request-timeout=30s",
      "--kubeconfig=/etc/kube/config",
      "--context=-dev",
    ]);
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0].split(/\s+/)).toEqual(["NODE", "TUNER", "PROFILE", "STATUS", "DIGEST", "AGE"]);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      ["app-1", "app-nodes", "app", "applied", "ok", "5m"],
      ["app-2", "app-nodes", "app", "degraded", "stale", "2h"],
      ["proxy-1", "proxy", "proxy", "degraded", "ok", "30m"],
      ["proxy-2", "proxy", "proxy", "missing", "-", "-"],
      ["proxy-3", "proxy", "proxy", "failed", "ok", "10m"],
      // Left the selector: shown with what its tuner said last, not counted.
      ["was-app", "app-nodes", "app", "restored (not selected)", "ok", "3d"],
    ]);
    // The control plane matches no selector and carries nothing: no row.
    expect(r.out).not.toContain("control-plane");
  });

  it("exits 0 when every selected node is applied, or degraded without failures, with the current digest", () => {
    const nodes = devNodes();
    nodes.items = nodes.items.filter((n) => ["app-1", "proxy-1", "control-plane", "was-app"].includes(n.metadata.name));
    const r = status(["--stack", "dev"], nodes);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.kubectlArgs).toEqual(["get", "nodes", "-o", "json", "--request-timeout=30s"]);
  });

  it("--json prints the rows", () => {
    const r = status(["--stack", "dev", "--json"], devNodes());
    expect(r.code).toBe(1);
    const rows = JSON.parse(r.out) as StatusRow[];
    expect(rows.map((x) => [x.node, x.tuner, x.status, x.digest, x.ok])).toEqual([
      ["app-1", "app-nodes", "applied", "ok", true],
      ["app-2", "app-nodes", "degraded", "stale", false],
      ["proxy-1", "proxy", "degraded", "ok", true],
      ["proxy-2", "proxy", "missing", "-", false],
      ["proxy-3", "proxy", "failed", "ok", false],
      ["was-app", "app-nodes", "restored", "ok", false],
    ]);
    expect(rows[1]).toMatchObject({
      appliedDigest: "sha256:0123456789abcdef",
      expectedDigest: digestOf("app"),
      skipped: 2,
      selected: true,
    });
    expect(rows[0].ageSeconds).toBeGreaterThanOrEqual(300);
  });

  it("reports kubectl's failure, a missing kubectl and output that is no node list, with exit 1", () => {
    const failed = status(["--stack", "dev"], devNodes(), { FAKE_KUBECTL_FAIL: 'error: context "nope" does not exist' });
    expect([failed.code, failed.out]).toEqual([1, ""]);
    expect(failed.err).toMatch(/kubectl get nodes -o json --request-timeout=30s failed \(exit 1\): error: context "nope" does not exist/);
    const missing = status(["--stack", "dev"], devNodes(), { PATH: work });
    expect([missing.code, missing.err.trim()]).toEqual([1, "edgetune status: kubectl not found on PATH"]);
    const garbage = status(["--stack", "dev"], "<html>");
    expect([garbage.code, garbage.err]).toEqual([1, expect.stringContaining("printed no node list")]);
    const wrong = status(["--stack", "dev"], { items: [{ metadata: {} }] });
    expect([wrong.code, wrong.err]).toEqual([1, expect.stringMatching(/not a Kubernetes NodeList: items\.0\.metadata\.name/)]);
  });

  it("usage errors exit 2 without calling kubectl; a bad stack exits 1", () => {
    for (const [args, message] of [
      [[], /--stack is required/],
      [["--stack", "local"], /stack "local" deploys no Kubernetes tuning/],
      [["--stack", "dev", "--context", ""], /--context ""; allowed: a non-empty value/],
      [["--stack", "dev", "--bogus"], /Unknown option '--bogus'/],
    ] as const) {
      const r = status([...args], devNodes());
      expect([r.code, r.kubectlArgs], args.join(" ")).toEqual([2, undefined]);
      expect(r.err).toMatch(message);
    }
    const unknown = status(["--stack", "nope"], devNodes());
    expect([unknown.code, unknown.err]).toEqual([1, expect.stringContaining('unknown stack "nope"')]);
  });

  it("documents itself in --help", () => {
    const r = spawnSync(process.execPath, [CLI, "status", "--help"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/status --stack <name> \[--kubeconfig FILE\] \[--context NAME\] \[--json\]/);
  });
});

describe("the fleet table (pure)", () => {
  it("finds the stack's tuners: tuner node groups, and the proxy's tuning only where it is deployed with tuneNodes", () => {
    expect(stackTuners(dev)).toEqual([
      { name: "app-nodes", profile: "app", digest: digestOf("app"), nodeSelector: { "edgetune.io/pool": "app" } },
      { name: "proxy", profile: "proxy", digest: digestOf("proxy"), nodeSelector: { "edgetune.io/pool": "proxy" } },
    ]);
    // bench: the proxy does not tune (tuneNodes: false); local: the proxy is rendered, not deployed.
    expect(stackTuners(loadStack("bench", ROOT)).map((t) => t.name)).toEqual(["proxy-nodes"]);
    expect(stackTuners(loadStack("local", ROOT))).toEqual([]);
  });

  it("reads the tuner's annotation, and nothing else as one", () => {
    expect(parseTuningAnnotation("status=applied profile=p digest=sha256:ab changed=3 failed=0 skipped=1 at=2026-01-02T03:04:05Z")).toEqual(
      {
        status: "applied",
        profile: "p",
        digest: "sha256:ab",
        changed: 3,
        failed: 0,
        skipped: 1,
        at: "2026-01-02T03:04:05Z",
      },
    );
    for (const bad of ["", "applied", "profile=p digest=x", "status=applied and more"])
      expect(parseTuningAnnotation(bad), bad).toBeUndefined();
  });

  it("judges each row; an unreadable annotation or a bad timestamp is shown, never trusted", () => {
    const tuners = [{ name: "t", profile: "p", digest: "sha256:cur", nodeSelector: {} }];
    const node = (name: string, value?: string): ClusterNode => ({
      name,
      labels: {},
      annotations: value === undefined ? {} : { "tuning.edgetune.io/t": value },
    });
    const now = new Date("2026-01-02T00:00:00Z");
    const rows = fleetStatus(
      tuners,
      [
        node("a", "status=applied digest=sha256:cur at=2026-01-01T23:59:00Z"),
        node("b", "status=degraded digest=sha256:cur failed=1 at=yesterday"),
        node("c", "garbage"),
        node("d"),
      ],
      now,
    );
    expect(rows.map((r) => [r.node, r.status, r.digest, formatAge(r.ageSeconds), r.ok])).toEqual([
      ["a", "applied", "ok", "60s", true],
      ["b", "degraded", "ok", "-", false],
      ["c", "unreadable", "-", "-", false],
      ["d", "missing", "-", "-", false],
    ]);
    expect(statusExitCode(rows)).toBe(1);
    expect(statusExitCode(rows.slice(0, 1))).toBe(0);
    // No node selected at all is no evidence of tuning.
    expect(statusExitCode([])).toBe(1);
    expect(renderStatusTable(rows.slice(0, 1))).toBe(
      "NODE   TUNER   PROFILE   STATUS    DIGEST   AGE\na      t       p         applied   ok       60s\n",
    );
  });

  it("formats ages as kubectl does", () => {
    expect([0, 119, 120, 7199, 7200, 172799, 172800].map(formatAge)).toEqual(["0s", "119s", "2m", "119m", "2h", "47h", "2d"]);
  });

  it("parses kubectl's node list, labels and annotations optional", () => {
    expect(parseNodeList({ kind: "List", items: [{ metadata: { name: "n" } }] })).toEqual([{ name: "n", labels: {}, annotations: {} }]);
    expect(() => parseNodeList({ kind: "Node" })).toThrow(/not a Kubernetes NodeList: items/);
  });
});
