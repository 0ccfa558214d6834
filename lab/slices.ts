/**
 * The lab's paired-slice phase: every arm — edgetune's HAProxy under the baseline profile and
 * under the tuned one, the peers (stock HAProxy, NGINX) and the path without a proxy (direct for
 * HTTP, kernel forwarding for L4) — runs each scenario in short slices, interleaved round by
 * round (ABCD… then …DCBA), so slow drift and the machine's two speeds fall on every arm alike
 * and ratios come from runs seconds apart. All arms live in one set of namespaces at once:
 * re-creating namespaces and restarting proxies per slice costs more than the slices. Only the
 * namespace's sysctls change between the baseline arm and the others (tune.sh restore/apply,
 * once per round); each HAProxy keeps the listen backlog it got when it started under its own
 * profile.
 */
import type { BenchResult } from "../components/bench/result";
import type { Scenario } from "../components/bench/scenarios";
import type { LabAddresses, LabTopology } from "../components/lab/topology";
import { PEER_PORTS, type PeerLabel } from "./peers";
import type { RunTarget } from "./runner";

/** Scenarios the slices run: the ones a peer comparison means something for. */
export const SLICE_SCENARIOS = ["http-throughput", "http-latency", "l4-throughput", "conn-rate"] as const;

export interface SliceArm {
  label: string;
  /** the namespace's profile while this arm runs */
  profile: "baseline" | "tuned";
  target: RunTarget["target"];
  host: string;
  port(sc: Scenario): number;
  /** scenarios this arm runs (the limit arms: the path each scenario's limit is) */
  runs(sc: Scenario): boolean;
}

export interface SlicePlan {
  rounds: number;
  sliceSeconds: number;
}

/** Default 10 rounds of 3 s; quick 3 rounds of 1 s (a smoke test of the machinery, not a figure). */
export function slicePlan(quick: boolean, o: { rounds?: number; sliceSeconds?: number } = {}): SlicePlan {
  return { rounds: o.rounds ?? (quick ? 3 : 10), sliceSeconds: o.sliceSeconds ?? (quick ? 1 : 3) };
}

export function sliceArms(o: {
  a: LabAddresses;
  t: LabTopology;
  tunedPorts: { http: number; l4: number };
  baselinePorts: { http: number; l4: number };
  peers: readonly PeerLabel[];
  /** tuned HAProxy's L4 listener without splice, same backend: splice against copying */
  noSplicePort?: number;
}): SliceArm[] {
  const isL4 = (sc: Scenario) => sc.listener === "l4";
  const on = (p: { http: number; l4: number }) => (sc: Scenario) => (isL4(sc) ? p.l4 : p.http);
  const all = () => true;
  return [
    { label: "baseline", profile: "baseline", target: "proxy", host: o.a.proxy, port: on(o.baselinePorts), runs: all },
    { label: "tuned", profile: "tuned", target: "proxy", host: o.a.proxy, port: on(o.tunedPorts), runs: all },
    ...o.peers.map((p): SliceArm => ({ label: p, profile: "tuned", target: "proxy", host: o.a.proxy, port: on(PEER_PORTS[p]), runs: all })),
    ...(o.noSplicePort !== undefined
      ? [
          {
            label: "no-splice",
            profile: "tuned",
            target: "proxy",
            host: o.a.proxy,
            port: () => o.noSplicePort!,
            runs: isL4,
          } satisfies SliceArm,
        ]
      : []),
    // The limits: HTTP without the proxy (client ↔ backend directly), L4 through the proxy
    // namespace's kernel routing without a proxy process.
    {
      label: "direct",
      profile: "tuned",
      target: "direct",
      host: o.a.backendDirect,
      port: () => o.t.httpPort,
      // Not for http-latency: at a fixed offered rate the path without a proxy bounds nothing.
      runs: (sc) => !isL4(sc) && sc.name !== "http-latency",
    },
    { label: "forward", profile: "tuned", target: "forward", host: o.a.backend, port: () => o.t.iperfPort, runs: isL4 },
  ];
}

/**
 * Round r's order: baseline first then the tuned-profile arms on even rounds, the reverse on odd
 * rounds, so each round needs one profile switch and no arm always runs first.
 */
export function roundOrder<T extends { profile: string }>(arms: readonly T[], round: number): T[] {
  const base = arms.filter((x) => x.profile === "baseline");
  const rest = arms.filter((x) => x.profile !== "baseline");
  return round % 2 === 0 ? [...base, ...rest] : [...rest.reverse(), ...base];
}

export interface SliceContext {
  plan: SlicePlan;
  arms: SliceArm[];
  scenarios: Scenario[];
  quick: boolean;
  labDir: string;
  a: LabAddresses;
  /** puts the namespace's sysctls to a profile (no-op when already there) */
  useProfile(p: "baseline" | "tuned"): void;
  run(sc: Scenario, t: RunTarget): BenchResult[];
  record(label: string, res: BenchResult): void;
  checkInterrupt(): Promise<void>;
  progress(line: string): void;
}

/** Runs the slices; returns every result (labels = arm labels, `run` = round). */
export async function runSlices(c: SliceContext): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  let maxRps: number | undefined;
  const order = [...c.scenarios].sort((x, y) => SLICE_SCENARIOS.indexOf(x.name as never) - SLICE_SCENARIOS.indexOf(y.name as never));
  for (const sc of order) {
    const arms = c.arms.filter((arm) => arm.runs(sc));
    const t0 = Date.now();
    for (let round = 0; round < c.plan.rounds; round++) {
      for (const arm of roundOrder(arms, round)) {
        c.useProfile(arm.profile);
        const results = c.run(sc, {
          host: arm.host,
          port: arm.port(sc),
          label: arm.label,
          run: round,
          quick: c.quick,
          durationSeconds: c.plan.sliceSeconds,
          labDir: c.labDir,
          a: c.a,
          // http-latency: every arm at the same offered rate (half the slowest proxy's maximum),
          // so latencies compare at equal load.
          maxRps,
          target: arm.target,
          slice: round,
        });
        for (const r of results) {
          out.push(r);
          c.record(arm.label, r);
        }
        await c.checkInterrupt();
      }
    }
    c.progress(`lab: slices ${sc.name}: ${c.plan.rounds} rounds × ${arms.length} arms in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (sc.name === "http-throughput") maxRps = slowestProxyRps(out);
  }
  return out;
}

/** The lowest median http-throughput rate among the proxy arms: the common offered load for http-latency. */
export function slowestProxyRps(results: readonly BenchResult[]): number | undefined {
  const by = new Map<string, number[]>();
  for (const r of results)
    if (r.scenario === "http-throughput" && r.rps !== undefined && r.target?.startsWith("proxy") && r.validity.valid)
      by.set(r.profile ?? "", [...(by.get(r.profile ?? "") ?? []), r.rps]);
  const medians = [...by.values()].map((v) => [...v].sort((x, y) => x - y)[v.length >> 1]);
  return medians.length ? Math.min(...medians) : undefined;
}

export const sliceScenarios = (selected: readonly Scenario[]): Scenario[] =>
  selected.filter((s) => (SLICE_SCENARIOS as readonly string[]).includes(s.name));
