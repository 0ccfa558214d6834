/**
 * `edgetune lab`: the local tuned-vs-baseline lab. Builds three network
 * namespaces (client ↔ proxy ↔ backend, plus a direct client ↔ backend link),
 * runs every scenario against HAProxy for the `baseline` profile and for the
 * stack's profile, alternating, repeated, plus the direct and kernel-forwarded
 * paths as the physical limit, and the stack's lab.variants (one setting
 * changed) against tuned, and reports medians, spread and ratios.
 *
 * The steps are lab.sh's (components/lab/topology.ts): the same script the
 * Pulumi `local` target runs. This module only sequences them and measures.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus as osCpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { nstatValidity, parseNstat, parseToolOutput } from "../components/bench/parsers";
import { compareProfiles, median, SCENARIO_NAMES, type BenchResult, type ScenarioName } from "../components/bench/result";
import { renderMarkdown, renderSvgChart, renderTable } from "../components/bench/report";
import { offeredRate, scenarioInvocations, SCENARIOS, type Invocation, type Scenario } from "../components/bench/scenarios";
import { renderHaproxyConfig, type ProxySpec } from "../components/proxy/haproxy";
import { DEFAULT_TOPOLOGY, labAddresses, renderBackendNginx, renderLabScript, type LabAddresses, type LabTopology } from "../components/lab/topology";
import { resolveProfile } from "../components/tuning/profile";
import { renderTuneSh } from "../components/tuning/render";
import type { ResolvedProfile } from "../components/tuning/types";
import { loadStack, type LabVariantPlan, type StackPlan } from "./stack-config";

/** Tool → the Debian package that provides it, for a clear refusal. */
export const LAB_TOOLS: Record<string, string> = { ip: "iproute2", nstat: "iproute2", ethtool: "ethtool", haproxy: "haproxy", nginx: "nginx", iperf3: "iperf3", wrk: "wrk", curl: "curl", sysctl: "procps" };

export interface LabOptions {
  stack: string;
  root: string;
  /** Short smoke run (tests): quick durations and concurrency, one repeat unless set. */
  quick?: boolean;
  scenarios?: ScenarioName[];
  /** @default 3 (1 with quick) */
  repeat?: number;
  /** Overrides every scenario's duration, seconds. */
  durationSeconds?: number;
  /** Where results.json, report.md, chart.svg and the lab's files go. @default a new temp dir */
  reportDir?: string;
  topology?: LabTopology;
  /** Which of the stack's `lab.variants` to run; default all, [] for none. */
  variants?: string[];
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

export interface PathComparison {
  scenario: ScenarioName;
  concurrency?: number;
  /** median rate through the proxy (tuned profile) / median rate on the path without the proxy */
  proxyOverDirect?: number;
  /** l4 only: proxy / plain kernel forwarding through the proxy namespace */
  proxyOverForward?: number;
  /** The reference run saturated its load generator: the ratio is an upper bound. */
  referenceClientBound?: boolean;
  /** l4 only: spliced / copied through user space, same proxy and profile */
  spliceOverCopy?: number;
  /** l4 only: HAProxy CPU seconds per GB moved, spliced and copied */
  proxyCpuSecondsPerGB?: { splice?: number; copy?: number };
}

/** A lab variant against the tuned profile: does the setting it changes hurt here? */
export interface VariantComparison {
  variant: string;
  why?: string;
  scenario: ScenarioName;
  concurrency?: number;
  metric: "rps" | "gbps" | "connsPerSecond";
  tuned: number;
  value: number;
  /** variant / tuned, medians of valid runs */
  ratio: number;
  spread: number;
  p99RatioOverTuned?: number;
  /** ≥ 30 % either way (the lab notes' noise floor for rates), else within noise. */
  verdict: "hurts" | "helps" | "within noise";
}

/** Rate differences below this factor are this machine's noise (lab notes: ±20–30 %). */
export const NOISE_FACTOR = 1.3;

export interface LabReport {
  stack: string;
  machine: { cpus: number; kernel: string; haproxy: string; nofile: number };
  repeat: number;
  quick: boolean;
  results: BenchResult[];
  comparisons: ReturnType<typeof compareProfiles>;
  paths: PathComparison[];
  variants: VariantComparison[];
  files: { json: string; markdown: string; svg: string };
}

export class LabError extends Error {}

function sh(cmd: string, args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", input, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Refuses clearly when the lab cannot run here. */
export function labPreflight(): string[] {
  const problems: string[] = [];
  const root = typeof process.getuid !== "function" || process.getuid() === 0;
  if (!root) problems.push("edgetune lab needs root (it creates network namespaces and sets sysctls); run it with sudo");
  // Without root, the PATH that counts is the one the lab gets under sudo, whose secure_path
  // adds the sbin directories (haproxy, nginx, ethtool, sysctl live there): a user's own PATH
  // lacks them, and naming installed packages as missing sends the user to install them again.
  const path = root ? process.env.PATH : [process.env.PATH, "/usr/local/sbin", "/usr/sbin", "/sbin"].filter(Boolean).join(":");
  // /bin/sh by path: PATH is what is being checked.
  const found = (tool: string) => spawnSync("/bin/sh", ["-c", `command -v ${tool}`], { env: { ...process.env, PATH: path }, stdio: "ignore" }).status === 0;
  const missing = Object.entries(LAB_TOOLS).filter(([tool]) => !found(tool));
  if (missing.length) {
    const pkgs = [...new Set(missing.map(([, p]) => p))].join(" ");
    problems.push(`missing tools: ${missing.map(([t]) => t).join(", ")}; install them with: apt-get install -y ${pkgs}`);
  }
  return problems;
}

/**
 * The proxy the lab runs: the stack's proxy spec when it has one (its servers
 * must be the lab backend), else the lab default: HTTP on 80 to nginx and L4
 * on 5201 to iperf3 with splice.
 */
export function labProxySpec(plan: StackPlan, a: LabAddresses, t: LabTopology): ProxySpec {
  if (plan.proxy) return plan.proxy.spec;
  return {
    listeners: [
      { name: "http_in", mode: "http", port: t.httpPort, address: a.proxy, backend: "web" },
      { name: "l4_in", mode: "tcp", port: t.iperfPort, address: a.proxy, backend: "iperf", splice: "always" },
      { name: "churn", mode: "tcp", port: 81, address: a.proxy, backend: "web_tcp", splice: "off" },
      { name: "l4_copy", mode: "tcp", port: 444, address: a.proxy, backend: "iperf", splice: "off" },
    ],
    backends: [
      { name: "web", servers: [{ name: "nginx", address: a.backend, port: t.httpPort }] },
      { name: "iperf", servers: [{ name: "iperf3", address: a.backend, port: t.iperfPort }] },
      { name: "web_tcp", servers: [{ name: "nginx", address: a.backend, port: t.httpPort }] },
    ],
  };
}

interface Variant {
  label: string;
  profile: ResolvedProfile;
  tuneSh: string;
  haproxyCfg: string;
  /** A stack variant's scenarios; baseline and tuned run every selected one. */
  scenarios?: ScenarioName[];
  why?: string;
}

const CLK_TCK = 100;

export async function runLab(opts: LabOptions): Promise<LabReport> {
  const progress = opts.progress ?? (() => {});
  const problems = labPreflight();
  if (problems.length) throw new LabError(problems.join("\n"));
  const plan = loadStack(opts.stack, opts.root);
  const group = plan.nodeGroups.find((g) => g.target === "local") ?? plan.nodeGroups[0];
  const topology = opts.topology ?? DEFAULT_TOPOLOGY;
  const a = labAddresses(topology);
  const quick = opts.quick ?? false;
  const repeat = opts.repeat ?? (quick ? 1 : 3);
  const selected = (opts.scenarios ?? [...SCENARIO_NAMES]).map((n) => SCENARIOS[n]);
  const reportDir = resolve(opts.reportDir ?? mkdtempSync(join(tmpdir(), "edgetune-lab-")));
  const labDir = join(reportDir, "lab");
  mkdirSync(labDir, { recursive: true });

  const nofile = Number(sh("sh", ["-c", "ulimit -Hn"]).stdout.trim()) || 1024;
  const cpuCount = osCpus().length;
  const spec = labProxySpec(plan, a, topology);
  const wanted = selectVariants(plan, opts.variants);
  const variants: Variant[] = [
    { label: "baseline", profile: resolveProfile("baseline", { extends: "baseline" }) },
    { label: "tuned", profile: group.profile },
    ...wanted.map((v) => ({ label: v.name, profile: v.profile, scenarios: v.scenarios, ...(v.why ? { why: v.why } : {}) })),
  ].map((v) => {
    const tuneSh = join(labDir, `tune-${v.label}.sh`);
    const haproxyCfg = join(labDir, `haproxy-${v.label}.cfg`);
    writeFileSync(tuneSh, renderTuneSh(v.profile), { mode: 0o755 });
    // maxconn and maxpipes from the real fd limit: the lab machine's, not the profile's wish.
    const cfg = renderHaproxyConfig({ ...spec, runtimeDir: join(labDir, "haproxy-run") }, { profile: v.profile, cpus: cpuCount, nofileLimit: nofile });
    writeFileSync(haproxyCfg, cfg);
    return { ...v, tuneSh, haproxyCfg };
  });
  const labSh = join(labDir, "lab.sh");
  writeFileSync(labSh, renderLabScript(topology), { mode: 0o755 });
  writeFileSync(join(labDir, "nginx.conf"), renderBackendNginx(topology, labDir));
  for (const lua of ["wrk-report.lua", "wrk-paced.lua", "churn-client.js"]) copyFileSync(join(__dirname, "..", "components", "bench", lua), join(labDir, lua));

  const step = (...args: string[]) => {
    const r = sh("sh", [labSh, ...args]);
    if (r.code !== 0) throw new LabError(`lab.sh ${args[0]} failed (${r.code}): ${r.stderr.trim()}`);
    return r;
  };
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // The steps are synchronous; yielding to the event loop between them is what lets a
  // SIGINT/SIGTERM handler run at all.
  const checkInterrupt = async () => {
    await new Promise((res) => setImmediate(res));
    if (interrupted) throw new LabError("interrupted: cleaning up");
  };

  const results: BenchResult[] = [];
  const record = (r: number, label: string, res: BenchResult) => {
    results.push(res);
    progress(`lab: [${r + 1}/${repeat}] ${label.padEnd(8)} ${describe(res)}`);
  };
  try {
    progress(`lab: working in ${labDir}`);
    for (let r = 0; r < repeat; r++) {
      // Alternate the order so drift over time does not favour one profile (lab notes: ±20-30 % per hour).
      const [baseline, tuned, ...extra] = variants;
      const order = [...(r % 2 === 0 ? [baseline, tuned] : [tuned, baseline]), ...extra];
      for (const v of order) {
        const scenarios = v.scenarios ? selected.filter((sc) => v.scenarios!.includes(sc.name)) : selected;
        if (!scenarios.length) continue;
        // Fresh namespaces per profile: TIME_WAIT sockets and counters of one run must not
        // carry into the next (they would decide port-churn for whichever runs second).
        step("up");
        step("tune", v.tuneSh);
        step("proxy-start", v.haproxyCfg);
        waitForProxy(a, spec);
        await checkInterrupt();
        let maxRps: number | undefined;
        for (const sc of scenarios) {
          const port = sc.name === "port-churn" ? churnPort(spec) : sc.listener === "http" ? listenerPort(spec, "http") : listenerPort(spec, "tcp");
          for (const res of runScenario(sc, { host: a.proxy, port, label: v.label, run: r, quick, durationSeconds: opts.durationSeconds, labDir, a, maxRps, target: "proxy" })) {
            record(r, v.label, res);
            if (sc.name === "http-throughput" && res.rps) maxRps = Math.max(maxRps ?? 0, res.rps);
          }
          await checkInterrupt();
        }
        // Splice against copying through user space, same proxy, same profile.
        const copy = noSpliceListener(spec);
        const l4 = selected.find((sc) => sc.name === "l4-throughput");
        if (copy && l4 && v.label === "tuned") {
          for (const res of runScenario(l4, { host: a.proxy, port: copy.port, label: "no-splice", run: r, quick, durationSeconds: opts.durationSeconds, labDir, a, target: "proxy" })) record(r, "no-splice", res);
          await checkInterrupt();
        }
        step("down");
      }
      // The physical limit on this path: the same scenario without the proxy.
      const reference = selected.filter((s) => ["http-throughput", "l4-throughput", "conn-rate"].includes(s.name));
      if (reference.length) {
        step("up");
        for (const sc of reference) {
          const port = sc.listener === "http" ? topology.httpPort : topology.iperfPort;
          for (const res of runScenario(sc, { host: a.backendDirect, port, label: "direct", run: r, quick, durationSeconds: opts.durationSeconds, labDir, a, target: "direct" })) record(r, "direct", res);
          if (sc.name === "l4-throughput") {
            for (const res of runScenario(sc, { host: a.backend, port, label: "forward", run: r, quick, durationSeconds: opts.durationSeconds, labDir, a, target: "forward" })) record(r, "forward", res);
          }
          await checkInterrupt();
        }
        step("down");
      }
    }
  } finally {
    const down = sh("sh", [labSh, "down"]);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (down.code !== 0) progress(`lab: WARNING: teardown reported problems: ${down.stderr.trim()}`);
    else progress("lab: torn down (namespaces deleted, processes stopped, host sysctls restored)");
  }

  const comparisons = compareProfiles(results, "baseline", "tuned");
  const paths = pathComparisons(results);
  const variantResults = variantComparisons(results, variants.slice(2));
  const files = { json: join(reportDir, "results.json"), markdown: join(reportDir, "report.md"), svg: join(reportDir, "chart.svg") };
  const machine = {
    cpus: cpuCount,
    kernel: sh("uname", ["-r"]).stdout.trim(),
    haproxy: /version (\S+)/.exec(sh("haproxy", ["-v"]).stdout)?.[1] ?? "unknown",
    nofile,
  };
  const report: LabReport = { stack: opts.stack, machine, repeat, quick, results, comparisons, paths, variants: variantResults, files };
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.svg, renderSvgChart(results, { baseline: "baseline", tuned: "tuned", title: `edgetune lab — stack ${opts.stack}` }));
  writeFileSync(files.markdown, renderLabMarkdown(report));
  return report;
}

/**
 * The stack's lab variants to run: all when `names` is undefined, else those named, in
 * the stack's order. Throws a LabError naming the unknown ones and what is allowed.
 */
export function selectVariants(plan: StackPlan, names: readonly string[] | undefined): LabVariantPlan[] {
  const defined = plan.lab?.variants ?? [];
  const unknown = (names ?? []).filter((n) => !defined.some((v) => v.name === n));
  if (unknown.length) throw new LabError(`--variants ${unknown.join(",")}: not in the stack's lab.variants; allowed: ${[...defined.map((v) => v.name), "none"].join(", ")}`);
  return names ? defined.filter((v) => names.includes(v.name)) : defined;
}

function listenerPort(spec: ProxySpec, mode: "http" | "tcp"): number {
  const l = spec.listeners.find((x) => x.mode === mode);
  if (!l) throw new LabError(`the proxy spec has no ${mode} listener for the lab's ${mode === "http" ? "HTTP" : "L4"} scenarios`);
  return l.port;
}

/**
 * port-churn goes through the tcp listener named "churn" (to the HTTP backend): the client
 * closes first, so the proxy closes each backend connection first and its TIME_WAIT
 * sockets hold ephemeral ports — what ip_local_port_range and tcp_tw_reuse decide.
 */
function churnPort(spec: ProxySpec): number {
  return spec.listeners.find((l) => l.mode === "tcp" && l.name === "churn")?.port ?? listenerPort(spec, "tcp");
}

/** A tcp listener with splice off to the same backend as the spliced one: the no-splice comparison. */
function noSpliceListener(spec: ProxySpec): ProxySpec["listeners"][number] | undefined {
  const spliced = spec.listeners.find((l) => l.mode === "tcp" && l.splice !== "off" && l.name !== "churn");
  return spliced ? spec.listeners.find((l) => l.mode === "tcp" && l.splice === "off" && l.backend === spliced.backend) : undefined;
}

function waitForProxy(a: LabAddresses, spec: ProxySpec): void {
  const port = spec.healthPort ?? 8405;
  const ns = a.namespaces.client;
  for (let i = 0; i < 50; i++) {
    // The health endpoint binds serviceAddress (default all addresses), so the client reaches it on the proxy's address.
    if (sh("ip", ["netns", "exec", ns, "curl", "-fsS", "-o", "/dev/null", "--max-time", "1", `http://${a.proxy}:${port}/healthz`]).code === 0) return;
    sh("sleep", ["0.1"]);
  }
  throw new LabError(`HAProxy did not answer its health endpoint on ${a.proxy}:${port}`);
}

interface RunTarget {
  host: string;
  port: number;
  label: string;
  run: number;
  quick: boolean;
  durationSeconds?: number;
  labDir: string;
  a: LabAddresses;
  maxRps?: number;
  target: "proxy" | "direct" | "forward";
}

/** CPU seconds (user+sys) of every process in a namespace, from /proc/<pid>/stat. */
function namespaceCpuTicks(ns: string): number {
  const pids = sh("ip", ["netns", "pids", ns]).stdout.split("\n").filter(Boolean);
  let ticks = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited between the listing and the read
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[11], [12] = utime, stime (stat fields 14 and 15)
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks;
}

function runScenario(sc: Scenario, t: RunTarget): BenchResult[] {
  let rateRps: number | undefined;
  if (sc.rateFractionOfMax && sc.tool.local !== "tcp-churn") {
    const max = t.maxRps ?? probeMaxRps(t);
    rateRps = offeredRate(sc, max);
  }
  const invocations = scenarioInvocations(sc, { environment: "local", host: t.host, port: t.port, quick: t.quick, durationSeconds: t.durationSeconds, luaDir: t.labDir, rateRps });
  return invocations.map((inv) => runInvocation(sc, inv, t));
}

function probeMaxRps(t: RunTarget): number {
  const probe = scenarioInvocations(SCENARIOS["http-throughput"], { environment: "local", host: t.host, port: t.port, quick: true, durationSeconds: 2, luaDir: t.labDir });
  const r = runInvocation(SCENARIOS["http-throughput"], probe[0], { ...t, label: `${t.label}-probe` });
  return r.rps ?? 1000;
}

function runInvocation(sc: Scenario, inv: Invocation, t: RunTarget): BenchResult {
  const nsClient = t.a.namespaces.client;
  const nsProxy = t.a.namespaces.proxy;
  const history = join(t.labDir, "nstat-proxy.history");
  // Each namespace its own nstat history, or the deltas mix namespaces (lab notes).
  sh("ip", ["netns", "exec", nsProxy, "env", `NSTAT_HISTORY=${history}`, "nstat", "-n"]);
  const proxyBefore = t.target === "proxy" ? namespaceCpuTicks(nsProxy) : 0;
  // The tool's CPU: the wrapping shell's cutime+cstime after it waited for the tool.
  const wrapped = sh("ip", ["netns", "exec", nsClient, "sh", "-c", '"$@"; rc=$?; awk \'{ print "EDGETUNE_CHILD_TICKS", $16 + $17 }\' /proc/$$/stat; exit $rc', "sh", ...inv.argv]);
  const proxyAfter = t.target === "proxy" ? namespaceCpuTicks(nsProxy) : 0;
  // -z without -a: deltas since the `nstat -n` above, zeros included (-a would be absolute counts).
  const counters = parseNstat(sh("ip", ["netns", "exec", nsProxy, "env", `NSTAT_HISTORY=${history}`, "nstat", "-z"]).stdout);
  const ticks = Number(/EDGETUNE_CHILD_TICKS (\d+)/.exec(wrapped.stdout)?.[1] ?? NaN);
  const output = wrapped.stdout.replace(/^EDGETUNE_CHILD_TICKS.*$/m, "");
  const threads = inv.tool === "iperf3" ? 1 : Number(/^-t(\d+)$/.exec(inv.argv.find((x) => /^-t\d+$/.test(x)) ?? "-t1")?.[1] ?? 1);
  const usableCores = Math.min(threads, osCpus().length);
  const validity = {
    ...nstatValidity(counters),
    ...(Number.isFinite(ticks) ? { clientCpuPercent: (ticks / CLK_TCK / inv.durationSeconds / usableCores) * 100 } : {}),
    ...(t.target === "proxy" ? { proxyCpuPercent: ((proxyAfter - proxyBefore) / CLK_TCK / inv.durationSeconds) * 100 } : {}),
  };
  const ctx = { scenario: sc.name, profile: t.label, run: t.run * Math.max(1, sc.consecutiveRuns) + inv.run, target: `${t.target} ${t.host}:${t.port}`, concurrency: inv.concurrency, connectionClose: sc.connectionClose, validity };
  try {
    return parseToolOutput(inv.tool, output, ctx);
  } catch (e) {
    throw new LabError(`${sc.name} (${t.label}, ${inv.argv.join(" ")}) produced no result: ${(e as Error).message}\n${wrapped.stderr.slice(-500)}`);
  }
}

function describe(r: BenchResult): string {
  const rate = r.gbps !== undefined ? `${r.gbps.toFixed(2)} Gbit/s` : r.connsPerSecond !== undefined ? `${Math.round(r.connsPerSecond)} conn/s` : `${Math.round(r.rps ?? 0)} req/s`;
  const lat = r.latency ? ` p99 ${r.latency.p99Ms.toFixed(2)} ms` : "";
  const errs = Object.entries(r.errors).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(",");
  const drops = r.validity.listenOverflows ? ` overflows=${r.validity.listenOverflows}` : "";
  return `${r.scenario.padEnd(16)} c${String(r.concurrency ?? "").padEnd(5)} ${rate}${lat}${errs ? ` errors ${errs}` : ""}${drops}${r.validity.valid ? "" : " [invalid]"}`;
}

function rateOf(r: BenchResult): number | undefined {
  return r.gbps ?? r.connsPerSecond ?? r.rps;
}

/** proxy/direct and proxy/forward ratios of medians, per scenario and concurrency. */
export function pathComparisons(results: readonly BenchResult[]): PathComparison[] {
  const out: PathComparison[] = [];
  const keys = new Set(results.filter((r) => r.profile === "direct" || r.profile === "forward").map((r) => `${r.scenario}|${r.concurrency ?? ""}`));
  for (const key of keys) {
    const [scenario, c] = key.split("|");
    const pick = (label: string): { value?: number; clientBound: boolean } => {
      const all = results.filter((r) => r.scenario === scenario && `${r.concurrency ?? ""}` === c && r.profile === label);
      const valid = all.filter((r) => r.validity.valid);
      // The proxied runs count only when valid. A reference without the proxy is often limited
      // by its load generator (iperf3 is single-threaded) and then bounds the path's limit from
      // below: every run counts, and the ratio becomes an upper bound. Keeping only the
      // references' "valid" runs would keep the slow outliers (on 2 vCPUs the scheduler's
      // placement halves a run now and then, and a slow run is the one below 90 % client CPU)
      // and overstate the ratio.
      const reference = label !== "tuned" && label !== "no-splice";
      const use = reference ? all : valid;
      const v = use.map(rateOf).filter((x): x is number => x !== undefined);
      return { value: v.length ? median(v) : undefined, clientBound: reference && valid.length < all.length };
    };
    const tuned = pick("tuned");
    const direct = pick("direct");
    const forward = pick("forward");
    const copy = pick("no-splice");
    // CPU-s per GB = (CPU % / 100) × seconds / (Gbit/s × seconds / 8)
    const cpuPerGB = (label: string) => {
      const v = results
        .filter((r) => r.scenario === scenario && `${r.concurrency ?? ""}` === c && r.profile === label && r.gbps && r.validity.proxyCpuPercent !== undefined)
        .map((r) => r.validity.proxyCpuPercent! / 100 / (r.gbps! / 8));
      return v.length ? median(v) : undefined;
    };
    const cpu = scenario === "l4-throughput" ? { splice: cpuPerGB("tuned"), copy: cpuPerGB("no-splice") } : undefined;
    out.push({
      scenario: scenario as ScenarioName,
      ...(c ? { concurrency: Number(c) } : {}),
      ...(tuned.value !== undefined && direct.value ? { proxyOverDirect: tuned.value / direct.value } : {}),
      ...(tuned.value !== undefined && forward.value ? { proxyOverForward: tuned.value / forward.value } : {}),
      ...(direct.clientBound || forward.clientBound ? { referenceClientBound: true } : {}),
      ...(tuned.value !== undefined && copy.value ? { spliceOverCopy: tuned.value / copy.value } : {}),
      ...(cpu && (cpu.splice !== undefined || cpu.copy !== undefined) ? { proxyCpuSecondsPerGB: cpu } : {}),
    });
  }
  return out;
}

/** Each variant against the tuned profile, per scenario and concurrency it ran. */
export function variantComparisons(results: readonly BenchResult[], variants: readonly { label: string; why?: string }[]): VariantComparison[] {
  return variants.flatMap((v) =>
    compareProfiles(results, "tuned", v.label).map((c) => ({
      variant: v.label,
      ...(v.why ? { why: v.why } : {}),
      scenario: c.scenario,
      ...(c.concurrency !== undefined ? { concurrency: c.concurrency } : {}),
      metric: c.metric,
      tuned: c.baseline,
      value: c.tuned,
      ratio: c.ratio,
      spread: c.spread,
      ...(c.p99RatioTunedOverBaseline !== undefined ? { p99RatioOverTuned: c.p99RatioTunedOverBaseline } : {}),
      verdict: c.ratio <= 1 / NOISE_FACTOR ? "hurts" : c.ratio >= NOISE_FACTOR ? "helps" : "within noise",
    })),
  );
}

function variantLine(v: VariantComparison): string {
  const p99 = v.p99RatioOverTuned !== undefined ? `, p99 × ${v.p99RatioOverTuned.toFixed(2)}` : "";
  return `${v.variant} ${v.scenario}${v.concurrency ? ` c${v.concurrency}` : ""}: ${v.ratio.toFixed(2)} × tuned (spread ${(v.spread * 100).toFixed(0)} %${p99}) → ${v.verdict}`;
}

function renderLabMarkdown(report: LabReport): string {
  const m = report.machine;
  const lines = [
    renderMarkdown(report.results, { title: `edgetune lab — stack \`${report.stack}\``, chartPath: "chart.svg" }),
    "",
    `Machine: ${m.cpus} CPUs, Linux ${m.kernel}, HAProxy ${m.haproxy}, nofile ${m.nofile}; ${report.repeat} repeat(s)${report.quick ? ", quick mode (figures for smoke testing, not conclusions)" : ""}.`,
    "",
    "| scenario | conc. | proxy / direct | proxy / kernel forwarding | splice / no splice | HAProxy CPU-s per GB (splice / no splice) |",
    "|---|---|---|---|---|---|",
    ...report.paths.map(
      (p) =>
        `| ${p.scenario} | ${p.concurrency ?? ""} | ${p.proxyOverDirect?.toFixed(2) ?? "–"}${p.referenceClientBound ? " ≤" : ""} | ${p.proxyOverForward?.toFixed(2) ?? "–"}${p.referenceClientBound ? " ≤" : ""} | ${p.spliceOverCopy?.toFixed(2) ?? "–"} | ${p.proxyCpuSecondsPerGB ? `${p.proxyCpuSecondsPerGB.splice?.toFixed(2) ?? "–"} / ${p.proxyCpuSecondsPerGB.copy?.toFixed(2) ?? "–"}` : "–"} |`,
    ),
    "",
    "≤: the reference run without the proxy was limited by its load generator (client CPU ≥ 90 %), so the true ratio is at most this.",
    "",
    "Spread is the relative spread of the repeats; differences below ~30 % on rates are within this machine's noise unless drop or error counters differ (lab notes).",
  ];
  if (report.variants.length) {
    lines.push("", "### Variants: the tuned profile with one setting changed", "", "| variant | why | scenario | conc. | variant / tuned | spread | p99 variant / tuned | verdict |", "|---|---|---|---|---|---|---|---|");
    for (const v of report.variants) lines.push(`| ${v.variant} | ${v.why ?? ""} | ${v.scenario} | ${v.concurrency ?? ""} | ${v.ratio.toFixed(2)} | ${(v.spread * 100).toFixed(0)} % | ${v.p99RatioOverTuned?.toFixed(2) ?? "–"} | ${v.verdict} |`);
    lines.push("", `Verdict: a ratio beyond ${NOISE_FACTOR} either way; anything closer is within this machine's noise.`);
  }
  return `${lines.join("\n")}\n`;
}

export function renderLabTable(report: LabReport): string {
  const lines = [renderTable(report.results)];
  const cmp = report.comparisons;
  if (cmp.length) lines.push("tuned / baseline (medians of valid runs):", ...cmp.map((c) => `  ${c.scenario.padEnd(16)} ${c.concurrency ? `c${c.concurrency}`.padEnd(7) : "".padEnd(7)} ${c.ratio.toFixed(2)}  (spread ${(c.spread * 100).toFixed(0)} %${c.p99RatioTunedOverBaseline !== undefined ? `, p99 ratio ${c.p99RatioTunedOverBaseline.toFixed(2)}` : ""})`), "");
  if (report.paths.length) lines.push("proxy (tuned) / path without the proxy:", ...report.paths.map((p) => `  ${p.scenario.padEnd(16)} ${p.concurrency ? `c${p.concurrency}`.padEnd(7) : "".padEnd(7)} direct ${p.proxyOverDirect?.toFixed(2) ?? "–"}${p.proxyOverForward !== undefined ? `  kernel forwarding ${p.proxyOverForward.toFixed(2)}` : ""}${p.referenceClientBound ? "  (reference client-bound: upper bound)" : ""}${p.spliceOverCopy !== undefined ? `  splice/no-splice ${p.spliceOverCopy.toFixed(2)}` : ""}${p.proxyCpuSecondsPerGB ? `  HAProxy CPU-s/GB ${p.proxyCpuSecondsPerGB.splice?.toFixed(2) ?? "–"} vs ${p.proxyCpuSecondsPerGB.copy?.toFixed(2) ?? "–"}` : ""}`), "");
  if (report.variants.length) lines.push("variants (the tuned profile with one setting changed) / tuned:", ...report.variants.map((v) => `  ${variantLine(v)}`), "");
  return lines.join("\n");
}
