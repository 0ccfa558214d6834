import { mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CONTROL, ValidationError } from "../components/validation";
import { fleetStatus, parseNodeList, renderStatusTable, stackTuners, statusExitCode, type ClusterNode } from "./status";
import {
  LabError,
  runLab,
  labPreflight,
  PLACEMENTS,
  proofScenarioNames,
  selectProofs,
  selectVariants,
  type Placement,
} from "../lab/runner";
import { PEER_LABELS, type PeerLabel } from "../lab/peers";
import { PROOFS } from "../lab/proofs";
import { renderLabTable, type LabReport } from "../components/lab/analysis";
import { SCENARIO_NAMES, type LabScenarioName } from "../components/bench/result";
import { DEFAULT_TOPOLOGY, renderLabScript } from "../components/lab/topology";
import { renderStack } from "../render/render";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { loadStack } from "../loader/stack-config";
import { describeFacts, readMachineFacts } from "../loader/machine-facts";

const USAGE = `usage: edgetune <command> [options]

commands:
  render --stack <name> --out <dir>   write everything the stack would put on its nodes
                                      (tune.sh, sysctl.d, limits, modules-load, PLAN.md)

  lab [--stack local] [--quick] [--scenarios a,b | --proofs] [--repeat N] [--duration S]
      [--variants a,b|none] [--peers haproxy-stock,nginx|none] [--slice-rounds N] [--slice-seconds S]
      [--placement proxy-core|none]
      [--report-dir DIR] [--proxy-from-image DIR] [--json]
                                      tuned vs baseline on this machine, in network namespaces,
                                      plus the stack's lab.variants against tuned (default: all)
                                      (root; prints a table, writes results.json, report.md, chart.svg);
                                      --proxy-from-image: run HAProxy from the proxy image's root
                                      filesystem (scripts/build-images.sh --rootfs DIR: DIR/proxy);
                                      http/l4/conn-rate scenarios run as paired slices (default 10 x 3 s)
                                      beside the peers and the path without a proxy, ratios with 95 % intervals;
                                      --proofs: only the proof scenarios (conn-hold, softnet, syn-flood,
                                      fin-wait, dead-peer, reuseport, change-under-load), one run per profile
  lab --down                          remove a lab left behind (namespaces, processes, host sysctls)

  status --stack <name> [--kubeconfig FILE] [--context NAME] [--json]
                                      the stack's Kubernetes tuning per node: one row per node and
                                      tuner (NODE TUNER PROFILE STATUS DIGEST AGE) from the nodes'
                                      tuning.edgetune.io/<tuner> annotations, read with
                                      \`kubectl get nodes\` (kubectl from PATH). DIGEST is ok when the
                                      node runs what the stack renders now, else stale; a selected
                                      node without an annotation is missing. Exit 0 when every
                                      selected node is applied (or degraded with no failed item)
                                      with the current digest, 1 otherwise, 2 on usage errors

options:
  --root <dir>   project root holding Pulumi.yaml and stacks/ (default: current directory)
  -h, --help     this text
`;

/** Runs the CLI; returns the exit code instead of exiting so tests can call it. */
export function main(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): number | Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        stack: { type: "string" },
        out: { type: "string" },
        root: { type: "string" },
        help: { type: "boolean", short: "h" },
        quick: { type: "boolean" },
        scenarios: { type: "string" },
        proofs: { type: "boolean" },
        variants: { type: "string" },
        repeat: { type: "string" },
        duration: { type: "string" },
        "report-dir": { type: "string" },
        "proxy-from-image": { type: "string" },
        peers: { type: "string" },
        placement: { type: "string" },
        "slice-rounds": { type: "string" },
        "slice-seconds": { type: "string" },
        json: { type: "boolean" },
        down: { type: "boolean" },
        kubeconfig: { type: "string" },
        context: { type: "string" },
      },
    });
  } catch (e) {
    err.write(`edgetune: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = args.positionals;
  if (args.values.help || !command) {
    (command ? out : err).write(USAGE);
    return command || args.values.help ? 0 : 2;
  }
  const root = resolve(args.values.root ?? process.cwd());
  try {
    switch (command) {
      case "render": {
        if (!args.values.stack || !args.values.out) {
          err.write(`edgetune render: --stack and --out are required\n\n${USAGE}`);
          return 2;
        }
        const plan = loadStack(args.values.stack, root);
        // A local group runs here: its haproxy.cfg is this machine's, as the lab's and the local target's are.
        const machine = plan.nodeGroups.some((g) => g.target === "local") ? readMachineFacts() : undefined;
        // Render everything before writing anything: a bad stack writes nothing.
        const files = renderStack(plan, { machine });
        const outDir = resolve(args.values.out);
        for (const [rel, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
          const path = join(outDir, rel);
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, content);
          if (rel.endsWith(".sh")) chmodSync(path, 0o755);
        }
        for (const w of plan.nodeGroups.flatMap((g) => g.profile.warnings.map((m) => `${g.name}: ${m}`))) err.write(`warning: ${w}\n`);
        out.write(`rendered stack "${plan.stack}": ${Object.keys(files).length} files in ${outDir}\n`);
        if (plan.proxy)
          out.write(
            machine
              ? `haproxy.cfg assumes this machine: ${describeFacts(machine)}\n`
              : "haproxy.cfg assumes no machine: nbthread left to HAProxy, maxconn from the profile's nofile, lowered by the proxy image's entrypoint to the container's real fd limit (see PLAN.md)\n",
          );
        return 0;
      }
      case "lab":
        // Async: a stack that does not validate rejects the promise, outside this try.
        return lab(args.values, root, out, err).catch((e: unknown) => {
          if (!(e instanceof ValidationError)) throw e;
          err.write(`edgetune: ${e.message}\n`);
          return 1;
        });
      case "status":
        return status(args.values, root, out, err);
      default:
        err.write(`edgetune: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ValidationError) {
      err.write(`edgetune: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** `edgetune status`: the stack's tuners, the cluster's nodes through kubectl, the table. */
function status(
  v: Record<string, string | boolean | undefined>,
  root: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): number {
  const stack = v.stack as string | undefined;
  if (!stack) {
    err.write(`edgetune status: --stack is required\n\n${USAGE}`);
    return 2;
  }
  for (const k of ["kubeconfig", "context"] as const) {
    const value = v[k] as string | undefined;
    if (value !== undefined && (value === "" || CONTROL.test(value))) {
      err.write(`edgetune status: --${k} ${JSON.stringify(value)}; allowed: a non-empty value without control characters\n`);
      return 2;
    }
  }
  const plan = loadStack(stack, root);
  const tuners = stackTuners(plan);
  if (tuners.length === 0) {
    err.write(
      `edgetune status: stack "${stack}" deploys no Kubernetes tuning (no kubernetes node group with a tuner image, no proxy.kubernetes with tuneNodes on Kubernetes nodes): nothing annotates its nodes\n`,
    );
    return 2;
  }
  // Flags as one word each: a value starting with "-" is never read as another flag.
  const kubectlArgs = ["get", "nodes", "-o", "json", "--request-timeout=30s"];
  if (v.kubeconfig !== undefined) kubectlArgs.push(`--kubeconfig=${v.kubeconfig as string}`);
  if (v.context !== undefined) kubectlArgs.push(`--context=${v.context as string}`);
  const r = spawnSync("kubectl", kubectlArgs, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 60_000 });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === "ENOENT";
    err.write(`edgetune status: ${missing ? "kubectl not found on PATH" : `kubectl: ${r.error.message}`}\n`);
    return 1;
  }
  if (r.status !== 0) {
    err.write(`edgetune status: kubectl ${kubectlArgs.join(" ")} failed (exit ${r.status ?? r.signal}): ${r.stderr.trim()}\n`);
    return 1;
  }
  let nodes: ClusterNode[];
  try {
    nodes = parseNodeList(JSON.parse(r.stdout));
  } catch (e) {
    err.write(`edgetune status: kubectl get nodes printed no node list: ${(e as Error).message}\n`);
    return 1;
  }
  const rows = fleetStatus(tuners, nodes, new Date());
  if (v.json) out.write(`${JSON.stringify(rows, null, 2)}\n`);
  else out.write(renderStatusTable(rows));
  if (!rows.some((row) => row.selected))
    err.write(
      `edgetune status: no node matches a tuner's nodeSelector (${tuners.map((t) => `${t.name}: ${JSON.stringify(t.nodeSelector)}`).join(", ")})\n`,
    );
  return statusExitCode(rows);
}

function positiveInt(name: string, value: string | undefined, err: NodeJS.WritableStream): number | undefined | null {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,3}$/.test(value)) {
    err.write(`edgetune lab: --${name} ${JSON.stringify(value)}; allowed: an integer 1-9999\n`);
    return null;
  }
  return Number(value);
}

async function lab(
  v: Record<string, string | boolean | undefined>,
  root: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  if (v.down) {
    // The step script is self-contained: render it anywhere and let it tear down what it finds.
    const dir = mkdtempSync(join(tmpdir(), "edgetune-lab-down-"));
    const script = join(dir, "lab.sh");
    writeFileSync(script, renderLabScript(DEFAULT_TOPOLOGY), { mode: 0o755 });
    const r = spawnSync("sh", [script, "down"], { stdio: ["ignore", "inherit", "inherit"] });
    return r.status ?? 1;
  }
  if (v.proofs === true && typeof v.scenarios === "string") {
    err.write("edgetune lab: --proofs and --scenarios: give one; --proofs runs every proof scenario, --scenarios names some\n");
    return 2;
  }
  const scenarios =
    v.proofs === true
      ? proofScenarioNames(v.quick === true)
      : typeof v.scenarios === "string"
        ? v.scenarios.split(",").map((s) => s.trim())
        : undefined;
  // Proof scenarios exist once their module is registered (lab/proofs/index.ts).
  const allowed: string[] = [...SCENARIO_NAMES, ...Object.keys(PROOFS)];
  const unknown = scenarios?.filter((s) => !allowed.includes(s)) ?? [];
  if (unknown.length) {
    err.write(`edgetune lab: --scenarios ${unknown.join(",")}: unknown; allowed: ${allowed.join(", ")}\n`);
    return 2;
  }
  let variants: string[] | undefined;
  if (typeof v.variants === "string") {
    variants = v.variants === "none" ? [] : v.variants.split(",").map((s) => s.trim());
    // Checked before the preflight: a typo is a usage error, whatever this machine has.
    try {
      selectVariants(loadStack((v.stack as string | undefined) ?? "local", root), variants);
    } catch (e) {
      if (!(e instanceof LabError)) throw e;
      err.write(`edgetune lab: ${e.message}\n`);
      return 2;
    }
  }
  const repeat = positiveInt("repeat", v.repeat as string | undefined, err);
  const duration = positiveInt("duration", v.duration as string | undefined, err);
  const sliceRounds = positiveInt("slice-rounds", v["slice-rounds"] as string | undefined, err);
  const sliceSeconds = positiveInt("slice-seconds", v["slice-seconds"] as string | undefined, err);
  if (repeat === null || duration === null || sliceRounds === null || sliceSeconds === null) return 2;
  const placement = v.placement as string | undefined;
  if (placement !== undefined && !(PLACEMENTS as readonly string[]).includes(placement)) {
    err.write(`edgetune lab: --placement ${placement}: unknown; allowed: ${PLACEMENTS.join(", ")}\n`);
    return 2;
  }
  let peers: PeerLabel[] | undefined;
  if (typeof v.peers === "string") {
    const names = v.peers === "none" ? [] : v.peers.split(",").map((s) => s.trim());
    const bad = names.filter((n) => !(PEER_LABELS as readonly string[]).includes(n));
    if (bad.length) {
      err.write(`edgetune lab: --peers ${bad.join(",")}: unknown; allowed: ${[...PEER_LABELS, "none"].join(", ")}\n`);
      return 2;
    }
    peers = names as PeerLabel[];
  }
  const problems = labPreflight(Object.assign({}, ...selectProofs(scenarios).map((p) => p.tools ?? {})));
  if (problems.length) {
    err.write(`edgetune lab: cannot run here:\n${problems.map((p) => `  - ${p}`).join("\n")}\n`);
    return 1;
  }
  let report: LabReport;
  try {
    report = await runLab({
      stack: (v.stack as string | undefined) ?? "local",
      root,
      quick: v.quick === true,
      scenarios: scenarios as LabScenarioName[] | undefined,
      variants,
      repeat,
      durationSeconds: duration,
      sliceRounds,
      placement: placement as Placement | undefined,
      sliceSeconds,
      peers,
      reportDir: v["report-dir"] as string | undefined,
      proxyFromImage: v["proxy-from-image"] as string | undefined,
      progress: (line) => err.write(`${line}\n`),
    });
  } catch (e) {
    if (e instanceof LabError) {
      err.write(`edgetune lab: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  if (v.json) out.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    out.write(`\n${renderLabTable(report)}\n`);
    out.write(`results: ${report.files.json}\nreport:  ${report.files.markdown}\nchart:   ${report.files.svg}\n`);
  }
  return 0;
}

if (require.main === module) void Promise.resolve(main(process.argv.slice(2))).then((code) => (process.exitCode = code));
