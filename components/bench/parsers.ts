import { z } from "zod";
import {
  assessValidity,
  parseBenchResult,
  RESULT_SCHEMA_VERSION,
  type BenchResult,
  type ScenarioName,
  type ValidityInputs,
} from "./result";

/**
 * Parsers from real tool output to BenchResult. Malformed input throws an
 * Error naming the tool and what was missing: a figure is never NaN.
 */

export class BenchParseError extends Error {
  constructor(tool: string, message: string) {
    super(`${tool}: ${message}`);
    this.name = "BenchParseError";
  }
}

/** What the output alone does not say: which scenario, which profile, what the run was. */
export interface ParseContext {
  scenario: ScenarioName;
  profile?: string;
  run?: number;
  target?: string;
  concurrency?: number;
  /** For HTTP: every request opened its own connection, so requests/s is also connections/s. */
  connectionClose?: boolean;
  /** Validity data measured outside the tool (client CPU from /proc, proxy counters from nstat). */
  validity?: ValidityInputs;
  clientCpuSaturatedPercent?: number;
}

function zodProblem(tool: string, what: string, error: z.ZodError): BenchParseError {
  const i = error.issues[0];
  return new BenchParseError(tool, `${what}: ${i.path.join(".") || "(root)"}: ${i.message}`);
}

function parseJson(tool: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BenchParseError(tool, `output is not JSON (${(e as Error).message})`);
  }
}

const usToMs = (us: number) => us / 1000;

// ---------------------------------------------------------------- wrk ----

const nullableNum = z.number().finite().nullable();
const wrkReportSchema = z.object({
  edgetune_wrk: z.literal(1),
  /** Set by churn-client.js, which reports in the same format. */
  tool: z.literal("tcp-churn").optional(),
  duration_us: z.number().positive(),
  requests: z.number().int().nonnegative(),
  bytes: z.number().nonnegative(),
  errors: z.object({
    connect: z.number().int(),
    read: z.number().int(),
    write: z.number().int(),
    status: z.number().int(),
    timeout: z.number().int(),
  }),
  latency_us: z.object({
    min: nullableNum,
    max: nullableNum,
    mean: nullableNum,
    stdev: nullableNum,
    percentiles: z.object({ "50": nullableNum, "90": nullableNum, "99": nullableNum, "99.9": nullableNum }),
  }),
  schedule: z
    .object({
      rate_per_connection: z.number().positive(),
      connections: z.number().int().positive(),
      samples: z.number().int().nonnegative(),
      behind: z.number().int().nonnegative(),
    })
    .optional(),
});
export type WrkReport = z.infer<typeof wrkReportSchema>;

/** Reads the JSON line that wrk-report.lua / wrk-paced.lua print from done(). */
export function readWrkReport(output: string): WrkReport {
  const line = output
    .split("\n")
    .reverse()
    .find((l) => l.startsWith('{"edgetune_wrk"'));
  if (!line)
    throw new BenchParseError(
      "wrk",
      'no {"edgetune_wrk":...} line: was wrk run with -s wrk-report.lua (or wrk-paced.lua), and did it finish?',
    );
  const r = wrkReportSchema.safeParse(parseJson("wrk", line));
  if (!r.success) throw zodProblem("wrk", "unexpected report", r.error);
  return r.data;
}

export function parseWrk(output: string, ctx: ParseContext): BenchResult {
  const w = readWrkReport(output);
  const seconds = w.duration_us / 1e6;
  // A non-2xx/3xx answer is an error, not throughput: a proxy answering 503 fast must not pass.
  const ok = Math.max(0, w.requests - w.errors.status);
  const p = w.latency_us.percentiles;
  const result: Record<string, unknown> = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    scenario: ctx.scenario,
    tool: w.tool ?? (w.schedule ? "wrk-paced" : "wrk"),
    durationSeconds: seconds,
    rps: ok / seconds,
    errors: { ...w.errors },
    validity: assessValidity(ctx.validity ?? {}, ok, ctx.clientCpuSaturatedPercent),
  };
  if (ctx.connectionClose) result.connsPerSecond = ok / seconds;
  if (ok > 0 && p["50"] !== null && p["90"] !== null && p["99"] !== null && p["99.9"] !== null) {
    result.latency = {
      method: w.schedule ? "schedule-corrected" : "closed-loop",
      p50Ms: usToMs(p["50"]),
      p90Ms: usToMs(p["90"]),
      p99Ms: usToMs(p["99"]),
      p999Ms: usToMs(p["99.9"]),
      ...(w.latency_us.max !== null ? { maxMs: usToMs(w.latency_us.max) } : {}),
      ...(w.latency_us.mean !== null ? { meanMs: usToMs(w.latency_us.mean) } : {}),
    };
  }
  return finish(result, ctx, w.schedule?.connections);
}

// ------------------------------------------------------------- iperf3 ----

const iperfSum = z.object({ seconds: z.number().positive(), bytes: z.number().nonnegative(), bits_per_second: z.number().nonnegative() });
const iperf3Schema = z.object({
  start: z.object({ version: z.string().optional(), test_start: z.object({ num_streams: z.number().int().positive() }).optional() }),
  end: z.object({
    sum_sent: iperfSum.extend({ retransmits: z.number().int().nonnegative().optional() }),
    sum_received: iperfSum,
    cpu_utilization_percent: z.object({ host_total: z.number().nonnegative(), remote_total: z.number().nonnegative() }).optional(),
  }),
});

/** iperf3 -J output (client side). */
export function parseIperf3(output: string, ctx: ParseContext): BenchResult {
  const doc = parseJson("iperf3", output.trim());
  if (doc && typeof doc === "object" && typeof (doc as { error?: unknown }).error === "string") {
    throw new BenchParseError("iperf3", `the run failed: ${(doc as { error: string }).error}`);
  }
  const r = iperf3Schema.safeParse(doc);
  if (!r.success) throw zodProblem("iperf3", "unexpected -J output", r.error);
  const { start, end } = r.data;
  const streams = start.test_start?.num_streams ?? ctx.concurrency ?? 1;
  // Before 3.16 iperf3 is one thread whatever -P says: 100 % of one core is saturation.
  // From 3.16 each stream has a thread, so the usable cores are the streams.
  const [major, minor] = (start.version ?? "")
    .replace(/^iperf\s*/, "")
    .split(".")
    .map(Number);
  const threads = major > 3 || (major === 3 && minor >= 16) ? streams : 1;
  const validity: ValidityInputs = { ...ctx.validity };
  if (end.cpu_utilization_percent && validity.clientCpuPercent === undefined)
    validity.clientCpuPercent = end.cpu_utilization_percent.host_total / threads;
  if (end.sum_sent.retransmits !== undefined && validity.retransmits === undefined) validity.retransmits = end.sum_sent.retransmits;
  const result: Record<string, unknown> = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    scenario: ctx.scenario,
    tool: "iperf3",
    durationSeconds: end.sum_received.seconds,
    // The receiver's figure: bytes that arrived, not bytes handed to the socket.
    gbps: end.sum_received.bits_per_second / 1e9,
    errors: {},
    validity: assessValidity(validity, end.sum_received.bytes, ctx.clientCpuSaturatedPercent),
  };
  return finish(result, ctx, streams);
}

/** The parser for a tool's output: wrk-paced and tcp-churn report in wrk's format. */
export function parseToolOutput(tool: string, output: string, ctx: ParseContext): BenchResult {
  if (tool === "iperf3") return parseIperf3(output, ctx);
  return parseWrk(output, ctx);
}

// -------------------------------------------------------------- nstat ----

/**
 * nstat output, plain (`nstat -az`, `#kernel` then `Name value rate`) or JSON
 * (`nstat -j`, iproute2 6.1: `{"kernel":{"Name":value}}`). Returns counter → value.
 */
export function parseNstat(output: string): Record<string, number> {
  const text = output.trim();
  if (text.startsWith("{")) {
    const r = z.object({ kernel: z.record(z.string(), z.number().int().nonnegative()) }).safeParse(parseJson("nstat", text));
    if (!r.success) throw zodProblem("nstat", "unexpected -j output", r.error);
    return r.data.kernel;
  }
  const lines = text.split("\n");
  if (lines[0] !== "#kernel")
    throw new BenchParseError("nstat", `expected "#kernel" as the first line, got ${JSON.stringify(lines[0]?.slice(0, 40) ?? "")}`);
  const out: Record<string, number> = {};
  for (const [i, line] of lines.slice(1).entries()) {
    const m = /^([A-Za-z][A-Za-z0-9_]*)\s+(\d+)\s+\S+$/.exec(line);
    if (!m) throw new BenchParseError("nstat", `line ${i + 2} is not "Name value rate": ${JSON.stringify(line.slice(0, 60))}`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Proxy-side validity inputs from nstat deltas taken around a run. */
export function nstatValidity(counters: Record<string, number>): ValidityInputs {
  const v: ValidityInputs = {};
  if (counters.TcpExtListenOverflows !== undefined) v.listenOverflows = counters.TcpExtListenOverflows;
  if (counters.TcpExtListenDrops !== undefined) v.listenDrops = counters.TcpExtListenDrops;
  if (counters.TcpRetransSegs !== undefined) v.retransmits = counters.TcpRetransSegs;
  if (counters.TcpExtTW !== undefined) v.timeWait = counters.TcpExtTW;
  if (counters.TcpAttemptFails !== undefined) v.attemptFails = counters.TcpAttemptFails;
  return v;
}

// ------------------------------------------------------------- shared ----

function finish(result: Record<string, unknown>, ctx: ParseContext, concurrency: number | undefined): BenchResult {
  if (ctx.profile !== undefined) result.profile = ctx.profile;
  if (ctx.run !== undefined) result.run = ctx.run;
  if (ctx.target !== undefined) result.target = ctx.target;
  const c = ctx.concurrency ?? concurrency;
  if (c !== undefined) result.concurrency = c;
  return parseBenchResult(result, `${String(result.tool)} result`);
}
