// npm run bench:iac [-- --quick] [--out FILE] [--mem-cap MiB] [--timeout S] [--skip-tune]
//
// Measures how edgetune's infrastructure code scales (issue #16 item 4), nothing else:
//   1. the Pulumi program under Pulumi's mocks: one SSH node group (RemoteHostTuning) of N
//      hosts, and G node groups of 10 hosts each; per size the resources registered, the wall
//      time to the last registration and the peak RSS (each size in its own child process);
//   2. `edgetune render` per shipped stack: median wall time of 5 runs, and whether the
//      Pulumi SDK was loaded (a --require hook reads require.cache at exit);
//   3. `tune.sh apply` (the local stack's render) in a fresh network namespace, first and
//      second run, median of 5, under flock /tmp/edgetune-netns.lock (root only);
//   4. the rendered user-data of each stack against EC2's 16,384-byte limit.
// Prints a table with growth per 10x hosts and writes the figures as JSON (--out).
// Figures, not assertions: nothing here fails on a slow machine.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, totalmem, cpus, release } from "node:os";
import { join, resolve } from "node:path";
import { getHeapStatistics } from "node:v8";
import { gzipSync } from "node:zlib";
import { forecastLinear, growthSeries, median, parseFlags } from "./bench-iac-lib";

const ROOT = resolve(__dirname, "..");
const SELF = __filename;
const LOCK = "/tmp/edgetune-netns.lock";
const USER_DATA_LIMIT = 16_384;

// ---------------------------------------------------------------------------------------------
// Child mode: one program size under mocks, prints one JSON line.
// ---------------------------------------------------------------------------------------------
async function programChild(hostsPerGroup: number, groups: number): Promise<void> {
  const pulumi = await import("@pulumi/pulumi");
  const counts: Record<string, number> = {};
  let total = 0;
  let last = 0;
  const start = performance.now();
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        counts[a.type] = (counts[a.type] ?? 0) + 1;
        total++;
        last = performance.now();
        const state = {
          ...a.inputs,
          ...(a.type === "command:remote:Command"
            ? {
                stdout: a.name.endsWith("-gate")
                  ? "summary: verify status=ok\ngate: status=passed host=x"
                  : "summary: status=applied changed=3 unchanged=1 skipped=0 failed=0 reboot_required=0 profile=edge digest=sha256:abc",
              }
            : {}),
        };
        return { id: `${a.name}-id`, state };
      },
      call: (a) => a.inputs,
    },
    "edgetune",
    "bench",
    false,
  );
  const m = await import("../components");
  const { resolveProfile } = await import("../components/tuning/profile");
  const profile = resolveProfile("edge", {
    extends: "recommended",
    ports: { kubernetesNodePorts: true, kubelet: true },
    nics: [{ match: "ens*", offloads: { gro: true } }],
  } as never);
  const loaded = performance.now();
  // CPU time as well as wall time: on a shared machine the wall time also counts other work.
  const cpuAtLoad = process.cpuUsage();
  for (let g = 0; g < groups; g++) {
    const hosts = Array.from({ length: hostsPerGroup }, (_, i) => ({ host: `edge-${g}-${i}.example.net` }));
    new m.RemoteHostTuning(`g${g}`, { profile, hosts, privateKey: "K" } as never);
  }
  // Under mocks registration is promises only: done once the count stops moving.
  let seen = -1;
  let stable = 0;
  while (stable < 5) {
    await new Promise((r) => setTimeout(r, 100));
    if (total === seen && total > 0) stable++;
    else {
      stable = 0;
      seen = total;
    }
  }
  const ru = process.resourceUsage();
  process.stdout.write(
    JSON.stringify({
      resources: total,
      byType: counts,
      loadMs: loaded - start,
      wallMs: last - loaded,
      cpuMs: (() => {
        const c = process.cpuUsage(cpuAtLoad);
        return (c.user + c.system) / 1000;
      })(),
      peakRssMiB: ru.maxRSS / 1024,
      // The child runs with Node's default heap limit (no --max-old-space-size): the fleet target.
      heapLimitMiB: getHeapStatistics().heap_size_limit / 1048576,
      heapUsedMiB: process.memoryUsage().heapUsed / 1048576,
    }) + "\n",
  );
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Parent: run one size in a child, watching its RSS against the cap.
// ---------------------------------------------------------------------------------------------
interface ProgramRow {
  kind: "hosts" | "groups";
  size: number;
  hosts: number;
  groups: number;
  resources?: number;
  byType?: Record<string, number>;
  wallMs?: number;
  /** CPU (user + system) of the child from the first component to the end, idle polling included. */
  cpuMs?: number;
  loadMs?: number;
  peakRssMiB?: number;
  heapLimitMiB?: number;
  resourcesPerHost?: number;
  msPerHost?: number;
  mibPerHost?: number;
  stopped?: string;
}

function childCommand(args: string[]): [string, string[]] {
  return [process.execPath, [...process.execArgv, SELF, ...args]];
}

function vmRssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function runProgramSize(
  kind: "hosts" | "groups",
  hostsPerGroup: number,
  groups: number,
  capMiB: number,
  timeoutMs: number,
): Promise<ProgramRow> {
  const size = kind === "hosts" ? hostsPerGroup : groups;
  const row: ProgramRow = { kind, size, hosts: hostsPerGroup * groups, groups };
  return new Promise((done) => {
    const [cmd, args] = childCommand(["--child", "program", "--hosts", String(hostsPerGroup), "--groups", String(groups)]);
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let killed: string | undefined;
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const watch = setInterval(() => {
      const rss = vmRssMiB(child.pid!);
      if (rss !== undefined && rss > capMiB && !killed) {
        killed = `stopped: exceeded the ${capMiB} MiB cap (RSS ${Math.round(rss)} MiB)`;
        child.kill("SIGKILL");
      }
    }, 100);
    const timer = setTimeout(() => {
      killed = `stopped: exceeded ${timeoutMs / 1000} s`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (code) => {
      clearInterval(watch);
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      if (killed) row.stopped = killed;
      else if (code !== 0 || !line.startsWith("{")) row.stopped = `failed: exit ${code}: ${err.trim().split("\n").slice(-3).join(" | ")}`;
      else {
        const r = JSON.parse(line);
        Object.assign(row, {
          resources: r.resources,
          byType: r.byType,
          wallMs: r.wallMs,
          cpuMs: r.cpuMs,
          loadMs: r.loadMs,
          peakRssMiB: r.peakRssMiB,
          heapLimitMiB: r.heapLimitMiB,
        });
        row.resourcesPerHost = r.resources / row.hosts;
        row.msPerHost = r.wallMs / row.hosts;
        row.mibPerHost = r.peakRssMiB / row.hosts;
      }
      done(row);
    });
  });
}

async function benchProgram(kind: "hosts" | "groups", sizes: number[], capMiB: number, timeoutMs: number): Promise<ProgramRow[]> {
  const rows: ProgramRow[] = [];
  for (const size of sizes) {
    const hostsPerGroup = kind === "hosts" ? size : 10;
    const groups = kind === "hosts" ? 1 : size;
    const measured = rows.filter((r) => r.peakRssMiB !== undefined).map((r) => ({ size: r.hosts, value: r.peakRssMiB! }));
    const forecast = forecastLinear(measured, hostsPerGroup * groups);
    if (forecast !== undefined && forecast > capMiB) {
      rows.push({
        kind,
        size,
        hosts: hostsPerGroup * groups,
        groups,
        stopped: `stopped: would exceed ${capMiB} MiB (forecast ${Math.round(forecast)} MiB)`,
      });
      console.error(`  ${kind}=${size}: skipped, forecast ${Math.round(forecast)} MiB > cap ${capMiB} MiB`);
      continue;
    }
    const row = await runProgramSize(kind, hostsPerGroup, groups, capMiB, timeoutMs);
    console.error(
      `  ${kind}=${size}: ${row.stopped ?? `${row.resources} resources, ${(row.wallMs! / 1000).toFixed(2)} s (cpu ${(row.cpuMs! / 1000).toFixed(2)} s), ${Math.round(row.peakRssMiB!)} MiB`}`,
    );
    rows.push(row);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Render per stack.
// ---------------------------------------------------------------------------------------------
const HOOK = `
const { writeFileSync } = require("node:fs");
process.on("exit", () => {
  const keys = Object.keys(require.cache);
  const has = (p) => keys.some((k) => k.includes("/node_modules/" + p + "/"));
  writeFileSync(process.env.EDGETUNE_BENCH_HOOK_OUT, JSON.stringify({
    pulumi: has("@pulumi/pulumi"), aws: has("@pulumi/aws"), kubernetes: has("@pulumi/kubernetes"), command: has("@pulumi/command"),
    modules: keys.length,
  }));
});
`;

interface RenderRow {
  stack: string;
  runsMs: number[];
  medianMs: number;
  sdkLoaded: { pulumi: boolean; aws: boolean; kubernetes: boolean; command: boolean; modules: number };
  /** bytes: the rendered file; ec2Bytes: what EC2 gets (components/nodes/cloud-init.ts): the MIME text as is, a cloud-config gzipped (level 9). */
  userData: Array<{ file: string; format: "mime" | "cloud-config"; bytes: number; gzipBytes: number; ec2Bytes: number; headroom: number }>;
  error?: string;
}

function stacks(): string[] {
  return readdirSync(join(ROOT, "stacks"))
    .flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? [])
    .sort();
}

function findFiles(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...findFiles(p, name));
    else if (e.name === name) out.push(p);
  }
  return out;
}

function benchRender(work: string, runs: number): RenderRow[] {
  const hook = join(work, "sdk-hook.cjs");
  writeFileSync(hook, HOOK);
  const rows: RenderRow[] = [];
  for (const stack of stacks()) {
    const runsMs: number[] = [];
    let sdk: RenderRow["sdkLoaded"] = { pulumi: false, aws: false, kubernetes: false, command: false, modules: 0 };
    let error: string | undefined;
    const out = join(work, `render-${stack}`);
    for (let i = 0; i < runs; i++) {
      rmSync(out, { recursive: true, force: true });
      const hookOut = join(work, `hook-${stack}.json`);
      const t0 = performance.now();
      const r = spawnSync(
        process.execPath,
        ["--require", hook, join(ROOT, "bin", "edgetune.js"), "render", "--stack", stack, "--out", out],
        {
          cwd: ROOT,
          encoding: "utf8",
          env: { ...process.env, EDGETUNE_BENCH_HOOK_OUT: hookOut },
        },
      );
      runsMs.push(performance.now() - t0);
      if (r.status !== 0) error = `exit ${r.status}: ${(r.stderr || "").trim().split("\n").slice(-2).join(" | ")}`;
      if (existsSync(hookOut)) sdk = JSON.parse(readFileSync(hookOut, "utf8"));
    }
    const userData = existsSync(out)
      ? findFiles(out, "user-data").map((f) => {
          const buf = readFileSync(f);
          const gzipBytes = gzipSync(buf, { level: 9 }).length;
          const format = /^MIME-Version:/m.test(buf.subarray(0, 512).toString("latin1")) ? ("mime" as const) : ("cloud-config" as const);
          const ec2Bytes = format === "mime" ? buf.length : gzipBytes;
          return {
            file: f.slice(out.length + 1),
            format,
            bytes: statSync(f).size,
            gzipBytes,
            ec2Bytes,
            headroom: USER_DATA_LIMIT - ec2Bytes,
          };
        })
      : [];
    rows.push({ stack, runsMs, medianMs: median(runsMs), sdkLoaded: sdk, userData, ...(error ? { error } : {}) });
    console.error(`  render ${stack}: median ${(median(runsMs) / 1000).toFixed(2)} s, @pulumi/pulumi loaded: ${sdk.pulumi}`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// tune.sh apply in a network namespace.
// ---------------------------------------------------------------------------------------------
interface TuneResult {
  measured: boolean;
  note: string;
  firstMs?: number[];
  secondMs?: number[];
  firstMedianMs?: number;
  secondMedianMs?: number;
  exitCodes?: Array<[number | null, number | null]>;
}

function tuneChild(tuneSh: string, runs: number): void {
  const ns = `etbench${process.pid}`;
  const firstMs: number[] = [];
  const secondMs: number[] = [];
  const exitCodes: Array<[number | null, number | null]> = [];
  try {
    for (let i = 0; i < runs; i++) {
      const add = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
      if (add.status !== 0) throw new Error(`ip netns add: ${add.stderr}`);
      const dir = mkdtempSync(join(tmpdir(), "edgetune-bench-tune-"));
      const env = { ...process.env, STATE_DIR: join(dir, "state"), ETC_ROOT: join(dir, "etc"), EDGETUNE_SCOPE: "netns" };
      mkdirSync(join(dir, "etc"), { recursive: true });
      const apply = () => {
        const t0 = performance.now();
        const r = spawnSync("ip", ["netns", "exec", ns, "sh", tuneSh, "apply"], { env, encoding: "utf8" });
        return { ms: performance.now() - t0, code: r.status };
      };
      const a = apply();
      const b = apply();
      firstMs.push(a.ms);
      secondMs.push(b.ms);
      exitCodes.push([a.code, b.code]);
      spawnSync("ip", ["netns", "delete", ns]);
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    spawnSync("ip", ["netns", "delete", ns], { stdio: "ignore" });
  }
  process.stdout.write(JSON.stringify({ firstMs, secondMs, exitCodes }) + "\n");
}

function benchTune(work: string, runs: number): TuneResult {
  const out = join(work, "render-local");
  spawnSync(process.execPath, [join(ROOT, "bin", "edgetune.js"), "render", "--stack", "local", "--out", out], {
    cwd: ROOT,
    stdio: "ignore",
  });
  const candidates = existsSync(out) ? findFiles(out, "tune.sh").filter((f) => !f.includes("/lab/lab/")) : [];
  if (candidates.length === 0) return { measured: false, note: "no tune.sh in the local stack's render" };
  const tuneSh = candidates[0];
  if (process.getuid?.() !== 0) return { measured: false, note: "not root: no network namespace, tune.sh not measured" };
  const [cmd, args] = childCommand(["--child", "tune", "--tune-sh", tuneSh, "--runs", String(runs)]);
  const r = spawnSync("flock", ["-w", "300", LOCK, cmd, ...args], { cwd: ROOT, encoding: "utf8", timeout: 900_000 });
  const line = (r.stdout || "").trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !line.startsWith("{")) {
    return {
      measured: false,
      note: `could not take ${LOCK} within 5 minutes or the run failed (exit ${r.status}): ${(r.stderr || "").trim().split("\n").slice(-2).join(" | ")}`,
    };
  }
  const j = JSON.parse(line);
  return {
    measured: true,
    note: `${tuneSh.slice(out.length + 1)} of the local stack, EDGETUNE_SCOPE=netns, fresh namespace and STATE_DIR per run, under flock ${LOCK}`,
    firstMs: j.firstMs,
    secondMs: j.secondMs,
    firstMedianMs: median(j.firstMs),
    secondMedianMs: median(j.secondMs),
    exitCodes: j.exitCodes,
  };
}

// ---------------------------------------------------------------------------------------------
// Report.
// ---------------------------------------------------------------------------------------------
const f1 = (x: number | undefined, d = 1) => (x === undefined ? "-" : x.toFixed(d));
const pad = (s: string, n: number) => (s.length >= n ? s : " ".repeat(n - s.length) + s);

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : pad(c, w[i]))).join("  ");
  return [line(header), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

function programTable(rows: ProgramRow[]): string {
  return table(
    ["size", "hosts", "groups", "resources", "res/host", "wall s", "cpu s", "ms/host", "peak MiB", "MiB/host", "note"],
    rows.map((r) => [
      `${r.kind}=${r.size}`,
      String(r.hosts),
      String(r.groups),
      r.resources === undefined ? "-" : String(r.resources),
      f1(r.resourcesPerHost, 2),
      f1(r.wallMs === undefined ? undefined : r.wallMs / 1000, 2),
      f1(r.cpuMs === undefined ? undefined : r.cpuMs / 1000, 2),
      f1(r.msPerHost, 2),
      f1(r.peakRssMiB, 0),
      f1(r.mibPerHost, 2),
      r.stopped ?? "",
    ]),
  );
}

function growth(rows: ProgramRow[]) {
  const ok = rows.filter((r) => r.wallMs !== undefined);
  return {
    time: growthSeries(ok.map((r) => ({ size: r.hosts, value: r.wallMs! }))),
    memory: growthSeries(ok.map((r) => ({ size: r.hosts, value: r.peakRssMiB! }))),
    resources: growthSeries(ok.map((r) => ({ size: r.hosts, value: r.resources! }))),
  };
}

function growthTable(g: ReturnType<typeof growth>): string {
  return table(
    ["hosts", "time x/10x", "memory x/10x", "resources x/10x"],
    g.time.map((t, i) => [`${t.from} -> ${t.to}`, f1(t.per10x, 2), f1(g.memory[i]?.per10x, 2), f1(g.resources[i]?.per10x, 2)]),
  );
}

function machine() {
  const os = readFileSync("/etc/os-release", "utf8").match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1];
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model,
    memoryMiB: Math.round(totalmem() / 1048576),
    node: process.version,
    kernel: release(),
    os,
  };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.child === "program") return programChild(Number(flags.hosts), Number(flags.groups));
  if (flags.child === "tune") return tuneChild(String(flags["tune-sh"]), Number(flags.runs));

  const quick = flags.quick === true;
  const full = flags.full === true;
  const capMiB = Number(flags["mem-cap"] ?? Math.min(6144, Math.floor((totalmem() / 1048576) * 0.5)));
  const timeoutMs = Number(flags.timeout ?? 600) * 1000;
  // 10,000 hosts is in every default run: it is the size the issue's fleet target names.
  // --full is still accepted (older command lines) and changes nothing.
  const hostSizes = quick ? [10, 100] : [10, 100, 500, 2000, 10000];
  const groupSizes = quick ? [1, 10] : [1, 10, 50];
  const runs = quick ? 2 : 5;
  const work = mkdtempSync(join(tmpdir(), "edgetune-bench-iac-"));
  const t0 = performance.now();

  console.error(`program under mocks, one SSH node group (memory cap ${capMiB} MiB):`);
  const hosts = await benchProgram("hosts", hostSizes, capMiB, timeoutMs);
  console.error("program under mocks, node groups of 10 SSH hosts each:");
  const groups = await benchProgram("groups", groupSizes, capMiB, timeoutMs);
  console.error(`render per stack (${runs} runs each):`);
  const render = benchRender(work, runs);
  console.error("tune.sh apply in a network namespace:");
  const tune = flags["skip-tune"] ? { measured: false, note: "--skip-tune" } : benchTune(work, runs);
  rmSync(work, { recursive: true, force: true });

  const result = {
    when: new Date().toISOString(),
    machine: machine(),
    options: { quick, full, memCapMiB: capMiB, hostSizes, groupSizes, runs },
    program: { hosts, hostsGrowth: growth(hosts), groups, groupsGrowth: growth(groups) },
    render,
    tune,
    totalSeconds: (performance.now() - t0) / 1000,
  };

  const p = (s = "") => process.stdout.write(s + "\n");
  p(
    `machine: ${result.machine.nproc} CPU (${result.machine.cpu}), ${result.machine.memoryMiB} MiB, node ${result.machine.node}, kernel ${result.machine.kernel}`,
  );
  p();
  p("Pulumi program under mocks: one SSH node group of N hosts");
  p(programTable(hosts));
  p();
  p("growth per 10x hosts (10 = linear)");
  p(growthTable(result.program.hostsGrowth));
  p();
  p("Pulumi program under mocks: G node groups of 10 SSH hosts");
  p(programTable(groups));
  p();
  p("growth per 10x groups");
  p(growthTable(result.program.groupsGrowth));
  p();
  p(`edgetune render per stack (median of ${runs})`);
  p(
    table(
      ["stack", "median s", "min s", "max s", "@pulumi/pulumi", "@pulumi/aws", "user-data to EC2 / 16384 (rendered)"],
      render.map((r) => [
        r.stack,
        f1(r.medianMs / 1000, 2),
        f1(Math.min(...r.runsMs) / 1000, 2),
        f1(Math.max(...r.runsMs) / 1000, 2),
        r.sdkLoaded.pulumi ? "loaded" : "not loaded",
        r.sdkLoaded.aws ? "loaded" : "not loaded",
        r.userData
          .map(
            (u) =>
              `${u.file}: ${u.ec2Bytes} ${u.format === "mime" ? "MIME" : "gzip"}, ${u.headroom >= 0 ? `${u.headroom} left` : `${-u.headroom} over`} (${u.bytes})`,
          )
          .join("; ") ||
          (r.error ?? "-"),
      ]),
    ),
  );
  p();
  if (tune.measured) {
    const t = tune as Required<TuneResult>;
    p(
      `tune.sh apply (median of ${runs}): first ${f1(t.firstMedianMs, 0)} ms, second ${f1(t.secondMedianMs, 0)} ms; exit codes ${JSON.stringify(t.exitCodes)}`,
    );
    p(`  ${t.note}`);
  } else p(`tune.sh apply: not measured: ${tune.note}`);
  p();
  p(`total ${result.totalSeconds.toFixed(0)} s`);
  if (typeof flags.out === "string") {
    writeFileSync(flags.out, JSON.stringify(result, null, 2) + "\n");
    p(`wrote ${flags.out}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
