import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseBenchResult, type BenchResult } from "../../components/bench/result";
import { proofComparisons, renderProofMarkdown, renderProofTable } from "../../components/lab/proof-analysis";
import { connHoldMeasures, connHoldSteps, parseConnHold, parseSlabinfo, parseSockstat, renderedMaxconn } from "../../lab/proofs/conn-hold";
import { parseSoftnetStat, softnetDelta } from "../../lab/proofs/softnet";
import { parseHpingSent, parseProbe, synCounters } from "../../lab/proofs/syn-flood";

const fixture = (name: string) => readFileSync(join(__dirname, "..", "fixtures", "lab", name), "utf8");

describe("conn-hold parsers", () => {
  it("reads /proc/net/sockstat and the socket slabs as captured here", () => {
    const s = parseSockstat(fixture("sockstat.txt"));
    expect(s.TCP.inuse).toBeGreaterThanOrEqual(0);
    expect(Object.keys(s.TCP)).toEqual(expect.arrayContaining(["inuse", "orphan", "tw", "alloc", "mem"]));
    const slab = parseSlabinfo(fixture("slabinfo-sockets.txt"));
    expect(Object.keys(slab).sort()).toEqual(["TCP", "dentry", "eventpoll_epi", "filp", "sock_inode_cache"]);
    // TCP's objects are 2,368 bytes on this kernel: bytes are active objects × object size.
    const tcp = /^TCP\s+(\d+)\s+\d+\s+(\d+)/m.exec(fixture("slabinfo-sockets.txt"))!;
    expect(slab.TCP).toBe(Number(tcp[1]) * Number(tcp[2]));
  });

  it("refuses malformed sockstat and slabinfo", () => {
    expect(() => parseSockstat("TCP inuse 5")).toThrow(/sockstat: line is not/);
    expect(() => parseSockstat("UDP: inuse 0 mem 0")).toThrow(/no TCP line/);
    expect(() => parseSlabinfo("TCP lots of objects")).toThrow(/slabinfo: line is not/);
  });

  it("turns the client's real samples into held connections and bytes per connection", () => {
    const samples = parseConnHold(fixture("conn-hold.out"));
    expect(samples[0].step).toBe(0);
    expect(samples.length).toBeGreaterThan(2);
    const m = connHoldMeasures(samples, 7891);
    // The run went past HAProxy's maxconn (7,891 here): the held count stops there and the rest failed.
    expect(m.heldMax).toBe(7891);
    expect(m.targetConnections).toBeGreaterThan(7891);
    expect(m.failedConnections).toBe(m.targetConnections - 7891);
    expect(m.heldWithoutErrors).toBeLessThan(7891);
    expect(m.firstFailingStep).toBe(m.targetConnections);
    expect(m.bytesPerConnection).toBe(m.haproxyRssBytesPerConnection + m.kernelBytesPerConnection);
    expect(m.kernelBytesPerSocket).toBeGreaterThan(0);
  });

  it("works the figures out from the sample before any connection and the largest clean step", () => {
    const sample = (step: number, held: number, rssKb: number, inuse: [number, number, number], slabBytes: number, errors = {}) => ({
      step,
      held,
      errors,
      proxyRssBytes: rssKb * 1024,
      sockets: { client: inuse[0], proxy: inuse[1], backend: inuse[2] },
      slabBytes,
    });
    const m = connHoldMeasures(
      [
        sample(0, 0, 1000, [0, 2, 1], 1_000_000),
        sample(1000, 1000, 3000, [1000, 1002, 1], 9_000_000),
        sample(2000, 1500, 4000, [1500, 1502, 1], 13_000_000, { timeout: 500 }),
      ],
      1500,
    );
    // 2,000 KB more RSS over 1,000 held; 8 MB of slab over 2,000 new sockets, 1 proxy socket per connection.
    expect(m).toMatchObject({
      heldWithoutErrors: 1000,
      heldMax: 1500,
      failedConnections: 500,
      firstFailingStep: 2000,
      haproxyMaxconn: 1500,
      haproxyRssBytesPerConnection: 2048,
      kernelBytesPerSocket: 4000,
      proxySocketsPerConnection: 1,
      kernelBytesPerConnection: 4000,
      bytesPerConnection: 6048,
    });
    expect(() => connHoldMeasures([sample(1000, 1000, 1, [1, 1, 1], 1)])).toThrow(/before any connection/);
  });

  it("refuses a client output that is not its samples", () => {
    expect(() => parseConnHold("")).toThrow(/no samples/);
    expect(() => parseConnHold("held 5")).toThrow(/line 1 is not JSON/);
    const line = JSON.parse(fixture("conn-hold.out").split("\n")[0]) as Record<string, unknown>;
    expect(() => parseConnHold(JSON.stringify({ ...line, rssKb: {} }))).toThrow(/no HAProxy RSS/);
    expect(() => parseConnHold(JSON.stringify({ ...line, held: -1 }))).toThrow(/held is not a count/);
    expect(() => parseConnHold(JSON.stringify({ ...line, slabinfo: "dentry 1 1 192 21 1 : x" }))).toThrow(/no TCP cache/);
  });

  it("steps around the rendered maxconn", () => {
    expect(renderedMaxconn('global\n  presetenv EDGETUNE_MAXCONN 7891\n  maxconn "${EDGETUNE_MAXCONN}"\n')).toBe(7891);
    expect(renderedMaxconn("global\n  maxconn 2000\n")).toBe(2000);
    expect(renderedMaxconn("global\n")).toBeUndefined();
    const quick = connHoldSteps(7891, true);
    expect(quick.at(-1)).toBeGreaterThan(7891);
    expect(quick.filter((s) => s < 7891).length).toBeGreaterThan(1);
    expect([...quick].sort((a, b) => a - b)).toEqual(quick);
  });
});

describe("softnet parsers", () => {
  it("reads /proc/net/softnet_stat as captured here: one entry per CPU", () => {
    const cpus = parseSoftnetStat(fixture("softnet_stat.txt"));
    expect(cpus.length).toBe(fixture("softnet_stat.txt").trim().split("\n").length);
    const first = fixture("softnet_stat.txt").split("\n")[0].split(/\s+/);
    expect(cpus[0]).toEqual({ processed: parseInt(first[0], 16), dropped: parseInt(first[1], 16), timeSqueeze: parseInt(first[2], 16) });
  });

  it("sums the deltas of the run's real before/after snapshots over the CPUs", () => {
    const [before, after] = fixture("softnet-run.out").split("---\n");
    const d = softnetDelta(parseSoftnetStat(before), parseSoftnetStat(after));
    expect(d.processed).toBeGreaterThan(0);
    expect(softnetDelta([{ processed: 10, dropped: 1, timeSqueeze: 0 }], [{ processed: 15, dropped: 4, timeSqueeze: 2 }])).toEqual({
      processed: 5,
      dropped: 3,
      timeSqueeze: 2,
    });
  });

  it("refuses lines that are not hex columns", () => {
    expect(() => parseSoftnetStat("")).toThrow(/no CPU lines/);
    expect(() => parseSoftnetStat("0001 zz 0003")).toThrow(/line 1 is not hex columns/);
  });
});

describe("syn-flood parsers", () => {
  it("reads the probe's real output: attempts, answers and one latency per answer", () => {
    const p = parseProbe(fixture("syn-flood-probe.out"));
    expect(p.attempts).toBeGreaterThan(0);
    expect(p.latenciesMs.length).toBe(p.answered);
  });

  it("refuses a probe output that does not add up", () => {
    expect(() => parseProbe("")).toThrow(/no output/);
    expect(() => parseProbe("{")).toThrow(/not JSON/);
    expect(() => parseProbe(JSON.stringify({ attempts: 1, answered: 2, errors: {}, latenciesMs: [1, 2] }))).toThrow(
      /answered 2 > attempts 1/,
    );
    expect(() => parseProbe(JSON.stringify({ attempts: 2, answered: 2, errors: {}, latenciesMs: [1] }))).toThrow(/one non-negative number/);
    expect(() => parseProbe(JSON.stringify({ attempts: 2, answered: 1, errors: { timeout: -1 }, latenciesMs: [1] }))).toThrow(
      /errors.timeout is not a count/,
    );
  });

  it("reads hping3's closing statistics as captured here, its spelling included", () => {
    expect(parseHpingSent(fixture("hping3-flood.txt"))).toBeGreaterThan(0);
    expect(parseHpingSent("--- 10.0.0.1 hping statistic ---\n1234 packets tramitted, 0 packets received, 100% packet loss\n")).toBe(1234);
    expect(() => parseHpingSent("hping3: can't open raw socket")).toThrow(/no "packets tramitted"/);
  });

  it("names the SYN-queue counters from nstat's", () => {
    expect(synCounters({ TcpExtTCPReqQFullDoCookies: 5, TcpExtSyncookiesSent: 7, TcpExtTCPReqQFullDrop: 2 })).toMatchObject({
      reqQueueFullCookies: 5,
      syncookiesSent: 7,
      reqQueueFullDrops: 2,
      listenDrops: 0,
    });
  });
});

describe("proof comparison", () => {
  const res = (scenario: BenchResult["scenario"], profile: string, measures: Record<string, number>): BenchResult =>
    parseBenchResult({
      schemaVersion: 1,
      scenario,
      profile,
      tool: "lab-driver",
      durationSeconds: 5,
      errors: {},
      validity: { valid: true, reasons: [] },
      measures,
    });

  it("takes medians per measure and lets the counters decide the verdict", () => {
    const results = [
      ...[120, 80, 100].map((d) => res("softnet", "baseline", { softnetDrops: d, netdevMaxBacklog: 1000 })),
      ...[0, 0, 3].map((d) => res("softnet", "tuned", { softnetDrops: d, netdevMaxBacklog: 65535 })),
      res("http-throughput", "baseline", { softnetDrops: 99 }),
    ];
    const [p] = proofComparisons(results);
    expect(p).toMatchObject({ scenario: "softnet", baselineRuns: 3, tunedRuns: 3 });
    expect(p.measures.softnetDrops).toEqual({ baseline: 100, tuned: 0 });
    expect(p.verdict).toMatch(/1,000 → 100 backlog drops, 65,535 → 0: netdev_max_backlog decides/);

    const none = proofComparisons([res("softnet", "baseline", { softnetDrops: 0 }), res("softnet", "tuned", { softnetDrops: 0 })]);
    expect(none[0].verdict).toMatch(/not shown on this machine/);
  });

  it("says when conn-hold's profiles hold the same because maxconn is the same", () => {
    const m = { heldMax: 7891, heldWithoutErrors: 7102, haproxyMaxconn: 7891, bytesPerConnection: 5400 };
    const [p] = proofComparisons([res("conn-hold", "baseline", m), res("conn-hold", "tuned", m)]);
    expect(p.verdict).toMatch(/both stop at HAProxy's maxconn 7,891.*file limits cannot differ here/);
    expect(p.verdict).toMatch(/5\.4 MB per 1,000/);
    const [q] = proofComparisons([res("conn-hold", "baseline", { ...m, heldMax: 4000 }), res("conn-hold", "tuned", m)]);
    expect(q.verdict).toMatch(/file limits decide/);
  });

  it("compares nothing for a proof that ran on one side, and renders each proof's table", () => {
    const [p] = proofComparisons([res("syn-flood", "tuned", { legitSuccessPercent: 100 })]);
    expect(p.verdict).toMatch(/ran for tuned only/);
    const md = renderProofMarkdown([p]).join("\n");
    expect(md).toMatch(/#### syn-flood \(0 baseline, 1 tuned run\(s\)\)/);
    expect(md).toMatch(/\| legitSuccessPercent \| – \| 100 \|/);
    expect(renderProofTable([p]).join("\n")).toMatch(/legitSuccessPercent\s+– → 100/);
    expect(renderProofMarkdown([])).toEqual([]);
  });
});
