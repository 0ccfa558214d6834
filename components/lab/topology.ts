/**
 * The local lab's topology and its step script (pure).
 *
 *   client ──et-cp/et-pc── proxy ──et-pb/et-bp── backend
 *      └──────────────et-cb/et-bc──────────────────┘   (direct: the physical limit)
 *
 * Three network namespaces stand in for three nodes. The proxy namespace also
 * routes (ip_forward) so the same client → backend path can be measured as
 * plain kernel forwarding, the ceiling for an L4 proxy on this path.
 *
 * `lab.sh` is the one definition of the steps; `edgetune lab` and the Pulumi
 * `local` target (command.local.Command create/delete) both run it.
 */
import { readAsset, shAssignments } from "../shell";
import { resolveWith } from "../validation";
import { DEFAULT_TOPOLOGY, labTopologySpec, type LabTopology } from "./local-lab-spec";

export { DEFAULT_TOPOLOGY, type LabTopology } from "./local-lab-spec";

export interface LabAddresses {
  namespaces: { client: string; proxy: string; backend: string };
  /** Client-facing address of the proxy (listeners bind here). */
  proxy: string;
  /** Proxy's address toward the backend. */
  proxyToBackend: string;
  /** Backend as the proxy sees it (also the target of the forwarded path). */
  backend: string;
  /** Backend on the direct client ↔ backend link. */
  backendDirect: string;
  client: string;
}

export function labAddresses(t: LabTopology = DEFAULT_TOPOLOGY): LabAddresses {
  const n = `10.${t.subnet}`;
  return {
    namespaces: { client: `${t.prefix}-client`, proxy: `${t.prefix}-proxy`, backend: `${t.prefix}-backend` },
    client: `${n}.1.1`,
    proxy: `${n}.1.2`,
    proxyToBackend: `${n}.2.1`,
    backend: `${n}.2.2`,
    backendDirect: `${n}.3.2`,
  };
}

/**
 * Where the lab's HAProxy keeps its admin and master sockets: one place per topology on the
 * machine (like its namespaces), so every haproxy.cfg rendered for the lab — by `edgetune
 * lab`, the local target or `edgetune render` — is the same file. Short: sun_path is 107 bytes.
 */
export function labRuntimeDir(t: LabTopology = DEFAULT_TOPOLOGY): string {
  return `/run/${t.prefix}-lab`;
}

/** Validates a topology; returns problems as "field: message". */
export function topologyProblems(t: unknown): string[] {
  return resolveWith(labTopologySpec, t).issues.map((i) => `${i.path}: ${i.message}`);
}

/** nginx for the backend namespace: its own paths under $LAB_DIR, nothing of the system's. */
export function renderBackendNginx(t: LabTopology, labDir: string): string {
  return `# edgetune lab backend (generated)
user root;
worker_processes 2;
pid ${labDir}/nginx.pid;
error_log ${labDir}/nginx-error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${labDir}/nginx-tmp/body;
  proxy_temp_path ${labDir}/nginx-tmp/proxy;
  fastcgi_temp_path ${labDir}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${labDir}/nginx-tmp/uwsgi;
  scgi_temp_path ${labDir}/nginx-tmp/scgi;
  # The default (1000) would add reconnects to keep-alive runs.
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {
    listen ${t.httpPort} reuseport backlog=65535;
    location / { default_type text/plain; return 200 "${"x".repeat(t.bodyBytes - 1)}\\n"; }
  }
}
`;
}

/**
 * The lab's step script. Subcommands:
 *   up              namespaces, veths, addresses, routes, backend nginx + iperf3
 *   tune SCRIPT     apply a rendered tune.sh: per-namespace keys in the proxy namespace,
 *                   global keys on the host (both recorded for untune)
 *   untune          restore what tune changed (host first)
 *   proxy-start CFG start HAProxy in the proxy namespace
 *   proxy-stop      stop it (by the PID it wrote)
 *   down            proxy-stop, untune, stop the backend, delete the namespaces
 *   status          print what exists
 * State lives in $LAB_DIR (default: the script's directory). The steps are lab.sh beside this
 * module; what is rendered is a header naming this topology's values, then those steps.
 */
export function renderLabScript(t: LabTopology = DEFAULT_TOPOLOGY): string {
  const problems = topologyProblems(t);
  if (problems.length) throw new Error(`invalid lab topology: ${problems.join("; ")}`);
  const a = labAddresses(t);
  const n = `10.${t.subnet}`;
  // Every value the steps use comes from here, quoted, though topologyProblems has checked them:
  // the static lab.sh beside this file only expands the variables.
  const vars = {
    NS_CLIENT: a.namespaces.client,
    NS_PROXY: a.namespaces.proxy,
    NS_BACKEND: a.namespaces.backend,
    QUEUES: t.queues,
    IPERF_PORT: t.iperfPort,
    RUN_DIR: labRuntimeDir(t),
    CLIENT_ADDR: a.client,
    PROXY_ADDR: a.proxy,
    PROXY_BACKEND_ADDR: a.proxyToBackend,
    BACKEND_ADDR: a.backend,
    CLIENT_DIRECT_ADDR: `${n}.3.1`,
    BACKEND_DIRECT_ADDR: a.backendDirect,
    CLIENT_PROXY_NET: `${n}.1.0/24`,
    PROXY_BACKEND_NET: `${n}.2.0/24`,
  };
  return [
    "#!/bin/sh",
    "# lab.sh — edgetune's local lab (generated). Usage: lab.sh up|tune SCRIPT|untune|proxy-start CFG|proxy-stop|down|status",
    shAssignments(vars),
    "",
    readAsset(__dirname, "lab.sh"),
  ].join("\n");
}
