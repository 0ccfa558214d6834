/**
 * fin-wait: clients that get their response, are closed by the proxy (`Connection: close`:
 * HAProxy sends the first FIN), and then vanish — nft in the client namespace drops their own
 * FIN and RST, so the proxy's orphaned sockets sit in FIN-WAIT-2 until tcp_fin_timeout ends
 * them. Counted with ss and /proc/net/sockstat in the proxy namespace over time: the default
 * (60 s) holds every one for the whole window, the tuned value lets them go.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchResult } from "../../components/bench/result";
import type { ProofContext, ProofScenario } from "./types";
import { proofResult, readSysctl, sleepMs } from "./util";

/** /proc/net/sockstat's TCP line: sockets in use, orphaned (no process), TIME_WAIT (incl. FIN-WAIT-2 minisockets), allocated. */
export interface TcpSockstat {
  inuse: number;
  orphan: number;
  tw: number;
  alloc: number;
  /** Pages of TCP socket memory. */
  mem: number;
}

/** Parses /proc/net/sockstat; throws when it has no well-formed TCP line. */
export function parseSockstat(text: string): TcpSockstat {
  const line = text.split("\n").find((l) => l.startsWith("TCP:"));
  if (!line) throw new Error("sockstat: no TCP: line");
  const fields = line.slice(4).trim().split(/\s+/);
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const n = Number(fields[i + 1]);
    if (!/^\d+$/.test(fields[i + 1])) throw new Error(`sockstat: ${fields[i]} is not a count: ${fields[i + 1]}`);
    out[fields[i]] = n;
  }
  for (const k of ["inuse", "orphan", "tw", "alloc", "mem"])
    if (out[k] === undefined) throw new Error(`sockstat: TCP line has no ${k}: ${line}`);
  return { inuse: out.inuse, orphan: out.orphan, tw: out.tw, alloc: out.alloc, mem: out.mem };
}

/**
 * `ss -tanH state fin-wait-2 ...` output: one socket per line. Counts them; throws on a line
 * that is not a socket (a usage message, an error), so a broken ss never reads as "0 held".
 */
export function countSsSockets(text: string): number {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  for (const l of lines)
    if (!/^\s*(?:[A-Z-]+\s+)?\d+\s+\d+\s+\S+:(?:\d+|\*)\s+\S+:(?:\d+|\*)/.test(l))
      throw new Error(`ss: not a socket line: ${l.slice(0, 120)}`);
  return lines.length;
}

/** The client: N requests with `Connection: close`, C at a time; keeps each socket open (half-open) until all are answered, then exits. */
const CLIENT_JS = `
const net = require("net");
const [host, port, n, conc] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
let started = 0, finished = 0, ok = 0, failed = 0;
const held = [];
function one() {
  if (started >= n) return;
  started++;
  let got = false, done = false;
  const s = net.connect({ host, port, allowHalfOpen: true });
  held.push(s);
  const finish = (good) => { if (done) return; done = true; good ? ok++ : failed++; if (++finished === n) end(); else one(); };
  s.setTimeout(10000, () => finish(false));
  s.on("connect", () => s.write("GET / HTTP/1.1\\r\\nHost: lab\\r\\nConnection: close\\r\\n\\r\\n"));
  s.on("data", () => { got = true; });
  s.on("end", () => finish(got));
  s.on("error", () => finish(false));
}
// The ACKs of the proxy's FINs leave before our own FINs (which nft drops): wait, then vanish.
function end() { setTimeout(() => { console.log(JSON.stringify({ ok, failed })); process.exit(0); }, 1000); }
for (let i = 0; i < conc; i++) one();
`;

const TABLE = "edgetune_finwait";

export const finWait: ProofScenario = {
  name: "fin-wait",
  summary: "clients closed by the proxy vanish (nft drops their FIN): the proxy's orphaned FIN-WAIT-2 sockets over time",
  shows:
    "tcp_fin_timeout bounds how long the proxy holds sockets of clients that vanished: all held at the default 60 s, gone after the tuned value",
  settings: ["net.ipv4.tcp_fin_timeout"],
  inQuick: true,
  tools: { nft: "nftables", ss: "iproute2" },
  run(ctx: ProofContext): BenchResult[] {
    const { client, proxy } = ctx.a.namespaces;
    const port = ctx.spec.listeners.find((l) => l.mode === "http")?.port ?? 80;
    const clients = ctx.quick ? 300 : 1000;
    const windowSeconds = ctx.durationSeconds ?? (ctx.quick ? 14 : 40);
    const finTimeout = Number(readSysctl(ctx, proxy, "net.ipv4.tcp_fin_timeout"));
    const rules = `table inet ${TABLE} {
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr ${ctx.a.proxy} tcp dport ${port} tcp flags & (fin | rst) != 0 drop
  }
}
`;
    const nft = ctx.exec(client, ["nft", "-f", "-"], { input: rules, timeoutMs: 10000 });
    if (nft.code !== 0) throw new Error(`fin-wait: nft in ${client} failed (${nft.code}): ${nft.stderr.trim()}`);
    try {
      ctx.progress(`lab: fin-wait (${ctx.label}): ${clients} clients close and vanish; counting for ${windowSeconds} s`);
      const drive = ctx.exec(client, [process.execPath, "-e", CLIENT_JS, ctx.a.proxy, String(port), String(clients), "100"], {
        timeoutMs: 60000,
      });
      const served = /\{"ok":(\d+),"failed":(\d+)\}/.exec(drive.stdout);
      if (!served) throw new Error(`fin-wait: the client reported nothing (${drive.code}): ${drive.stderr.slice(-300)}`);
      const start = Date.now();
      const samples: { t: number; finWait2: number; sockstat: TcpSockstat }[] = [];
      const filter = `( sport = :${port} )`;
      for (;;) {
        const t = (Date.now() - start) / 1000;
        const ss = ctx.exec(proxy, ["ss", "-tanH", "state", "fin-wait-2", filter], { timeoutMs: 10000 });
        const stat = ctx.exec(proxy, ["cat", "/proc/net/sockstat"], { timeoutMs: 5000 });
        // The first sample's raw output stays in the lab directory: what the counts were read from.
        if (!samples.length) writeFileSync(join(ctx.labDir, `fin-wait-${ctx.label}.txt`), `${ss.stdout}\n--- sockstat\n${stat.stdout}`);
        samples.push({ t, finWait2: countSsSockets(ss.stdout), sockstat: parseSockstat(stat.stdout) });
        if (t >= windowSeconds) break;
        sleepMs(Math.min(1000, Math.max(0, (windowSeconds - t) * 1000)));
      }
      const first = samples[0];
      const last = samples[samples.length - 1];
      const cleared = samples.find((s) => s.finWait2 === 0);
      ctx.progress(
        `lab: fin-wait (${ctx.label}): FIN-WAIT-2 ${samples.map((s) => `${Math.round(s.t)}s:${s.finWait2}`).join(" ")} (fin_timeout ${finTimeout})`,
      );
      const ok = Number(served[1]);
      const failed = Number(served[2]);
      return [
        proofResult("fin-wait", ctx, {
          durationSeconds: windowSeconds,
          target: `proxy ${ctx.a.proxy}:${port}`,
          errors: { connect: failed },
          reasons: ok === 0 ? ["no client got a response: nothing was left to count"] : [],
          measures: {
            clients: ok,
            ...(Number.isFinite(finTimeout) ? { finTimeoutSeconds: finTimeout } : {}),
            finWait2Start: first.finWait2,
            finWait2Peak: Math.max(...samples.map((s) => s.finWait2)),
            finWait2End: last.finWait2,
            ...(cleared ? { finWait2ClearedSeconds: Math.round(cleared.t * 10) / 10 } : {}),
            sockstatTwPeak: Math.max(...samples.map((s) => s.sockstat.tw)),
            sockstatOrphanPeak: Math.max(...samples.map((s) => s.sockstat.orphan)),
            windowSeconds,
          },
        }),
      ];
    } finally {
      ctx.exec(client, ["nft", "delete", "table", "inet", TABLE], { timeoutMs: 10000 });
    }
  },
};
