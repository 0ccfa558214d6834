import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLAIMS, renderClaimsTable } from "../../components/lab/claims-table";
import {
  presetKeys,
  PROXY_OPTIONS,
  reasonFor,
  renderSettingsTable,
  settingsRows,
  type KernelChecks,
  type MeasuredRun,
} from "../../components/lab/settings-table";
import { PRESETS } from "../../components/tuning/presets";
import { committedRun, renderSettingsProofDoc, settingsSources } from "../../lab/settings-proof";

const ROOT = join(__dirname, "..", "..");
const json = (p: string) => JSON.parse(readFileSync(join(ROOT, p), "utf8"));
const committed = json("docs/lab-results.json") as MeasuredRun;
const quickProofs = json("test/fixtures/lab/proofs-quick-results.json") as MeasuredRun;
const deadPeer = json("test/fixtures/lab/dead-peer-results.json") as MeasuredRun;
const noDelay: KernelChecks = {
  kernel: "6.18.44-test",
  qdiscs: {
    netem: { available: false, command: "tc qdisc add dev kc0 root netem delay 10ms", output: "Error: Specified qdisc kind is unknown." },
    fq: { available: false, command: "tc qdisc add dev kc0 root fq", output: "Error: Specified qdisc kind is unknown." },
    fq_codel: { available: false, command: "tc qdisc add dev kc0 root fq_codel", output: "Error: Specified qdisc kind is unknown." },
  },
  namespaceDefaults: { "net.ipv4.tcp_sack": "1", "net.ipv4.tcp_max_tw_buckets": "4096" },
};

describe("settings table", () => {
  const rows = settingsRows(
    settingsSources(),
    { results: [...committed.results, ...quickProofs.results], machine: committed.machine },
    noDelay,
  );
  it("has a row for every key any preset sets, and for the HAProxy options edgetune renders", () => {
    const keys = new Set(rows.map((r) => r.key));
    for (const p of Object.values(PRESETS)) {
      for (const k of Object.keys(p.sysctls ?? {})) expect(keys).toContain(k);
      for (const k of Object.keys(p.limits ?? {})) expect(keys).toContain(`limits.${k}`);
    }
    for (const o of PROXY_OPTIONS) expect(keys).toContain(o);
    expect(rows).toHaveLength(presetKeys().length + PROXY_OPTIONS.length);
  });
  it("gives every row a scenario or a reason, never both", () => {
    for (const r of rows) expect([r.key, r.scenarios.length > 0 !== (r.reason !== undefined)]).toEqual([r.key, true]);
  });
  it("names the scenario that shows a key, with its figure from the results", () => {
    const row = (k: string) => rows.find((r) => r.key === k)!;
    expect(row("net.ipv4.tcp_fin_timeout").scenarios).toEqual(["fin-wait"]);
    expect(row("net.ipv4.tcp_fin_timeout").figures[0]).toBe("FIN-WAIT-2 sockets left at the end of the window: 300 → 0");
    expect(row("net.core.somaxconn").scenarios).toEqual(["conn-burst", "syn-flood"]);
    expect(row("net.core.somaxconn").figures[0]).toMatch(/^ListenOverflows at c8000: [\d,]+ → 0;/);
    expect(row("net.ipv4.tcp_tw_reuse").scenarios).toEqual(["port-churn"]);
    expect(row("haproxy: splice").figures[0]).toMatch(/Gbit\/s copying → .* Gbit\/s splicing/);
    expect(row("net.ipv4.tcp_keepalive_time").figures[0]).toBe("not in this results file");
    const dp = settingsRows(settingsSources(), deadPeer, noDelay).find((r) => r.key === "haproxy: clitcpka/srvtcpka")!;
    expect(dp.figures).toEqual(["backend side dropped after: never within 135 s → 124 s (expected 120 s)"]);
  });
  it("a key without a scenario shows its reason, measured where the kernel checks say", () => {
    const row = (k: string) => rows.find((r) => r.key === k)!;
    expect(row("net.ipv4.tcp_rmem").reason).toMatch(/needs round-trip time: .*no netem and no fq/);
    expect(row("net.ipv4.tcp_sack").reason).toMatch(/fresh namespace already has 1/);
    expect(row("net.ipv4.tcp_max_tw_buckets").reason).toMatch(/allows 4096 TIME_WAIT/);
    expect(row("limits.nofileHard").reason).toMatch(/RLIMIT_NOFILE 20000/);
    // A key no scenario and no known reason covers says so rather than passing silently.
    expect(settingsRows([], undefined, undefined).find((r) => r.key === "net.core.netdev_max_backlog")?.reason).toBe(
      "no lab scenario shows it yet",
    );
    expect(reasonFor("net.core.netdev_max_backlog")).toBeUndefined();
  });
  it("states the delay check once, with the commands and what the kernel answered", () => {
    const md = renderSettingsTable(rows, noDelay);
    expect(md.match(/\*\*No delay emulation\.\*\*/g)).toHaveLength(1);
    expect(md).toContain(
      "`tc qdisc add dev kc0 root netem delay 10ms` in a scratch namespace → refused: `Error: Specified qdisc kind is unknown.`",
    );
    expect(renderSettingsTable(rows)).toContain("Not checked in this run");
  });
});

describe("claims table", () => {
  const run: MeasuredRun = { results: [...committed.results, ...quickProofs.results], machine: committed.machine };
  it("judges each claim from its measure, or says what is missing", () => {
    const verdicts = Object.fromEntries(CLAIMS.map((c) => [c.id, c.judge(run)]));
    expect(verdicts.splice.verdict).toBe("confirmed");
    expect(verdicts.splice.measured).toMatch(/Gbit\/s \(\+\d+ %\)/);
    expect(verdicts["fin-timeout"]).toMatchObject({ verdict: "confirmed", measured: "300 → 0 FIN-WAIT-2 sockets after 14 s" });
    expect(verdicts.reuseport.verdict).toBe("not confirmed");
    expect(verdicts["conn-rate-4-cores"].verdict).toBe("cannot test here");
    expect(verdicts["memory-per-connection"]).toMatchObject({ verdict: "cannot test here", measured: "no conn-hold in this results file" });
    expect(verdicts.keepalive.measured).toBe("no dead-peer in this results file");
    const withDeadPeer = CLAIMS.find((c) => c.id === "keepalive")!.judge({ results: deadPeer.results });
    expect(withDeadPeer).toMatchObject({ verdict: "confirmed", measured: "never within 135 s → 124 s" });
  });
  it("a claim whose gain meets its bound is confirmed", () => {
    const r = (one: number, per: number) => ({
      results: [
        {
          ...quickProofs.results.find((x) => x.scenario === "reuseport" && x.profile === "tuned")!,
          measures: { connsPerSecondOneSocket: one, connsPerSecondPerThread: per, perThreadGainPercent: ((per - one) / one) * 100 },
        },
      ],
    });
    const claim = CLAIMS.find((c) => c.id === "reuseport")!;
    expect(claim.judge(r(1000, 1600)).verdict).toBe("confirmed");
    expect(claim.judge(r(1000, 1400)).verdict).toBe("not confirmed");
  });
  it("renders one row per claim with source and verdict", () => {
    const md = renderClaimsTable(run);
    expect(md.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| claim"))).toHaveLength(CLAIMS.length);
    expect(md).toContain("seeds/000");
  });
});

describe("docs/settings-proof.md", () => {
  it("is what npm run docs generates from the committed results and kernel checks", () => {
    const expected = renderSettingsProofDoc(
      committedRun(
        (f) => json(`docs/${f}`),
        (f) => existsSync(join(ROOT, "docs", f)),
      ),
      json("docs/lab-kernel-checks.json"),
    );
    expect(readFileSync(join(ROOT, "docs", "settings-proof.md"), "utf8")).toBe(expected);
  });
});
