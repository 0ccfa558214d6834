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
import { shq } from "../shell";

export interface LabTopology {
  /** Namespace name prefix: `<prefix>-client`, `<prefix>-proxy`, `<prefix>-backend`. @default "edgetune" */
  prefix: string;
  /** rx/tx queues per veth (RPS/XPS have something to spread). @default 4 */
  queues: number;
  /** Second octet of the lab's 10.x.0.0/16: addresses exist only inside the lab's namespaces. @default 231 */
  subnet: number;
  /** Backend HTTP port (nginx). @default 8080 */
  httpPort: number;
  /** Backend iperf3 port. @default 5201 */
  iperfPort: number;
  /** Size of the backend's static response body in bytes. @default 512 */
  bodyBytes: number;
}

export const DEFAULT_TOPOLOGY: LabTopology = { prefix: "edgetune", queues: 4, subnet: 231, httpPort: 8080, iperfPort: 5201, bodyBytes: 512 };

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
export function topologyProblems(t: LabTopology): string[] {
  const p: string[] = [];
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(t.prefix)) p.push(`prefix: got ${JSON.stringify(t.prefix)}; allowed: lowercase letters, digits and "-", starting with a letter, at most 31 characters`);
  if (!Number.isInteger(t.queues) || t.queues < 1 || t.queues > 64) p.push(`queues: got ${t.queues}; allowed: an integer 1-64`);
  if (!Number.isInteger(t.subnet) || t.subnet < 0 || t.subnet > 255) p.push(`subnet: got ${t.subnet}; allowed: an integer 0-255 (the second octet of 10.x.0.0/16)`);
  for (const k of ["httpPort", "iperfPort"] as const) if (!Number.isInteger(t[k]) || t[k] < 1 || t[k] > 65535) p.push(`${k}: got ${t[k]}; allowed: an integer 1-65535`);
  if (t.httpPort === t.iperfPort) p.push("iperfPort: must differ from httpPort");
  if (!Number.isInteger(t.bodyBytes) || t.bodyBytes < 1 || t.bodyBytes > 1 << 20) p.push(`bodyBytes: got ${t.bodyBytes}; allowed: an integer 1-1048576`);
  return p;
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
 * State lives in $LAB_DIR (default: the script's directory).
 */
export function renderLabScript(t: LabTopology = DEFAULT_TOPOLOGY): string {
  const problems = topologyProblems(t);
  if (problems.length) throw new Error(`invalid lab topology: ${problems.join("; ")}`);
  const a = labAddresses(t);
  const n = `10.${t.subnet}`;
  return `#!/bin/sh
# lab.sh — edgetune's local lab (generated). Usage: lab.sh up|tune SCRIPT|untune|proxy-start CFG|proxy-stop|down|status
set -u
LAB_DIR=\${LAB_DIR:-$(cd "$(dirname "$0")" && pwd)}
NS_CLIENT=${shq(a.namespaces.client)}
NS_PROXY=${shq(a.namespaces.proxy)}
NS_BACKEND=${shq(a.namespaces.backend)}
QUEUES=${shq(t.queues)}
IPERF_PORT=${shq(t.iperfPort)}
RUN_DIR=${shq(labRuntimeDir(t))}

log() { printf 'lab: %s\\n' "$*" >&2; }
inns() { _ns=$1; shift; ip netns exec "$_ns" "$@"; }
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

# Kills a process we started, by the PID it recorded, and waits for it to go.
stop_pidfile() {
  [ -f "$1" ] || return 0
  _pid=$(cat "$1" 2>/dev/null)
  if [ -n "$_pid" ] && kill -0 "$_pid" 2>/dev/null; then
    kill "$_pid" 2>/dev/null
    _i=0
    while kill -0 "$_pid" 2>/dev/null && [ "$_i" -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
    kill -0 "$_pid" 2>/dev/null && kill -9 "$_pid" 2>/dev/null
  fi
  rm -f "$1"
}

veth() { # nsA ifA addrA nsB ifB addrB
  ip link add "$2" netns "$1" numrxqueues "$QUEUES" numtxqueues "$QUEUES" type veth peer name "$5" netns "$4" numrxqueues "$QUEUES" numtxqueues "$QUEUES" || return 1
  inns "$1" ip addr add "$3/24" dev "$2" && inns "$1" ip link set "$2" up &&
    inns "$4" ip addr add "$6/24" dev "$5" && inns "$4" ip link set "$5" up
}

up() {
  for _ns in "$NS_CLIENT" "$NS_PROXY" "$NS_BACKEND"; do
    if ns_exists "$_ns"; then log "namespace $_ns already exists: run 'lab.sh down' (edgetune lab --down) first"; return 1; fi
  done
  mkdir -p "$LAB_DIR/nginx-tmp" || return 1
  for _ns in "$NS_CLIENT" "$NS_PROXY" "$NS_BACKEND"; do
    ip netns add "$_ns" || return 1
    inns "$_ns" ip link set lo up
  done
  veth "$NS_CLIENT" et-cp ${a.client} "$NS_PROXY" et-pc ${a.proxy} || return 1
  veth "$NS_PROXY" et-pb ${a.proxyToBackend} "$NS_BACKEND" et-bp ${a.backend} || return 1
  veth "$NS_CLIENT" et-cb ${n}.3.1 "$NS_BACKEND" et-bc ${a.backendDirect} || return 1
  # The forwarded path: client -> proxy namespace (kernel routing, no proxy) -> backend.
  inns "$NS_CLIENT" ip route add ${n}.2.0/24 via ${a.proxy} || return 1
  inns "$NS_BACKEND" ip route add ${n}.1.0/24 via ${a.proxyToBackend} || return 1
  inns "$NS_PROXY" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward' || return 1
  # The load generator's own TIME_WAIT must not poison back-to-back runs (lab notes).
  inns "$NS_CLIENT" sh -c 'echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse; echo "1024 65535" > /proc/sys/net/ipv4/ip_local_port_range' || return 1
  inns "$NS_BACKEND" sh -c 'echo 65535 > /proc/sys/net/core/somaxconn; echo 65535 > /proc/sys/net/ipv4/tcp_max_syn_backlog' || return 1
  inns "$NS_BACKEND" nginx -c "$LAB_DIR/nginx.conf" -e "$LAB_DIR/nginx-error.log" || { log "nginx failed to start: see $LAB_DIR/nginx-error.log"; return 1; }
  inns "$NS_BACKEND" iperf3 -s -D -p "$IPERF_PORT" --pidfile "$LAB_DIR/iperf3.pid" --logfile "$LAB_DIR/iperf3.log" || { log "iperf3 server failed to start"; return 1; }
  _i=0
  while [ ! -s "$LAB_DIR/nginx.pid" ] || [ ! -s "$LAB_DIR/iperf3.pid" ]; do
    _i=$((_i + 1)); [ "$_i" -gt 50 ] && { log "backend did not write its PID files"; return 1; }
    sleep 0.1
  done
  log "up: $NS_CLIENT ${a.client} -> $NS_PROXY ${a.proxy} -> $NS_BACKEND ${a.backend} (direct ${a.backendDirect})"
}

tune() { # tune.sh
  [ -f "\${1:-}" ] || { log "tune: no such script: \${1:-}"; return 2; }
  mkdir -p "$LAB_DIR/etc-proxy" "$LAB_DIR/etc-host"
  # Restore needs only the recorded state, but a script to run it: keep the one applied.
  [ "$1" -ef "$LAB_DIR/applied-tune.sh" ] || cp "$1" "$LAB_DIR/applied-tune.sh" || return 1
  inns "$NS_PROXY" env STATE_DIR="$LAB_DIR/state-proxy" ETC_ROOT="$LAB_DIR/etc-proxy" EDGETUNE_SCOPE=netns EDGETUNE_LOAD_MODULES=0 sh "$1" apply >"$LAB_DIR/tune-proxy.log"
  _rp=$?
  # Global keys can only be set on the host; they are recorded and put back by untune.
  env STATE_DIR="$LAB_DIR/state-host" ETC_ROOT="$LAB_DIR/etc-host" EDGETUNE_SCOPE=host EDGETUNE_LOAD_MODULES=0 sh "$1" apply >"$LAB_DIR/tune-host.log"
  _rh=$?
  grep '^summary:' "$LAB_DIR/tune-proxy.log" | sed 's/^/proxy namespace /' >&2
  grep '^summary:' "$LAB_DIR/tune-host.log" | sed 's/^/host /' >&2
  [ "$_rp" -eq 1 ] || [ "$_rh" -eq 1 ] && return 1
  return 0
}

untune() {
  _rc=0
  [ -f "$LAB_DIR/applied-tune.sh" ] || return 0
  if [ -d "$LAB_DIR/state-host" ]; then
    env STATE_DIR="$LAB_DIR/state-host" ETC_ROOT="$LAB_DIR/etc-host" sh "$LAB_DIR/applied-tune.sh" restore >"$LAB_DIR/untune-host.log" 2>&1 || { _rc=1; log "host restore failed: see $LAB_DIR/untune-host.log"; }
  fi
  if [ -d "$LAB_DIR/state-proxy" ] && ns_exists "$NS_PROXY"; then
    inns "$NS_PROXY" env STATE_DIR="$LAB_DIR/state-proxy" ETC_ROOT="$LAB_DIR/etc-proxy" sh "$LAB_DIR/applied-tune.sh" restore >"$LAB_DIR/untune-proxy.log" 2>&1 || _rc=1
  fi
  rm -rf "$LAB_DIR/state-proxy"
  return $_rc
}

proxy_start() { # haproxy.cfg
  [ -f "\${1:-}" ] || { log "proxy-start: no such config: \${1:-}"; return 2; }
  stop_pidfile "$LAB_DIR/haproxy.pid"
  mkdir -p "$RUN_DIR"
  inns "$NS_PROXY" haproxy -W -D -p "$LAB_DIR/haproxy.pid" -f "$1" >"$LAB_DIR/haproxy.log" 2>&1 || { log "haproxy failed to start: $(tail -n 3 "$LAB_DIR/haproxy.log")"; return 1; }
}

down() {
  _rc=0
  stop_pidfile "$LAB_DIR/haproxy.pid"
  rm -rf "$RUN_DIR"
  untune || _rc=1
  stop_pidfile "$LAB_DIR/iperf3.pid"
  stop_pidfile "$LAB_DIR/nginx.pid"
  for _ns in "$NS_CLIENT" "$NS_PROXY" "$NS_BACKEND"; do
    ns_exists "$_ns" && { ip netns del "$_ns" || _rc=1; }
  done
  log "down"
  return $_rc
}

status() {
  for _ns in "$NS_CLIENT" "$NS_PROXY" "$NS_BACKEND"; do
    if ns_exists "$_ns"; then echo "namespace $_ns up"; else echo "namespace $_ns absent"; fi
  done
  for _p in nginx iperf3 haproxy; do
    if [ -f "$LAB_DIR/$_p.pid" ] && kill -0 "$(cat "$LAB_DIR/$_p.pid")" 2>/dev/null; then echo "$_p running (pid $(cat "$LAB_DIR/$_p.pid"))"; else echo "$_p stopped"; fi
  done
  [ -d "$LAB_DIR/state-host" ] && echo "host tuned (restore pending)"
  return 0
}

case \${1:-} in
  up) up || { _r=$?; log "up failed: tearing down"; down; exit "$_r"; } ;;
  tune) tune "\${2:-}" ;;
  untune) untune ;;
  proxy-start) proxy_start "\${2:-}" ;;
  proxy-stop) stop_pidfile "$LAB_DIR/haproxy.pid" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: lab.sh up|tune SCRIPT|untune|proxy-start CFG|proxy-stop|down|status" >&2; exit 2 ;;
esac
`;
}
