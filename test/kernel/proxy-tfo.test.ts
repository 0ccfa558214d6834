import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { renderHaproxyConfig, type ProxySpec } from "../../components/proxy/haproxy";
import { resolveProfile } from "../../components/tuning/profile";
import { TestNode } from "../helpers/netns";
import { describeSystem } from "../helpers/system";

/**
 * TCP Fast Open through HAProxy, counted by the proxy namespace's kernel:
 *   client ns (10.232.1.1, tcp_fastopen=1) ── proxy ns (10.232.1.2, tcp_fastopen=3: HAProxy, a backend on loopback)
 * A TFO client needs two connections: the first asks for a cookie, the second carries its
 * request in the SYN with it. The cookie cache is per destination address, so the listener
 * without `tfo` is tried first: with a cookie in hand the client would send data in its SYN there too.
 */
const CLIENT_IP = "10.232.1.1";
const PROXY_IP = "10.232.1.2";

// sendto(MSG_FASTOPEN) connects and sends in one call: the data rides in the SYN when a cookie is cached.
const CLIENT = `
import socket, sys
s = socket.socket()
s.sendto(b"GET / HTTP/1.1\\r\\nHost: edgetune\\r\\nConnection: close\\r\\n\\r\\n", socket.MSG_FASTOPEN, (sys.argv[1], int(sys.argv[2])))
# Only now: a timeout makes the socket non-blocking, and a non-blocking TFO connect fails with EINPROGRESS.
s.settimeout(5)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(data.split(b"\\r\\n", 1)[0].decode())
`;

const spec = (port: number, metricsPort: number, runtimeDir: string): ProxySpec => ({
  listeners: [{ name: "web", mode: "http", port, backend: "local" }],
  backends: [{ name: "local", healthCheck: { type: "none" }, servers: [{ name: "l1", address: "127.0.0.1", port: 8081 }] }],
  metricsPort,
  healthPort: metricsPort + 1,
  management: { address: "127.0.0.1" },
  runtimeDir,
});

describeSystem("TCP Fast Open through HAProxy in network namespaces", ["haproxy", "python3", "nstat", "ss"], () => {
  let client: TestNode;
  let proxy: TestNode;
  let dir = "";
  const children: ChildProcess[] = [];

  const start = (cmd: string, args: string[]) => {
    const child = spawn("ip", ["netns", "exec", proxy.name, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout?.on("data", (d) => (log += d));
    child.stderr?.on("data", (d) => (log += d));
    children.push(child);
    return () => log;
  };
  const waitListening = async (port: number, log: () => string) => {
    for (let i = 0; i < 100; i++) {
      if (proxy.exec("ss", ["-Hltn", `sport = :${port}`]).stdout.includes("LISTEN")) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`nothing listens on ${port}: ${log()}`);
  };
  /** The proxy namespace's passive TFO count: connections whose SYN data the kernel accepted. */
  const passive = () => {
    const r = proxy.exec("nstat", ["-asz", "TcpExtTCPFastOpenPassive"], { NSTAT_HISTORY: join(dir, "nstat-proxy") });
    const m = /^TcpExtTCPFastOpenPassive\s+(\d+)/m.exec(r.stdout);
    if (!m) throw new Error(`nstat: ${r.stdout}${r.stderr}`);
    return Number(m[1]);
  };
  const get = (port: number) => {
    const r = client.exec("python3", ["-c", CLIENT, PROXY_IP, String(port)]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "edgetune-tfo-"));
    chmodSync(dir, 0o755);
    client = new TestNode("eTc", 1);
    proxy = new TestNode("eTp", 1);
    // The client's end of its veth moves into the proxy namespace: one link between the two.
    client.must("ip", ["link", "set", client.peer, "netns", proxy.name]);
    client.must("ip", ["addr", "add", `${CLIENT_IP}/24`, "dev", client.veth]);
    proxy.must("ip", ["addr", "add", `${PROXY_IP}/24`, "dev", client.peer]);
    proxy.must("ip", ["link", "set", client.peer, "up"]);
    for (const n of [client, proxy]) n.must("ip", ["link", "set", "lo", "up"]);
    client.setSysctl("net.ipv4.tcp_fastopen", "1");
    // As tune.sh sets it from the profile: both listeners below run under a kernel that accepts TFO.
    proxy.setSysctl("net.ipv4.tcp_fastopen", "3");
    expect(proxy.sysctl("net.ipv4.tcp_fastopen")).toBe("3");

    const backendLog = start("python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "8081"]);
    await waitListening(8081, backendLog);
    for (const [name, tfo, port, metrics] of [
      ["client-only", 1, 81, 8414],
      ["server", 3, 80, 8404],
    ] as const) {
      const runtimeDir = join(dir, name);
      mkdirSync(runtimeDir);
      const profile = resolveProfile(name, { sysctls: { "net.ipv4.tcp_fastopen": tfo } });
      const cfg = join(dir, `${name}.cfg`);
      writeFileSync(cfg, renderHaproxyConfig(spec(port, metrics, runtimeDir), { profile, cpus: 1, nofileLimit: 4096 }));
      const log = start("haproxy", ["-W", "-db", "-f", cfg]);
      await waitListening(port, log);
    }
  });

  afterAll(async () => {
    const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exited = Promise.all(alive.map((c) => new Promise((r) => c.once("exit", r))));
    for (const c of alive) c.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    for (const c of alive) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    client?.destroy();
    proxy?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a profile without the server bit renders no tfo: the kernel's tcp_fastopen=3 alone accepts no SYN data", () => {
    expect(get(81)).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(get(81)).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(passive()).toBe(0);
  });

  it("tcp_fastopen=3 renders tfo on the bind: the second connection's request rides in the SYN and is counted", () => {
    // The first connection only fetches the cookie.
    expect(get(80)).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(passive()).toBe(0);
    expect(get(80)).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(passive()).toBe(1);
  });
});
