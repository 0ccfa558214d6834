import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BenchParseError, nstatValidity, parseIperf3, parseNstat, parseWrk } from "../../../components/bench/parsers";

// Captured on this machine (nginx on 127.0.0.1, wrk 4.1.0, iperf3 3.12, iproute2 6.1) unless named *-format-sample.
const fixture = (name: string) => readFileSync(join(__dirname, "../../fixtures/bench", name), "utf8");

describe("parseWrk (wrk-report.lua done() JSON)", () => {
  it("reads rps and microsecond percentiles as milliseconds from a keep-alive run", () => {
    const r = parseWrk(fixture("wrk-keepalive.txt"), { scenario: "http-throughput", profile: "baseline", concurrency: 32 });
    expect(r.tool).toBe("wrk");
    expect(r.durationSeconds).toBeCloseTo(3.000237, 6);
    expect(r.rps).toBeCloseTo(618305 / 3.000237, 3);
    expect(r.connsPerSecond).toBeUndefined();
    expect(r.latency).toEqual({
      method: "closed-loop",
      p50Ms: 0.129,
      p90Ms: 0.603,
      p99Ms: 2.382,
      p999Ms: 3.667,
      maxMs: 5.217,
      meanMs: expect.closeTo(0.27466, 4),
    });
    expect(r.errors).toEqual({ connect: 0, read: 0, write: 0, status: 0, timeout: 0 });
    expect(r.validity).toEqual({ valid: true, reasons: [] });
  });

  it("counts non-2xx answers as errors, not throughput, and marks an all-error run invalid", () => {
    const r = parseWrk(fixture("wrk-status-errors.txt"), { scenario: "http-throughput" });
    expect(r.errors.status).toBe(745298);
    expect(r.rps).toBe(0);
    expect(r.latency).toBeUndefined();
    expect(r.validity.valid).toBe(false);
  });

  it("reports connections/s for Connection: close runs", () => {
    const r = parseWrk(fixture("wrk-connclose.txt"), { scenario: "conn-rate", connectionClose: true });
    expect(r.connsPerSecond).toBeCloseTo(201628 / 2.017096, 3);
  });

  it("marks wrk-paced output as schedule-corrected with the connection count from the schedule", () => {
    const r = parseWrk(fixture("wrk-paced.txt"), { scenario: "http-latency" });
    expect(r.tool).toBe("wrk-paced");
    expect(r.latency?.method).toBe("schedule-corrected");
    expect(r.concurrency).toBe(2);
    // 2 connections × 500/s for 3.1 s: the schedule held.
    expect(r.rps).toBeGreaterThan(900);
    expect(r.rps).toBeLessThan(1100);
  });

  it("marks a run invalid when the load generator was saturated", () => {
    const r = parseWrk(fixture("wrk-burst.txt"), {
      scenario: "conn-burst",
      connectionClose: true,
      validity: { clientCpuPercent: 97, ...nstatValidity(parseNstat(fixture("nstat-burst.txt"))) },
    });
    expect(r.validity.valid).toBe(false);
    expect(r.validity.reasons[0]).toMatch(/load generator CPU 97\.0%/);
    expect(r.validity.listenOverflows).toBe(12665);
    expect(r.latency?.p99Ms).toBeCloseTo(469.499, 3);
  });

  it("fails clearly on output without the JSON line and on a truncated line", () => {
    const text = fixture("wrk-keepalive.txt");
    expect(() => parseWrk(text.split("\n").slice(0, 3).join("\n"), { scenario: "http-throughput" })).toThrow(
      /no \{"edgetune_wrk":\.\.\.\} line/,
    );
    const cut = text.slice(0, text.lastIndexOf('"percentiles"'));
    expect(() => parseWrk(cut, { scenario: "http-throughput" })).toThrow(BenchParseError);
    expect(() => parseWrk(cut, { scenario: "http-throughput" })).toThrow(/wrk: output is not JSON/);
  });
});

describe("parseIperf3 (-J)", () => {
  it("takes the receiver's Gbps, the sender's retransmits, and flags the single-threaded client at ~98% CPU", () => {
    const r = parseIperf3(fixture("iperf3-p2.json"), { scenario: "l4-throughput", profile: "tuned" });
    expect(r.gbps).toBeGreaterThan(1);
    const doc = JSON.parse(fixture("iperf3-p2.json"));
    expect(r.gbps).toBeCloseTo(doc.end.sum_received.bits_per_second / 1e9, 6);
    expect(r.concurrency).toBe(2);
    expect(r.validity.retransmits).toBe(doc.end.sum_sent.retransmits);
    // iperf3 3.12 on loopback is CPU-bound: the figure is the client's, not a proxy's.
    expect(r.validity.clientCpuPercent).toBeCloseTo(doc.end.cpu_utilization_percent.host_total, 6);
    expect(r.validity.valid).toBe(false);
  });

  it("passes iperf3's own error through instead of reporting zero", () => {
    expect(() => parseIperf3(fixture("iperf3-refused.json"), { scenario: "l4-throughput" })).toThrow(
      /iperf3: the run failed: unable to connect to server: Connection refused/,
    );
  });

  it("rejects JSON that lacks the end summary", () => {
    expect(() => parseIperf3('{"start":{},"intervals":[],"end":{}}', { scenario: "l4-throughput" })).toThrow(
      /iperf3: unexpected -J output: end\.sum_sent/,
    );
  });
});

describe("parseNstat", () => {
  it("reads plain and JSON output of iproute2 6.1 the same way", () => {
    const plain = parseNstat(fixture("nstat-burst.txt"));
    const json = parseNstat(fixture("nstat-burst.json"));
    expect(plain.TcpExtListenOverflows).toBe(12665);
    expect(json.TcpExtListenOverflows).toBe(15333);
    expect(Object.keys(plain).sort()).toEqual(Object.keys(json).sort());
  });

  it("rejects text that is not nstat output", () => {
    expect(() => parseNstat("TcpExtListenOverflows 12")).toThrow(/nstat: expected "#kernel"/);
    expect(() => parseNstat("#kernel\nTcpExtListenOverflows lots 0.0")).toThrow(/line 2 is not "Name value rate"/);
    expect(() => parseNstat('{"kernel":{"X":"1"}}')).toThrow(/nstat: unexpected -j output: kernel\.X/);
  });
});
