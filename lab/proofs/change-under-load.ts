/**
 * change-under-load: what a client sees while the proxy is changed. HTTP load (keep-alive and
 * new-connection clients, lab/proofs/change-load.cjs) runs through HAProxy in the proxy namespace,
 * started by the proxy image's own entrypoint (master-worker, config watch), while the scenario
 * 1. publishes N config changes the way a ConfigMap volume does (the ..data symlink swapped):
 *    the entrypoint checks each and reloads the master (SIGUSR2);
 * 2. hands over the way a DaemonSet with `handover: surge` does: a second entrypoint starts beside
 *    the first and binds the same ports (SO_REUSEPORT); the first one's drain sees it and the first
 *    is stopped with SIGUSR1 (soft stop);
 * 3. as the control, restarts it plainly (`handover: replace` without a load balancer that
 *    drains): SIGUSR1, wait for the exit, start again.
 * Every failed request is put on the event before it; the measures are per kind of event.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assessValidity, type BenchResult } from "../../components/bench/result";
import { labRuntimeDir } from "../../components/lab/topology";
import { proxySpecSchema } from "../../components/proxy/haproxy";
import type { ProofContext, ProofScenario } from "./types";

type EventKind = "reload" | "handover" | "restart";
const KINDS: EventKind[] = ["reload", "handover", "restart"];
const FAILURE_KINDS = ["connect", "reset", "status", "timeout", "other"] as const;

interface LoadReport {
  started: number;
  ended: number;
  counts: Record<"keepalive" | "fresh", { ok: number; failed: number; staleRetries: number; lastOk: number }>;
  failures: Array<{ t: number; mode: string; kind: string }>;
}

/** The proxy image's entrypoint: beside the sources (lab/proofs) or the built package (dist/lab/proofs). */
function entrypointPath(): string {
  const candidates = [
    join(__dirname, "..", "..", "proxy-image", "entrypoint.sh"),
    join(__dirname, "..", "..", "..", "proxy-image", "entrypoint.sh"),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`change-under-load: proxy-image/entrypoint.sh not found (looked in ${candidates.join(", ")})`);
  return found;
}

const pause = (seconds: number) => spawnSync("sleep", [String(seconds)]);

function waitFor(what: string, probe: () => boolean, seconds: number): void {
  const end = Date.now() + seconds * 1000;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`change-under-load: ${what} did not happen within ${seconds} s`);
    pause(0.05);
  }
}

function run(ctx: ProofContext): BenchResult[] {
  const { a } = ctx;
  const spec = proxySpecSchema.parse(ctx.spec);
  const http = spec.listeners.find((l) => l.mode === "http");
  if (!http) throw new Error("change-under-load: the lab's proxy spec has no http listener");
  const reloads = ctx.quick ? 5 : 20;
  const dir = join(ctx.labDir, `change-${ctx.label}`);
  rmSync(dir, { recursive: true, force: true });
  const cfgDir = join(dir, "config");
  mkdirSync(cfgDir, { recursive: true });
  const entrypoint = join(dir, "entrypoint.sh");
  copyFileSync(entrypointPath(), entrypoint);
  const driver = join(dir, "change-load.cjs");
  copyFileSync(join(__dirname, "change-load.cjs"), driver);
  // Each HAProxy its own runtime directory, as each pod has its own emptyDir.
  const runtime = (n: string) => join(dir, `rt-${n}`);
  const base = readFileSync(ctx.haproxyCfg, "utf8")
    .split(`${labRuntimeDir(ctx.topology)}/`)
    .join("RUNTIME_DIR_PLACEHOLDER/");

  let version = 0;
  /** A ConfigMap update: a new directory, then ..data swapped to it in one rename. */
  const publish = (text: string) => {
    const v = `..v${++version}`;
    mkdirSync(join(cfgDir, v));
    writeFileSync(join(cfgDir, v, "haproxy.cfg"), text);
    symlinkSync(v, join(cfgDir, "..data_tmp"));
    renameSync(join(cfgDir, "..data_tmp"), join(cfgDir, "..data"));
  };
  // A change that matters to HAProxy and not to the load: the client timeout, one second more each time.
  const variant = (i: number, rt: string) =>
    base
      .split("RUNTIME_DIR_PLACEHOLDER/")
      .join(`${rt}/`)
      .replace(/^ {2}timeout client (\d+)s$/m, (_, s: string) => `  timeout client ${Number(s) + i}s`);

  const nsProxy = a.namespaces.proxy;
  const nsClient = a.namespaces.client;
  const started: Array<{ pid: number; what: string }> = [];
  /** Starts argv in the background in ns, output to files; returns its PID (exec keeps it for the entrypoint). */
  const background = (ns: string, what: string, argv: string[], env: Record<string, string> = {}): number => {
    const out = join(dir, `${what}.out`);
    const err = join(dir, `${what}.err`);
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const r = ctx.exec(ns, [
      "sh",
      "-c",
      'out=$1 err=$2; shift 2; "$@" >"$out" 2>"$err" </dev/null & echo $!',
      "sh",
      out,
      err,
      "env",
      ...envArgs,
      ...argv,
    ]);
    const pid = Number(r.stdout.trim());
    if (r.code !== 0 || !Number.isInteger(pid) || pid <= 0) throw new Error(`change-under-load: could not start ${what}: ${r.stderr}`);
    started.push({ pid, what });
    return pid;
  };
  const alive = (pid: number) => spawnSync("kill", ["-0", String(pid)]).status === 0;
  const signal = (pid: number, sig: string) => spawnSync("kill", [`-${sig}`, String(pid)]);
  const startProxy = (name: string, log = `haproxy-${name}`) =>
    background(nsProxy, log, ["sh", entrypoint], {
      HAPROXY_CFG: join(cfgDir, "haproxy.cfg"),
      RUNTIME_DIR: runtime(name),
      TUNE_SH: join(dir, "no-tune.sh"),
      HAPROXY_BIN: "haproxy",
      CONFIG_POLL_SECONDS: "1",
    });
  const status = (name: string): Record<string, string> => {
    try {
      return Object.fromEntries(
        readFileSync(join(runtime(name), "config-status"), "utf8")
          .trim()
          .split("\n")
          .map((l) => l.split("=", 2)),
      );
    } catch {
      return {};
    }
  };
  const serving = (name: string) => {
    try {
      const r = ctx.exec(nsProxy, ["socat", "-t", "2", "-", `UNIX-CONNECT:${runtime(name)}/admin.sock`], {
        input: "show info\n",
        timeoutMs: 3000,
      });
      return /^Pid: \d+$/m.test(r.stdout);
    } catch {
      return false; // socat gave up (nothing listens yet) before taking its input: EPIPE
    }
  };
  const stop = (pid: number) => {
    signal(pid, "USR1");
    waitFor(`HAProxy master ${pid} to exit after SIGUSR1`, () => !alive(pid), 40);
  };

  const events: Array<{ t: number; kind: EventKind }> = [];
  let report: LoadReport;
  const t0 = Date.now();
  try {
    // Both instances read one mounted config; the runtime directory in it is the first one's, and
    // the second instance gets its own copy by the same text with its directory (as in its own pod).
    publish(variant(0, runtime("a")));
    symlinkSync("..data/haproxy.cfg", join(cfgDir, "haproxy.cfg"));
    const first = startProxy("a");
    waitFor("the first HAProxy to serve", () => serving("a"), 20);

    const load = background(nsClient, "load", ["node", driver, a.proxy, String(http.port), "4", "4"]);
    waitFor(
      "the load to run",
      () => existsSync(join(dir, "load.err")) && readFileSync(join(dir, "load.err"), "utf8").includes("running"),
      10,
    );
    pause(1);

    for (let i = 1; i <= reloads; i++) {
      events.push({ t: Date.now(), kind: "reload" });
      publish(variant(i, runtime("a")));
      waitFor(`reload ${i}`, () => Number(status("a").reloads ?? 0) >= i, 15);
      ctx.progress(`lab: change-under-load ${ctx.label}: reload ${i}/${reloads} done`);
      pause(0.3);
    }
    pause(1);

    // Handover: a second pod's HAProxy binds beside the first (SO_REUSEPORT), then the first goes.
    events.push({ t: Date.now(), kind: "handover" });
    const second = background(nsProxy, "haproxy-b", ["sh", entrypoint], {
      // Its own copy of the config, naming its own runtime directory.
      HAPROXY_CFG: (() => {
        const own = join(dir, "config-b.cfg");
        writeFileSync(own, variant(reloads, runtime("b")));
        return own;
      })(),
      RUNTIME_DIR: runtime("b"),
      TUNE_SH: join(dir, "no-tune.sh"),
      HAPROXY_BIN: "haproxy",
      CONFIG_POLL_SECONDS: "0",
    });
    waitFor("the second HAProxy to serve", () => serving("b"), 20);
    const drain = ctx.exec(nsProxy, ["env", `RUNTIME_DIR=${runtime("a")}`, "DRAIN_SECONDS=5", "sh", entrypoint, "drain"], {
      timeoutMs: 15_000,
    });
    ctx.progress(`lab: change-under-load ${ctx.label}: handover drain: ${drain.stderr.trim()}`);
    stop(first);
    pause(1);

    // Control: a plain restart, stop then start, with nothing beside it.
    events.push({ t: Date.now(), kind: "restart" });
    stop(second);
    // The same pod's config and runtime directory again, as a restarted container has them.
    const third = startProxy("a", "haproxy-a-restarted");
    waitFor("the restarted HAProxy to serve", () => serving("a"), 20);
    pause(1);

    signal(load, "TERM");
    waitFor("the load to report", () => !alive(load), 15);
    report = JSON.parse(readFileSync(join(dir, "load.out"), "utf8")) as LoadReport;
    stop(third);
    writeFileSync(join(dir, "events.json"), `${JSON.stringify(events)}\n`);
  } finally {
    for (const p of started.reverse())
      if (alive(p.pid)) {
        signal(p.pid, "TERM");
        pause(0.2);
        if (alive(p.pid)) signal(p.pid, "KILL");
      }
  }

  // Each failure belongs to the last event before it (none before the first).
  const per: Record<EventKind, { events: number; failed: number; byKind: Record<string, number>; worst: number }> = {
    reload: { events: 0, failed: 0, byKind: {}, worst: 0 },
    handover: { events: 0, failed: 0, byKind: {}, worst: 0 },
    restart: { events: 0, failed: 0, byKind: {}, worst: 0 },
  };
  const perEvent = events.map(() => 0);
  let before = 0;
  for (const e of events) per[e.kind].events++;
  for (const f of report.failures) {
    let idx = -1;
    for (let i = 0; i < events.length; i++) if (events[i].t <= f.t) idx = i;
    if (idx < 0) {
      before++;
      continue;
    }
    const k = per[events[idx].kind];
    k.failed++;
    k.byKind[f.kind] = (k.byKind[f.kind] ?? 0) + 1;
    perEvent[idx]++;
  }
  events.forEach((e, i) => (per[e.kind].worst = Math.max(per[e.kind].worst, perEvent[i])));

  const measures: Record<string, number> = { failedBeforeEvents: before };
  for (const kind of KINDS) {
    const k = per[kind];
    measures[`${kind}Events`] = k.events;
    measures[`${kind}FailedRequests`] = k.failed;
    measures[`${kind}ConnectErrors`] = k.byKind.connect ?? 0;
    measures[`${kind}Resets`] = k.byKind.reset ?? 0;
    measures[`${kind}OtherFailures`] = k.failed - (k.byKind.connect ?? 0) - (k.byKind.reset ?? 0);
    measures[`${kind}WorstEventFailedRequests`] = k.worst;
  }
  const c = report.counts;
  measures.keepaliveRequestsOk = c.keepalive.ok;
  measures.newConnectionRequestsOk = c.fresh.ok;
  measures.staleKeepaliveRetries = c.keepalive.staleRetries + c.fresh.staleRetries;
  const errors = Object.fromEntries(FAILURE_KINDS.map((k) => [k, report.failures.filter((f) => f.kind === k).length]));
  const seconds = Math.max(0.001, (report.ended - report.started) / 1000);
  const ok = c.keepalive.ok + c.fresh.ok;
  ctx.progress(
    `lab: change-under-load ${ctx.label}: failed requests reload ${per.reload.failed}/${per.reload.events} events, handover ${per.handover.failed}, restart ${per.restart.failed} (${Math.round((Date.now() - t0) / 1000)} s)`,
  );
  return [
    {
      schemaVersion: 1,
      scenario: "change-under-load",
      profile: ctx.label,
      run: ctx.run,
      tool: "lab-driver",
      durationSeconds: seconds,
      concurrency: 8,
      target: `proxy ${a.proxy}:${http.port}`,
      rps: ok / seconds,
      errors,
      validity: assessValidity({}, ok),
      measures,
    },
  ];
}

export const changeUnderLoad: ProofScenario = {
  name: "change-under-load",
  summary:
    "HTTP load (keep-alive and new connections) through HAProxy while its config is reloaded N times, then handed over to a second instance, then restarted",
  shows:
    "Config reloads (entrypoint watch, haproxy -c, SIGUSR2 with expose-fd listeners) and a surge handover (SO_REUSEPORT beside the old one, then SIGUSR1) fail no request; a plain stop/start does.",
  settings: ["proxy.kubernetes.configPollSeconds", "proxy.kubernetes.handover", "proxy.kubernetes.drainSeconds"],
  inQuick: true,
  tools: { node: "nodejs", socat: "socat" },
  startsProxy: true,
  run,
};
