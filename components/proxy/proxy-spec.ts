/**
 * The spec of the proxy (haproxy.cfg): listeners, backends, the service endpoints and
 * HAProxy's global limits. The one place their shapes, defaults, bounds and descriptions are
 * written; the renderer (haproxy.ts), the stack loader (`edgetune:proxy`), the Kubernetes
 * objects and the generated reference take them from here.
 */
import { z } from "zod";
import { managementSpec } from "../management";
import { grammar } from "../validation";

/** Load-balancing algorithms HAProxy 2.6 and 3.2 both accept without arguments. */
export const BALANCE_ALGORITHMS = ["roundrobin", "static-rr", "leastconn", "first", "source"] as const;
/** HAProxy 2.6's MAX_THREADS on 64-bit builds; 3.2 allows more only with thread groups. */
export const MAX_THREADS = 64;
export const METRICS_PATH = "/metrics";
export const HEALTH_PATH = "/healthz";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const HOST =
  /^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[?[0-9A-Fa-f:.]{2,45}\]?|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$/;
const ADDRESS = /^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]{2,45})$/;
const URL_PATH = /^\/[A-Za-z0-9._~/-]{0,200}$/;

const port = grammar.port;
const seconds = (fallback: number, what: string) => grammar.int(1, 86400).default(fallback).describe(`${what}, seconds.`);
const name = () =>
  z.string().regex(NAME, 'allowed: letters, digits, "_", "." and "-", starting with a letter or digit, at most 63 characters');
const address = () => z.string().regex(ADDRESS, "allowed: an IPv4 or IPv6 address");

export const listenerSpec = z.strictObject({
  name: name().describe("Frontend name."),
  mode: z.enum(["tcp", "http"]).describe("`tcp`: L4 pass-through (splice capable). `http`: L7 with HTTP parsing."),
  port: port().describe("TCP port to listen on; below 1024 needs NET_BIND_SERVICE."),
  address: address().default("0.0.0.0").describe('Address to bind; "::" binds IPv4 and IPv6 (v4v6).'),
  backend: z.string().describe("Name of a backend in `backends`."),
  splice: z
    .enum(["always", "auto", "off"])
    .optional()
    .describe(
      "tcp only: move data with splice(2) instead of copying it through user space (lab: about 2x the throughput at 1/3 of the CPU per GB). `always`: splice-request + splice-response (the default for tcp listeners); `auto`: HAProxy's heuristic, which spliced 0 bytes of an iperf3 stream on 2.6.12; `off`: copy.",
    ),
});

export const serverSpec = z.strictObject({
  name: name().describe("Server name, unique within its backend."),
  address: z
    .string()
    .regex(HOST, "allowed: an IPv4/IPv6 address or a DNS name")
    .describe(
      "IP address or DNS name. A name is resolved through the node's /etc/resolv.conf and followed at run time (HAProxy `resolvers`); one that does not resolve at start leaves the server down until it does, so `haproxy -c` needs no DNS.",
    ),
  port: port().describe("Server port."),
  weight: grammar.int(0, 256).optional().describe("Relative weight. Default: 1 (HAProxy's)."),
  softLimit: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      "edgeProxy's soft_limit: concurrent connections the server handles comfortably (HAProxy `maxconn`); beyond it requests queue. Default: unlimited.",
    ),
  hardLimit: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      "edgeProxy's hard_limit: active + queued before new ones are refused (`maxqueue` = hardLimit - softLimit; needs softLimit, must exceed it). Default: unlimited queue.",
    ),
});

export const healthCheckSpec = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("tcp"), intervalSeconds: seconds(2, "Interval between checks") }),
  z.strictObject({
    type: z.literal("http"),
    path: z.string().regex(URL_PATH, 'allowed: a path like "/healthz"').default("/").describe("Path of the HTTP check."),
    expectStatus: grammar.int(100, 599).optional().describe("Status the check expects. Default: any 2xx or 3xx."),
    intervalSeconds: seconds(2, "Interval between checks"),
  }),
  z.strictObject({ type: z.literal("none") }),
]);

export const backendSpec = z.strictObject({
  name: name().describe("Backend name."),
  balance: z
    .enum(BALANCE_ALGORITHMS)
    .optional()
    .describe("Load-balancing algorithm. Default: roundrobin for http backends, leastconn for tcp (long-lived connections)."),
  healthCheck: healthCheckSpec
    .prefault({ type: "tcp" })
    .describe("`{ type: tcp }` (default), `{ type: http, path, expectStatus }` or `{ type: none }`."),
  servers: z.array(serverSpec).describe("At least one server."),
});

export const timeoutsSpec = z.strictObject({
  connectSeconds: seconds(5, "Time to connect to a server"),
  clientSeconds: seconds(30, "Client inactivity"),
  serverSeconds: seconds(30, "Server inactivity"),
  httpRequestSeconds: seconds(10, "Time to receive a whole HTTP request (slowloris guard)"),
  httpKeepAliveSeconds: seconds(10, "Idle time between keep-alive requests"),
  queueSeconds: seconds(10, "Time a request may wait in a server queue (softLimit reached)"),
  tunnelSeconds: seconds(3600, "Inactivity of upgraded (WebSocket) or CONNECT tunnels"),
  hardStopAfterSeconds: seconds(30, "After a reload, old workers are killed this long after they stop listening"),
});

export const proxySpecSchema = z.strictObject({
  listeners: z.array(listenerSpec).min(1, "allowed: at least one listener").describe("What the proxy listens on."),
  backends: z.array(backendSpec).describe("Where listeners send traffic."),
  metricsPort: port().default(8404).describe("Prometheus exporter port (`/metrics`)."),
  healthPort: port().default(8405).describe("Health endpoint port (`/healthz`, HAProxy monitor-uri)."),
  management: managementSpec
    .prefault({})
    .describe(
      "Where the metrics and health endpoints listen and whom they answer: the node's internal address and private sources by default, never the internet (docs/management.md).",
    ),
  threads: grammar
    .int(1, MAX_THREADS)
    .optional()
    .describe(
      "Worker threads. Default: with cpuMap: auto, one per NIC CPU of the profile; else the node's CPUs when known, else HAProxy's own choice (every CPU it may run on).",
    ),
  cpuMap: z
    .enum(["auto", "off"])
    .default("off")
    .describe(
      "`auto`: one HAProxy thread per CPU that handles the NICs' packets — the union of the proxy profile's nics[].irqAffinity.cpus and nics[].rps.cpus — pinned in order with `cpu-map auto:1/1-N <cpus>`, and nbthread N; a profile with no such CPU set is refused, and so is a `threads` other than N. `off`: threads float over every CPU the process may use.",
    ),
  maxconn: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("Global maxconn. Default: the largest the fd budget allows; an explicit value must fit it."),
  pipesize: grammar
    .int(4096, 1 << 24)
    .optional()
    .describe(
      "Splice pipe size in bytes (`tune.pipesize`), when a listener splices. Default: the kernel's 64 KiB. Lab: 1 MiB cut HAProxy's CPU per GB by ~30 % at 4 streams; each pipe may pin this much kernel memory, and above fs.pipe-max-size it needs CAP_SYS_RESOURCE.",
    ),
  accessLog: z
    .enum(["errors", "all", "off"])
    .default("errors")
    .describe("Session logs to stdout: `errors` only failed sessions (HAProxy skips building the others), `all`, or `off`."),
  timeouts: timeoutsSpec.prefault({}).describe("HAProxy timeouts."),
  runtimeDir: grammar
    .absolutePath()
    .default("/var/run/haproxy")
    .describe("Directory of the admin and master sockets; must be writable (an emptyDir in the pod)."),
});

/** The proxy as a user writes it (defaults optional). */
export type ProxySpec = z.input<typeof proxySpecSchema>;
/** Every default applied: what the renderers read. */
export type ResolvedProxySpec = z.output<typeof proxySpecSchema>;
export type ProxyListener = ResolvedProxySpec["listeners"][number];
export type ProxyBackend = ResolvedProxySpec["backends"][number];
export type ProxyServer = ProxyBackend["servers"][number];
export type HealthCheck = ProxyBackend["healthCheck"];
export type BalanceAlgorithm = (typeof BALANCE_ALGORITHMS)[number];
export type SpliceMode = NonNullable<ProxyListener["splice"]>;
export type ProxyTimeouts = ResolvedProxySpec["timeouts"];
