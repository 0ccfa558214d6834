import type { LoadToolName, ScenarioName } from "./result";

/**
 * Benchmark scenarios as data. The Kubernetes Jobs and the local lab both
 * turn a Scenario into argv with `scenarioInvocations`; nothing else decides
 * what a tool is asked to do.
 */

export type Metric = "rps" | "gbps" | "connsPerSecond" | "latency" | "errors" | "listenDrops" | "retransmits";

/** Where the measured traffic enters the proxy. */
export type Listener = "http" | "l4";

export type Environment = "local" | "cluster";

export interface Scenario {
  name: ScenarioName;
  summary: string;
  /** The tool per environment (the lab and the loadgen image have the same tools: Debian's). */
  tool: Record<Environment, LoadToolName>;
  listener: Listener;
  durationSeconds: number;
  /** Duration for `--quick` runs: long enough for a figure, not a conclusion. */
  quickDurationSeconds: number;
  /** Connections (HTTP) or parallel streams (L4); several values mean one invocation each. */
  concurrency: number[];
  quickConcurrency: number[];
  /** wrk threads; capped at the connection count. */
  threads: number;
  /** `Connection: close` on every request: one TCP connection per request. */
  connectionClose: boolean;
  /** For constant-rate scenarios: the offered rate as a fraction of the measured maximum. */
  rateFractionOfMax?: number;
  /** For fixed-rate scenarios: the offered rate in connections or requests per second. */
  fixedRateRps?: number;
  /** Consecutive runs in one go (port-churn shows state left behind by earlier runs). */
  consecutiveRuns: number;
  /** Per-request timeout, seconds (wrk --timeout). */
  timeoutSeconds: number;
  /** What a result of this scenario reports. */
  reports: Metric[];
  /** nstat counters read on the proxy's node as deltas around the run. */
  proxyCounters: string[];
  /** What the scenario is expected to show, for the report. */
  shows: string;
}

/** Proxy-side kernel counters every connection scenario reads. */
export const LISTEN_COUNTERS = ["TcpExtListenOverflows", "TcpExtListenDrops", "TcpRetransSegs", "TcpExtTCPSynRetrans"] as const;

/**
 * What a cluster Job's counters pod reads on the proxy's node around every scenario: the listen
 * queue, retransmits, TIME_WAIT and failed connects (the proxy's own ports running out).
 */
export const PROXY_NODE_COUNTERS = [...LISTEN_COUNTERS, "TcpExtTW", "TcpExtTWRecycled", "TcpAttemptFails"] as const;

export const SCENARIOS: Readonly<Record<ScenarioName, Scenario>> = {
  "http-throughput": {
    name: "http-throughput",
    summary: "keep-alive HTTP at maximum rate",
    tool: { local: "wrk", cluster: "wrk" },
    listener: "http",
    durationSeconds: 10,
    quickDurationSeconds: 3,
    concurrency: [64],
    quickConcurrency: [32],
    threads: 2,
    connectionClose: false,
    consecutiveRuns: 1,
    timeoutSeconds: 2,
    reports: ["rps", "latency", "errors"],
    proxyCounters: [],
    shows: "the proxy's request rate ceiling (CPU-bound); also where wrong RPS settings cost ~30 %",
  },
  "http-latency": {
    name: "http-latency",
    summary: "constant request rate at a fraction of the measured maximum, latency percentiles",
    tool: { local: "wrk-paced", cluster: "wrk-paced" },
    listener: "http",
    durationSeconds: 10,
    quickDurationSeconds: 3,
    concurrency: [8],
    quickConcurrency: [4],
    threads: 8,
    connectionClose: false,
    rateFractionOfMax: 0.5,
    consecutiveRuns: 1,
    timeoutSeconds: 2,
    reports: ["rps", "latency", "errors"],
    proxyCounters: [],
    shows: "tail latency below saturation, free of coordinated omission (see LATENCY_METHODS)",
  },
  "l4-throughput": {
    name: "l4-throughput",
    summary: "iperf3 through the L4 listener, one stream and N streams",
    tool: { local: "iperf3", cluster: "iperf3" },
    listener: "l4",
    durationSeconds: 10,
    quickDurationSeconds: 2,
    concurrency: [1, 4],
    quickConcurrency: [1, 4],
    threads: 1,
    connectionClose: false,
    consecutiveRuns: 1,
    timeoutSeconds: 5,
    reports: ["gbps", "retransmits"],
    proxyCounters: ["TcpRetransSegs"],
    shows: "splice and offloads (splice: ~2x Gbps and ~1/3 the proxy CPU per GB here)",
  },
  "conn-rate": {
    name: "conn-rate",
    summary: "a new TCP connection per request (Connection: close)",
    tool: { local: "wrk", cluster: "wrk" },
    listener: "http",
    durationSeconds: 10,
    quickDurationSeconds: 3,
    concurrency: [64],
    quickConcurrency: [32],
    threads: 2,
    connectionClose: true,
    consecutiveRuns: 1,
    timeoutSeconds: 2,
    reports: ["connsPerSecond", "latency", "errors"],
    proxyCounters: [...LISTEN_COUNTERS],
    shows: "accept and connect cost per connection; the client's own TIME_WAIT poisons back-to-back runs",
  },
  "conn-burst": {
    name: "conn-burst",
    summary: "thousands of concurrent connects at once against the proxy",
    tool: { local: "wrk", cluster: "wrk" },
    listener: "http",
    durationSeconds: 10,
    quickDurationSeconds: 3,
    // 2000 fits the kernel's default backlog of 4096; 8000 overflows it (lab notes: 58-62k
    // ListenOverflows at 4096, 0 at 65535), which is where backlog tuning shows.
    concurrency: [2000, 8000],
    quickConcurrency: [1000],
    threads: 2,
    connectionClose: true,
    consecutiveRuns: 1,
    timeoutSeconds: 2,
    reports: ["connsPerSecond", "latency", "errors", "listenDrops", "retransmits"],
    proxyCounters: [...LISTEN_COUNTERS],
    shows: "listen backlog (somaxconn, tcp_max_syn_backlog, HAProxy backlog): ListenOverflows and p99, not throughput",
  },
  "port-churn": {
    name: "port-churn",
    summary: "sustained short proxy→backend connections over consecutive runs",
    // The client closes first (churn-client.js) through a tcp listener, so the proxy closes
    // each backend connection first and holds its TIME_WAIT. A fixed rate keeps the load
    // generator below saturation and makes "the rate held" a meaningful figure.
    tool: { local: "tcp-churn", cluster: "tcp-churn" },
    fixedRateRps: 5000,
    listener: "l4",
    durationSeconds: 10,
    quickDurationSeconds: 3,
    concurrency: [16],
    quickConcurrency: [16],
    threads: 2,
    connectionClose: true,
    consecutiveRuns: 5,
    timeoutSeconds: 2,
    reports: ["connsPerSecond", "errors"],
    proxyCounters: ["TcpExtTWRecycled", "TcpExtTW", "TcpAttemptFails"],
    shows: "ephemeral port range, tcp_tw_reuse and TIME_WAIT on the proxy's backend side: rate per run and connect errors",
  },
};

export const SCENARIO_LIST: readonly Scenario[] = Object.values(SCENARIOS);

export interface InvocationOptions {
  environment: Environment;
  host: string;
  port: number;
  /** URL path for HTTP scenarios; default "/". */
  path?: string;
  quick?: boolean;
  /** Overrides the scenario's duration. */
  durationSeconds?: number;
  /** Overrides the scenario's concurrency list. */
  concurrency?: number[];
  /** Offered rate for constant-rate scenarios, requests/s (e.g. rateFractionOfMax × a measured max). */
  rateRps?: number;
  /** Directory holding wrk-report.lua and wrk-paced.lua where the tool runs. */
  luaDir: string;
}

export interface Invocation {
  scenario: ScenarioName;
  tool: LoadToolName;
  /** argv[0] is the program; pass it to execve, never through a shell unquoted. */
  argv: string[];
  durationSeconds: number;
  concurrency: number;
  /** 0-based index among a scenario's consecutive runs. */
  run: number;
}

// Hostnames, IPv4 and bracket-free IPv6: whatever reaches argv (and a Job's shell script) is checked first.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^[0-9A-Fa-f:]+$/;
const URL_PATH = /^\/[A-Za-z0-9._~/-]*$/;
const LUA_DIR = /^\/[A-Za-z0-9._/-]*$/;

function check(ok: boolean, what: string, value: unknown, allowed: string): void {
  if (!ok) throw new Error(`bench: ${what} ${JSON.stringify(value)} is not allowed; allowed: ${allowed}`);
}

/** The exact argv for every invocation of a scenario, in the order they must run. */
export function scenarioInvocations(scenario: Scenario, o: InvocationOptions): Invocation[] {
  check(HOST.test(o.host) && o.host.length <= 253, "host", o.host, "a DNS name or an IP address");
  check(Number.isInteger(o.port) && o.port >= 1 && o.port <= 65535, "port", o.port, "an integer 1-65535");
  const path = o.path ?? "/";
  check(URL_PATH.test(path), "path", path, "an absolute URL path of [A-Za-z0-9._~/-]");
  check(LUA_DIR.test(o.luaDir), "luaDir", o.luaDir, "an absolute directory path");
  const duration = o.durationSeconds ?? (o.quick ? scenario.quickDurationSeconds : scenario.durationSeconds);
  check(Number.isInteger(duration) && duration >= 1 && duration <= 3600, "durationSeconds", duration, "an integer 1-3600");
  const levels = o.concurrency ?? (o.quick ? scenario.quickConcurrency : scenario.concurrency);
  for (const c of levels) check(Number.isInteger(c) && c >= 1 && c <= 100_000, "concurrency", c, "integers 1-100000");
  const tool = scenario.tool[o.environment];
  const hostForUrl = o.host.includes(":") ? `[${o.host}]` : o.host;
  const url = `http://${hostForUrl}:${o.port}${path}`;

  const one = (c: number): string[] => {
    switch (tool) {
      case "wrk":
        return [
          "wrk",
          `-t${Math.min(scenario.threads, c)}`,
          `-c${c}`,
          `-d${duration}s`,
          "--timeout",
          `${scenario.timeoutSeconds}s`,
          ...(scenario.connectionClose ? ["-H", "Connection: close"] : []),
          "-s",
          `${o.luaDir}/wrk-report.lua`,
          url,
        ];
      case "wrk-paced": {
        const rate = requireRate(scenario, o.rateRps);
        // One connection per wrk thread: the script's schedule is per thread.
        return [
          "wrk",
          `-t${c}`,
          `-c${c}`,
          `-d${duration}s`,
          "--timeout",
          `${scenario.timeoutSeconds}s`,
          "-s",
          `${o.luaDir}/wrk-paced.lua`,
          url,
          "--",
          formatRate(rate / c),
        ];
      }
      case "tcp-churn": {
        const rate = o.rateRps ?? scenario.fixedRateRps;
        if (!rate) throw new Error(`bench: ${scenario.name} with tcp-churn needs a rate (fixedRateRps or rateRps)`);
        return [
          // In a cluster Job the loadgen image's node; locally the node running the lab.
          o.environment === "cluster" ? "node" : process.execPath,
          `${o.luaDir}/churn-client.js`,
          o.host,
          String(o.port),
          String(duration),
          String(c),
          formatRate(rate),
          String(scenario.timeoutSeconds),
        ];
      }
      case "iperf3":
        return [
          "iperf3",
          "-c",
          o.host,
          "-p",
          String(o.port),
          "-t",
          String(duration),
          "-P",
          String(c),
          "-J",
          "--connect-timeout",
          String(scenario.timeoutSeconds * 1000),
        ];
    }
  };

  const out: Invocation[] = [];
  for (let run = 0; run < scenario.consecutiveRuns; run++) {
    for (const c of levels) out.push({ scenario: scenario.name, tool, argv: one(c), durationSeconds: duration, concurrency: c, run });
  }
  return out;
}

function requireRate(scenario: Scenario, rate: number | undefined): number {
  if (rate === undefined || !Number.isFinite(rate) || rate <= 0) {
    throw new Error(
      `bench: ${scenario.name} is constant-rate: pass rateRps (${scenario.rateFractionOfMax ?? 1} × the http-throughput result)`,
    );
  }
  return rate;
}

function formatRate(r: number): string {
  return String(Math.max(1, Math.round(r * 100) / 100));
}

/** The offered rate for a constant-rate scenario from a measured maximum (e.g. http-throughput rps). */
export function offeredRate(scenario: Scenario, measuredMaxRps: number): number {
  if (!scenario.rateFractionOfMax) throw new Error(`bench: ${scenario.name} is not a constant-rate scenario`);
  return Math.max(1, Math.floor(measuredMaxRps * scenario.rateFractionOfMax));
}
