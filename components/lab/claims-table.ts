/**
 * The guides' headline claims (the seeds edgetune's presets come from), what the lab measured on
 * the same kind of path, and a verdict. Pure: the figures come from a results file; a claim whose
 * figure is missing says so instead of guessing.
 */
import type { BenchResult } from "../bench/result";
import type { MeasuredRun } from "./settings-table";

export type Verdict = "confirmed" | "not confirmed" | "cannot test here";

export interface Claim {
  id: string;
  claim: string;
  /** Who says it, and where (the seed file under shared/seeds). */
  source: string;
  /** What the lab reads to judge it. */
  measure: string;
  judge(run: MeasuredRun): { measured: string; verdict: Verdict; why: string };
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function med(run: MeasuredRun, scenario: string, profile: string, f: (r: BenchResult) => number | undefined): number | undefined {
  return median(
    run.results
      .filter((r) => r.scenario === scenario && r.profile === profile)
      .map(f)
      .filter((x): x is number => x !== undefined),
  );
}

const round = (n: number, d = 0) => Math.round(n * 10 ** d) / 10 ** d;
const cpus = (run: MeasuredRun) => run.machine?.cpus ?? 2;
const missing = (what: string) => ({
  measured: `no ${what} in this results file`,
  verdict: "cannot test here" as Verdict,
  why: `run it: edgetune lab --scenarios ${what}`,
});

export const CLAIMS: Claim[] = [
  {
    id: "reuseport",
    claim: "SO_REUSEPORT (per-thread accept queues): +50–100 % throughput at high connection rates vs a single accept queue",
    source: "NovaEdge performance tuning guide (seeds/000)",
    measure: "reuseport: conn-rate through HAProxy, one listening socket vs `shards by-thread` (perThreadGainPercent, tuned profile)",
    judge(run) {
      const gain = med(run, "reuseport", "tuned", (r) => r.measures?.perThreadGainPercent);
      if (gain === undefined) return missing("reuseport");
      const one = med(run, "reuseport", "tuned", (r) => r.measures?.connsPerSecondOneSocket) ?? 0;
      const per = med(run, "reuseport", "tuned", (r) => r.measures?.connsPerSecondPerThread) ?? 0;
      return {
        measured: `${round(one).toLocaleString("en-US")} → ${round(per).toLocaleString("en-US")} conn/s (${gain > 0 ? "+" : ""}${round(gain, 1)} %) on ${cpus(run)} vCPUs`,
        verdict: gain >= 50 ? "confirmed" : "not confirmed",
        why:
          gain >= 50
            ? "per-thread sockets gained at least the claimed 50 %"
            : `below +50 %; HAProxy's threads already share one socket well at ${cpus(run)} threads, and rates here spread ±30 %`,
      };
    },
  },
  {
    id: "splice",
    claim: "splice() for L4: +20–30 % throughput and measurably lower CPU",
    source: "NovaEdge performance tuning guide (seeds/000)",
    measure:
      "l4-throughput: HAProxy splicing (tuned) vs the same profile copying (no-splice listener), Gbit/s, median over 1 and 4 streams",
    judge(run) {
      const spliced = med(run, "l4-throughput", "tuned", (r) => r.gbps);
      const copied = med(run, "l4-throughput", "no-splice", (r) => r.gbps);
      if (spliced === undefined || copied === undefined) return missing("l4-throughput");
      const gain = (spliced / copied - 1) * 100;
      return {
        measured: `${round(copied, 2)} → ${round(spliced, 2)} Gbit/s (+${round(gain)} %)`,
        verdict: gain >= 20 ? "confirmed" : "not confirmed",
        why: gain >= 20 ? (gain > 30 ? "more than claimed on veth, where copying is the bottleneck" : "within the claim") : "below +20 %",
      };
    },
  },
  {
    id: "memory-per-connection",
    claim: "~10 MB per 1,000 connections (10 KB each, socket buffers included)",
    source: "edgeProxy performance page (seeds/004)",
    measure: "conn-hold: proxy RSS + kernel socket memory per held connection (bytesPerConnection, tuned)",
    judge(run) {
      const b = med(run, "conn-hold", "tuned", (r) => r.measures?.bytesPerConnection);
      if (b === undefined) return missing("conn-hold");
      return {
        measured: `HAProxy: ${round(b / 1024, 1)} KB per connection = ${round((b / 1024 / 1024) * 1000, 1)} MB per 1,000`,
        verdict: "cannot test here",
        why: "the claim is edgeProxy's (Tokio tasks); the figure is edgetune's HAProxy on the same kind of path, for comparison",
      };
    },
  },
  {
    id: "conn-rate-4-cores",
    claim: "50,000+ connections per second on a 4-core VM",
    source: "edgeProxy performance page (seeds/004)",
    measure: "conn-rate: new connection per request through HAProxy (tuned), conn/s",
    judge(run) {
      const c = med(run, "conn-rate", "tuned", (r) => r.connsPerSecond ?? r.rps);
      if (c === undefined) return missing("conn-rate");
      return {
        measured: `${round(c).toLocaleString("en-US")} conn/s on ${cpus(run)} vCPUs shared by client, proxy and backend`,
        verdict: "cannot test here",
        why: `another proxy on 4 dedicated cores; this machine has ${cpus(run)} vCPUs running the load generator and backend too`,
      };
    },
  },
  {
    id: "http-100-connections",
    claim: "~50,000 req/s HTTP with 100 connections (8 vCPU)",
    source: "MarchProxy performance tuning guide (seeds/003)",
    measure: "http-throughput: keep-alive HTTP through HAProxy (tuned), req/s",
    judge(run) {
      const r = med(run, "http-throughput", "tuned", (x) => x.rps);
      if (r === undefined) return missing("http-throughput");
      return {
        measured: `${round(r).toLocaleString("en-US")} req/s on ${cpus(run)} vCPUs (HAProxy, a static nginx backend)`,
        verdict: "cannot test here",
        why: "another proxy on 8 vCPUs with its own backend; not the same path",
      };
    },
  },
  {
    id: "latency-sub-ms",
    claim: "proxy latency < 1 ms",
    source: "edgeProxy performance page (seeds/004)",
    measure: "http-latency: p99 through HAProxy (tuned) below saturation, schedule-corrected",
    judge(run) {
      const p99 = med(run, "http-latency", "tuned", (x) => x.latency?.p99Ms);
      const p50 = med(run, "http-latency", "tuned", (x) => x.latency?.p50Ms);
      if (p99 === undefined) return missing("http-latency");
      return {
        measured: `p50 ${round(p50 ?? 0, 2)} ms, p99 ${round(p99, 2)} ms through HAProxy`,
        verdict: p99 < 1 ? "confirmed" : "not confirmed",
        why: p99 < 1 ? "holds for HAProxy on this path below saturation (the claim itself is edgeProxy's)" : "p99 above 1 ms here",
      };
    },
  },
  {
    id: "fin-timeout",
    claim: "tcp_fin_timeout 15 (or 10) frees sockets of closed connections sooner",
    source: "edgeProxy (seeds/004), NovaEdge (seeds/000)",
    measure: "fin-wait: the proxy's orphaned FIN-WAIT-2 sockets of vanished clients at the end of the window",
    judge(run) {
      const b = med(run, "fin-wait", "baseline", (r) => r.measures?.finWait2End);
      const t = med(run, "fin-wait", "tuned", (r) => r.measures?.finWait2End);
      if (b === undefined || t === undefined) return missing("fin-wait");
      const w = med(run, "fin-wait", "tuned", (r) => r.measures?.windowSeconds) ?? 0;
      return {
        measured: `${b} → ${t} FIN-WAIT-2 sockets after ${w} s`,
        verdict: t < b ? "confirmed" : "not confirmed",
        why: t < b ? "the default holds them 60 s" : "no difference in the window",
      };
    },
  },
  {
    id: "keepalive",
    claim: "lower tcp_keepalive_* detect and close broken connections sooner",
    source: "Linux kernel tuning guide (seeds/001), NovaEdge (seeds/000)",
    measure: "dead-peer: seconds until HAProxy drops the backend side of a tunnel whose client vanished",
    judge(run) {
      const t = med(run, "dead-peer", "tuned", (r) => r.measures?.backendDroppedSeconds);
      const bDropped = med(run, "dead-peer", "baseline", (r) => r.measures?.backendDropped);
      if (bDropped === undefined) return missing("dead-peer");
      const w = med(run, "dead-peer", "baseline", (r) => r.measures?.windowSeconds) ?? 0;
      return {
        measured: `${bDropped ? "dropped" : `never within ${w} s`} → ${t === undefined ? "never" : `${t} s`}`,
        verdict: t !== undefined && !bDropped ? "confirmed" : "not confirmed",
        why: "only with SO_KEEPALIVE on the proxy's sockets (edgetune renders clitcpka/srvtcpka when the profile sets keepalive)",
      };
    },
  },
];

export function renderClaimsTable(run: MeasuredRun, claims: readonly Claim[] = CLAIMS): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const out = ["| claim | source | what the lab measured | verdict |", "|---|---|---|---|"];
  for (const c of claims) {
    const j = c.judge(run);
    out.push(`| ${cell(c.claim)} | ${cell(c.source)} | ${cell(`${j.measured} (${c.measure})`)} | **${j.verdict}**: ${cell(j.why)} |`);
  }
  return `${out.join("\n")}\n`;
}
