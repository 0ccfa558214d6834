#!/usr/bin/env node
/*
 * HTTP load for change-under-load (lab/proofs/change-under-load.ts) and the reload kernel test:
 * keep-alive clients (one connection each, reused) and new-connection clients (Connection: close),
 * each sending GET requests back to back, until SIGTERM or SIGINT; then one JSON line on stdout.
 *
 *   node change-load.cjs HOST PORT KEEPALIVE_CLIENTS NEW_CONNECTION_CLIENTS
 *
 * Every failure is recorded with its time (ms since the epoch), so the caller can put it in the
 * window of the event (reload, handover, restart) that caused it. Kinds: `connect` (refused or
 * unreachable), `reset` (the connection was reset or closed before a response), `status` (an
 * answer other than 200), `timeout` (no answer within 2 s), `other`.
 *
 * A request on a reused keep-alive connection that the server closed while it was idle fails with
 * a reset before any response; HTTP clients retry those (Node's documentation says to, and
 * browsers do), so it is retried once on a new connection and counted as `staleRetries`, a
 * failure only when the retry fails too.
 */
"use strict";
const http = require("node:http");

const [host, portText, keepText, freshText] = process.argv.slice(2);
const port = Number(portText);
const keepAlive = Number(keepText ?? 4);
const fresh = Number(freshText ?? 4);
if (!host || !Number.isInteger(port) || !Number.isInteger(keepAlive) || !Number.isInteger(fresh)) {
  process.stderr.write("usage: change-load.cjs HOST PORT KEEPALIVE_CLIENTS NEW_CONNECTION_CLIENTS\n");
  process.exit(2);
}

const TIMEOUT_MS = 2000;
let running = true;
const counts = {
  keepalive: { ok: 0, failed: 0, staleRetries: 0, lastOk: 0 },
  fresh: { ok: 0, failed: 0, staleRetries: 0, lastOk: 0 },
};
const failures = [];

function kindOf(err) {
  const code = err && err.code;
  if (code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EADDRNOTAVAIL") return "connect";
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED") return "reset";
  if (code === "ETIMEDOUT" || code === "EDGETUNE_TIMEOUT") return "timeout";
  return "other";
}

/** One GET; resolves to { ok } or { kind, stale } (stale: reset on a reused connection before any response). */
function request(agent, close) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r) => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    const req = http.request({ host, port, path: "/", agent, headers: close ? { Connection: "close" } : {} }, (res) => {
      res.on("data", () => {});
      res.on("end", () => finish(res.statusCode === 200 ? { ok: true } : { kind: "status" }));
      res.on("error", (e) => finish({ kind: kindOf(e) }));
    });
    req.setTimeout(TIMEOUT_MS, () => {
      const e = new Error("timeout");
      e.code = "EDGETUNE_TIMEOUT";
      req.destroy(e);
    });
    req.on("error", (e) => finish({ kind: kindOf(e), stale: req.reusedSocket === true && kindOf(e) === "reset" }));
    req.end();
  });
}

async function client(mode) {
  const close = mode === "fresh";
  let agent = close ? false : new http.Agent({ keepAlive: true, maxSockets: 1 });
  const c = counts[mode];
  while (running) {
    let r = await request(agent, close);
    if (r.stale) {
      c.staleRetries++;
      r = await request(agent, close);
    }
    if (r.ok) {
      c.ok++;
      c.lastOk = Date.now();
    } else {
      c.failed++;
      failures.push({ t: Date.now(), mode, kind: r.kind });
      if (agent) {
        agent.destroy();
        agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      }
      // Not a busy loop against a closed port.
      await new Promise((res) => setTimeout(res, 10));
    }
  }
  if (agent) agent.destroy();
}

const started = Date.now();
const clients = [...Array.from({ length: keepAlive }, () => client("keepalive")), ...Array.from({ length: fresh }, () => client("fresh"))];
const stop = () => {
  running = false;
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// Tells the caller the load is on (it waits for this line in stderr before the first event).
process.stderr.write("change-load: running\n");
Promise.all(clients).then(() => {
  process.stdout.write(`${JSON.stringify({ started, ended: Date.now(), counts, failures })}\n`);
});
