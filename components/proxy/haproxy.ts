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
 *   ("Cannot raise FD limit") when the hard limit cannot be raised. The
 *   values fit the limit the renderer assumes; where the real one is only
 *   known at start (a container), maxconn and maxpipes come from environment
 *   variables whose defaults (presetenv) are the rendered values, and the
 *   proxy image's entrypoint sets them from the fd budget line and its real
 *   `ulimit -Hn`;
 * - one SO_REUSEPORT socket per thread (`shards by-thread`), so the kernel
 *   spreads new connections over threads instead of one accept queue;
 * - `tfo` on the listeners' binds when the profile's net.ipv4.tcp_fastopen has
 *   the server bit (2): the kernel only answers a TFO SYN on a socket that
 *   asked for it, so the sysctl alone does nothing for HAProxy;
 * - with `cpuMap: auto`, one thread per CPU that handles the NICs' packets
 *   (the profile's IRQ affinity and RPS CPUs), pinned with `cpu-map`.
 *
 * Output is valid for HAProxy 2.6 (Debian 12) and 3.2 (upstream LTS): every
 * keyword used exists with the same meaning in both configuration manuals.
 */
import { isIP } from "node:net";
import { formatPath, resolveWith, show, ValidationError, type PathSegment, type ValidationIssue } from "../validation";
import {
  HEALTH_PATH,
  MAX_THREADS,
  METRICS_PATH,
  proxySpecSchema,
  type ProxyListener,
  type ProxySpec,
  type ResolvedProxySpec,
} from "./proxy-spec";

export * from "./proxy-spec";
import { ephemeralPlan } from "../tuning/ports";
import {
  MANAGEMENT_ADDRESS_ENV,
  managementBind,
  managementIssues,
  managementSources,
  WILDCARD_ADDRESSES,
  type ResolvedManagement,
} from "../management";
import { parseCpuList } from "../tuning/cpus";
import type { ResolvedProfile } from "../tuning/types";

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

/** Kernel default of net.core.somaxconn since Linux 5.4. */
export const KERNEL_SOMAXCONN_DEFAULT = 4096;
/**
 * nofile assumed when neither the node nor the profile says: what every
 * mainstream container runtime's hard limit is at least, so HAProxy can
 * always raise its soft limit that far.
 */
export const DEFAULT_NOFILE = 65536;

/**
 * How HAProxy spends file descriptors: the one formula that both this renderer (for the limit
 * it assumes) and proxy-image/entrypoint.sh (for the container's real `ulimit -Hn`) evaluate.
 * The entrypoint reads it from the `# edgetune-fd-budget:` line of the rendered config, so the
 * shell only does the integer arithmetic of `maxconnFitting` and `maxpipesFor`.
 */
export interface FdBudget {
  /** fds kept out of the connection budget (listeners, checks, pollers, sockets). */
  reservedFds: number;
  /** fds per proxied connection as [fds, connections]: [2, 1], or [5, 2] when splicing (a pipe of 2 fds per 4 connections). */
  fdsPerConnection: [number, number];
  /** Splice pipes per connection as [pipes, connections], only when a listener splices: HAProxy's own maxconn/4. */
  pipesPerConnection?: [number, number];
}

/** The largest maxconn whose fds fit `nofile`; below 1 when even the reserved fds do not. */
export function maxconnFitting(nofile: number, b: FdBudget): number {
  const [fds, conns] = b.fdsPerConnection;
  return Math.floor(((nofile - b.reservedFds) * conns) / fds);
}

/** maxpipes for a maxconn; undefined when nothing splices. */
export function maxpipesFor(maxconn: number, b: FdBudget): number | undefined {
  if (!b.pipesPerConnection) return undefined;
  const [pipes, conns] = b.pipesPerConnection;
  return Math.max(1, Math.floor((maxconn * pipes) / conns));
}

/** Environment variables the rendered config takes maxconn and maxpipes from (presetenv gives the rendered values as defaults). */
export const MAXCONN_ENV = "EDGETUNE_MAXCONN";
export const MAXPIPES_ENV = "EDGETUNE_MAXPIPES";
/** Starts the config line proxy-image/entrypoint.sh reads the fd budget from. */
export const FD_BUDGET_MARKER = "# edgetune-fd-budget:";

/** The machine-readable fd budget line of a rendered config. */
export function fdBudgetLine(maxconn: number, b: FdBudget): string {
  const parts = [`maxconn=${maxconn}`, `reserved-fds=${b.reservedFds}`, `fds-per-conn=${b.fdsPerConnection.join("/")}`];
  if (b.pipesPerConnection) parts.push(`pipes-per-conn=${b.pipesPerConnection.join("/")}`);
  return `${FD_BUDGET_MARKER} ${parts.join(" ")}`;
}

/** What the renderer derived from the node: shown in PLAN.md and asserted by tests. */
export interface HaproxyGlobals {
  /** undefined: HAProxy picks (all CPUs it may run on). */
  threads?: number;
  /** For the assumed `nofile`; the proxy image's entrypoint lowers it to what the real limit fits. */
  maxconn: number;
  /** Set only when a listener splices. */
  maxpipes?: number;
  backlog: number;
  /** The RLIMIT_NOFILE the values were derived for. */
  nofile: number;
  /** fds kept out of the connection budget (listeners, checks, pollers, sockets). */
  reservedFds: number;
  budget: FdBudget;
  /** Listeners accept TCP Fast Open (the profile's tcp_fastopen has the server bit). */
  tfo: boolean;
  /** Thread pinning (`cpuMap: auto`): thread i+1 runs on cpus[i]. */
  cpuMap?: { cpus: number[]; cpuList: string; line: string };
}

/** tcp_fastopen bit 2: the kernel accepts data in the SYN on listeners that enable TFO. */
const TFO_SERVER = 2;

/**
 * The CPUs that receive the NICs' packets: IRQ affinity CPUs run the hardware interrupt and
 * NAPI, RPS CPUs the protocol stack. A proxy thread on one of them finds the socket it
 * reads warm in that CPU's cache; elsewhere every wake-up crosses CPUs.
 */
export function nicCpus(profile: ResolvedProfile): number[] {
  const cpus = new Set<number>();
  for (const nic of profile.nics)
    for (const list of [nic.irqAffinity?.cpus, nic.rps?.cpus]) {
      const parsed = list === undefined ? [] : parseCpuList(list);
      if (Array.isArray(parsed)) for (const c of parsed) cpus.add(c);
    }
  return [...cpus].sort((a, b) => a - b);
}

/** A sorted CPU list in cpulist form ("0-3,6"). */
function formatCpuList(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length;) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    parts.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** Derives cpu-map from the profile, or says why it cannot work. */
function deriveCpuMap(spec: ResolvedProxySpec, node: ProxyNodeFacts, issues: ValidationIssue[]): HaproxyGlobals["cpuMap"] | undefined {
  if (spec.cpuMap !== "auto") return undefined;
  const cpus = nicCpus(node.profile);
  const where = `profile "${node.profile.name}"`;
  if (cpus.length === 0) {
    issues.push({
      path: "cpuMap",
      message: `got "auto"; ${where} names no CPU set for its NICs: set nics[].irqAffinity.cpus or nics[].rps.cpus in the profile, or cpuMap: off`,
    });
    return undefined;
  }
  const cpuList = formatCpuList(cpus);
  if (cpus.length > MAX_THREADS)
    issues.push({
      path: "cpuMap",
      message: `got "auto"; ${where} handles NIC packets on ${cpus.length} CPUs (${cpuList}), one thread each exceeds HAProxy's ${MAX_THREADS} threads: narrow the profile's CPU sets or cpuMap: off`,
    });
  if (spec.threads !== undefined && spec.threads !== cpus.length)
    issues.push({
      path: "threads",
      message: `got ${spec.threads}; cpuMap: auto runs one thread per NIC CPU of ${where} (${cpuList}), so threads must be ${cpus.length} or unset`,
    });
  if (node.cpus !== undefined && cpus[cpus.length - 1] >= node.cpus)
    issues.push({
      path: "cpuMap",
      message: `got "auto"; ${where} names CPU ${cpus[cpus.length - 1]} (${cpuList}), but this node has ${node.cpus} CPUs (0-${node.cpus - 1}): HAProxy cannot pin a thread there`,
    });
  // auto: thread i takes the i-th CPU of the list; HAProxy's cpu-set takes ranges separated by spaces.
  const line = `cpu-map auto:1/1-${cpus.length} ${cpuList.split(",").join(" ")}`;
  return { cpus, cpuList, line };
}

function sysctlNumber(profile: ResolvedProfile, key: string): string | undefined {
  return profile.sysctls.find((s) => s.key === key)?.value;
}

function isSplicing(l: Pick<ProxyListener, "mode" | "splice">): boolean {
  return l.mode === "tcp" && l.splice !== "off";
}

/** Derives the global settings from the spec and the node, or the problems that prevent it. */
function deriveGlobals(spec: ResolvedProxySpec, node: ProxyNodeFacts): { globals: HaproxyGlobals; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  const cpuMap = deriveCpuMap(spec, node, issues);
  const threads =
    cpuMap?.cpus.length ??
    spec.threads ??
    (node.cpus !== undefined ? Math.min(Math.max(1, Math.floor(node.cpus)), MAX_THREADS) : undefined);
  const somaxconn = sysctlNumber(node.profile, "net.core.somaxconn");
  const backlog = somaxconn ? Number(somaxconn) : KERNEL_SOMAXCONN_DEFAULT;
  const nofile = node.nofileLimit ?? node.profile.limits?.nofileHard ?? DEFAULT_NOFILE;
  // Per-thread sockets of every listener, the two service endpoints, one
  // check connection per server, and headroom for pollers, wake-up pipes,
  // the stats and master sockets and DNS; measured overhead is ~30 fds.
  const threadsForBudget = threads ?? MAX_THREADS;
  const servers = spec.backends.reduce((n, b) => n + b.servers.length, 0);
  const splicing = spec.listeners.some(isSplicing);
  const budget: FdBudget = {
    reservedFds: 256 + (spec.listeners.length + 2) * threadsForBudget + servers,
    // 2 fds per proxied connection; with splice, one pipe (2 fds) per 4 connections.
    fdsPerConnection: splicing ? [5, 2] : [2, 1],
    ...(splicing ? { pipesPerConnection: [1, 4] as [number, number] } : {}),
  };
  const { reservedFds } = budget;
  const fits = maxconnFitting(nofile, budget);
  if (fits < 1)
    issues.push({ path: "nofile", message: `RLIMIT_NOFILE ${nofile} leaves no room for connections after ${reservedFds} reserved fds` });
  let maxconn = Math.max(1, fits);
  if (spec.maxconn !== undefined) {
    if (spec.maxconn > fits) {
      const [fds, conns] = budget.fdsPerConnection;
      issues.push({
        path: "maxconn",
        message: `got ${spec.maxconn}; RLIMIT_NOFILE ${nofile} allows at most ${fits} (${fds / conns} fds per connection${splicing ? " incl. splice pipes" : ""} + ${reservedFds} reserved): raise limits.nofileHard or lower maxconn`,
      });
    }
    maxconn = spec.maxconn;
  }
  const tfo = (Number(sysctlNumber(node.profile, "net.ipv4.tcp_fastopen") ?? 0) & TFO_SERVER) !== 0;
  return {
    globals: { threads, maxconn, maxpipes: maxpipesFor(maxconn, budget), backlog, nofile, reservedFds, budget, tfo, cpuMap },
    issues,
  };
}

/**
 * Validates a proxy spec against itself and the node: unknown fields, port
 * collisions, listen ports the kernel could hand out as source ports,
 * backends without servers, unknown backends, limits that do not fit.
 * Returns every problem, paths prefixed with `prefix`.
 */
export function checkProxySpec(
  input: unknown,
  node: ProxyNodeFacts,
  prefix: readonly PathSegment[] = ["proxy"],
): { spec?: ResolvedProxySpec; globals?: HaproxyGlobals; issues: ValidationIssue[] } {
  const at = (...s: PathSegment[]) => formatPath([...prefix, ...s]);
  const parsed = resolveWith(proxySpecSchema, input, prefix);
  if (!parsed.value) return { issues: parsed.issues };
  const spec = parsed.value;
  const issues: ValidationIssue[] = [];

  const names = new Map<string, number>();
  const backendIndex = new Map<string, number>();
  spec.backends.forEach((b, i) => {
    if (backendIndex.has(b.name)) issues.push({ path: at("backends", i, "name"), message: `duplicate backend name ${show(b.name)}` });
    backendIndex.set(b.name, i);
    if (b.servers.length === 0)
      issues.push({ path: at("backends", i, "servers"), message: `backend ${show(b.name)} has no servers; allowed: at least one server` });
    const serverNames = new Set<string>();
    b.servers.forEach((s, j) => {
      if (serverNames.has(s.name))
        issues.push({
          path: at("backends", i, "servers", j, "name"),
          message: `duplicate server name ${show(s.name)} in backend ${show(b.name)}`,
        });
      serverNames.add(s.name);
      if (s.hardLimit !== undefined) {
        if (s.softLimit === undefined)
          issues.push({
            path: at("backends", i, "servers", j, "hardLimit"),
            message: "hardLimit needs softLimit (hardLimit - softLimit is the queue length)",
          });
        else if (s.hardLimit <= s.softLimit)
          issues.push({
            path: at("backends", i, "servers", j, "hardLimit"),
            message: `got ${s.hardLimit}; must be greater than softLimit (${s.softLimit}): HAProxy reads a zero-length queue as unlimited`,
          });
      }
    });
  });

  // Who binds what: listeners plus the two service endpoints.
  const binds: Array<{ port: number; path: string; what: string }> = [];
  const backendModes = new Map<string, { mode: string; path: string }>();
  spec.listeners.forEach((l, i) => {
    if (names.has(l.name)) issues.push({ path: at("listeners", i, "name"), message: `duplicate listener name ${show(l.name)}` });
    names.set(l.name, i);
    if (l.name === "metrics" || l.name === "health")
      issues.push({ path: at("listeners", i, "name"), message: `${show(l.name)} is reserved for the service endpoints` });
    binds.push({ port: l.port, path: at("listeners", i, "port"), what: `listener ${show(l.name)}` });
    if (l.splice !== undefined && l.mode !== "tcp")
      issues.push({ path: at("listeners", i, "splice"), message: "splice applies to tcp listeners only" });
    if (!backendIndex.has(l.backend)) {
      issues.push({
        path: at("listeners", i, "backend"),
        message: `got ${show(l.backend)}; allowed: one of the backends ${[...backendIndex.keys()].map((n) => show(n)).join(", ") || "(none defined)"}`,
      });
    } else {
      const prev = backendModes.get(l.backend);
      if (prev && prev.mode !== l.mode)
        issues.push({
          path: at("listeners", i, "mode"),
          message: `backend ${show(l.backend)} is already used in ${prev.mode} mode by ${prev.path}; a backend has one mode`,
        });
      else backendModes.set(l.backend, { mode: l.mode, path: at("listeners", i) });
    }
  });
  // A port the user did not set is named as the default it is, not blamed on them.
  const given = (key: string) => !!input && typeof input === "object" && key in input;
  binds.push({
    port: spec.metricsPort,
    path: at("metricsPort"),
    what: given("metricsPort") ? "the metrics endpoint" : "the metrics endpoint (its default port; metricsPort is not set)",
  });
  binds.push({
    port: spec.healthPort,
    path: at("healthPort"),
    what: given("healthPort") ? "the health endpoint" : "the health endpoint (its default port; healthPort is not set)",
  });
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

  issues.push(
    ...managementIssues(
      spec.management,
      (key) => at("management", key),
      spec.listeners.map((l, i) => ({ name: l.name, address: l.address, path: at("listeners", i, "address") })),
    ),
  );

  const derived = deriveGlobals(spec, node);
  issues.push(...derived.issues.map((i) => ({ path: i.path === "nofile" ? at() : at(i.path), message: i.message })));
  if (issues.length) return { issues };
  return { spec, globals: derived.globals, issues };
}

/** Validates a proxy spec; throws one `ValidationError` naming every bad path. */
export function validateProxySpec(
  input: unknown,
  node: ProxyNodeFacts,
  prefix: readonly PathSegment[] = ["proxy"],
): { spec: ResolvedProxySpec; globals: HaproxyGlobals } {
  const r = checkProxySpec(input, node, prefix);
  if (!r.spec || !r.globals) throw new ValidationError(r.issues, "invalid proxy spec");
  return { spec: r.spec, globals: r.globals };
}

const RESOLVERS = "dns";

/** An IPv4 or IPv6 literal (bracketed or not), as opposed to a DNS name. */
function isIpAddress(a: string): boolean {
  const bare = a.replace(/^\[|\]$/g, "");
  return isIP(bare) !== 0;
}

function bindAddress(a: string, port: number): string {
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/**
 * The management endpoints' bind and source check (docs/management.md). An address known only
 * where HAProxy starts comes from the environment, and a config that would bind every address
 * because it is missing refuses to load (`.alert`) rather than expose the endpoints.
 */
function managementLines(m: ResolvedManagement): { guard: string[]; bind: (port: number) => string; acl: string[] } {
  const b = managementBind(m);
  const env = `\${${MANAGEMENT_ADDRESS_ENV}}`;
  const fromEnv = b.kind !== "address";
  const guard = fromEnv
    ? [
        `.if !defined(${MANAGEMENT_ADDRESS_ENV})`,
        `  .alert "${MANAGEMENT_ADDRESS_ENV} is not set: ${b.kind === "cidr" ? `the entrypoint sets it to this node's address in ${b.cidr}` : "the pod sets it from status.hostIP; elsewhere set it to the node internal address"}"`,
        `.elif streq("$${MANAGEMENT_ADDRESS_ENV}","")`,
        `  .alert "${MANAGEMENT_ADDRESS_ENV} is empty"`,
        ...(m.exposePublicly
          ? []
          : [
              `.elif ${WILDCARD_ADDRESSES.map((w) => `streq("$${MANAGEMENT_ADDRESS_ENV}","${w}")`).join(" || ")}`,
              `  .alert "${MANAGEMENT_ADDRESS_ENV} is a wildcard: metrics and health would face every network (management.exposePublicly is false)"`,
            ]),
        ".endif",
        "",
      ]
    : [];
  const sources = managementSources(m);
  // kubelet's probes and checks on the node itself come from the node's own address.
  const self = fromEnv ? `"${env}"` : b.address;
  const acl = sources.length ? [`  tcp-request connection reject if !{ src ${[...sources, self].join(" ")} }`] : [];
  return { guard, bind: (port) => (fromEnv ? `"${env}:${port}"` : bindAddress(b.address, port)), acl };
}

/** Ports below 1024 the proxy binds: they need CAP_NET_BIND_SERVICE when not root. */
export function privilegedPorts(spec: ResolvedProxySpec): number[] {
  const ports = [...spec.listeners.map((l) => l.port), spec.metricsPort, spec.healthPort];
  return [...new Set(ports.filter((p) => p < 1024))].sort((a, b) => a - b);
}

/** The admin socket path (stats, `show info`, `show fd`). */
export function adminSocketPath(spec: ProxySpec): string {
  return `${proxySpecSchema.shape.runtimeDir.parse(spec.runtimeDir)}/admin.sock`;
}

/**
 * Renders haproxy.cfg. Validates first (throws `ValidationError`), so a
 * config that is returned has passed every check.
 */
export function renderHaproxyConfig(input: ProxySpec, node: ProxyNodeFacts): string {
  const { spec, globals } = validateProxySpec(input, node);
  const t = spec.timeouts;
  const runtimeDir = spec.runtimeDir;
  const out: string[] = [
    `# Generated by edgetune for node profile "${node.profile.name}". Do not edit: re-render.`,
    `# fd budget: RLIMIT_NOFILE ${globals.nofile} = 2 x maxconn${globals.maxpipes !== undefined ? " + 2 x maxpipes" : ""} + ${globals.reservedFds} reserved.`,
    `# The proxy image's entrypoint lowers maxconn${globals.maxpipes !== undefined ? " and maxpipes" : ""} to what its real ulimit -Hn fits, by this line:`,
    fdBudgetLine(globals.maxconn, globals.budget),
    "global",
  ];
  if (globals.threads !== undefined) out.push(`  nbthread ${globals.threads}`);
  if (globals.cpuMap)
    out.push(`  # threads on the CPUs that take the NICs' IRQs and RPS (${globals.cpuMap.cpuList}), one each`, `  ${globals.cpuMap.line}`);
  // presetenv sets only what the environment does not: run as rendered unless the entrypoint says otherwise.
  out.push(`  presetenv ${MAXCONN_ENV} ${globals.maxconn}`);
  if (globals.maxpipes !== undefined) out.push(`  presetenv ${MAXPIPES_ENV} ${globals.maxpipes}`);
  out.push(`  maxconn "\${${MAXCONN_ENV}}"`);
  if (globals.maxpipes !== undefined) out.push(`  maxpipes "\${${MAXPIPES_ENV}}"`);
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
  const mgmt = managementLines(spec.management);
  out.push(
    ...mgmt.guard,
    "frontend metrics",
    "  mode http",
    `  bind ${mgmt.bind(spec.metricsPort)}`,
    ...mgmt.acl,
    "  no log",
    `  http-request use-service prometheus-exporter if { path ${METRICS_PATH} }`,
    "  http-request return status 404",
    "",
    // monitor-uri answers from HAProxy itself: the probe says the process accepts connections, independent of backends.
    "frontend health",
    "  mode http",
    `  bind ${mgmt.bind(spec.healthPort)}`,
    ...mgmt.acl,
    "  no log",
    `  monitor-uri ${HEALTH_PATH}`,
    "  http-request return status 404",
    "",
  );
  // Servers named by DNS (a Kubernetes Service name): resolved at run time through the
  // resolv.conf nameservers, at start by libc if they answer, else the server starts down.
  const byName = spec.backends.some((b) => b.servers.some((s) => !isIpAddress(s.address)));
  if (byName)
    out.push(
      `resolvers ${RESOLVERS}`,
      "  parse-resolv-conf",
      "  resolve_retries 3",
      "  timeout resolve 1s",
      "  timeout retry 1s",
      "  hold valid 10s",
      "  hold obsolete 30s",
      "",
    );
  const modeOf = new Map(spec.listeners.map((l) => [l.backend, l.mode]));
  for (const l of spec.listeners) {
    out.push(
      `frontend ${l.name}`,
      `  mode ${l.mode}`,
      // v4v6: "::" alone would accept IPv6 only where net.ipv6.bindv6only=1.
      `  bind ${bindAddress(l.address, l.port)}${l.address === "::" ? " v4v6" : ""} shards by-thread backlog ${globals.backlog}${globals.tfo ? " tfo" : ""}`,
    );
    const accessLog = spec.accessLog;
    if (accessLog === "off") out.push("  no log");
    else
      out.push(l.mode === "http" ? "  option httplog" : "  option tcplog", ...(accessLog === "errors" ? ["  option dontlog-normal"] : []));
    if (l.mode === "http") out.push("  option forwardfor");
    if (isSplicing(l))
      out.push(...(l.splice === "auto" ? ["  option splice-auto"] : ["  option splice-request", "  option splice-response"]));
    out.push(`  default_backend ${l.backend}`, "");
  }
  for (const b of spec.backends) {
    const mode = modeOf.get(b.name) ?? "tcp";
    const check = b.healthCheck;
    out.push(`backend ${b.name}`, `  mode ${mode}`, `  balance ${b.balance ?? (mode === "http" ? "roundrobin" : "leastconn")}`);
    if (check.type === "http") {
      out.push(`  option httpchk GET ${check.path}`);
      if (check.expectStatus !== undefined) out.push(`  http-check expect status ${check.expectStatus}`);
    }
    for (const s of b.servers) {
      const parts = [`  server ${s.name} ${bindAddress(s.address.replace(/^\[|\]$/g, ""), s.port)}`];
      if (s.weight !== undefined) parts.push(`weight ${s.weight}`);
      if (s.softLimit !== undefined) parts.push(`maxconn ${s.softLimit}`);
      if (s.hardLimit !== undefined && s.softLimit !== undefined) parts.push(`maxqueue ${s.hardLimit - s.softLimit}`);
      if (check.type !== "none") parts.push(`check inter ${check.intervalSeconds}s`);
      if (!isIpAddress(s.address)) parts.push(`resolvers ${RESOLVERS} init-addr last,libc,none`);
      out.push(parts.join(" "));
    }
    out.push("");
  }
  return out.join("\n");
}
