# shellcheck shell=sh
# shellcheck disable=SC2154 # NS_*, QUEUES, IPERF_PORT, RUN_DIR, *_ADDR, *_NET: the header renderLabScript (topology.ts) puts above these steps assigns them
set -u
LAB_DIR=${LAB_DIR:-$(cd "$(dirname "$0")" && pwd)}

log() { printf 'lab: %s\n' "$*" >&2; }
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
  veth "$NS_CLIENT" et-cp "$CLIENT_ADDR" "$NS_PROXY" et-pc "$PROXY_ADDR" || return 1
  veth "$NS_PROXY" et-pb "$PROXY_BACKEND_ADDR" "$NS_BACKEND" et-bp "$BACKEND_ADDR" || return 1
  veth "$NS_CLIENT" et-cb "$CLIENT_DIRECT_ADDR" "$NS_BACKEND" et-bc "$BACKEND_DIRECT_ADDR" || return 1
  # The forwarded path: client -> proxy namespace (kernel routing, no proxy) -> backend.
  inns "$NS_CLIENT" ip route add "$PROXY_BACKEND_NET" via "$PROXY_ADDR" || return 1
  inns "$NS_BACKEND" ip route add "$CLIENT_PROXY_NET" via "$PROXY_BACKEND_ADDR" || return 1
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
  log "up: $NS_CLIENT $CLIENT_ADDR -> $NS_PROXY $PROXY_ADDR -> $NS_BACKEND $BACKEND_ADDR (direct $BACKEND_DIRECT_ADDR)"
}

tune() { # tune.sh
  [ -f "${1:-}" ] || { log "tune: no such script: ${1:-}"; return 2; }
  mkdir -p "$LAB_DIR/etc-proxy" "$LAB_DIR/etc-host"
  # Restore needs only the recorded state, but a script to run it: keep the one applied.
  # -ef is not in POSIX test, but dash, busybox ash and bash all have it (and the lab is Linux only).
  # shellcheck disable=SC3013
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

# HAProxy as the proxy image ships it (PROXY_ROOTFS: the image's exported root filesystem,
# scripts/build-images.sh --rootfs DIR makes DIR/proxy), chrooted, in a mount namespace of its
# own that holds /proc, /sys, /dev, a tmpfs /run and /tmp, and binds of $LAB_DIR and $RUN_DIR at
# the same paths: the config, pidfile and sockets are where the host's HAProxy would have them.
# The mounts live as long as HAProxy: nothing to unmount afterwards.
haproxy_from_image() { # haproxy args...
  [ -x "$PROXY_ROOTFS/usr/sbin/haproxy" ] || { log "proxy-start: $PROXY_ROOTFS has no usr/sbin/haproxy (scripts/build-images.sh --rootfs DIR writes DIR/proxy)"; return 2; }
  # shellcheck disable=SC2016 # expanded by the inner sh
  inns "$NS_PROXY" unshare --mount --propagation private sh -c '
    r=$1 lab=$2 run=$3; shift 3
    mount --rbind /proc "$r/proc" && mount --rbind /sys "$r/sys" && mount --rbind /dev "$r/dev" &&
      mount -t tmpfs -o mode=1777 tmpfs "$r/tmp" && mount -t tmpfs -o mode=0755 tmpfs "$r/run" || exit 1
    for d in "$lab" "$run"; do mkdir -p "$r$d" && mount --bind "$d" "$r$d" || exit 1; done
    exec chroot "$r" /usr/sbin/haproxy "$@"' sh "$PROXY_ROOTFS" "$LAB_DIR" "$RUN_DIR" "$@"
}

proxy_start() { # haproxy.cfg
  [ -f "${1:-}" ] || { log "proxy-start: no such config: ${1:-}"; return 2; }
  stop_pidfile "$LAB_DIR/haproxy.pid"
  mkdir -p "$RUN_DIR"
  if [ -n "${PROXY_ROOTFS:-}" ]; then
    haproxy_from_image -W -D -p "$LAB_DIR/haproxy.pid" -f "$1" >"$LAB_DIR/haproxy.log" 2>&1 || { log "haproxy (image $PROXY_ROOTFS) failed to start: $(tail -n 3 "$LAB_DIR/haproxy.log")"; return 1; }
    return 0
  fi
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

case ${1:-} in
  up) up || { _r=$?; log "up failed: tearing down"; down; exit "$_r"; } ;;
  tune) tune "${2:-}" ;;
  untune) untune ;;
  proxy-start) proxy_start "${2:-}" ;;
  proxy-stop) stop_pidfile "$LAB_DIR/haproxy.pid" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: lab.sh up|tune SCRIPT|untune|proxy-start CFG|proxy-stop|down|status" >&2; exit 2 ;;
esac
