/**
 * `edgetune lab`: the local tuned-vs-baseline lab. Builds three network
 * namespaces (client ↔ proxy ↔ backend, plus a direct client ↔ backend link),
 * runs every scenario against HAProxy for the `baseline` profile and for the
 * stack's profile, alternating, repeated, plus the direct and kernel-forwarded
 * paths as the physical limit, and the stack's lab.variants (one setting
 * changed) against tuned, and reports medians, spread and ratios.
 *
 * The steps are lab.sh's (components/lab/lab.sh, rendered by topology.ts): the same script the
 * Pulumi `local` target runs. This module only sequences them and measures.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus as osCpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { nstatValidity, parseNstat, parseToolOutput } from "../components/bench/parsers";
import {
  compareProfiles,
  SCENARIO_NAMES,
  type BenchResult,
  type LabScenarioName,
  type ProofScenarioName,
  type ScenarioName,
} from "../components/bench/result";
import { pathComparisons, renderLabMarkdown, variantComparisons, type LabReport } from "../components/lab/analysis";
import { renderSvgChart } from "../components/bench/report";
import { proofComparisons } from "../components/lab/proof-analysis";
import { offeredRate, scenarioInvocations, SCENARIOS, type Invocation, type Scenario } from "../components/bench/scenarios";
import { proxySpecSchema, type ProxySpec } from "../components/proxy/haproxy";
import { renderLabHaproxyConfig } from "../components/lab/lab-steps";
import { readMachineFacts } from "../loader/machine-facts";
import {
  DEFAULT_TOPOLOGY,
  labAddresses,
  renderBackendNginx,
  renderLabScript,
  type LabAddresses,
  type LabTopology,
} from "../components/lab/topology";
import { resolveProfile } from "../components/tuning/profile";
import { renderTuneSh } from "../components/tuning/render";
import type { ResolvedProfile } from "../components/tuning/types";
import { loadStack, type LabVariantPlan, type StackPlan } from "../loader/stack-config";
import { cpuSnapshot, runCpu, startPlacementSampler } from "./accounting";
import {
  BASELINE_PORT_OFFSET,
  NGINX_STREAM_MODULE,
  baselineRuntimeDir,
  haproxyExtra,
  nginxExtra,
  PEER_LABELS,
  PEER_PORTS,
  peerTemplate,
  renderBaselineHaproxy,
  renderNginxPeer,
  renderStockHaproxy,
  type ExtraProxy,
  type PeerLabel,
} from "./peers";
import { runSlices, sliceArms, slicePlan, sliceScenarios } from "./slices";
import { cpuSecondsPer1kRequests, cpuSecondsPerGB } from "../components/lab/stats";
import { parseRunRecords, type RunRecord } from "../components/lab/run-record";
import { analyzeSlices, appendIntervalPanel, markSlowMode } from "../components/lab/slice-analysis";
import { PROOFS, type ProofContext, type ProofScenario } from "./proofs";
import { checkKernel } from "./kernel-checks";
import type { KernelChecks } from "../components/lab/settings-table";
import { renderSettingsProof } from "./settings-proof";

/** Tool → the Debian package that provides it, for a clear refusal. */
export const LAB_TOOLS: Record<string, string> = {
  ip: "iproute2",
  nstat: "iproute2",
  ethtool: "ethtool",
  haproxy: "haproxy",
  nginx: "nginx",
  iperf3: "iperf3",
  wrk: "wrk",
  curl: "curl",
  sysctl: "procps",
};

export interface LabOptions {
  stack: string;
  root: string;
  /** Short smoke run (tests): quick durations and concurrency, one repeat unless set. */
  quick?: boolean;
  /** Default: every scenario, and every proof scenario (with --quick, those marked inQuick). */
  scenarios?: LabScenarioName[];
  /**
   * Repeats of the scenarios and variants that need fresh namespaces (conn-burst, port-churn,
   * the stack's variants); the others run as paired slices (sliceRounds). @default 2 (1 with quick)
   */
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
  /**
   * Where the slices' processes run. "none": the scheduler decides. "proxy-core": every process
   * of the proxy namespace on the last CPU, the load generator and the backend on the others —
   * as on a real proxy node, whose clients are elsewhere. Measured on the 2-vCPU VM (6 × 3 s,
   * tuned/baseline, docs/lab-peers-and-intervals.md): intervals ±7/±12/±12 % (http, l4 P1, P4)
   * against ±9/±26/±8 % unpinned, and fewer slow-mode slices. @default "proxy-core"
   */
  placement?: Placement;
  /** Paired-slice rounds (default 10, quick 3) and seconds per slice (default 3, quick 1). */
  sliceRounds?: number;
  sliceSeconds?: number;
  /** Peers run beside edgetune's HAProxy in the slices; default both, [] for none. */
  peers?: PeerLabel[];
  /**
   * The proxy image's exported root filesystem (`scripts/build-images.sh --rootfs DIR` writes
   * DIR/proxy): HAProxy runs from it, chrooted, instead of the host's, so what is measured is what ships.
   */
  proxyFromImage?: string;
}

export class LabError extends Error {}

/**
 * Runs cmd with args directly (no shell between), to completion or timeoutMs (then killed, code
 * 124, like timeout(1)): exit code and output.
 */
function runProcess(
  cmd: string,
  args: string[],
  input?: string,
  env?: NodeJS.ProcessEnv,
  timeoutMs?: number,
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", input, maxBuffer: 64 << 20, env, timeout: timeoutMs, killSignal: "SIGKILL" });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT";
  if (r.error && !timedOut) throw r.error;
  return { code: timedOut ? 124 : (r.status ?? 128), stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** The proxy image's root filesystem for --proxy-from-image: an absolute path holding usr/sbin/haproxy. */
export function checkProxyRootfs(dir: string): string {
  const abs = resolve(dir);
  if (!existsSync(join(abs, "usr", "sbin", "haproxy")))
    throw new LabError(
      `--proxy-from-image ${dir}: no usr/sbin/haproxy there; allowed: the proxy image's exported root filesystem (scripts/build-images.sh --rootfs DIR writes DIR/proxy)`,
    );
  return abs;
}

/** `haproxy -v`'s first line, run inside the root filesystem (no namespace needed). */
function proxyRootfsVersion(rootfs: string): string {
  const r = runProcess("chroot", [rootfs, "/usr/sbin/haproxy", "-v"]);
  return r.stdout.split("\n")[0] || `haproxy -v failed (${r.code}): ${r.stderr.trim()}`;
}

/** Refuses clearly when the lab cannot run here. */
export function labPreflight(extraTools: Record<string, string> = {}): string[] {
  const problems: string[] = [];
  const root = typeof process.getuid !== "function" || process.getuid() === 0;
  if (!root) problems.push("edgetune lab needs root (it creates network namespaces and sets sysctls); run it with sudo");
  // Without root, the PATH that counts is the one the lab gets under sudo, whose secure_path
  // adds the sbin directories (haproxy, nginx, ethtool, sysctl live there): a user's own PATH
  // lacks them, and naming installed packages as missing sends the user to install them again.
  const path = root ? process.env.PATH : [process.env.PATH, "/usr/local/sbin", "/usr/sbin", "/sbin"].filter(Boolean).join(":");
  // /bin/sh by path: PATH is what is being checked.
  const found = (tool: string) =>
    spawnSync("/bin/sh", ["-c", `command -v ${tool}`], { env: { ...process.env, PATH: path }, stdio: "ignore" }).status === 0;
  const missing = Object.entries({ ...LAB_TOOLS, ...extraTools }).filter(([tool]) => !found(tool));
  // The NGINX peer's L4 listener needs the stream module, a package of its own on Debian.
  if (!existsSync(NGINX_STREAM_MODULE)) missing.push(["nginx stream module", "libnginx-mod-stream"]);
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
  const started = Date.now();
  const quick = opts.quick ?? false;
  const proofs = selectProofs(opts.scenarios);
  const problems = labPreflight(Object.assign({}, ...proofs.map((p) => p.tools ?? {})));
  if (problems.length) throw new LabError(problems.join("\n"));
  const plan = loadStack(opts.stack, opts.root);
  const group = plan.nodeGroups.find((g) => g.target === "local") ?? plan.nodeGroups[0];
  const topology = opts.topology ?? DEFAULT_TOPOLOGY;
  const a = labAddresses(topology);
  // 2, not 3: the paired slices took over the scenarios whose rates need many samples, and a
  // default run must stay under 25 minutes on 2 vCPUs.
  const repeat = opts.repeat ?? (quick ? 1 : 2);
  const selected = (opts.scenarios ?? [...SCENARIO_NAMES])
    .filter((n): n is ScenarioName => (SCENARIO_NAMES as readonly string[]).includes(n))
    .map((n) => SCENARIOS[n]);
  // Scenarios the paired slices run (lab/slices.ts); the rest (conn-burst, port-churn) need fresh
  // namespaces per profile, as do the variants, and keep the repeated runs below.
  const sliced = sliceScenarios(selected);
  const repeated = selected.filter((sc) => !sliced.includes(sc));
  const plan_ = slicePlan(quick, { rounds: opts.sliceRounds, sliceSeconds: opts.sliceSeconds });
  const peers = opts.peers ?? [...PEER_LABELS];
  const reportDir = resolve(opts.reportDir ?? mkdtempSync(join(tmpdir(), "edgetune-lab-")));
  const labDir = join(reportDir, "lab");
  mkdirSync(labDir, { recursive: true });

  const proxyRootfs = opts.proxyFromImage === undefined ? undefined : checkProxyRootfs(opts.proxyFromImage);
  if (proxyRootfs)
    opts.progress?.(`lab: HAProxy from the proxy image's root filesystem ${proxyRootfs}: ${proxyRootfsVersion(proxyRootfs)}`);
  const facts = readMachineFacts();
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
    writeFileSync(haproxyCfg, renderLabHaproxyConfig(spec, v.profile, facts, topology));
    return { ...v, tuneSh, haproxyCfg };
  });
  const labSh = join(labDir, "lab.sh");
  writeFileSync(labSh, renderLabScript(topology), { mode: 0o755 });
  writeFileSync(join(labDir, "nginx.conf"), renderBackendNginx(topology, labDir));
  for (const lua of ["wrk-report.lua", "wrk-paced.lua", "churn-client.js"])
    copyFileSync(join(__dirname, "..", "components", "bench", lua), join(labDir, lua));

  const stepEnv = proxyRootfs ? { ...process.env, PROXY_ROOTFS: proxyRootfs } : undefined;
  const step = (...args: string[]) => {
    const r = runProcess("sh", [labSh, ...args], undefined, stepEnv);
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
  const extras: ExtraProxy[] = [];
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
      /** Runs a scenario against one path and records every result under `label`. */
      const measure = (sc: Scenario, label: string, target: RunTarget["target"], host: string, port: number, maxRps?: number) => {
        const results = runScenario(sc, {
          host,
          port,
          label,
          run: r,
          quick,
          durationSeconds: opts.durationSeconds,
          labDir,
          a,
          maxRps,
          target,
        });
        for (const res of results) record(r, label, res);
        return results;
      };
      for (const v of order) {
        const scenarios = v.scenarios ? selected.filter((sc) => v.scenarios!.includes(sc.name)) : repeated;
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
          const port =
            sc.name === "port-churn" ? churnPort(spec) : sc.listener === "http" ? listenerPort(spec, "http") : listenerPort(spec, "tcp");
          for (const res of measure(sc, v.label, "proxy", a.proxy, port, maxRps)) {
            if (sc.name === "http-throughput" && res.rps) maxRps = Math.max(maxRps ?? 0, res.rps);
          }
          await checkInterrupt();
        }
        step("down");
      }
      // The physical limit on this path: the same scenario without the proxy (the slices measure
      // it for their scenarios).
      const reference = selected.filter((s) => ["http-throughput", "l4-throughput", "conn-rate"].includes(s.name) && !sliced.includes(s));
      if (reference.length) {
        step("up");
        for (const sc of reference) {
          const port = sc.listener === "http" ? topology.httpPort : topology.iperfPort;
          measure(sc, "direct", "direct", a.backendDirect, port);
          if (sc.name === "l4-throughput") measure(sc, "forward", "forward", a.backend, port);
          await checkInterrupt();
        }
        step("down");
      }
    }
    if (sliced.length) {
      const [baseline, tuned] = variants;
      progress(`lab: paired slices: ${sliced.map((s) => s.name).join(", ")}, ${plan_.rounds} rounds × ${plan_.sliceSeconds} s per arm`);
      step("up");
      let current: "baseline" | "tuned" | undefined;
      let switches = 0;
      let switchMs = 0;
      const useProfile = (p: "baseline" | "tuned") => {
        if (current === p) return;
        const t0 = Date.now();
        if (current) step("untune");
        step("tune", p === "tuned" ? tuned.tuneSh : baseline.tuneSh);
        current = p;
        switches++;
        switchMs += Date.now() - t0;
      };
      // Each HAProxy starts under its own profile: the listen backlog is capped by somaxconn when it listens.
      useProfile("baseline");
      mkdirSync(baselineRuntimeDir(topology), { recursive: true });
      const baselineProxy = haproxyExtra(
        "baseline",
        labSh,
        join(labDir, "baseline-proxy"),
        renderBaselineHaproxy(spec, baseline.profile, facts, topology),
        stepEnv,
      );
      extras.push(baselineProxy);
      baselineProxy.start();
      const baselinePorts = {
        http: listenerPort(spec, "http") + BASELINE_PORT_OFFSET,
        l4: listenerPort(spec, "tcp", true) + BASELINE_PORT_OFFSET,
      };
      waitForHttp(a, baselinePorts.http);
      useProfile("tuned");
      step("proxy-start", tuned.haproxyCfg);
      waitForProxy(a, spec);
      for (const peer of peers) {
        const x =
          peer === "nginx"
            ? nginxExtra(
                a.namespaces.proxy,
                join(labDir, "nginx-peer"),
                renderNginxPeer(peerTemplate("nginx.conf"), a, topology, { nofile: facts.nofileLimit, dir: join(labDir, "nginx-peer") }),
              )
            : haproxyExtra(
                peer,
                labSh,
                join(labDir, "haproxy-stock"),
                renderStockHaproxy(peerTemplate("haproxy-stock.cfg"), a, topology),
                stepEnv,
              );
        extras.push(x);
        x.start();
        waitForHttp(a, PEER_PORTS[peer].http);
      }
      const clientCpus = applyPlacement(opts.placement ?? "proxy-core", a, facts.cpus);
      if (clientCpus)
        progress(
          `lab: placement ${opts.placement ?? "proxy-core"}: proxy namespace on CPU ${facts.cpus - 1}, client and backend on ${clientCpus}`,
        );
      await checkInterrupt();
      const arms = sliceArms({
        a,
        t: topology,
        tunedPorts: { http: listenerPort(spec, "http"), l4: listenerPort(spec, "tcp", true) },
        baselinePorts,
        peers,
        // Splice against copying through user space, same proxy, same profile.
        noSplicePort: noSpliceListener(spec)?.port,
      });
      await runSlices({
        plan: plan_,
        arms,
        scenarios: sliced,
        quick,
        labDir,
        a,
        useProfile,
        run: (sc, t) => runScenario(sc, clientCpus ? { ...t, clientCpus } : t),
        record: (label, res) => {
          results.push(res);
          progress(`lab: [slice ${(res.run ?? 0) + 1}/${plan_.rounds}] ${label.padEnd(13)} ${describe(res)}`);
        },
        checkInterrupt,
        progress,
      });
      progress(`lab: ${switches} profile switches (tune.sh restore + apply) took ${(switchMs / 1000).toFixed(1)} s in all`);
      for (const x of extras.splice(0)) x.stop();
      step("down");
    }
    if (proofs.length) {
      const [baseline, tuned] = variants;
      await runProofPhase(proofs, [baseline, tuned], {
        // Counters decide a proof, not a rate's spread: one run per profile unless asked for more.
        repeat: opts.repeat ?? 1,
        quick,
        durationSeconds: opts.durationSeconds,
        labDir,
        a,
        topology,
        spec,
        step,
        stepEnv,
        progress,
        record: (r, label, res) => record(r, label, res),
        checkInterrupt,
      });
    }
  } finally {
    for (const x of extras.splice(0)) x.stop();
    const down = runProcess("sh", [labSh, "down"]);
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
    cpus: facts.cpus,
    kernel: runProcess("uname", ["-r"]).stdout.trim(),
    haproxy: /version (\S+)/.exec(runProcess("haproxy", ["-v"]).stdout)?.[1] ?? "unknown",
    nofile: facts.nofileLimit,
  };
  const proofResults = proofComparisons(results);
  // The settings table's reasons; a failed check must not cost the run's results.
  let kernelChecks: KernelChecks | undefined;
  try {
    kernelChecks = checkKernel();
  } catch (e) {
    progress(`lab: WARNING: kernel checks failed, the settings table says so: ${(e as Error).message}`);
  }
  const measurements = parseRunRecords(results.map((r, i) => ({ result: i, ...(runMeasurements.get(r) ?? {}) })));
  markSlowMode(results, measurements);
  const slices = sliced.length ? { ...analyzeSlices(results, measurements, plan_), placement: opts.placement ?? "proxy-core" } : undefined;
  const report: LabReport = {
    stack: opts.stack,
    machine,
    repeat,
    quick,
    results,
    comparisons,
    paths,
    variants: variantResults,
    ...(proofResults.length ? { proofs: proofResults } : {}),
    files,
    ...(kernelChecks ? { kernelChecks } : {}),
    measurements,
    ...(slices ? { slices } : {}),
    wallSeconds: Math.round((Date.now() - started) / 1000),
  };
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  const chart = renderSvgChart(results, { baseline: "baseline", tuned: "tuned", title: `edgetune lab — stack ${opts.stack}` });
  writeFileSync(files.svg, slices ? appendIntervalPanel(chart, slices) : chart);
  writeFileSync(files.markdown, `${renderLabMarkdown(report)}\n${renderSettingsProof(report, kernelChecks, "this run")}`);
  return report;
}

/**
 * The proof scenarios a run includes: those named in `scenarios`, in registry order. A run that
 * names none has none: together they take ~10 minutes (dead-peer alone waits 135 s per profile),
 * so they are their own run (`edgetune lab --proofs`), keeping the default run under 25 minutes.
 */
export function selectProofs(scenarios: readonly string[] | undefined): ProofScenario[] {
  return scenarios ? Object.values(PROOFS).filter((p) => scenarios.includes(p.name)) : [];
}

/** Every proof scenario's name, for `--proofs`: with --quick those marked inQuick (dead-peer is not). */
export function proofScenarioNames(quick: boolean): ProofScenarioName[] {
  return Object.values(PROOFS)
    .filter((p) => !quick || p.inQuick)
    .map((p) => p.name);
}

interface ProofPhaseOptions {
  repeat: number;
  quick: boolean;
  durationSeconds?: number;
  labDir: string;
  a: LabAddresses;
  topology: LabTopology;
  spec: ProxySpec;
  step: (...args: string[]) => { code: number; stdout: string; stderr: string };
  stepEnv?: NodeJS.ProcessEnv;
  progress: (line: string) => void;
  record: (run: number, label: string, res: BenchResult) => void;
  checkInterrupt: () => Promise<void>;
}

/**
 * Each proof scenario against baseline and tuned, alternating which goes first per repetition,
 * each in freshly created namespaces (a proof's leftovers — held sockets, TIME_WAIT, conntrack
 * — must not decide the next one's figures).
 */
async function runProofPhase(proofs: ProofScenario[], profiles: Variant[], o: ProofPhaseOptions): Promise<void> {
  for (let r = 0; r < o.repeat; r++) {
    const order = r % 2 === 0 ? profiles : [...profiles].reverse();
    for (const proof of proofs) {
      for (const v of order) {
        o.step("up");
        o.step("tune", v.tuneSh);
        if (!proof.startsProxy) {
          o.step("proxy-start", v.haproxyCfg);
          waitForProxy(o.a, o.spec);
        }
        await o.checkInterrupt();
        const ctx: ProofContext = {
          label: v.label,
          profile: v.profile,
          run: r,
          quick: o.quick,
          durationSeconds: o.durationSeconds,
          labDir: o.labDir,
          a: o.a,
          topology: o.topology,
          spec: o.spec,
          haproxyCfg: v.haproxyCfg,
          tuneSh: v.tuneSh,
          step: o.step,
          exec: (ns, argv, opts) => execInNamespace(ns, argv, opts, o.stepEnv),
          progress: o.progress,
        };
        let results: BenchResult[];
        try {
          results = proof.run(ctx);
        } catch (e) {
          // A proof's own failure (its tool, its parser) ends the lab as a lab error: torn down, named, no stack trace.
          if (e instanceof LabError) throw e;
          throw new LabError(`${proof.name} (${v.label}): ${(e as Error).message}`);
        }
        for (const res of results) o.record(r, v.label, res);
        o.step("down");
        await o.checkInterrupt();
      }
    }
  }
}

/** argv in namespace ns, no shell between; killed after timeoutMs (code 124, like timeout(1)). */
function execInNamespace(
  ns: string,
  argv: string[],
  opts: { timeoutMs?: number; input?: string } | undefined,
  env: NodeJS.ProcessEnv | undefined,
): { code: number; stdout: string; stderr: string } {
  return runProcess("ip", ["netns", "exec", ns, ...argv], opts?.input, env, opts?.timeoutMs);
}

/**
 * The stack's lab variants to run: all when `names` is undefined, else those named, in
 * the stack's order. Throws a LabError naming the unknown ones and what is allowed.
 */
export function selectVariants(plan: StackPlan, names: readonly string[] | undefined): LabVariantPlan[] {
  const defined = plan.lab?.variants ?? [];
  const unknown = (names ?? []).filter((n) => !defined.some((v) => v.name === n));
  if (unknown.length)
    throw new LabError(
      `--variants ${unknown.join(",")}: not in the stack's lab.variants; allowed: ${[...defined.map((v) => v.name), "none"].join(", ")}`,
    );
  return names ? defined.filter((v) => names.includes(v.name)) : defined;
}

/** The first listener of a mode; `spliced`: the L4 scenarios' listener (not port-churn's, not the copying one). */
function listenerPort(spec: ProxySpec, mode: "http" | "tcp", spliced = false): number {
  const l =
    (spliced ? spec.listeners.find((x) => x.mode === mode && x.name !== "churn" && x.splice !== "off") : undefined) ??
    spec.listeners.find((x) => x.mode === mode);
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
  const port = proxySpecSchema.parse(spec).healthPort;
  const ns = a.namespaces.client;
  for (let i = 0; i < 50; i++) {
    // The health endpoint binds the proxy namespace's address (management.address hostIP) and answers
    // private sources: the client (10.x) reaches it there.
    if (
      runProcess("ip", ["netns", "exec", ns, "curl", "-fsS", "-o", "/dev/null", "--max-time", "1", `http://${a.proxy}:${port}/healthz`])
        .code === 0
    )
      return;
    runProcess("sleep", ["0.1"]);
  }
  throw new LabError(`HAProxy did not answer its health endpoint on ${a.proxy}:${port}`);
}

export const PLACEMENTS = ["none", "proxy-core"] as const;
export type Placement = (typeof PLACEMENTS)[number];

/**
 * Pins the running processes of a placement (every thread: taskset -a) and returns the load
 * generator's CPU list, or undefined when the scheduler decides.
 */
function applyPlacement(p: Placement, a: LabAddresses, cpus: number): string | undefined {
  if (p === "none" || cpus < 2) return undefined;
  const proxyCpu = String(cpus - 1);
  const rest = cpus === 2 ? "0" : `0-${cpus - 2}`;
  const pin = (ns: string, list: string) => {
    for (const pid of runProcess("ip", ["netns", "pids", ns]).stdout.split("\n").filter(Boolean)) {
      const r = runProcess("taskset", ["-a", "-p", "-c", list, pid]);
      if (r.code !== 0) throw new LabError(`taskset -a -p -c ${list} ${pid} failed: ${r.stderr.trim()}`);
    }
  };
  pin(a.namespaces.proxy, proxyCpu);
  pin(a.namespaces.backend, rest);
  return rest;
}

/** Waits until the proxy namespace answers HTTP on `port` (a peer's or the baseline's listener). */
function waitForHttp(a: LabAddresses, port: number): void {
  for (let i = 0; i < 50; i++) {
    if (
      runProcess("ip", [
        "netns",
        "exec",
        a.namespaces.client,
        "curl",
        "-fsS",
        "-o",
        "/dev/null",
        "--max-time",
        "1",
        `http://${a.proxy}:${port}/`,
      ]).code === 0
    )
      return;
    runProcess("sleep", ["0.1"]);
  }
  throw new LabError(`nothing answered HTTP on ${a.proxy}:${port} in the proxy namespace`);
}

export interface RunTarget {
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
  /** The paired-slice round this run belongs to (lab/slices.ts). */
  slice?: number;
  /** taskset CPU list for the load generator (a placement under test). */
  clientCpus?: string;
}

/**
 * What runInvocation measured beside each result (CPU, steal, placement), keyed by the result
 * object: runLab turns it into results.json's `measurements`.
 */
export const runMeasurements = new WeakMap<BenchResult, Omit<RunRecord, "result">>();

/** CPU seconds (user+sys) of every process in a namespace, from /proc/<pid>/stat. */
function namespaceCpuTicks(ns: string): number {
  const pids = runProcess("ip", ["netns", "pids", ns]).stdout.split("\n").filter(Boolean);
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

export function runScenario(sc: Scenario, t: RunTarget): BenchResult[] {
  let rateRps: number | undefined;
  if (sc.rateFractionOfMax && sc.tool.local !== "tcp-churn") {
    const max = t.maxRps ?? probeMaxRps(t);
    rateRps = offeredRate(sc, max);
  }
  const invocations = scenarioInvocations(sc, {
    environment: "local",
    host: t.host,
    port: t.port,
    quick: t.quick,
    durationSeconds: t.durationSeconds,
    luaDir: t.labDir,
    rateRps,
  });
  return invocations.map((inv) => runInvocation(sc, inv, t));
}

function probeMaxRps(t: RunTarget): number {
  const probe = scenarioInvocations(SCENARIOS["http-throughput"], {
    environment: "local",
    host: t.host,
    port: t.port,
    quick: true,
    durationSeconds: 2,
    luaDir: t.labDir,
  });
  const r = runInvocation(SCENARIOS["http-throughput"], probe[0], { ...t, label: `${t.label}-probe` });
  return r.rps ?? 1000;
}

function runInvocation(sc: Scenario, inv: Invocation, t: RunTarget): BenchResult {
  const nsClient = t.a.namespaces.client;
  const nsProxy = t.a.namespaces.proxy;
  const history = join(t.labDir, "nstat-proxy.history");
  // Each namespace its own nstat history, or the deltas mix namespaces (lab notes).
  runProcess("ip", ["netns", "exec", nsProxy, "env", `NSTAT_HISTORY=${history}`, "nstat", "-n"]);
  const proxyBefore = t.target === "proxy" ? namespaceCpuTicks(nsProxy) : 0;
  const names = { client: nsClient, proxy: nsProxy, backend: t.a.namespaces.backend };
  const allNs = [names.client, names.proxy, names.backend];
  const sampler = startPlacementSampler(allNs, inv.durationSeconds / 2, join(t.labDir, "placement.sample"));
  const cpuBefore = cpuSnapshot(allNs);
  // The tool's CPU: the wrapping shell's cutime+cstime after it waited for the tool.
  const wrapped = runProcess("ip", [
    "netns",
    "exec",
    nsClient,
    "sh",
    "-c",
    '"$@"; rc=$?; awk \'{ print "EDGETUNE_CHILD_TICKS", $16 + $17 }\' /proc/$$/stat; exit $rc',
    "sh",
    ...(t.clientCpus ? ["taskset", "-c", t.clientCpus] : []),
    ...inv.argv,
  ]);
  const cpuAfter = cpuSnapshot(allNs);
  const proxyAfter = t.target === "proxy" ? namespaceCpuTicks(nsProxy) : 0;
  const placement = sampler.collect();
  // -z without -a: deltas since the `nstat -n` above, zeros included (-a would be absolute counts).
  const counters = parseNstat(runProcess("ip", ["netns", "exec", nsProxy, "env", `NSTAT_HISTORY=${history}`, "nstat", "-z"]).stdout);
  const ticks = Number(/EDGETUNE_CHILD_TICKS (\d+)/.exec(wrapped.stdout)?.[1] ?? NaN);
  const output = wrapped.stdout.replace(/^EDGETUNE_CHILD_TICKS.*$/m, "");
  const threads = inv.tool === "iperf3" ? 1 : Number(/^-t(\d+)$/.exec(inv.argv.find((x) => /^-t\d+$/.test(x)) ?? "-t1")?.[1] ?? 1);
  const usableCores = Math.min(threads, osCpus().length);
  const validity = {
    ...nstatValidity(counters),
    ...(Number.isFinite(ticks) ? { clientCpuPercent: (ticks / CLK_TCK / inv.durationSeconds / usableCores) * 100 } : {}),
    ...(t.target === "proxy" ? { proxyCpuPercent: ((proxyAfter - proxyBefore) / CLK_TCK / inv.durationSeconds) * 100 } : {}),
  };
  const ctx = {
    scenario: sc.name,
    profile: t.label,
    run: t.run * Math.max(1, sc.consecutiveRuns) + inv.run,
    target: `${t.target} ${t.host}:${t.port}`,
    concurrency: inv.concurrency,
    connectionClose: sc.connectionClose,
    validity,
  };
  try {
    const result = parseToolOutput(inv.tool, output, ctx);
    const cpu = runCpu(cpuBefore, cpuAfter, names, ticks);
    const perGB = result.gbps !== undefined ? cpuSecondsPerGB(cpu.totalSeconds, result.gbps, result.durationSeconds) : undefined;
    const rate = result.connsPerSecond ?? result.rps;
    const per1k =
      result.gbps === undefined && rate !== undefined ? cpuSecondsPer1kRequests(cpu.totalSeconds, rate, result.durationSeconds) : undefined;
    runMeasurements.set(result, {
      ...(t.slice !== undefined ? { slice: t.slice } : {}),
      cpu,
      ...(perGB !== undefined ? { cpuSecondsPerGB: perGB } : {}),
      ...(per1k !== undefined ? { cpuSecondsPer1k: per1k } : {}),
      ...(placement.length ? { placement } : {}),
    });
    return result;
  } catch (e) {
    throw new LabError(
      `${sc.name} (${t.label}, ${inv.argv.join(" ")}) produced no result: ${(e as Error).message}\n${wrapped.stderr.slice(-500)}`,
    );
  }
}

function describe(r: BenchResult): string {
  const rate =
    r.gbps !== undefined
      ? `${r.gbps.toFixed(2)} Gbit/s`
      : r.connsPerSecond !== undefined
        ? `${Math.round(r.connsPerSecond)} conn/s`
        : `${Math.round(r.rps ?? 0)} req/s`;
  const lat = r.latency ? ` p99 ${r.latency.p99Ms.toFixed(2)} ms` : "";
  const errs = Object.entries(r.errors)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}=${n}`)
    .join(",");
  const drops = r.validity.listenOverflows ? ` overflows=${r.validity.listenOverflows}` : "";
  return `${r.scenario.padEnd(16)} c${String(r.concurrency ?? "").padEnd(5)} ${rate}${lat}${errs ? ` errors ${errs}` : ""}${drops}${r.validity.valid ? "" : " [invalid]"}`;
}
