/**
 * reuseport: HAProxy with one listening socket that all threads accept from, against one
 * SO_REUSEPORT socket per thread (`shards by-thread`, what edgetune renders; HAProxy >= 2.5),
 * on the conn-rate load (a new connection per request). The guides claim +50–100 % for per-thread
 * accept queues (seed 000). Both configurations run per profile, alternating which goes first;
 * the listening sockets are counted (ss -lt) so each run is known to be what it says.
 */
import { parseToolOutput } from "../../components/bench/parsers";
import type { BenchResult } from "../../components/bench/result";
import { scenarioInvocations, SCENARIOS } from "../../components/bench/scenarios";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProofContext, ProofScenario } from "./types";
import { proofResult, proxyAnswers } from "./util";
import { countSsSockets } from "./fin-wait";

/** The same haproxy.cfg with every bind's `shards by-thread` removed: one listening socket per bind. */
export function oneSocketConfig(cfg: string): string {
  const out = cfg.replace(/^(\s+bind .*?) shards by-thread/gm, "$1");
  if (out === cfg) throw new Error("reuseport: the config has no `shards by-thread` bind to remove");
  return out;
}

/** `ss -ltnH` listening sockets on one port, from its output. */
export function countListeners(ssOutput: string, port: number): number {
  return countSsSockets(
    ssOutput
      .split("\n")
      .filter((l) => new RegExp(`:${port}\\s`).test(l))
      .join("\n"),
  );
}

export const reuseport: ProofScenario = {
  name: "reuseport",
  summary: "conn-rate through HAProxy with one listening socket vs one SO_REUSEPORT socket per thread (shards by-thread)",
  shows: "whether per-thread accept queues raise the connection rate here (the guides: +50–100 %)",
  settings: ["haproxy: bind shards by-thread"],
  inQuick: true,
  startsProxy: true,
  tools: { ss: "iproute2" },
  run(ctx: ProofContext): BenchResult[] {
    const sc = SCENARIOS["conn-rate"];
    const port = ctx.spec.listeners.find((l) => l.mode === "http")?.port ?? 80;
    const duration = ctx.durationSeconds ?? (ctx.quick ? 4 : 8);
    const rounds = ctx.quick ? 1 : 2;
    const perThreadCfg = ctx.haproxyCfg;
    const oneCfg = join(ctx.labDir, `haproxy-${ctx.label}-one-socket.cfg`);
    writeFileSync(oneCfg, oneSocketConfig(readFileSync(perThreadCfg, "utf8")));
    const inv = scenarioInvocations(sc, {
      environment: "local",
      host: ctx.a.proxy,
      port,
      quick: ctx.quick,
      durationSeconds: duration,
      luaDir: ctx.labDir,
    })[0];
    const rates: Record<"one" | "perThread", number[]> = { one: [], perThread: [] };
    const sockets: Record<"one" | "perThread", number> = { one: 0, perThread: 0 };
    const errors: Record<string, number> = {};
    for (let round = 0; round < rounds; round++) {
      const order: ("one" | "perThread")[] = (ctx.run + round) % 2 === 0 ? ["one", "perThread"] : ["perThread", "one"];
      for (const which of order) {
        ctx.step("proxy-start", which === "one" ? oneCfg : perThreadCfg);
        try {
          if (!proxyAnswers(ctx)) throw new Error(`reuseport: HAProxy (${which}) did not answer its health endpoint`);
          const listening = ctx.exec(ctx.a.namespaces.proxy, ["ss", "-ltnH"], { timeoutMs: 5000 }).stdout;
          writeFileSync(join(ctx.labDir, `reuseport-${ctx.label}-${which}.txt`), listening);
          sockets[which] = countListeners(listening, port);
          const r = ctx.exec(ctx.a.namespaces.client, inv.argv, { timeoutMs: (duration + 30) * 1000 });
          const res = parseToolOutput(inv.tool, r.stdout, {
            scenario: "conn-rate",
            profile: ctx.label,
            run: ctx.run,
            concurrency: inv.concurrency,
            connectionClose: true,
          });
          rates[which].push(res.connsPerSecond ?? res.rps ?? 0);
          for (const [k, n] of Object.entries(res.errors)) errors[k] = (errors[k] ?? 0) + n;
          ctx.progress(
            `lab: reuseport (${ctx.label}) ${which === "one" ? "one socket " : "per thread"}: ${Math.round(rates[which].at(-1)!)} conn/s`,
          );
        } finally {
          ctx.step("proxy-stop");
        }
      }
    }
    const med = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    };
    const one = med(rates.one);
    const perThread = med(rates.perThread);
    const reasons: string[] = [];
    if (sockets.one !== 1) reasons.push(`the one-socket config had ${sockets.one} listening sockets`);
    if (sockets.perThread < 2)
      reasons.push(`shards by-thread gave ${sockets.perThread} listening sockets: one thread only, nothing to compare`);
    return [
      proofResult("reuseport", ctx, {
        durationSeconds: duration,
        target: `proxy ${ctx.a.proxy}:${port}`,
        errors,
        reasons,
        measures: {
          connsPerSecondOneSocket: one,
          connsPerSecondPerThread: perThread,
          perThreadGainPercent: one > 0 ? Math.round(((perThread - one) / one) * 1000) / 10 : 0,
          listenSocketsOne: sockets.one,
          listenSocketsPerThread: sockets.perThread,
          rounds,
        },
      }),
    ];
  },
};
