/**
 * dead-peer: an idle L4 tunnel through HAProxy whose client disappears silently (nft in the
 * client namespace drops everything to and from the proxy, then the client is killed: no FIN,
 * no RST reaches the proxy). Without SO_KEEPALIVE the proxy cannot tell: it holds the backend
 * connection until `timeout tunnel` (an hour). With the profile's keepalive sysctls HAProxy
 * renders `option clitcpka`, and the kernel ends the client side after
 * tcp_keepalive_time + tcp_keepalive_intvl × tcp_keepalive_probes; HAProxy then closes the
 * backend side. Measured: seconds until the proxy → backend connection is gone, and the probes
 * the kernel sent (ss -o timer). Long: full runs only.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchResult } from "../../components/bench/result";
import type { ProofContext, ProofScenario } from "./types";
import { proofResult, proxyAnswers, readSysctl, sleepMs, startInNamespace, waitFor } from "./util";

export interface SsTimerSocket {
  local: string;
  peer: string;
  /** ss -o's timer:(name,expires,count); for keepalive, count is the probes sent unanswered. */
  timer?: { name: string; expires: string; count: number };
}

/** `ss -tnoH state established ...` lines: addresses and the timer, when one runs. Throws on a line that is not a socket. */
export function parseSsTimers(text: string): SsTimerSocket[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const m = /^\s*(?:[A-Za-z-]+\s+)?\d+\s+\d+\s+(\S+:(?:\d+|\*))\s+(\S+:(?:\d+|\*))(.*)$/.exec(l);
      if (!m) throw new Error(`ss: not a socket line: ${l.slice(0, 120)}`);
      const t = /timer:\(([a-z_]+),([^,]+),(\d+)\)/.exec(m[3]);
      return { local: m[1], peer: m[2], ...(t ? { timer: { name: t[1], expires: t[2], count: Number(t[3]) } } : {}) };
    });
}

/** An echo server on the backend and the listener to it, appended to the profile's rendered config (its defaults apply). */
export function deadPeerConfig(cfg: string, proxy: string, backend: string, port: number): string {
  return `${cfg.trimEnd()}\n\nfrontend dead_peer\n  mode tcp\n  bind ${proxy}:${port}\n  default_backend dead_peer_echo\n\nbackend dead_peer_echo\n  mode tcp\n  server echo ${backend}:${port}\n`;
}

const PORT = 5299;
const TABLE = "edgetune_deadpeer";

/** Connects, checks the echo, then idles; prints "ready" once the tunnel carried a byte both ways. */
const CLIENT_JS = `
const s = require("net").connect({ host: process.argv[1], port: Number(process.argv[2]) });
s.on("connect", () => s.write("x"));
s.once("data", () => console.log("ready"));
s.on("error", (e) => { console.log("error " + e.message); process.exit(1); });
setTimeout(() => process.exit(0), 600000);
`;

/** A one-connection-at-a-time echo server in the backend namespace. */
const ECHO_JS = `
require("net").createServer((c) => { c.on("error", () => {}); c.pipe(c); }).listen(Number(process.argv[2]), process.argv[1], () => console.log("listening"));
setTimeout(() => process.exit(0), 600000);
`;

export const deadPeer: ProofScenario = {
  name: "dead-peer",
  summary: "an idle L4 tunnel whose client vanishes silently: seconds until the proxy drops the backend side",
  shows:
    "kernel keepalive (tcp_keepalive_*, with HAProxy's clitcpka) ends a dead client's tunnel after time + intvl × probes; without it the backend connection is held for the whole run",
  settings: ["net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "haproxy: clitcpka/srvtcpka"],
  inQuick: false,
  startsProxy: true,
  tools: { nft: "nftables", ss: "iproute2" },
  run(ctx: ProofContext): BenchResult[] {
    const { client, proxy, backend } = ctx.a.namespaces;
    const keepalive = ["time", "intvl", "probes"].map((k) => Number(readSysctl(ctx, proxy, `net.ipv4.tcp_keepalive_${k}`)));
    const cfgText = readFileSync(ctx.haproxyCfg, "utf8");
    const clitcpka = /^\s+option clitcpka$/m.test(cfgText);
    const expected = keepalive[0] + keepalive[1] * keepalive[2];
    // The recommended 60 + 10 × 6 = 120 s needs a window past it; a default run never detects.
    const windowSeconds = ctx.durationSeconds ?? 135;
    const cfg = join(ctx.labDir, `haproxy-${ctx.label}-dead-peer.cfg`);
    writeFileSync(cfg, deadPeerConfig(cfgText, ctx.a.proxy, ctx.a.backend, PORT));
    const echo = startInNamespace(
      backend,
      [process.execPath, "-e", ECHO_JS, ctx.a.backend, String(PORT)],
      join(ctx.labDir, "dead-peer-echo.log"),
    );
    let peer: ReturnType<typeof startInNamespace> | undefined;
    ctx.step("proxy-start", cfg);
    try {
      if (!waitFor(() => echo.output().includes("listening"), 5000))
        throw new Error(`dead-peer: the echo server did not start: ${echo.output()}`);
      if (!proxyAnswers(ctx)) throw new Error("dead-peer: HAProxy did not answer its health endpoint");
      peer = startInNamespace(
        client,
        [process.execPath, "-e", CLIENT_JS, ctx.a.proxy, String(PORT)],
        join(ctx.labDir, "dead-peer-client.log"),
      );
      const p = peer;
      if (!waitFor(() => /ready|error/.test(p.output()), 5000) || !p.output().includes("ready"))
        throw new Error(`dead-peer: the tunnel did not carry a byte: ${p.output()}`);
      const rules = `table inet ${TABLE} {
  chain in { type filter hook input priority 0; policy accept; ip saddr ${ctx.a.proxy} drop; }
  chain out { type filter hook output priority 0; policy accept; ip daddr ${ctx.a.proxy} drop; }
}
`;
      const nft = ctx.exec(client, ["nft", "-f", "-"], { input: rules, timeoutMs: 10000 });
      if (nft.code !== 0) throw new Error(`dead-peer: nft in ${client} failed (${nft.code}): ${nft.stderr.trim()}`);
      const start = Date.now();
      p.stop();
      ctx.progress(
        `lab: dead-peer (${ctx.label}): client vanished; keepalive ${clitcpka ? `on, expected ${expected} s` : "off"}; watching up to ${windowSeconds} s`,
      );
      let probes = 0;
      let droppedAt: number | undefined;
      for (;;) {
        const t = (Date.now() - start) / 1000;
        const toBackend = parseSsTimers(
          ctx.exec(proxy, ["ss", "-tnoH", "state", "established", `( dport = :${PORT} )`], { timeoutMs: 5000 }).stdout,
        );
        const raw = ctx.exec(proxy, ["ss", "-tnoH", `( sport = :${PORT} )`], { timeoutMs: 5000 }).stdout;
        const toClient = parseSsTimers(raw);
        // The last raw output with a keepalive timer stays in the lab directory: what the probes were read from.
        if (toClient.some((s) => s.timer?.name === "keepalive")) writeFileSync(join(ctx.labDir, `dead-peer-${ctx.label}.txt`), raw);
        for (const s of toClient) if (s.timer?.name === "keepalive") probes = Math.max(probes, s.timer.count);
        if (toBackend.length === 0) {
          droppedAt = t;
          break;
        }
        if (t >= windowSeconds) break;
        sleepMs(1000);
      }
      ctx.progress(
        `lab: dead-peer (${ctx.label}): ${droppedAt === undefined ? `backend connection still held after ${windowSeconds} s` : `backend connection dropped after ${droppedAt.toFixed(1)} s`}; ${probes} keepalive probes seen`,
      );
      return [
        proofResult("dead-peer", ctx, {
          durationSeconds: windowSeconds,
          target: `proxy ${ctx.a.proxy}:${PORT}`,
          measures: {
            keepaliveOn: clitcpka ? 1 : 0,
            ...(clitcpka && Number.isFinite(expected) ? { expectedSeconds: expected } : {}),
            backendDropped: droppedAt === undefined ? 0 : 1,
            ...(droppedAt !== undefined ? { backendDroppedSeconds: Math.round(droppedAt * 10) / 10 } : {}),
            keepaliveProbesSeen: probes,
            windowSeconds,
          },
        }),
      ];
    } finally {
      peer?.stop();
      echo.stop();
      ctx.step("proxy-stop");
      ctx.exec(client, ["nft", "delete", "table", "inet", TABLE], { timeoutMs: 10000 });
    }
  },
};
