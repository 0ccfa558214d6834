import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { adminSocketPath, renderHaproxyConfig, type ProxySpec } from "../../components/proxy/haproxy";
import { resolveProfile } from "../../components/tuning/profile";
import { describeSystem, run } from "../helpers/system";

/**
 * Real traffic through a generated haproxy.cfg:
 *   client ns (10.231.1.1) ── proxy ns (10.231.1.2 | 10.231.2.1) ── backend ns (10.231.2.2: nginx :8080, iperf3 :5201)
 * The client/proxy link also carries a public-looking pair (client 203.0.113.10, proxy
 * 203.0.113.1, TEST-NET-3): the internet side of an edge node, which sees the listeners and
 * nothing of the management endpoints (metrics, health).
 */
const id = `${process.pid % 10000}`;
const NS = { client: `eB-c-${id}`, proxy: `eB-p-${id}`, backend: `eB-b-${id}`, lone: `eB-n-${id}` };
const PROXY_IP = "10.231.1.2";
const BACKEND_IP = "10.231.2.2";
const PUBLIC_PROXY_IP = "203.0.113.1";
const PUBLIC_CLIENT_IP = "203.0.113.10";
/** The node's internal address as the pod gets it from status.hostIP. */
const MANAGEMENT_ENV = `EDGETUNE_MANAGEMENT_ADDRESS=${PROXY_IP}`;
const THREADS = 2;

const children: ChildProcess[] = [];
let dir = "";

function ns(name: string, cmd: string, args: string[]) {
  return run("ip", ["netns", "exec", name, cmd, ...args], { timeout: 30_000 });
}
function must(cmd: string, args: string[]) {
  const r = run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r;
}
/** Starts a long-running process inside a namespace; `ip netns exec` execs it, so the PID is the process's own. */
function startIn(name: string, cmd: string, args: string[], prefix: string[] = [], cwd?: string): ChildProcess {
  const child = spawn("ip", ["netns", "exec", name, ...prefix, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], cwd });
  let log = "";
  child.stdout?.on("data", (d) => (log += d));
  child.stderr?.on("data", (d) => (log += d));
  (child as ChildProcess & { log: () => string }).log = () => log;
  children.push(child);
  return child;
}
function logOf(child: ChildProcess): string {
  return (child as ChildProcess & { log?: () => string }).log?.() ?? "";
}
async function waitFor(what: string, probe: () => boolean, child?: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (probe()) return;
    if (child && child.exitCode !== null) throw new Error(`${what}: process exited (${child.exitCode}): ${logOf(child)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: timed out${child ? `; log: ${logOf(child)}` : ""}`);
}
function listening(name: string, port: number): string[] {
  return ns(name, "ss", ["-Hltnp", `sport = :${port}`])
    .stdout.split("\n")
    .filter((l) => l.includes("LISTEN"));
}
/** One command on HAProxy's admin socket. The socket is a filesystem path, so no namespace is needed. */
function adminCommand(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let data = "";
    sock.setTimeout(5000, () => sock.destroy(new Error("admin socket timeout")));
    sock.on("connect", () => sock.write(`${command}\n`));
    sock.on("data", (d) => (data += d));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
}

const profile = resolveProfile("lab", { extends: "recommended", ports: { listenPorts: [80, 5201, 8404, 8405] } });

describeSystem("HAProxy with a generated config carries real traffic", ["haproxy", "nginx", "iperf3", "curl", "ss", "setpriv"], () => {
  let spec: ProxySpec;
  let haproxy: ChildProcess;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "edgetune-proxy-"));
    // The non-root proxy below reads its config from a subdirectory.
    chmodSync(dir, 0o755);
    for (const n of Object.values(NS)) must("ip", ["netns", "add", n]);
    for (const n of Object.values(NS)) must("ip", ["-n", n, "link", "set", "lo", "up"]);
    const link = (a: string, aIf: string, aIp: string, b: string, bIf: string, bIp: string) => {
      must("ip", ["-n", a, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b]);
      must("ip", ["-n", a, "addr", "add", `${aIp}/24`, "dev", aIf]);
      must("ip", ["-n", b, "addr", "add", `${bIp}/24`, "dev", bIf]);
      must("ip", ["-n", a, "link", "set", aIf, "up"]);
      must("ip", ["-n", b, "link", "set", bIf, "up"]);
    };
    link(NS.client, `eBc${id}`, "10.231.1.1", NS.proxy, `eBpc${id}`, PROXY_IP);
    link(NS.proxy, `eBpb${id}`, "10.231.2.1", NS.backend, `eBb${id}`, BACKEND_IP);
    must("ip", ["-n", NS.client, "addr", "add", `${PUBLIC_CLIENT_IP}/24`, "dev", `eBc${id}`]);
    must("ip", ["-n", NS.proxy, "addr", "add", `${PUBLIC_PROXY_IP}/24`, "dev", `eBpc${id}`]);

    writeFileSync(
      join(dir, "nginx.conf"),
      [
        "worker_processes 1;",
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/nginx-error.log;`,
        "events { worker_connections 256; }",
        "http {",
        "  access_log off;",
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`),
        `  server { listen ${BACKEND_IP}:8080; location / { return 200 "backend-ok\\n"; } }`,
        "}",
        "",
      ].join("\n"),
    );
    const nginx = startIn(NS.backend, "nginx", [
      "-p",
      dir,
      "-e",
      join(dir, "nginx-error.log"),
      "-c",
      join(dir, "nginx.conf"),
      "-g",
      "daemon off;",
    ]);
    const iperf = startIn(NS.backend, "iperf3", ["-s", "-1", "-B", BACKEND_IP, "-p", "5201"]);
    await waitFor("nginx listening", () => listening(NS.backend, 8080).length > 0, nginx);
    await waitFor("iperf3 listening", () => listening(NS.backend, 5201).length > 0, iperf);

    spec = {
      listeners: [
        { name: "web", mode: "http", port: 80, backend: "nginx" },
        { name: "bulk", mode: "tcp", port: 5201, backend: "iperf" },
      ],
      backends: [
        {
          name: "nginx",
          healthCheck: { type: "http", path: "/" },
          servers: [{ name: "n1", address: BACKEND_IP, port: 8080, softLimit: 100, hardLimit: 200 }],
        },
        // A check connection would be taken by the one-off iperf3 server as its client.
        { name: "iperf", healthCheck: { type: "none" }, servers: [{ name: "i1", address: BACKEND_IP, port: 5201 }] },
      ],
      runtimeDir: dir,
    };
    const nofile = Number(run("sh", ["-c", "ulimit -Hn"]).stdout.trim());
    writeFileSync(join(dir, "haproxy.cfg"), renderHaproxyConfig(spec, { profile, cpus: THREADS, nofileLimit: nofile }));
    // The kernel caps the listen backlog at somaxconn: give the proxy node the profile's value, as tune.sh would.
    must("ip", ["netns", "exec", NS.proxy, "sh", "-c", "echo 65535 > /proc/sys/net/core/somaxconn"]);
    haproxy = startIn(NS.proxy, "haproxy", ["-W", "-db", "-f", join(dir, "haproxy.cfg")], ["env", MANAGEMENT_ENV]);
    await waitFor("haproxy listening", () => listening(NS.proxy, 8405).length > 0, haproxy);
  });

  afterAll(async () => {
    const alive = children.filter((c) => c.pid && c.exitCode === null && c.signalCode === null);
    const exited = Promise.all(alive.map((c) => new Promise((r) => c.once("exit", r))));
    for (const c of alive) c.kill("SIGTERM");
    // Wait for the exits; SIGKILL only what is still running after a grace period.
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    for (const c of alive) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const n of Object.values(NS)) run("ip", ["netns", "del", n]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("passes haproxy -c", () => {
    const r = run("env", [MANAGEMENT_ENV, "haproxy", "-c", "-f", join(dir, "haproxy.cfg")]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  /** curl from the client namespace, from one of its source addresses: [exit code, HTTP status]. */
  const fetch = (source: string, url: string): [number, string] => {
    const r = ns(NS.client, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--interface", source, url]);
    return [r.code, r.stdout];
  };

  it("binds metrics and health on the node's internal address only, never every address", () => {
    for (const port of [8404, 8405]) {
      const local = listening(NS.proxy, port).map((l) => l.split(/\s+/)[3]);
      expect(local.length, `port ${port}`).toBeGreaterThan(0);
      expect(new Set(local), `port ${port}`).toEqual(new Set([`${PROXY_IP}:${port}`]));
    }
    // The public address has no management endpoint at all: refused by the kernel.
    expect(fetch(PUBLIC_CLIENT_IP, `http://${PUBLIC_PROXY_IP}:8404/metrics`)).toEqual([7, "000"]);
    expect(fetch(PUBLIC_CLIENT_IP, `http://${PUBLIC_PROXY_IP}:8405/healthz`)).toEqual([7, "000"]);
  });

  /** Connections a frontend denied by `tcp-request connection` rules (`show stat` column dcon). */
  const deniedConnections = async (frontend: string): Promise<number> => {
    const [header, ...rows] = (await adminCommand(adminSocketPath(spec), "show stat")).replace(/^# /, "").trim().split("\n");
    const col = header.split(",").indexOf("dcon");
    const row = rows.map((r) => r.split(",")).find((r) => r[0] === frontend && r[1] === "FRONTEND");
    return Number(row?.[col] ?? "NaN");
  };

  it("resets metrics and health for a source outside the allowlist, answers an allowed one, and the listeners serve both", async () => {
    // Control first: the public source reaches the node and the listener answers it.
    expect(fetch(PUBLIC_CLIENT_IP, `http://${PUBLIC_PROXY_IP}/`)).toEqual([0, "200"]);
    expect(fetch(PUBLIC_CLIENT_IP, `http://${PROXY_IP}/`)).toEqual([0, "200"]);
    for (const [frontend, url] of [
      ["metrics", `http://${PROXY_IP}:8404/metrics`],
      ["health", `http://${PROXY_IP}:8405/healthz`],
    ]) {
      const before = await deniedConnections(frontend);
      const [code, status] = fetch(PUBLIC_CLIENT_IP, url);
      // The reset can reach curl before its connect completes (7) or after (56, or 52): no byte of an answer either way.
      expect([7, 52, 56], `${url} from ${PUBLIC_CLIENT_IP}`).toContain(code);
      expect(status).toBe("000");
      // HAProxy's source check refused it, not a missing listener.
      expect(await deniedConnections(frontend)).toBe(before + 1);
      expect(fetch("10.231.1.1", url), `${url} from 10.231.1.1`).toEqual([0, "200"]);
    }
  });

  it("proxies HTTP requests from the client namespace to nginx", () => {
    const r = ns(NS.client, "curl", ["-sS", "--max-time", "5", "-D", "-", `http://${PROXY_IP}/`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
    expect(r.stdout).toContain("backend-ok");
  });

  it("logs a failed session to stdout, and not the normal ones (accessLog: errors)", async () => {
    const ok = ns(NS.client, "curl", ["-sS", "-o", "/dev/null", "--max-time", "5", `http://${PROXY_IP}/`]);
    expect(ok.code, ok.stderr).toBe(0);
    // A space in a header name: HAProxy answers 400 itself, a session that failed.
    const bad = ns(NS.client, "curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--max-time",
      "5",
      "-H",
      "Bad Header: x",
      `http://${PROXY_IP}/edgetune-bad`,
    ]);
    expect(bad.stdout).toBe("400");
    await waitFor("the 400 in HAProxy's log", () => / web web\/<NOSRV> .* 400 /.test(logOf(haproxy)), haproxy);
    expect(logOf(haproxy)).not.toMatch(/ web nginx\/n1 .* 200 /);
  });

  it("answers the health endpoint on its own port, and only on its path", () => {
    const ok = ns(NS.client, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", `http://${PROXY_IP}:8405/healthz`]);
    const other = ns(NS.client, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", `http://${PROXY_IP}:8405/`]);
    expect(ok.stdout).toBe("200");
    expect(other.stdout).toBe("404");
  });

  it("carries an iperf3 stream over the L4 listener, spliced by the kernel", async () => {
    // A fixed amount of data, not a duration: how fast it goes is the lab's figure, not a test's.
    // ns()'s timeout is the deadline.
    const r = ns(NS.client, "iperf3", ["-c", PROXY_IP, "-p", "5201", "-n", "64M", "-J"]);
    expect(r.code, r.stdout.slice(0, 500) + r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { end: { sum_sent: { bytes: number }; sum_received: { bytes: number } } };
    expect(result.end.sum_sent.bytes).toBeGreaterThanOrEqual(64 * 1024 * 1024);
    // The server stops counting when the client reports the end, so what is still in the socket
    // buffers along the path (a few MiB, some 20 MiB at most with these namespaces' default
    // buffer sizes) goes uncounted: of 64 MiB sent, well over 10 MiB must have arrived.
    expect(result.end.sum_received.bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(result.end.sum_received.bytes).toBeLessThanOrEqual(result.end.sum_sent.bytes);
    const info = await adminCommand(adminSocketPath(spec), "show info");
    // HAProxy's own spelling.
    const spliced = Number(/^TotalSplicdedBytesOut: (\d+)$/m.exec(info)?.[1] ?? "NaN");
    expect(spliced).toBeGreaterThan(0);
  });

  it("serves HAProxy metrics on the Prometheus endpoint", () => {
    const r = ns(NS.client, "curl", ["-sS", "--max-time", "5", `http://${PROXY_IP}:8404/metrics`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^haproxy_process_nbthread \d+$/m);
    expect(r.stdout).toMatch(/haproxy_frontend_http_requests_total\{proxy="web"\} [1-9]/);
  });

  it("gives every thread its own SO_REUSEPORT listening socket on each listener port", () => {
    for (const port of [80, 5201]) {
      const sockets = listening(NS.proxy, port);
      expect(sockets, `port ${port}`).toHaveLength(THREADS);
      // Distinct fds in one worker: separate sockets, not one socket seen twice.
      const fds = new Set(sockets.map((l) => /fd=(\d+)/.exec(l)?.[1]));
      expect(fds.size).toBe(THREADS);
      // The listen backlog (Send-Q of a LISTEN socket) is the profile's somaxconn.
      for (const l of sockets) expect(l.split(/\s+/)[2]).toBe("65535");
    }
  });

  it("serves on a low port as nobody with only NET_BIND_SERVICE", async () => {
    const lone = mkdtempSync(join(dir, "nobody-"));
    chmodSync(lone, 0o777);
    const loneSpec: ProxySpec = {
      listeners: [{ name: "web", mode: "http", port: 80, address: "127.0.0.1", backend: "nginx" }],
      backends: [{ name: "nginx", healthCheck: { type: "none" }, servers: [{ name: "n1", address: "127.0.0.1", port: 9 }] }],
      management: { address: "127.0.0.1" },
      runtimeDir: lone,
    };
    const cfg = join(lone, "haproxy.cfg");
    writeFileSync(cfg, renderHaproxyConfig(loneSpec, { profile, cpus: 1, nofileLimit: 4096 }));
    chmodSync(cfg, 0o644);
    const asNobody = (caps: boolean) => [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      ...(caps
        ? ["--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service", "--bounding-set=-all,+net_bind_service"]
        : ["--inh-caps=-all", "--bounding-set=-all"]),
      "--",
    ];
    // nobody starts in its own directory, as the proxy container does in its WORKDIR: HAProxy
    // returns to its starting directory after parsing, and the checkout's (e.g. under a 0700
    // /root) is not nobody's to enter. Everything nobody touches is in `lone`.
    const asNobodyIn = { cwd: lone };
    // Control: the same start without the capability cannot bind port 80.
    const denied = run("ip", ["netns", "exec", NS.lone, ...asNobody(false), "haproxy", "-c", "-f", cfg], asNobodyIn);
    expect(denied.code, denied.stdout + denied.stderr).toBe(0); // the config itself is fine...
    const deniedRun = run("ip", ["netns", "exec", NS.lone, ...asNobody(false), "timeout", "5", "haproxy", "-db", "-f", cfg], asNobodyIn);
    expect(deniedRun.code).not.toBe(0); // ...but binding :80 is refused
    // The bind itself, not any other "Permission denied" (an unreadable file or directory).
    expect(deniedRun.stdout + deniedRun.stderr).toMatch(/cannot bind socket \(Permission denied\) (for )?\[127\.0\.0\.1:80\]/);

    const child = startIn(NS.lone, "haproxy", ["-W", "-db", "-f", cfg], asNobody(true), lone);
    await waitFor("haproxy as nobody listening on :80", () => listening(NS.lone, 80).length > 0, child);
    const health = ns(NS.lone, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "http://127.0.0.1:8405/healthz"]);
    expect(health.stdout).toBe("200");
    // Requests on :80 reach HAProxy (the backend is down on purpose: 503 comes from the proxy itself).
    const web = ns(NS.lone, "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "http://127.0.0.1:80/"]);
    expect(web.stdout).toBe("503");
    const uid = readFileSync(`/proc/${child.pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1];
    expect(uid).toBe("65534");
  });
});
