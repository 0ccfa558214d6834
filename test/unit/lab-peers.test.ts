import { describe, expect, it } from "vitest";
import { parseBenchResult, type BenchResult } from "../../components/bench/result";
import { SCENARIOS } from "../../components/bench/scenarios";
import { renderLabMarkdown, type LabReport } from "../../components/lab/analysis";
import { parseRunRecords, type RunRecord } from "../../components/lab/run-record";
import {
  analyzeSlices,
  appendIntervalPanel,
  findingSentence,
  markSlowMode,
  MIN_PAIRS_FOR_FINDING,
} from "../../components/lab/slice-analysis";
import { DEFAULT_TOPOLOGY, labAddresses } from "../../components/lab/topology";
import { renderSvgChart } from "../../components/bench/report";
import { resolveProfile } from "../../components/tuning/profile";
import {
  BASELINE_PORT_OFFSET,
  fillTemplate,
  nginxWorkerConnections,
  PEER_PORTS,
  peerTemplate,
  renderBaselineHaproxy,
  renderNginxPeer,
  renderStockHaproxy,
  shiftedProxySpec,
} from "../../lab/peers";
import { labProxySpec } from "../../lab/runner";
import { roundOrder, sliceArms, slowestProxyRps } from "../../lab/slices";
import { loadStack } from "../../loader/stack-config";
import { join } from "node:path";

const a = labAddresses(DEFAULT_TOPOLOGY);
const ROOT = join(__dirname, "..", "..");

describe("peer configs", () => {
  it("stock HAProxy: the lab's listeners and backends, a source named, nothing tuned", () => {
    const cfg = renderStockHaproxy(peerTemplate("haproxy-stock.cfg"), a, DEFAULT_TOPOLOGY);
    expect(cfg).toMatch(/^# Source: HAProxy Technologies[^\n]*\n# \(haproxy\.com\/blog\//m);
    expect(cfg).toContain(`bind :${PEER_PORTS["haproxy-stock"].http}`);
    expect(cfg).toContain(`bind :${PEER_PORTS["haproxy-stock"].l4}`);
    expect(cfg).toContain(`server nginx ${a.backend}:${DEFAULT_TOPOLOGY.httpPort}`);
    expect(cfg).toContain(`server iperf3 ${a.backend}:${DEFAULT_TOPOLOGY.iperfPort}`);
    const directives = cfg.split("\n").filter((l) => !/^\s*#/.test(l));
    for (const tuned of [/splice/, /maxconn/, /nbthread/, /backlog/, /shards/, /maxpipes/, /tune\./])
      expect(directives.join("\n")).not.toMatch(tuned);
    expect(cfg).not.toMatch(/\{\{[A-Z]/);
  });

  it("NGINX: worker_connections from the fd limit, reuseport, upstream keepalive, stream for L4, a source named", () => {
    const cfg = renderNginxPeer(peerTemplate("nginx.conf"), a, DEFAULT_TOPOLOGY, { nofile: 20000, dir: "/tmp/lab/nginx-peer" });
    expect(cfg).toMatch(/^# Sources: .*nginx\.com\/blog\/tuning-nginx/m);
    expect(cfg).toContain("worker_processes auto;");
    expect(cfg).toContain("worker_rlimit_nofile 20000;");
    expect(cfg).toContain(`worker_connections ${nginxWorkerConnections(20000)};`);
    expect(nginxWorkerConnections(20000)).toBe(9872);
    expect(cfg).toContain(`listen ${PEER_PORTS.nginx.http} reuseport;`);
    expect(cfg).toContain(`listen ${PEER_PORTS.nginx.l4} reuseport;`);
    expect(cfg).toMatch(/upstream web \{\s*server 10\.231\.2\.2:8080;\s*keepalive 64;/);
    expect(cfg).toContain('proxy_set_header Connection "";');
    expect(cfg).toContain("proxy_http_version 1.1;");
    expect(cfg).toMatch(/stream \{[\s\S]*proxy_pass iperf;/);
    expect(cfg).toContain("load_module /usr/lib/nginx/modules/ngx_stream_module.so;");
    expect(cfg).toContain("pid /tmp/lab/nginx-peer/nginx-peer.pid;");
    expect(cfg).not.toMatch(/\{\{[A-Z]/);
  });

  it("fills only known placeholders with plain tokens", () => {
    expect(fillTemplate("a {{X}} b", { X: 1 }, "t")).toBe("a 1 b");
    expect(() => fillTemplate("{{X}} {{Y}}", { X: 1 }, "t.cfg")).toThrow("t.cfg: no value for {{Y}}; allowed: X");
    expect(() => fillTemplate("{{X}}", { X: "a; rm -rf /" }, "t.cfg")).toThrow(/\{\{X\}\} = "a; rm -rf \/"; allowed/);
    expect(() => fillTemplate("{{X}}", { X: 1, Z: 2 }, "t.cfg")).toThrow("t.cfg: values without a placeholder: Z");
  });

  it("the baseline HAProxy is the baseline profile's config on shifted ports with its own runtime directory", () => {
    const plan = loadStack("local", ROOT);
    const spec = labProxySpec(plan, a, DEFAULT_TOPOLOGY);
    const shifted = shiftedProxySpec(spec, BASELINE_PORT_OFFSET, "/run/x/b");
    expect(shifted.listeners.map((l) => l.port)).toEqual(spec.listeners.map((l) => l.port + BASELINE_PORT_OFFSET));
    const cfg = renderBaselineHaproxy(
      spec,
      resolveProfile("baseline", { extends: "baseline" }),
      { cpus: 2, nofileLimit: 20000 },
      DEFAULT_TOPOLOGY,
    );
    expect(cfg).toContain(`node profile "baseline"`);
    expect(cfg).toContain(`:${spec.listeners[0].port + BASELINE_PORT_OFFSET}`);
    expect(cfg).toContain("stats socket /run/edgetune-lab/b/admin.sock");
    expect(() => shiftedProxySpec({ ...spec, listeners: [{ ...spec.listeners[0], port: 50000 }] }, BASELINE_PORT_OFFSET, "/run/x")).toThrow(
      /50000 \+ 20000 is above 65535/,
    );
  });
});

describe("paired slices", () => {
  it("alternate the order each round, with one profile switch per round", () => {
    const arms = sliceArms({
      a,
      t: DEFAULT_TOPOLOGY,
      tunedPorts: { http: 80, l4: 443 },
      baselinePorts: { http: 20080, l4: 20443 },
      peers: ["haproxy-stock", "nginx"],
      noSplicePort: 444,
    });
    const http = arms.filter((x) => x.runs(SCENARIOS["http-throughput"])).map((x) => x.label);
    const l4 = arms.filter((x) => x.runs(SCENARIOS["l4-throughput"])).map((x) => x.label);
    expect(http).toEqual(["baseline", "tuned", "haproxy-stock", "nginx", "direct"]);
    expect(l4).toEqual(["baseline", "tuned", "haproxy-stock", "nginx", "no-splice", "forward"]);
    const httpArms = arms.filter((x) => x.runs(SCENARIOS["http-throughput"]));
    expect(roundOrder(httpArms, 0).map((x) => x.label)).toEqual(["baseline", "tuned", "haproxy-stock", "nginx", "direct"]);
    expect(roundOrder(httpArms, 1).map((x) => x.label)).toEqual(["direct", "nginx", "haproxy-stock", "tuned", "baseline"]);
    expect(arms.find((x) => x.label === "nginx")!.port(SCENARIOS["l4-throughput"])).toBe(PEER_PORTS.nginx.l4);
    expect(arms.find((x) => x.label === "baseline")!.port(SCENARIOS["conn-rate"])).toBe(20080);
  });
});

const run = (profile: string, scenario: BenchResult["scenario"], value: number, slice: number, o: { c?: number; p99?: number } = {}) =>
  parseBenchResult({
    schemaVersion: 1,
    scenario,
    profile,
    run: slice,
    tool: scenario === "l4-throughput" ? "iperf3" : "wrk",
    durationSeconds: 3,
    concurrency: o.c ?? 1,
    target: `${profile === "direct" || profile === "forward" ? profile : "proxy"} 10.0.0.1:80`,
    ...(scenario === "l4-throughput" ? { gbps: value } : { rps: value }),
    ...(o.p99 !== undefined ? { latency: { method: "schedule-corrected", p50Ms: 1, p90Ms: 2, p99Ms: o.p99, p999Ms: o.p99 * 2 } } : {}),
    errors: {},
    validity: { valid: true, reasons: [] },
  });

describe("slice analysis and report", () => {
  // 8 rounds: tuned ~1.5× stock HAProxy on L4 (a finding), tuned ≈ baseline (not one), both drifting together.
  const drift = [1, 0.9, 1.1, 0.6, 1, 1.05, 0.95, 1];
  const results: BenchResult[] = [];
  const records: RunRecord[] = [];
  const add = (r: BenchResult, cpu: number) => {
    records.push({
      result: results.length,
      slice: r.run,
      cpu: {
        clientSeconds: 0,
        proxySeconds: cpu,
        backendSeconds: 0,
        interruptSeconds: 0,
        totalSeconds: cpu,
        machineProcessSeconds: cpu,
        stealSeconds: 0.01,
      },
      cpuSecondsPerGB: cpu / ((r.gbps! * 3) / 8),
    });
    results.push(r);
  };
  drift.forEach((d, i) => {
    add(run("tuned", "l4-throughput", 15 * d, i), 2);
    add(run("baseline", "l4-throughput", 15 * d * (i % 2 ? 1.04 : 0.97), i), 2);
    add(run("haproxy-stock", "l4-throughput", 10 * d, i), 2.4);
    add(run("forward", "l4-throughput", 24 * d, i), 1);
  });
  markSlowMode(results, records);
  const s = analyzeSlices(results, records, { rounds: 8, sliceSeconds: 3 });

  it("summarises each arm and flags slow-mode slices", () => {
    const tuned = s.arms.find((x) => x.arm === "tuned")!;
    expect(tuned.slices).toBe(8);
    expect(tuned.rate).toBeCloseTo((15 * drift.reduce((x, y) => x + y)) / 8, 9);
    expect(tuned.slowSlices).toBe(1); // the 0.6 round
    expect(tuned.stealSeconds).toBeCloseTo(0.08, 9);
    expect(records.filter((r) => r.slowMode).length).toBe(4);
    expect(parseRunRecords(records)).toHaveLength(records.length);
  });

  it("calls a ratio a finding only when its interval excludes 1", () => {
    const rate = (d: string) => s.comparisons.find((c) => c.denominator === d && c.quantity === "rate")!;
    expect(rate("haproxy-stock").ratio).toBeCloseTo(1.5, 9);
    expect(rate("haproxy-stock").finding).toBe(true);
    expect(rate("baseline").finding).toBe(false);
    expect(rate("baseline").lo).toBeLessThan(1);
    expect(rate("baseline").hi).toBeGreaterThan(1);
    expect(rate("forward").kind).toBe("limit");
    const cpuVsForward = s.comparisons.find((c) => c.denominator === "forward" && c.quantity === "cpuPerUnit")!;
    // tuned 2 CPU-s at 15·d Gbit/s against forwarding 1 CPU-s at 24·d: 3.2× the CPU per GB.
    expect(cpuVsForward.ratio).toBeCloseTo(3.2, 9);
    expect(findingSentence(rate("haproxy-stock"))).toMatch(
      /^Finding: rate of edgetune \(tuned\) \/ stock HAProxy on l4-throughput ×1 is 1\.50 \(95 % interval/,
    );
    expect(findingSentence(rate("baseline"))).toMatch(/^Not a finding: .*the interval includes 1/);
  });

  it("never calls a finding from fewer than the minimum of paired slices", () => {
    const few = analyzeSlices(results.slice(0, 4 * (MIN_PAIRS_FOR_FINDING - 1)), records.slice(0, 4 * (MIN_PAIRS_FOR_FINDING - 1)), {
      rounds: 4,
      sliceSeconds: 3,
    });
    const c = few.comparisons.find((x) => x.denominator === "haproxy-stock" && x.quantity === "rate")!;
    expect(c.finding).toBe(false);
    expect(findingSentence(c)).toMatch(/too few to call it/);
  });

  it("report.md states findings in words, the interval target and CPU against forwarding; the chart draws intervals", () => {
    const report = {
      stack: "local",
      machine: { cpus: 2, kernel: "6", haproxy: "2.6", nofile: 20000 },
      repeat: 1,
      quick: false,
      results,
      comparisons: [],
      paths: [],
      variants: [],
      files: { json: "", markdown: "", svg: "" },
      measurements: records,
      slices: s,
      wallSeconds: 600,
    } as LabReport;
    const md = renderLabMarkdown(report);
    expect(md).toContain("## Peers, limits and intervals (paired slices)");
    expect(md).toMatch(/- Finding: rate of edgetune \(tuned\) \/ stock HAProxy/);
    expect(md).toMatch(/- Not a finding: rate of edgetune \(tuned\) \/ edgetune's HAProxy on the baseline profile/);
    expect(md).toMatch(/Interval width, tuned \/ baseline on l4-throughput ×1: ±\d+\.\d % \(target ±10 %\): (met|not met)/);
    expect(md).toMatch(/CPU per GB: edgetune \(tuned\) on l4-throughput ×1 costs 3\.20 × kernel forwarding/);
    expect(md).toContain("Wall time of this lab run: 10.0 min.");
    const svg = appendIntervalPanel(renderSvgChart(results), s);
    expect(svg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    expect(svg).toContain("l4-throughput ×1: tuned / haproxy-stock");
    expect(svg).toContain("l4-throughput ×1: tuned / forward");
    expect((svg.match(/<circle /g) ?? []).length).toBe(s.comparisons.filter((c) => c.quantity === "rate").length);
    // filled for findings, hollow otherwise
    expect(svg).toMatch(/<circle [^>]*fill="#fff"/);
    expect(svg).toMatch(/<circle [^>]*fill="#7b3fb5"/);
  });

  it("offers http-latency the slowest proxy's median throughput", () => {
    const rs = [
      run("tuned", "http-throughput", 30000, 0),
      run("tuned", "http-throughput", 32000, 1),
      run("nginx", "http-throughput", 45000, 0),
      run("direct", "http-throughput", 5000, 0),
    ];
    expect(slowestProxyRps(rs)).toBe(32000);
  });
});
