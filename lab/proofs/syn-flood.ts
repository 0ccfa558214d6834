/**
 * syn-flood: a bounded SYN flood (hping3, random spoofed sources) at HAProxy's HTTP listener
 * while a legitimate client opens short connections at a steady rate: their success rate and
 * p99, and the proxy's SYN-queue counters, for the profile's tcp_max_syn_backlog, listen
 * backlog (somaxconn) and tcp_syncookies.
 *
 * Nothing leaves the namespaces: the flood goes from the client namespace over its veth, and
 * the proxy namespace routes every address it has no subnet for back to the client namespace,
 * which does not forward and so discards each SYN-ACK to a spoofed source. A blackhole route
 * would not do: the kernel finds no usable route for the SYN-ACK and drops the SYN before
 * queueing it (measured: ListenDrops, no half-open sockets), so the queue never fills.
 * rp_filter is off in the proxy namespace for the run (the namespace is deleted afterwards).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseNstat } from "../../components/bench/parsers";
import { assessValidity, RESULT_SCHEMA_VERSION, type BenchResult } from "../../components/bench/result";
import { percentile, ProofOutputError, proxyNstat } from "./proof-util";
import type { ProofContext, ProofScenario } from "./types";

export interface ProbeResult {
  attempts: number;
  answered: number;
  errors: Record<string, number>;
  latenciesMs: number[];
}

/** proof-client.js probe's JSON line. */
export function parseProbe(output: string): ProbeResult {
  const line = output
    .split("\n")
    .filter((l) => l.trim())
    .at(-1);
  if (!line) throw new ProofOutputError("probe", "no output");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line) as Record<string, unknown>;
  } catch (e) {
    throw new ProofOutputError("probe", `not JSON (${(e as Error).message})`);
  }
  const count = (v: unknown, what: string) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new ProofOutputError("probe", `${what} is not a count`);
    return v;
  };
  const attempts = count(raw.attempts, "attempts");
  const answered = count(raw.answered, "answered");
  if (answered > attempts) throw new ProofOutputError("probe", `answered ${answered} > attempts ${attempts}`);
  if (
    !Array.isArray(raw.latenciesMs) ||
    raw.latenciesMs.length !== answered ||
    !raw.latenciesMs.every((x) => typeof x === "number" && x >= 0)
  )
    throw new ProofOutputError("probe", "latenciesMs is not one non-negative number per answered connection");
  const errors = Object.fromEntries(
    Object.entries((raw.errors ?? {}) as Record<string, unknown>).map(([k, v]) => [k, count(v, `errors.${k}`)]),
  );
  return { attempts, answered, errors, latenciesMs: raw.latenciesMs as number[] };
}

/** hping3's closing statistics ("N packets transmitted, ..."; older builds spell it "tramitted"). */
export function parseHpingSent(stderr: string): number {
  const m = /(\d+) packets tr(?:ans)?a?n?s?mitted/.exec(stderr);
  if (!m) throw new ProofOutputError("hping3", `no "packets tramitted" statistics in: ${JSON.stringify(stderr.trim().slice(-200))}`);
  return Number(m[1]);
}

/** The SYN-queue counters of the proxy namespace that decide this scenario, from nstat deltas. */
export function synCounters(c: Record<string, number>): Record<string, number> {
  return {
    syncookiesSent: c.TcpExtSyncookiesSent ?? 0,
    syncookiesRecv: c.TcpExtSyncookiesRecv ?? 0,
    reqQueueFullCookies: c.TcpExtTCPReqQFullDoCookies ?? 0,
    reqQueueFullDrops: c.TcpExtTCPReqQFullDrop ?? 0,
    listenDrops: c.TcpExtListenDrops ?? 0,
    listenOverflows: c.TcpExtListenOverflows ?? 0,
    synAckRetransmits: c.TcpExtTCPSynRetrans ?? 0,
  };
}

const HTTP_PORT_FALLBACK = 80;

export const synFlood: ProofScenario = {
  name: "syn-flood",
  summary:
    "a bounded spoofed SYN flood at HAProxy's listener while a client connects: its success rate and p99, and the SYN-queue counters",
  shows: "the SYN queue (listen backlog, tcp_max_syn_backlog) and syncookies under a flood: legitimate connections still succeed",
  settings: ["net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies", "net.core.somaxconn"],
  inQuick: true,
  tools: { hping3: "hping3" },
  run(ctx: ProofContext): BenchResult[] {
    const port = ctx.spec.listeners.find((l) => l.mode === "http")?.port ?? HTTP_PORT_FALLBACK;
    const proxyNs = ctx.a.namespaces.proxy;
    const seconds = ctx.durationSeconds ?? (ctx.quick ? 4 : 10);
    // At most this many SYNs, whatever the rate: more than the default queue (4096), fewer than the tuned (65535).
    const floodCount = ctx.quick ? 30_000 : 50_000;
    const probeRate = 100;
    const probeCount = Math.max(1, (seconds - 1) * probeRate);
    const setup = ctx.exec(proxyNs, [
      "sh",
      "-c",
      'ip route add default via "$1" && for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > "$f"; done',
      "sh",
      ctx.a.client,
    ]);
    if (setup.code !== 0) throw new ProofOutputError("syn-flood", `default route to the client namespace: ${setup.stderr.trim()}`);
    const sysctl = (k: string) => Number(ctx.exec(proxyNs, ["cat", `/proc/sys/net/ipv4/${k}`]).stdout.trim());
    const nstat = proxyNstat(ctx);
    ctx.progress(
      `lab: syn-flood (${ctx.label}): ≤ ${floodCount} spoofed SYNs in ≤ ${seconds} s while ${probeCount} connections are probed`,
    );
    const t0 = Date.now();
    // The flood in the background, paced (-i u10: with --flood hping3 ignores -c) and stopped by
    // timeout with SIGINT at the latest, so hping3 prints its count;
    // the probe after it has started, then wait for the flood.
    const r = ctx.exec(
      ctx.a.namespaces.client,
      [
        "sh",
        "-c",
        'timeout -s INT "$1" hping3 -S -p "$2" --rand-source -i u10 -c "$3" "$4" 2>"$7" >/dev/null & f=$!; sleep 0.5; "$5" "$6" probe "$4" "$2" "$8" "$9" 3000; rc=$?; wait "$f"; exit $rc',
        "sh",
        String(seconds),
        String(port),
        String(floodCount),
        ctx.a.proxy,
        process.execPath,
        join(__dirname, "proof-client.js"),
        join(ctx.labDir, `hping3-${ctx.label}.log`),
        String(probeCount),
        String(probeRate),
      ],
      { timeoutMs: (seconds + 15) * 1000 },
    );
    const elapsed = (Date.now() - t0) / 1000;
    const counters = synCounters(parseNstat(nstat.after()));
    const synRecv = ctx
      .exec(proxyNs, ["ss", "-Htn", "state", "syn-recv"])
      .stdout.split("\n")
      .filter((l) => l.trim()).length;
    if (r.code !== 0) throw new ProofOutputError("syn-flood", `probe exited ${r.code}: ${r.stderr.trim().slice(-300)}`);
    writeFileSync(join(ctx.labDir, `probe-${ctx.label}-${ctx.run}.out`), r.stdout);
    const probe = parseProbe(r.stdout);
    const hpingLog = readFileSync(join(ctx.labDir, `hping3-${ctx.label}.log`), "utf8");
    const p = (q: number) => percentile(probe.latenciesMs, q);
    const measures: Record<string, number> = {
      floodSynsSent: parseHpingSent(hpingLog),
      legitAttempts: probe.attempts,
      legitAnswered: probe.answered,
      legitSuccessPercent: (probe.answered / probe.attempts) * 100,
      ...(p(50) !== undefined ? { legitP50Ms: p(50)!, legitP99Ms: p(99)! } : {}),
      synRecvSockets: synRecv,
      tcpMaxSynBacklog: sysctl("tcp_max_syn_backlog"),
      tcpSyncookies: sysctl("tcp_syncookies"),
      ...counters,
    };
    return [
      {
        schemaVersion: RESULT_SCHEMA_VERSION,
        scenario: "syn-flood",
        profile: ctx.label,
        run: ctx.run,
        tool: "lab-driver",
        durationSeconds: Math.max(0.001, elapsed),
        concurrency: 1,
        target: `proxy ${ctx.a.proxy}:${port}`,
        errors: probe.errors,
        validity: assessValidity({ listenOverflows: counters.listenOverflows, listenDrops: counters.listenDrops }, probe.answered),
        measures,
      },
    ];
  },
};
