import { z } from "zod";
import { BenchParseError, nstatValidity, parseNstat, parseToolOutput } from "./parsers";
import { benchResultSchema, RESULT_SCHEMA_VERSION, SCENARIO_NAMES, type BenchResult, type ScenarioName } from "./result";
import { SCENARIOS, type Invocation } from "./scenarios";
import { shqWord } from "../shell";

/**
 * The benchmark Job's log contract, shared by three places: the Job's shell
 * script (jobScript), the normalizer the Job runs at its end (normalizeJobLog,
 * bundled with its parsers into normalize.cjs and shipped in the Job's
 * ConfigMap), and the collect step that reads the log back (readResultLine).
 *
 * The log carries the tools' own output between markers, for a person reading
 * `kubectl logs`, and ends with one JSON line: the normalized BenchResults of
 * every run, or the reason there are none.
 */

export const MARK = "### edgetune";
export const RESULTS_KIND = "edgetune-bench-results";
export const ERROR_KIND = "edgetune-bench-error";
/** Where the Job mounts its ConfigMap: the Lua scripts and normalize.cjs. */
export const BENCH_SCRIPT_DIR = "/etc/edgetune-bench";
export const NORMALIZER_FILE = "normalize.cjs";

export interface JobLogContext {
  scenario: ScenarioName;
  profile: string;
  /** What the Job loaded, for the result (e.g. the proxy's Service name). */
  target?: string;
}

/**
 * Stands for the proxy node's address in argv until the Job knows it: jobScript puts the
 * shell's "$target" (or "$target_url", bracketed for IPv6, inside URLs) in its place.
 */
export const TARGET_PLACEHOLDER = "edgetune-proxy-node.invalid";

/** Where the Job's ServiceAccount token and namespace are mounted (the API client's credentials). */
const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface JobScriptOptions extends JobLogContext {
  /**
   * Discover the proxy node before the runs: the node of the pod labelled `label` (this Job's
   * counters pod, scheduled next to a proxy pod), read from the API with the Job's
   * ServiceAccount. The script waits until that pod runs, so its counters cover every run,
   * and targets its hostIP unless `host` overrides it.
   */
  discover?: {
    label: string;
    value: string;
    host?: string;
    timeoutSeconds: number;
    /** The counters pod reads for a fixed window: a load that starts later than this after it is refused. */
    maxLateSeconds?: number;
  };
  /** Directory holding normalize.cjs; default BENCH_SCRIPT_DIR. */
  scriptDir?: string;
  /** The node binary; default `node` from PATH (the loadgen image has it). */
  node?: string;
  /** Where the run's stdout is kept for the normalizer; default /tmp/edgetune-bench.log. */
  logFile?: string;
}

/**
 * The Job's POSIX sh script. Each run's stdout is framed by markers and the
 * shell's `times` (client CPU), teed to a file, and the normalizer's single
 * line comes last; the Job's exit status is the normalizer's, which fails
 * when a run failed or its output does not parse.
 */
export function jobScript(invocations: Invocation[], o: JobScriptOptions): string {
  const log = o.logFile ?? "/tmp/edgetune-bench.log";
  const normalizer = [
    o.node ?? "node",
    `${o.scriptDir ?? BENCH_SCRIPT_DIR}/${NORMALIZER_FILE}`,
    "--scenario",
    o.scenario,
    "--profile",
    o.profile,
    ...(o.target ? ["--target", o.target] : []),
  ];
  const lines = ["set -u", ...(o.discover ? discoveryScript(o.discover, o) : [])];
  lines.push(
    "{",
    `echo "${MARK}-nproc $(nproc)"`,
    // The container's CPU limit: nproc counts the node's CPUs, a limited container gets fewer.
    `echo "${MARK}-cpu-quota $(${CPU_QUOTA})"`,
    "rc=0",
  );
  for (const inv of invocations) {
    const meta = JSON.stringify({
      scenario: inv.scenario,
      tool: inv.tool,
      run: inv.run,
      concurrency: inv.concurrency,
      durationSeconds: inv.durationSeconds,
    });
    lines.push(`echo ${shqWord(`${MARK}-run ${meta}`)}`, `${inv.argv.map(shTarget).join(" ")} || rc=$?`, `echo "${MARK}-times"`, "times");
  }
  // The group runs in the pipeline's subshell: its exit status reaches the normalizer through this marker.
  lines.push(`echo "${MARK}-end $rc"`, `} | tee ${shqWord(log)}`, `exec ${normalizer.map(shTarget).join(" ")} < ${shqWord(log)}`);
  return lines.join("\n");
}

/** cgroup v2 `cpu.max` ("max 100000" or "200000 100000"), else v1's quota and period, else "unknown". */
const CPU_QUOTA = [
  "if [ -r /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max;",
  'elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)";',
  "else echo unknown; fi",
].join(" ");

/** A word with TARGET_PLACEHOLDER in it, quoted so the shell puts the discovered address there. */
function shTarget(word: string): string {
  if (!word.includes(TARGET_PLACEHOLDER)) return shqWord(word);
  const parts = word.split(TARGET_PLACEHOLDER);
  return parts
    .map((p, i) => (p ? shqWord(p) : "") + (i < parts.length - 1 ? (p.endsWith("//") ? '"$target_url"' : '"$target"') : ""))
    .join("");
}

/**
 * The discovery prelude: polls the API (curl + jq, the Job's projected token) for the labelled
 * pod's hostIP until it runs. Sets $target and $target_url; on failure prints the error line
 * the collect step reads and exits 1.
 */
function discoveryScript(d: NonNullable<JobScriptOptions["discover"]>, ctx: JobLogContext): string[] {
  const polls = Math.ceil(d.timeoutSeconds / 2);
  const selector = encodeURIComponent(`${d.label}=${d.value}`);
  // The lowest node name among the running pods: one answer whichever pod the API lists first.
  const pick =
    '[.items[] | select((.status.hostIP // "") != "" and (.status.containerStatuses[0].state.running.startedAt // "") != "")] | sort_by(.spec.nodeName) | .[0] // empty | "\\(.status.hostIP) \\(.status.containerStatuses[0].state.running.startedAt)"';
  const fail = resultLine(ctx, {
    error: `no running pod labelled ${d.label}=${d.value} (the counters pod on a proxy node) within ${d.timeoutSeconds}s: is the proxy running, and does the namespace admit hostNetwork pods?`,
  });
  const maxLate = d.maxLateSeconds ?? 15;
  const late = resultLine(ctx, {
    error: `the counters pod started more than ${maxLate}s before this Job could run: its window would not cover the runs (a slow image pull?); run the suite again`,
  });
  return [
    `sa=${SA_DIR}`,
    'found=""; i=0',
    `while [ "$i" -lt ${polls} ]; do`,
    `  found=$(curl -fsS --max-time 5 --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" "https://kubernetes.default.svc/api/v1/namespaces/$(cat "$sa/namespace")/pods?labelSelector=${selector}" | jq -r ${shqWord(pick)}) && [ -n "$found" ] && break`,
    "  i=$((i + 1)); sleep 2",
    "done",
    `if [ -z "$found" ]; then echo ${shqWord(fail)}; exit 1; fi`,
    'node_ip=${found%% *}; started=$(date -d "${found#* }" +%s)',
    `if [ $(($(date +%s) - started)) -gt ${maxLate} ]; then echo ${shqWord(late)}; exit 1; fi`,
    `echo "${MARK}-proxy-node $node_ip"`,
    `target=${d.host ? shqWord(d.host) : '"$node_ip"'}`,
    'case "$target" in *:*) target_url="[$target]" ;; *) target_url="$target" ;; esac',
    // The counters pod reads its baseline as it starts: give it that moment.
    "sleep 2",
  ];
}

/** CPUs the container may use: nproc, capped by its cgroup CPU quota when there is one. */
export function usableCpus(log: string): number {
  const nproc = Number(/^### edgetune-nproc (\d+)$/m.exec(log)?.[1] ?? NaN);
  const q = /^### edgetune-cpu-quota (-?\d+) (\d+)$/m.exec(log);
  // v2 "max" and v1 "-1": no quota.
  const quota = q && Number(q[1]) > 0 && Number(q[2]) > 0 ? Number(q[1]) / Number(q[2]) : Infinity;
  return Math.min(nproc, quota);
}

/**
 * The tools' output in a Job log (markers from jobScript) → one BenchResult per
 * run. Client CPU comes from `times` deltas over each run's wall time. Throws
 * BenchParseError when the log is cut short, a run failed or does not parse.
 */
export function normalizeJobLog(log: string, ctx: JobLogContext): BenchResult[] {
  const scenario = SCENARIOS[ctx.scenario];
  const cpus = usableCpus(log);
  const sections = log.split(`${MARK}-run `).slice(1);
  if (!sections.length) throw new BenchParseError("job log", `no "${MARK}-run" marker: the Job did not run the benchmark script`);
  const end = new RegExp(`^${MARK}-end (\\d+)$`, "m").exec(sections[sections.length - 1]);
  if (!end)
    throw new BenchParseError("job log", `no "${MARK}-end" marker: the script was cut short (deadline, OOM kill or a crashed tool)`);
  let prevChildCpu = 0;
  const results = sections.map((section) => {
    const nl = section.indexOf("\n");
    const meta = JSON.parse(section.slice(0, nl)) as { run: number; concurrency: number; durationSeconds: number; tool: string };
    const [out, after = ""] = section.slice(nl + 1).split(`${MARK}-times\n`);
    // `times` prints the shell's user/sys, then its children's, cumulative: "0m1.50s 0m2.25s".
    const child = after.split("\n")[1]?.match(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/);
    const validity: Record<string, number> = {};
    if (child && Number.isFinite(cpus)) {
      const cpu = Number(child[1]) * 60 + Number(child[2]) + Number(child[3]) * 60 + Number(child[4]);
      // iperf3 and node's event loop use one core; wrk a thread per core up to its threads.
      const cores = Math.min(cpus, meta.tool === "iperf3" || meta.tool === "tcp-churn" ? 1 : Math.min(scenario.threads, meta.concurrency));
      validity.clientCpuPercent = ((cpu - prevChildCpu) / (meta.durationSeconds * cores)) * 100;
      prevChildCpu = cpu;
    }
    const pctx = {
      scenario: ctx.scenario,
      profile: ctx.profile,
      run: meta.run,
      target: ctx.target,
      concurrency: meta.concurrency,
      connectionClose: scenario.connectionClose,
      validity,
    };
    try {
      return parseToolOutput(meta.tool, out, pctx);
    } catch (e) {
      throw new BenchParseError("job log", `run ${meta.run} (${meta.tool}, concurrency ${meta.concurrency}): ${(e as Error).message}`);
    }
  });
  // Parsed but failed: e.g. wrk exits 1 after printing its report when it cannot resolve the host.
  if (end[1] !== "0")
    throw new BenchParseError("job log", `a load generator exited with status ${end[1]} (its stderr is in the Job log above)`);
  return results;
}

const resultsLineSchema = z.strictObject({
  kind: z.literal(RESULTS_KIND),
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  scenario: z.enum(SCENARIO_NAMES),
  profile: z.string(),
  results: z.array(benchResultSchema).min(1),
});
const errorLineSchema = z.strictObject({ kind: z.literal(ERROR_KIND), scenario: z.string(), profile: z.string(), message: z.string() });

/** The normalizer's last line: results, or why there are none. */
export function resultLine(ctx: JobLogContext, outcome: { results: BenchResult[] } | { error: string }): string {
  if ("error" in outcome) return JSON.stringify({ kind: ERROR_KIND, scenario: ctx.scenario, profile: ctx.profile, message: outcome.error });
  return JSON.stringify({
    kind: RESULTS_KIND,
    schemaVersion: RESULT_SCHEMA_VERSION,
    scenario: ctx.scenario,
    profile: ctx.profile,
    results: outcome.results,
  });
}

/**
 * The collect step: the Job log's last line → typed results, checked against the
 * schema and against the Job it should come from. `counters` is the scenario's
 * counters Job's `nstat -j` output, read on the proxy node the load Job targeted:
 * its listen drops, retransmits, TIME_WAIT and failed connects, merged into every
 * run's validity data.
 */
export function readResultLine(log: string, ctx: { scenario: ScenarioName; profile: string; counters?: string }): BenchResult[] {
  const last = log.trimEnd().split("\n").pop() ?? "";
  const shown = JSON.stringify(last.length > 200 ? `${last.slice(0, 200)}…` : last);
  let doc: unknown;
  try {
    doc = JSON.parse(last);
  } catch {
    throw new BenchParseError(
      "job log",
      `the last line is not edgetune's result JSON: ${shown} (did the Job run the edgetune loadgen image's script to the end?)`,
    );
  }
  const err = errorLineSchema.safeParse(doc);
  if (err.success) throw new BenchParseError("job log", `the ${err.data.profile} ${err.data.scenario} Job reported: ${err.data.message}`);
  const r = resultsLineSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new BenchParseError("job log", `the last line is not a valid result line: ${i.path.join(".") || "(root)"}: ${i.message}`);
  }
  if (r.data.scenario !== ctx.scenario || r.data.profile !== ctx.profile) {
    throw new BenchParseError(
      "job log",
      `expected the ${ctx.profile} ${ctx.scenario} Job's results, got ${r.data.profile} ${r.data.scenario}`,
    );
  }
  if (ctx.counters === undefined) return r.data.results;
  // Counters are data, not a validity reason (conn-burst exists to show them): merged as is.
  // They cover all of the Job's runs at once: several runs share one before/after pair.
  const proxy = nstatValidity(parseNstat(ctx.counters));
  return r.data.results.map((res) => ({ ...res, validity: { ...res.validity, ...proxy } }));
}
