/**
 * conn-hold: idle keep-alive HTTP connections through HAProxy, opened in steps and held, until
 * they stop being answered. What decides how many a proxy holds is its file-descriptor budget:
 * HAProxy's maxconn, which the lab renders from the real RLIMIT_NOFILE (hard 20,000 here, that
 * root cannot raise) for every profile alike. So on this machine baseline and tuned hold the
 * same number, and the scenario says so with the figures; what it measures besides is memory
 * per held connection — HAProxy's RSS and the kernel's socket slabs — the guides' "~10 MB per
 * 1,000 connections" claim checked on edgetune's own proxy.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseNstat } from "../../components/bench/parsers";
import { assessValidity, RESULT_SCHEMA_VERSION, type BenchResult } from "../../components/bench/result";
import { ProofOutputError, proxyNstat, haproxyWorkers } from "./proof-util";
import type { ProofContext, ProofScenario } from "./types";

/** /proc/net/sockstat as protocol → field → value ("TCP: inuse 5 orphan 0 ..." → TCP.inuse = 5). */
export function parseSockstat(text: string): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const line of text.split("\n").filter((l) => l.trim())) {
    const m = /^(\w+):((?:\s+\w+\s+\d+)+)\s*$/.exec(line);
    if (!m) throw new ProofOutputError("sockstat", `line is not "PROTO: name value ...": ${JSON.stringify(line.slice(0, 60))}`);
    const fields: Record<string, number> = {};
    const parts = m[2].trim().split(/\s+/);
    for (let i = 0; i < parts.length; i += 2) fields[parts[i]] = Number(parts[i + 1]);
    out[m[1]] = fields;
  }
  if (!out.TCP) throw new ProofOutputError("sockstat", "no TCP line");
  return out;
}

/** /proc/slabinfo lines as cache → bytes in active objects (active_objs × objsize). */
export function parseSlabinfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n").filter((l) => l.trim() && !l.startsWith("#") && !l.startsWith("slabinfo"))) {
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(line);
    if (!m)
      throw new ProofOutputError("slabinfo", `line is not "name active_objs num_objs objsize ...": ${JSON.stringify(line.slice(0, 60))}`);
    out[m[1]] = Number(m[2]) * Number(m[4]);
  }
  return out;
}

export interface ConnHoldSample {
  /** Connections the client had opened by this step (0: before any). */
  step: number;
  /** Open and answering at this step. */
  held: number;
  errors: Record<string, number>;
  /** HAProxy's workers' RSS, bytes. */
  proxyRssBytes: number;
  /** TCP sockets in use per namespace. */
  sockets: { client: number; proxy: number; backend: number };
  /** Bytes in the socket-related slab caches (TCP, sock_inode_cache, filp, eventpoll_epi, dentry). */
  slabBytes: number;
}

/** proof-client.js hold's output: one sample per JSON line. */
export function parseConnHold(output: string): ConnHoldSample[] {
  const lines = output.split("\n").filter((l) => l.trim());
  if (!lines.length) throw new ProofOutputError("conn-hold", "no samples");
  return lines.map((line, i) => {
    let raw: {
      step?: unknown;
      held?: unknown;
      errors?: unknown;
      rssKb?: Record<string, unknown>;
      sockstat?: Record<string, unknown>;
      slabinfo?: unknown;
    };
    try {
      raw = JSON.parse(line) as typeof raw;
    } catch (e) {
      throw new ProofOutputError("conn-hold", `line ${i + 1} is not JSON (${(e as Error).message})`);
    }
    const num = (v: unknown, what: string) => {
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
        throw new ProofOutputError("conn-hold", `line ${i + 1}: ${what} is not a count`);
      return v;
    };
    const errors = Object.fromEntries(
      Object.entries((raw.errors ?? {}) as Record<string, unknown>).map(([k, v]) => [k, num(v, `errors.${k}`)]),
    );
    const rss = Object.values(raw.rssKb ?? {});
    if (!rss.length) throw new ProofOutputError("conn-hold", `line ${i + 1}: no HAProxy RSS`);
    const tcp = (ns: string) => {
      const text = raw.sockstat?.[ns];
      if (typeof text !== "string") throw new ProofOutputError("conn-hold", `line ${i + 1}: no sockstat for ${ns}`);
      return parseSockstat(text).TCP.inuse ?? 0;
    };
    if (typeof raw.slabinfo !== "string") throw new ProofOutputError("conn-hold", `line ${i + 1}: no slabinfo`);
    const slab = parseSlabinfo(raw.slabinfo);
    if (slab.TCP === undefined) throw new ProofOutputError("conn-hold", `line ${i + 1}: slabinfo has no TCP cache`);
    return {
      step: num(raw.step, "step"),
      held: num(raw.held, "held"),
      errors,
      proxyRssBytes: rss.reduce((a: number, v) => a + num(v, "rssKb") * 1024, 0),
      sockets: { client: tcp("client"), proxy: tcp("proxy"), backend: tcp("backend") },
      slabBytes: Object.values(slab).reduce((a, b) => a + b, 0),
    };
  });
}

/**
 * The scenario's figures from its samples. Memory is the difference between the sample
 * before any connection and the largest step held without an error, per connection held;
 * the kernel's share per socket is the slab growth over the sockets added in all three
 * namespaces (slabs are machine-wide), and the proxy's share is that times the proxy's own
 * sockets per held connection.
 */
export function connHoldMeasures(samples: readonly ConnHoldSample[], maxconn?: number): Record<string, number> {
  const base = samples.find((s) => s.step === 0);
  const steps = samples.filter((s) => s.step > 0);
  if (!base || !steps.length) throw new ProofOutputError("conn-hold", "needs the sample before any connection and at least one step");
  const errorsOf = (s: ConnHoldSample) => Object.values(s.errors).reduce((a, b) => a + b, 0);
  const clean = steps.filter((s) => errorsOf(s) === 0 && s.held === s.step);
  const top = clean.at(-1);
  const firstFail = steps.find((s) => errorsOf(s) > 0 || s.held < s.step);
  const m: Record<string, number> = {
    targetConnections: Math.max(...steps.map((s) => s.step)),
    heldMax: Math.max(...steps.map((s) => s.held)),
    heldWithoutErrors: top?.step ?? 0,
    failedConnections: steps.reduce((a, s) => a + errorsOf(s), 0),
  };
  if (firstFail) m.firstFailingStep = firstFail.step;
  if (maxconn !== undefined) m.haproxyMaxconn = maxconn;
  if (top) {
    const sockets = (s: ConnHoldSample) => s.sockets.client + s.sockets.proxy + s.sockets.backend;
    const proxyRss = (top.proxyRssBytes - base.proxyRssBytes) / top.held;
    const addedSockets = sockets(top) - sockets(base);
    const perSocket = addedSockets > 0 ? (top.slabBytes - base.slabBytes) / addedSockets : 0;
    const proxySockets = (top.sockets.proxy - base.sockets.proxy) / top.held;
    m.haproxyRssBytesPerConnection = Math.round(proxyRss);
    m.kernelBytesPerSocket = Math.round(perSocket);
    m.proxySocketsPerConnection = Math.round(proxySockets * 100) / 100;
    m.kernelBytesPerConnection = Math.round(perSocket * proxySockets);
    m.bytesPerConnection = Math.round(proxyRss + perSocket * proxySockets);
  }
  return m;
}

/** HAProxy's maxconn as the lab rendered it (presetenv EDGETUNE_MAXCONN). */
export function renderedMaxconn(cfg: string): number | undefined {
  const m = /presetenv EDGETUNE_MAXCONN (\d+)/.exec(cfg) ?? /^\s*maxconn (\d+)\s*$/m.exec(cfg);
  return m ? Number(m[1]) : undefined;
}

/** Steps as fractions of maxconn: below it, at it, and beyond it (where holding must stop). */
export function connHoldSteps(maxconn: number, quick: boolean): number[] {
  const fractions = quick ? [0.25, 0.9, 1.15] : [0.125, 0.25, 0.5, 0.75, 0.9, 1.15, 1.3];
  return fractions.map((f) => Math.max(1, Math.round(maxconn * f)));
}

const HTTP_PORT_FALLBACK = 80;

export const connHold: ProofScenario = {
  name: "conn-hold",
  summary: "idle keep-alive HTTP connections opened in steps through HAProxy and held: the most held, and bytes per connection",
  shows:
    "the file-descriptor budget (HAProxy maxconn from RLIMIT_NOFILE) caps idle connections held; proxy RSS and kernel slab per connection",
  settings: ["limits.nofile"],
  inQuick: true,
  run(ctx: ProofContext): BenchResult[] {
    const cfg = readFileSync(ctx.haproxyCfg, "utf8");
    const maxconn = renderedMaxconn(cfg);
    if (maxconn === undefined) throw new ProofOutputError("conn-hold", `no maxconn in ${ctx.haproxyCfg}`);
    const port = ctx.spec.listeners.find((l) => l.mode === "http")?.port ?? HTTP_PORT_FALLBACK;
    const steps = connHoldSteps(maxconn, ctx.quick);
    const holdMs = ctx.durationSeconds !== undefined ? ctx.durationSeconds * 1000 : ctx.quick ? 300 : 2000;
    const workers = haproxyWorkers(ctx.labDir);
    const backendPid = readFileSync(join(ctx.labDir, "nginx.pid"), "utf8").trim();
    const nstat = proxyNstat(ctx);
    ctx.progress(`lab: conn-hold (${ctx.label}): steps ${steps.join(", ")} (HAProxy maxconn ${maxconn})`);
    const t0 = Date.now();
    const r = ctx.exec(
      ctx.a.namespaces.client,
      [
        process.execPath,
        join(__dirname, "proof-client.js"),
        "hold",
        ctx.a.proxy,
        String(port),
        steps.join(","),
        String(holdMs),
        "3000",
        workers.join(","),
        String(workers[0]),
        backendPid,
      ],
      // Each step: connect + one request (3 s timeout) + the held round (3 s) + the hold.
      { timeoutMs: steps.length * (6000 + holdMs) + 10_000 },
    );
    const counters = parseNstat(nstat.after());
    if (r.code !== 0) throw new ProofOutputError("conn-hold", `client exited ${r.code}: ${r.stderr.trim().slice(-400)}`);
    // Kept beside the lab's other files: the raw samples behind the figures.
    writeFileSync(join(ctx.labDir, `conn-hold-${ctx.label}-${ctx.run}.out`), r.stdout);
    const samples = parseConnHold(r.stdout);
    const measures = connHoldMeasures(samples, maxconn);
    const last = samples.at(-1)!;
    const errors: Record<string, number> = {};
    for (const s of samples) for (const [k, v] of Object.entries(s.errors)) errors[k] = (errors[k] ?? 0) + v;
    measures.listenOverflows = counters.TcpExtListenOverflows ?? 0;
    return [
      {
        schemaVersion: RESULT_SCHEMA_VERSION,
        scenario: "conn-hold",
        profile: ctx.label,
        run: ctx.run,
        tool: "lab-driver",
        durationSeconds: Math.max(0.001, (Date.now() - t0) / 1000),
        concurrency: last.step,
        target: `proxy ${ctx.a.proxy}:${port}`,
        errors,
        validity: assessValidity({ listenOverflows: measures.listenOverflows }, measures.heldMax),
        measures,
      },
    ];
  },
};
