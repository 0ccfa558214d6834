import { spawn } from "node:child_process";
import { createServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseWrk } from "../../../components/bench/parsers";

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
  beforeAll(async () => {
    // A keep-alive HTTP/1.1 server that never closes first: allowHalfOpen keeps our side open
    // after the peer's FIN, so 'end' before our own end() proves the client closed first.
    server = createServer({ allowHalfOpen: true }, (sock) => {
      serverSockets++;
      sock.on("data", (d) => {
        if (String(d).includes("\r\n\r\n")) sock.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n");
      });
      sock.on("end", () => {
        if (!sock.writableEnded) clientClosedFirst++;
        sock.end();
      });
      sock.on("error", () => {});
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((res) => server.close(() => res())));

  it("holds a fixed rate, closes every connection from the client side, and reports in wrk's format", async () => {
    const r = await runClient(["127.0.0.1", String(port), "1", "4", "200", "2"]);
    expect(r.code).toBe(0);
    const result = parseWrk(r.stdout, { scenario: "port-churn", connectionClose: true });
    expect(result.tool).toBe("tcp-churn");
    expect(result.errors).toEqual({ connect: 0, read: 0, write: 0, status: 0, timeout: 0 });
    // 200/s for 1 s, on a schedule: neither a burst nor a trickle.
    expect(result.connsPerSecond).toBeGreaterThan(150);
    expect(result.connsPerSecond).toBeLessThan(230);
    expect(result.latency?.p99Ms).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(clientClosedFirst).toBe(serverSockets);
    expect(serverSockets).toBeGreaterThanOrEqual(150);
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
