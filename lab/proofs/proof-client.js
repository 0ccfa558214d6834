#!/usr/bin/env node
// The proof scenarios' client (lab/proofs/conn-hold.ts, syn-flood.ts), run inside the lab's
// client namespace. Plain Node, no dependencies: it runs where the lab's node runs.
//
// hold HOST PORT STEPS HOLD_MS TIMEOUT_MS PIDS PROXY_PID BACKEND_PID
//   Opens keep-alive HTTP/1.1 connections up to each step of STEPS (comma-separated counts),
//   each sending one request; then sends one more request on every connection already held
//   (so "held" means open and answering, and HAProxy's keep-alive timer restarts), waits
//   HOLD_MS idle and samples memory. One JSON line per sample (step 0 before any connection):
//   counts, VmRSS of PIDS (comma-separated), the raw /proc/<pid>/net/sockstat of this, the
//   proxy's and the backend's namespace, and /proc/slabinfo's socket-related lines. The
//   numbers are worked out by the parser (conn-hold.ts), from this raw text.
//
// probe HOST PORT COUNT RATE_PER_S TIMEOUT_MS
//   COUNT short connections on a fixed schedule, each one GET with Connection: close; prints
//   one JSON line: attempts, answered, errors by kind and each answered connection's time
//   from connect() to the whole response, in ms.
"use strict";
const net = require("node:net");
const { readFileSync } = require("node:fs");

const [mode, host, portS, ...rest] = process.argv.slice(2);
const port = Number(portS);
const die = (msg) => {
  process.stderr.write(`proof-client: ${msg}\n`);
  process.exit(2);
};
if (!host || !Number.isInteger(port) || port <= 0) die("usage: proof-client.js hold|probe HOST PORT ...");
const int = (name, s) => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 0) die(`${name} must be a non-negative integer, got ${JSON.stringify(s)}`);
  return v;
};

// One request on sock; resolves null when a 2xx/3xx response arrived whole, else the error kind.
function request(sock, close, timeoutMs) {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    let settled = false;
    const done = (kind) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("close", onClose);
      resolve(kind);
    };
    const onData = (chunk) => {
      got = Buffer.concat([got, chunk]);
      const headEnd = got.indexOf("\r\n\r\n");
      if (headEnd < 0) return;
      const head = got.subarray(0, headEnd).toString("latin1");
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
      if (!Number.isFinite(len)) return done("read");
      if (got.length < headEnd + 4 + len) return;
      done(/^HTTP\/1\.[01] [23]\d\d/.test(head) ? null : "status");
    };
    const onClose = () => done("closed");
    const timer = setTimeout(() => done("timeout"), timeoutMs);
    sock.on("data", onData);
    sock.on("close", onClose);
    sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: ${close ? "close" : "keep-alive"}\r\n\r\n`);
  });
}

// Connects and sends the first request; resolves { sock } or { error }.
function open(close, timeoutMs) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    let connected = false;
    const timer = setTimeout(() => {
      if (connected) return;
      sock.destroy();
      resolve({ error: "timeout" });
    }, timeoutMs);
    sock.on("error", () => {
      if (connected) return;
      clearTimeout(timer);
      resolve({ error: "connect" });
    });
    sock.once("connect", () => {
      connected = true;
      clearTimeout(timer);
      request(sock, close, timeoutMs).then((kind) => {
        if (kind) {
          sock.destroy();
          resolve({ error: kind });
        } else resolve({ sock, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
      });
    });
  });
}

const readOr = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    return `unreadable: ${e.code}`;
  }
};
const rssKb = (pid) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readOr(`/proc/${pid}/status`))?.[1] ?? NaN);
// The caches a TCP socket's state lives in: the sock (TCP), its socket inode, the file, the
// epoll registration and the pseudo-dentry sockfs gives each socket file.
const SLABS = /^(TCP|sock_inode_cache|filp|eventpoll_epi|dentry) /;

// About IN_FLIGHT requests at a time: HAProxy keeps the buffers a burst of concurrent requests
// needed in its pools (RSS does not shrink), and that burst, not the idle connections, would be
// what the RSS per connection measured. One left unanswered for SLOT_MS gives up its slot (it
// still counts when it ends): past maxconn every request waits for its timeout, and waiting for
// them IN_FLIGHT at a time would take the run's whole budget.
const IN_FLIGHT = 100;
const SLOT_MS = 200;
async function limited(n, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = fn(i);
      await Promise.race([out[i], new Promise((r) => setTimeout(r, SLOT_MS))]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, n) }, worker));
  return Promise.all(out);
}

async function hold(stepsS, holdS, timeoutS, pidsS, proxyPidS, backendPidS) {
  const steps = (stepsS ?? "").split(",").map((s) => int("step", s));
  const holdMs = int("HOLD_MS", holdS);
  const timeoutMs = int("TIMEOUT_MS", timeoutS);
  const pids = (pidsS ?? "").split(",").map((s) => int("pid", s));
  const [proxyPid, backendPid] = [int("PROXY_PID", proxyPidS), int("BACKEND_PID", backendPidS)];
  let held = [];
  const sample = (step, opened, errors) => {
    process.stdout.write(
      `${JSON.stringify({
        step,
        opened,
        held: held.length,
        errors,
        rssKb: Object.fromEntries(pids.map((p) => [p, rssKb(p)])),
        sockstat: {
          client: readOr("/proc/self/net/sockstat"),
          proxy: readOr(`/proc/${proxyPid}/net/sockstat`),
          backend: readOr(`/proc/${backendPid}/net/sockstat`),
        },
        slabinfo: readOr("/proc/slabinfo")
          .split("\n")
          .filter((l) => SLABS.test(l))
          .join("\n"),
      })}\n`,
    );
  };
  sample(0, 0, {});
  let opened = 0;
  for (const step of steps) {
    const errors = {};
    const count = (kind) => (errors[kind] = (errors[kind] ?? 0) + 1);
    const fresh = await limited(Math.max(0, step - opened), () => open(false, timeoutMs));
    opened = Math.max(opened, step);
    const kept = await limited(held.length, (i) =>
      request(held[i], false, timeoutMs).then((kind) => (kind ? (held[i].destroy(), count(kind)) : held[i])),
    );
    held = [...kept.filter((s) => typeof s === "object"), ...fresh.flatMap((f) => (f.sock ? [f.sock] : (count(f.error), [])))];
    await new Promise((r) => setTimeout(r, holdMs));
    sample(step, opened, errors);
  }
  for (const s of held) s.destroy();
}

async function probe(countS, rateS, timeoutS) {
  const count = int("COUNT", countS);
  const rate = int("RATE_PER_S", rateS);
  const timeoutMs = int("TIMEOUT_MS", timeoutS);
  if (rate === 0) die("RATE_PER_S must be positive");
  const errors = {};
  const latenciesMs = [];
  const start = Date.now();
  await Promise.all(
    Array.from(
      { length: count },
      (_, k) =>
        new Promise((resolve) =>
          setTimeout(
            () =>
              open(true, timeoutMs).then((r) => {
                if (r.sock) {
                  r.sock.destroy();
                  latenciesMs.push(Math.round(r.ms * 1000) / 1000);
                } else errors[r.error] = (errors[r.error] ?? 0) + 1;
                resolve();
              }),
            Math.max(0, start + (k * 1000) / rate - Date.now()),
          ),
        ),
    ),
  );
  process.stdout.write(`${JSON.stringify({ attempts: count, answered: latenciesMs.length, errors, latenciesMs })}\n`);
}

if (mode === "hold") void hold(...rest);
else if (mode === "probe") void probe(...rest);
else die(`unknown mode ${JSON.stringify(mode)}; allowed: hold, probe`);
