#!/usr/bin/env node
// tcp-churn: short HTTP/1.1 connections whose CLIENT closes first, at a fixed rate.
//
// wrk cannot do this: with "Connection: close" the server closes first and the
// TIME_WAIT lands on the backend. Here each connection sends one keep-alive request,
// reads the whole response and then ends the socket itself, so a TCP proxy in between
// closes its backend connection first and holds that TIME_WAIT: the traffic where
// ip_local_port_range and tcp_tw_reuse decide whether the proxy's connects keep working.
//
// usage: churn-client.js HOST PORT DURATION_S CONCURRENCY RATE_PER_S TIMEOUT_S
// Prints one JSON line in wrk-report.lua's format (plus "tool") so one parser reads both.
"use strict";
const net = require("node:net");

const [host, portS, durS, concS, rateS, timeoutS] = process.argv.slice(2);
const port = Number(portS),
  duration = Number(durS),
  concurrency = Number(concS),
  rate = Number(rateS),
  timeoutMs = Number(timeoutS) * 1000;
for (const [name, v] of Object.entries({ port, duration, concurrency, rate, timeoutMs })) {
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`churn-client: ${name} must be a positive number\n`);
    process.exit(2);
  }
}

const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
const errors = { connect: 0, read: 0, write: 0, status: 0, timeout: 0 };
const latencies = [];
let requests = 0,
  bytes = 0,
  issued = 0;
const start = process.hrtime.bigint();
const endAt = start + BigInt(Math.round(duration * 1e9));
const nowNs = () => process.hrtime.bigint();

function oneConnection(done) {
  const t0 = nowNs();
  let got = Buffer.alloc(0),
    finished = false,
    connected = false;
  const sock = net.connect({ host, port });
  const finish = (kind) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (kind) errors[kind]++;
    // The client closes first: end() sends our FIN before the server's.
    if (kind) sock.destroy();
    else sock.end();
    done();
  };
  const timer = setTimeout(() => finish("timeout"), timeoutMs);
  sock.setNoDelay(true);
  sock.on("connect", () => {
    connected = true;
    sock.write(request);
  });
  sock.on("data", (chunk) => {
    got = Buffer.concat([got, chunk]);
    const headEnd = got.indexOf("\r\n\r\n");
    if (headEnd < 0) return;
    const head = got.subarray(0, headEnd).toString("latin1");
    const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!Number.isFinite(len)) return finish("read");
    if (got.length < headEnd + 4 + len) return;
    requests++;
    bytes += got.length;
    if (!/^HTTP\/1\.[01] [23]\d\d/.test(head)) return finish("status");
    latencies.push(Number(nowNs() - t0) / 1000);
    finish(null);
  });
  sock.on("error", () => finish(connected ? "read" : "connect"));
  sock.on("close", () => finish(connected ? "read" : "connect"));
}

// A fixed schedule: connection k starts at start + k/rate, shared by all loops.
function loop() {
  if (nowNs() >= endAt) return loopDone();
  const due = start + BigInt(Math.round((issued * 1e9) / rate));
  issued++;
  const wait = Number(due - nowNs()) / 1e6;
  setTimeout(() => (nowNs() >= endAt ? loopDone() : oneConnection(loop)), Math.max(0, wait));
}
let running = concurrency;
function loopDone() {
  if (--running > 0) return;
  const elapsedUs = Number(nowNs() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] : null);
  const mean = latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : null;
  const stdev = latencies.length ? Math.sqrt(latencies.reduce((a, b) => a + (b - mean) ** 2, 0) / latencies.length) : null;
  process.stdout.write(
    `${JSON.stringify({
      edgetune_wrk: 1,
      tool: "tcp-churn",
      duration_us: elapsedUs,
      requests,
      bytes,
      errors,
      latency_us: {
        min: latencies[0] ?? null,
        max: latencies[latencies.length - 1] ?? null,
        mean,
        stdev,
        percentiles: { 50: pct(50), 90: pct(90), 99: pct(99), 99.9: pct(99.9) },
      },
    })}\n`,
  );
}
for (let i = 0; i < concurrency; i++) loop();
