import { spawn } from "node:child_process";
import { createServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseWrk, readWrkReport } from "../../../components/bench/parsers";
import { until } from "../../helpers/wait";

const CLIENT = join(__dirname, "..", "..", "..", "components", "bench", "churn-client.js");

function runClient(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLIENT, ...args]);
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.on("exit", (code) => resolve({ code, stdout }));
  });
}

describe("churn-client.js (tcp-churn): short connections the client closes first", () => {
  let server: Server;
  let port: number;
  let clientClosedFirst = 0;
  let serverSockets = 0;
  let serverEnded = 0;
  beforeAll(async () => {
    // A keep-alive HTTP/1.1 server that never closes first: allowHalfOpen keeps our side open
    // after the peer's FIN, so 'end' before our own end() proves the client closed first.
    server = createServer({ allowHalfOpen: true }, (sock) => {
      serverSockets++;
      sock.on("data", (d) => {
        if (String(d).includes("\r\n\r\n")) sock.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n");
      });
      sock.on("end", () => {
        serverEnded++;
        if (!sock.writableEnded) clientClosedFirst++;
        sock.end();
      });
      sock.on("error", () => {});
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((res) => server.close(() => res())));

  it("paces connections on its schedule, closes every connection from the client side, and reports in wrk's format", async () => {
    const r = await runClient(["127.0.0.1", String(port), "1", "4", "200", "2"]);
    expect(r.code).toBe(0);
    const result = parseWrk(r.stdout, { scenario: "port-churn", connectionClose: true });
    expect(result.tool).toBe("tcp-churn");
    expect(result.errors).toEqual({ connect: 0, read: 0, write: 0, status: 0, timeout: 0 });
    const { requests } = readWrkReport(r.stdout);
    expect(result.connsPerSecond).toBeCloseTo(requests / result.durationSeconds, 6);
    expect(result.latency?.p99Ms).toBeGreaterThan(0);
    // Never a burst: connection k is due at k/rate and none starts after the end, so 200/s
    // for 1 s starts at most 200 (201 when a timer fires in the last millisecond), however
    // fast the machine is.
    expect(requests).toBeLessThanOrEqual(201);
    // A sanity bound, not a measurement: a client that falls behind catches up, so only a
    // broken pacer (a trickle) ends below half its schedule.
    expect(requests).toBeGreaterThanOrEqual(100);
    // The client exits once its last connection is done; the server sees each FIN after that.
    await until("the server to see every connection end", () => serverEnded >= requests);
    expect(serverSockets).toBe(requests);
    expect(clientClosedFirst).toBe(serverSockets);
  });

  it("counts refused connections as connect errors; a run that completed nothing is invalid", async () => {
    const r = await runClient(["127.0.0.1", "1", "1", "2", "50", "1"]);
    const result = parseWrk(r.stdout, { scenario: "port-churn", connectionClose: true });
    expect(result.errors.connect).toBeGreaterThan(10);
    expect(result.validity.valid).toBe(false);
    expect(result.validity.reasons.join()).toMatch(/no request or transfer completed/);
  });

  it("rejects a non-numeric argument", async () => {
    const r = await runClient(["127.0.0.1", "x", "1", "1", "1", "1"]);
    expect(r.code).toBe(2);
  });
});
