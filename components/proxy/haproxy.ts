/**
 * haproxy.cfg renderer (pure: no Pulumi, no I/O).
 *
 * Global tuning is derived from the node's resolved tuning profile and from
 * what the process will really get (CPUs, RLIMIT_NOFILE), never guessed:
 * - listen backlog = the profile's net.core.somaxconn (the kernel caps a
 *   listen() backlog at somaxconn, so asking for more is silently lost and
 *   asking for less wastes the tuning);
 * - maxconn from the file-descriptor budget (2 fds per proxied connection,
 *   2 per splice pipe), with `maxpipes` set explicitly: HAProxy's default
 *   (maxconn/4) is added on top of the budget and makes it refuse to start
 *   ("Cannot raise FD limit") when the hard limit cannot be raised;
 * - one SO_REUSEPORT socket per thread (`shards by-thread`), so the kernel
 *   spreads new connections over threads instead of one accept queue.
 *
 * Output is valid for HAProxy 2.6 (Debian 12) and 3.2 (upstream LTS): every
 * keyword used exists with the same meaning in both configuration manuals.
 */
import { z } from "zod";
import { formatPath, show, ValidationError, type PathSegment, type ValidationIssue } from "../tuning/profile";
import { parsePortRange, type PortRange } from "../tuning/ports";
import type { ResolvedProfile } from "../tuning/types";

/** Load-balancing algorithms HAProxy 2.6 and 3.2 both accept without arguments. */
export const BALANCE_ALGORITHMS = ["roundrobin", "static-rr", "leastconn", "first", "source"] as const;
export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];

export type SpliceMode = "always" | "auto" | "off";

export interface ProxyListener {
  /** Frontend name: letters, digits, "_" and "-". */
  name: string;
  /** `tcp`: L4 pass-through (splice capable). `http`: L7 with HTTP parsing. */
  mode: "tcp" | "http";
  /** TCP port to listen on, 1-65535. Ports below 1024 need NET_BIND_SERVICE. */
  port: number;
  /** IPv4/IPv6 address to bind. @default "0.0.0.0" (IPv6 "::" binds both with v4v6) */
  address?: string;
  /** Name of the backend in `ProxySpec.backends`. */
  backend: string;
  /**
   * tcp only: move data between the sockets with splice(2) instead of
   * copying it through user space (lab: 2x throughput, 1/3 of the CPU per GB).
   * - `always`: `option splice-request` + `option splice-response`.
   * - `auto`: `option splice-auto`, HAProxy's heuristic. Measured on Debian's
   *   2.6.12, it spliced 0 bytes of a 40 Gbit/s iperf3 stream, so it is not
   *   the default.
   * - `off`: no splicing (and no pipes in the fd budget).
   * @default "always" for tcp listeners
   */
  splice?: SpliceMode;
}

export interface ProxyServer {
  /** Server name, unique within its backend. */
  name: string;
  /** IP address or DNS name (resolved once at start-up). */
  address: string;
  port: number;
  /** Relative weight 0-256. @default 1 */
  weight?: number;
  /**
   * edgeProxy's soft_limit: concurrent connections the server handles
   * comfortably. Rendered as HAProxy `maxconn`: beyond it, requests queue.
   * @default unlimited
   */
  softLimit?: number;
  /**
   * edgeProxy's hard_limit: total connections (active + queued) before new
   * ones are rejected. Rendered as `maxqueue` = hardLimit - softLimit; must
   * be greater than softLimit because HAProxy reads `maxqueue 0` as unlimited.
   * @default unlimited queue
   */
  hardLimit?: number;
}

export type HealthCheck =
  /** A TCP connect every interval. */
  | { type: "tcp"; intervalSeconds?: number }
  /** An HTTP request; any 2xx/3xx is healthy unless `expectStatus` is set. */
  | { type: "http"; path?: string; expectStatus?: number; intervalSeconds?: number }
  | { type: "none" };

export interface ProxyBackend {
  name: string;
  /** @default "roundrobin" for http backends, "leastconn" for tcp (long-lived connections) */
  balance?: BalanceAlgorithm;
  /** @default { type: "tcp" } */
  healthCheck?: HealthCheck;
  servers: ProxyServer[];
}

export interface ProxyTimeouts {
  /** @default 5 */
  connectSeconds?: number;
  /** Client inactivity. @default 30 */
  clientSeconds?: number;
  /** Server inactivity. @default 30 */
  serverSeconds?: number;
  /** Time to receive a whole HTTP request (slowloris guard). @default 10 */
  httpRequestSeconds?: number;
  /** Idle time between keep-alive requests. @default 10 */
  httpKeepAliveSeconds?: number;
  /** Time a request may wait in a server queue (softLimit reached). @default 10 */
  queueSeconds?: number;
  /** Inactivity for upgraded (WebSocket) or CONNECT tunnels. @default 3600 */
  tunnelSeconds?: number;
  /** After a reload, old workers are killed this long after they stop listening. @default 30 */
  hardStopAfterSeconds?: number;
}

/** The proxy: listeners, backends and the service endpoints. */
export interface ProxySpec {
  listeners: ProxyListener[];
  backends: ProxyBackend[];
  /** Prometheus exporter port (`/metrics`). @default 8404 */
  metricsPort?: number;
  /** Health endpoint port (`/healthz`, HAProxy monitor-uri). @default 8405 */
  healthPort?: number;
  /** Address the metrics and health endpoints bind. @default "0.0.0.0" */
  serviceAddress?: string;
  /** Worker threads. @default the node's CPU count (facts.cpus), else HAProxy's own default (all CPUs it may run on) */
  threads?: number;
  /** Global maxconn. @default the largest value the fd budget allows; an explicit value must fit that budget */
  maxconn?: number;
  /**
   * Size of each splice pipe in bytes (`tune.pipesize`), rendered only when a
   * listener splices. HAProxy's default is the kernel's (64 KiB). Lab (2 vCPU,
   * veth): 1 MiB cut HAProxy CPU per GB by ~30 % at 4 streams (0.085 -> 0.060
   * CPU-s/GB); throughput +10-15 %, within noise. Each pipe can pin up to this
   * much kernel memory while full (maxpipes x pipesize worst case), and above
   * fs.pipe-max-size (1 MiB) it needs CAP_SYS_RESOURCE. @default kernel default
   */
  pipesize?: number;
  /**
   * Session logs of the listeners, to stdout: `errors` logs only sessions that
   * failed (`option dontlog-normal`: HAProxy skips building the line for the
   * others), `all` every session, `off` none. Server state changes and alerts
   * are logged in every mode. @default "errors"
   */
  accessLog?: "errors" | "all" | "off";
  timeouts?: ProxyTimeouts;
  /** Directory for the admin/master sockets; must be writable (an emptyDir in the pod). @default "/var/run/haproxy" */
  runtimeDir?: string;
}

/** What HAProxy will really get on the node; each field overrides what the profile says. */
export interface ProxyNodeFacts {
  /** The node's resolved tuning profile (somaxconn, nofile limits, ephemeral ports). */
  profile: ResolvedProfile;
  /** CPUs the proxy may run on. @default unknown: nbthread is left to HAProxy */
  cpus?: number;
  /**
   * RLIMIT_NOFILE hard limit the proxy process starts with (`ulimit -Hn`).
   * @default profile.limits.nofileHard, else DEFAULT_NOFILE
   */
  nofileLimit?: number;
}

export const DEFAULT_METRICS_PORT = 8404;
export const DEFAULT_HEALTH_PORT = 8405;
export const METRICS_PATH = "/metrics";
export const HEALTH_PATH = "/healthz";
export const DEFAULT_RUNTIME_DIR = "/var/run/haproxy";
/** Kernel default of net.core.somaxconn since Linux 5.4. */
export const KERNEL_SOMAXCONN_DEFAULT = 4096;
/**
 * nofile assumed when neither the node nor the profile says: what every
 * mainstream container runtime's hard limit is at least, so HAProxy can
 * always raise its soft limit that far.
 */
export const DEFAULT_NOFILE = 65536;
/** HAProxy 2.6's MAX_THREADS on 64-bit builds; 3.2 allows more only with thread groups. */
export const MAX_THREADS = 64;
const KERNEL_PORT_RANGE_DEFAULT: PortRange = [32768, 60999];

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const HOST = /^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[?[0-9A-Fa-f:.]{2,45}\]?|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$/;
const ADDRESS = /^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]{2,45})$/;
const URL_PATH = /^\/[A-Za-z0-9._~/-]{0,200}$/;
const ABS_DIR = /^\/[A-Za-z0-9._/-]{1,200}$/;

const port = z.number().int().min(1).max(65535);
const seconds = z.number().int().min(1).max(86400);
const name = z.string().regex(NAME, 'letters, digits, "_", "." and "-", starting with a letter or digit, at most 63 characters');

const serverSchema = z.strictObject({
  name,
  address: z.string().regex(HOST, "an IPv4/IPv6 address or a DNS name"),
  port,
  weight: z.number().int().min(0).max(256).optional(),
  softLimit: z.number().int().min(1).optional(),
  hardLimit: z.number().int().min(1).optional(),
});

const healthSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("tcp"), intervalSeconds: seconds.optional() }),
  z.strictObject({ type: z.literal("http"), path: z.string().regex(URL_PATH, 'a path like "/healthz"').optional(), expectStatus: z.number().int().min(100).max(599).optional(), intervalSeconds: seconds.optional() }),
  z.strictObject({ type: z.literal("none") }),
]);

export const proxySpecSchema = z.strictObject({
  listeners: z.array(
    z.strictObject({
      name,
      mode: z.enum(["tcp", "http"]),
      port,
      address: z.string().regex(ADDRESS, "an IPv4 or IPv6 address").optional(),
      backend: z.string(),
      splice: z.enum(["always", "auto", "off"]).optional(),
    }),
  ).min(1),
  backends: z.array(z.strictObject({ name, balance: z.enum(BALANCE_ALGORITHMS).optional(), healthCheck: healthSchema.optional(), servers: z.array(serverSchema) })),
  metricsPort: port.optional(),
  healthPort: port.optional(),
  serviceAddress: z.string().regex(ADDRESS, "an IPv4 or IPv6 address").optional(),
  threads: z.number().int().min(1).max(MAX_THREADS).optional(),
  maxconn: z.number().int().min(1).optional(),
  pipesize: z.number().int().min(4096).max(1 << 24).optional(),
  accessLog: z.enum(["errors", "all", "off"]).optional(),
  timeouts: z
    .strictObject({
      connectSeconds: seconds,
      clientSeconds: seconds,
      serverSeconds: seconds,
      httpRequestSeconds: seconds,
      httpKeepAliveSeconds: seconds,
      queueSeconds: seconds,
      tunnelSeconds: seconds,
      hardStopAfterSeconds: seconds,
    })
    .partial()
    .optional(),
  runtimeDir: z.string().regex(ABS_DIR, "an absolute path of [A-Za-z0-9._/-]").optional(),
});

/** What the renderer derived from the node: shown in PLAN.md and asserted by tests. */
export interface HaproxyGlobals {
  /** undefined: HAProxy picks (all CPUs it may run on). */
  threads?: number;
  maxconn: number;
  /** Set only when a listener splices. */
  maxpipes?: number;
  backlog: number;
  nofile: number;
  /** fds kept out of the connection budget (listeners, checks, pollers, sockets). */
  reservedFds: number;
}

function sysctlNumber(profile: ResolvedProfile, key: string): string | undefined {
  return profile.sysctls.find((s) => s.key === key)?.value;
}

/** Ephemeral range and the reserved ports inside it, as the profile leaves them on the node. */
function ephemeralPlan(profile: ResolvedProfile): { range: PortRange; reserved: PortRange[] } {
  const rangeText = sysctlNumber(profile, "net.ipv4.ip_local_port_range");
  const range = rangeText ? (rangeText.split(" ").map(Number) as PortRange) : KERNEL_PORT_RANGE_DEFAULT;
  const reserved: PortRange[] = [];
  for (const part of (sysctlNumber(profile, "net.ipv4.ip_local_reserved_ports") ?? "").split(",")) {
    if (part === "") continue;
    const r = parsePortRange(part);
    if (typeof r !== "string") reserved.push(r);
  }
  return { range, reserved };
}

function isSplicing(l: ProxyListener): boolean {
  return l.mode === "tcp" && l.splice !== "off";
}

/** Derives the global settings from the spec and the node, or the problems that prevent it. */
function deriveGlobals(spec: ProxySpec, node: ProxyNodeFacts): { globals: HaproxyGlobals; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  const threads = spec.threads ?? (node.cpus !== undefined ? Math.min(Math.max(1, Math.floor(node.cpus)), MAX_THREADS) : undefined);
  const somaxconn = sysctlNumber(node.profile, "net.core.somaxconn");
  const backlog = somaxconn ? Number(somaxconn) : KERNEL_SOMAXCONN_DEFAULT;
  const nofile = node.nofileLimit ?? node.profile.limits?.nofileHard ?? DEFAULT_NOFILE;
  // Per-thread sockets of every listener, the two service endpoints, one
  // check connection per server, and headroom for pollers, wake-up pipes,
  // the stats and master sockets and DNS; measured overhead is ~30 fds.
  const threadsForBudget = threads ?? MAX_THREADS;
  const servers = spec.backends.reduce((n, b) => n + b.servers.length, 0);
  const reservedFds = 256 + (spec.listeners.length + 2) * threadsForBudget + servers;
  const splicing = spec.listeners.some(isSplicing);
  // 2 fds per proxied connection; with splice, one pipe (2 fds) per 4 connections.
  const perConn = splicing ? 2.5 : 2;
  const budget = Math.floor((nofile - reservedFds) / perConn);
  if (budget < 1) issues.push({ path: "nofile", message: `RLIMIT_NOFILE ${nofile} leaves no room for connections after ${reservedFds} reserved fds` });
  let maxconn = Math.max(1, budget);
  if (spec.maxconn !== undefined) {
    if (spec.maxconn > budget) {
      issues.push({ path: "maxconn", message: `got ${spec.maxconn}; RLIMIT_NOFILE ${nofile} allows at most ${budget} (${perConn} fds per connection${splicing ? " incl. splice pipes" : ""} + ${reservedFds} reserved): raise limits.nofileHard or lower maxconn` });
    }
    maxconn = spec.maxconn;
  }
  return { globals: { threads, maxconn, maxpipes: splicing ? Math.max(1, Math.floor(maxconn / 4)) : undefined, backlog, nofile, reservedFds }, issues };
}

/**
 * Validates a proxy spec against itself and the node: unknown fields, port
 * collisions, listen ports the kernel could hand out as source ports,
 * backends without servers, unknown backends, limits that do not fit.
 * Returns every problem, paths prefixed with `prefix`.
 */
export function checkProxySpec(input: unknown, node: ProxyNodeFacts, prefix: readonly PathSegment[] = ["proxy"]): { spec?: ProxySpec; globals?: HaproxyGlobals; issues: ValidationIssue[] } {
  const at = (...s: PathSegment[]) => formatPath([...prefix, ...s]);
  const parsed = proxySpecSchema.safeParse(input);
  if (!parsed.success) {
    return {
      issues: parsed.error.issues.map((i) => {
        const segs = i.path.filter((p): p is string | number => typeof p !== "symbol");
        let value: unknown = input;
        for (const s of segs) value = value && typeof value === "object" ? (value as Record<string | number, unknown>)[s] : undefined;
        const message = i.code === "unrecognized_keys" ? `unknown field(s) ${i.keys.map((k) => JSON.stringify(k)).join(", ")}` : value !== undefined ? `got ${show(value)}; ${i.message.replace(/^Invalid input: /, "")}` : i.message;
        return { path: at(...segs), message };
      }),
    };
  }
  const spec = parsed.data as ProxySpec;
  const issues: ValidationIssue[] = [];

  const names = new Map<string, number>();
  const backendIndex = new Map<string, number>();
  spec.backends.forEach((b, i) => {
    if (backendIndex.has(b.name)) issues.push({ path: at("backends", i, "name"), message: `duplicate backend name ${show(b.name)}` });
    backendIndex.set(b.name, i);
    if (b.servers.length === 0) issues.push({ path: at("backends", i, "servers"), message: `backend ${show(b.name)} has no servers; allowed: at least one server` });
    const serverNames = new Set<string>();
    b.servers.forEach((s, j) => {
      if (serverNames.has(s.name)) issues.push({ path: at("backends", i, "servers", j, "name"), message: `duplicate server name ${show(s.name)} in backend ${show(b.name)}` });
      serverNames.add(s.name);
      if (s.hardLimit !== undefined) {
        if (s.softLimit === undefined) issues.push({ path: at("backends", i, "servers", j, "hardLimit"), message: "hardLimit needs softLimit (hardLimit - softLimit is the queue length)" });
        else if (s.hardLimit <= s.softLimit) issues.push({ path: at("backends", i, "servers", j, "hardLimit"), message: `got ${s.hardLimit}; must be greater than softLimit (${s.softLimit}): HAProxy reads a zero-length queue as unlimited` });
      }
    });
  });

  // Who binds what: listeners plus the two service endpoints.
  const binds: Array<{ port: number; path: string; what: string }> = [];
  const backendModes = new Map<string, { mode: string; path: string }>();
  spec.listeners.forEach((l, i) => {
    if (names.has(l.name)) issues.push({ path: at("listeners", i, "name"), message: `duplicate listener name ${show(l.name)}` });
    names.set(l.name, i);
    if (l.name === "metrics" || l.name === "health") issues.push({ path: at("listeners", i, "name"), message: `${show(l.name)} is reserved for the service endpoints` });
    binds.push({ port: l.port, path: at("listeners", i, "port"), what: `listener ${show(l.name)}` });
    if (l.splice !== undefined && l.mode !== "tcp") issues.push({ path: at("listeners", i, "splice"), message: "splice applies to tcp listeners only" });
    if (!backendIndex.has(l.backend)) {
      issues.push({ path: at("listeners", i, "backend"), message: `got ${show(l.backend)}; allowed: one of the backends ${[...backendIndex.keys()].map((n) => show(n)).join(", ") || "(none defined)"}` });
    } else {
      const prev = backendModes.get(l.backend);
      if (prev && prev.mode !== l.mode) issues.push({ path: at("listeners", i, "mode"), message: `backend ${show(l.backend)} is already used in ${prev.mode} mode by ${prev.path}; a backend has one mode` });
      else backendModes.set(l.backend, { mode: l.mode, path: at("listeners", i) });
    }
  });
  const metricsPort = spec.metricsPort ?? DEFAULT_METRICS_PORT;
  const healthPort = spec.healthPort ?? DEFAULT_HEALTH_PORT;
  binds.push({ port: metricsPort, path: at("metricsPort"), what: "the metrics endpoint" });
  binds.push({ port: healthPort, path: at("healthPort"), what: "the health endpoint" });
  // Listeners bind all addresses by default, so any two binds on one port collide.
  const byPort = new Map<number, (typeof binds)[number]>();
  for (const b of binds) {
    const first = byPort.get(b.port);
    if (first) issues.push({ path: b.path, message: `port ${b.port} is already used by ${first.what} (${first.path})` });
    else byPort.set(b.port, b);
  }
  const { range, reserved } = ephemeralPlan(node.profile);
  for (const b of binds) {
    if (byPort.get(b.port) !== b || b.port < range[0] || b.port > range[1]) continue;
    if (reserved.some(([lo, hi]) => b.port >= lo && b.port <= hi)) continue;
    issues.push({
      path: b.path,
      message: `port ${b.port} of ${b.what} is inside the ephemeral range ip_local_port_range ${range[0]} ${range[1]} of profile "${node.profile.name}" and not reserved: the kernel can hand it out as a source port and the bind fails. Add ${b.port} to profiles.${node.profile.name}.ports.listenPorts`,
    });
  }

  const derived = deriveGlobals(spec, node);
  issues.push(...derived.issues.map((i) => ({ path: i.path === "nofile" ? at() : at(i.path), message: i.message })));
  if (issues.length) return { issues };
  return { spec, globals: derived.globals, issues };
}

/** Validates a proxy spec; throws one `ValidationError` naming every bad path. */
export function validateProxySpec(input: unknown, node: ProxyNodeFacts, prefix: readonly PathSegment[] = ["proxy"]): { spec: ProxySpec; globals: HaproxyGlobals } {
  const r = checkProxySpec(input, node, prefix);
  if (!r.spec || !r.globals) throw new ValidationError(r.issues, "invalid proxy spec");
  return { spec: r.spec, globals: r.globals };
}

function bindAddress(address: string | undefined, port: number): string {
  const a = address ?? "0.0.0.0";
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/** Ports below 1024 the proxy binds: they need CAP_NET_BIND_SERVICE when not root. */
export function privilegedPorts(spec: ProxySpec): number[] {
  const ports = [...spec.listeners.map((l) => l.port), spec.metricsPort ?? DEFAULT_METRICS_PORT, spec.healthPort ?? DEFAULT_HEALTH_PORT];
  return [...new Set(ports.filter((p) => p < 1024))].sort((a, b) => a - b);
}

/** The admin socket path (stats, `show info`, `show fd`). */
export function adminSocketPath(spec: ProxySpec): string {
  return `${spec.runtimeDir ?? DEFAULT_RUNTIME_DIR}/admin.sock`;
}

/**
 * Renders haproxy.cfg. Validates first (throws `ValidationError`), so a
 * config that is returned has passed every check.
 */
export function renderHaproxyConfig(input: ProxySpec, node: ProxyNodeFacts): string {
  const { spec, globals } = validateProxySpec(input, node);
  const t = { connectSeconds: 5, clientSeconds: 30, serverSeconds: 30, httpRequestSeconds: 10, httpKeepAliveSeconds: 10, queueSeconds: 10, tunnelSeconds: 3600, hardStopAfterSeconds: 30, ...spec.timeouts };
  const runtimeDir = spec.runtimeDir ?? DEFAULT_RUNTIME_DIR;
  const out: string[] = [
    `# Generated by edgetune for node profile "${node.profile.name}". Do not edit: re-render.`,
    `# fd budget: RLIMIT_NOFILE ${globals.nofile} = 2 x maxconn${globals.maxpipes !== undefined ? " + 2 x maxpipes" : ""} + ${globals.reservedFds} reserved.`,
    "global",
  ];
  if (globals.threads !== undefined) out.push(`  nbthread ${globals.threads}`);
  out.push(`  maxconn ${globals.maxconn}`);
  if (globals.maxpipes !== undefined) out.push(`  maxpipes ${globals.maxpipes}`);
  if (globals.maxpipes !== undefined && spec.pipesize !== undefined) out.push(`  tune.pipesize ${spec.pipesize}`);
  out.push(
    `  hard-stop-after ${t.hardStopAfterSeconds}s`,
    // expose-fd listeners lets a reloaded worker take over the listening sockets: no refused connections during reloads.
    `  stats socket ${runtimeDir}/admin.sock mode 600 level admin expose-fd listeners`,
    // info: session logs are emitted at info, and a notice threshold would drop them all
    // after HAProxy had built them; accessLog decides which sessions are logged at all.
    "  log stdout format raw local0 info",
    "",
    "defaults",
    "  log global",
    "  option dontlognull",
    `  timeout connect ${t.connectSeconds}s`,
    `  timeout client ${t.clientSeconds}s`,
    `  timeout server ${t.serverSeconds}s`,
    `  timeout queue ${t.queueSeconds}s`,
    `  timeout tunnel ${t.tunnelSeconds}s`,
    `  timeout http-request ${t.httpRequestSeconds}s`,
    `  timeout http-keep-alive ${t.httpKeepAliveSeconds}s`,
    "  timeout check 3s",
    "",
  );
  const service = spec.serviceAddress;
  out.push(
    "frontend metrics",
    "  mode http",
    `  bind ${bindAddress(service, spec.metricsPort ?? DEFAULT_METRICS_PORT)}`,
    "  no log",
    `  http-request use-service prometheus-exporter if { path ${METRICS_PATH} }`,
    "  http-request return status 404",
    "",
    // monitor-uri answers from HAProxy itself: the probe says the process accepts connections, independent of backends.
    "frontend health",
    "  mode http",
    `  bind ${bindAddress(service, spec.healthPort ?? DEFAULT_HEALTH_PORT)}`,
    "  no log",
    `  monitor-uri ${HEALTH_PATH}`,
    "  http-request return status 404",
    "",
  );
  const modeOf = new Map(spec.listeners.map((l) => [l.backend, l.mode]));
  for (const l of spec.listeners) {
    out.push(
      `frontend ${l.name}`,
      `  mode ${l.mode}`,
      // v4v6: "::" alone would accept IPv6 only where net.ipv6.bindv6only=1.
      `  bind ${bindAddress(l.address, l.port)}${l.address === "::" ? " v4v6" : ""} shards by-thread backlog ${globals.backlog}`,
    );
    const accessLog = spec.accessLog ?? "errors";
    if (accessLog === "off") out.push("  no log");
    else out.push(l.mode === "http" ? "  option httplog" : "  option tcplog", ...(accessLog === "errors" ? ["  option dontlog-normal"] : []));
    if (l.mode === "http") out.push("  option forwardfor");
    if (isSplicing(l)) out.push(...(l.splice === "auto" ? ["  option splice-auto"] : ["  option splice-request", "  option splice-response"]));
    out.push(`  default_backend ${l.backend}`, "");
  }
  for (const b of spec.backends) {
    const mode = modeOf.get(b.name) ?? "tcp";
    const check = b.healthCheck ?? { type: "tcp" };
    out.push(`backend ${b.name}`, `  mode ${mode}`, `  balance ${b.balance ?? (mode === "http" ? "roundrobin" : "leastconn")}`);
    if (check.type === "http") {
      out.push(`  option httpchk GET ${check.path ?? "/"}`);
      if (check.expectStatus !== undefined) out.push(`  http-check expect status ${check.expectStatus}`);
    }
    for (const s of b.servers) {
      const parts = [`  server ${s.name} ${bindAddress(s.address.replace(/^\[|\]$/g, ""), s.port)}`];
      if (s.weight !== undefined) parts.push(`weight ${s.weight}`);
      if (s.softLimit !== undefined) parts.push(`maxconn ${s.softLimit}`);
      if (s.hardLimit !== undefined && s.softLimit !== undefined) parts.push(`maxqueue ${s.hardLimit - s.softLimit}`);
      if (check.type !== "none") parts.push(`check inter ${check.intervalSeconds ?? 2}s`);
      out.push(parts.join(" "));
    }
    out.push("");
  }
  return out.join("\n");
}
