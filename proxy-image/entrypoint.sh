#!/bin/sh
# edgetune proxy entrypoint: report the node's kernel tuning, then become HAProxy.
#
# It never changes a kernel parameter: the privileged init container (or the
# node's own tuning) does that. `tune.sh check` only reads /proc/sys and
# prints one line per parameter worse than the profile recommends:
#   WARN kernel parameter below recommended value: <key> current="..." recommended="..."
# so a node that missed its tuning is visible in the proxy's log (NovaEdge's
# start-up check), while the proxy still starts.
#
# Environment
#   HAPROXY_CFG=/usr/local/etc/haproxy/haproxy.cfg
#   TUNE_SH=/etc/edgetune/tune.sh      rendered tune.sh; skipped when absent
#   RUNTIME_DIR=/var/run/haproxy       master socket (and the cfg's admin socket) live here
#   HAPROXY_BIN                        default: haproxy-netbind when CAP_NET_BIND_SERVICE is in the
#                                      bounding set, else haproxy (tests substitute a stub)
#   HAPROXY_NETBIND_BIN=/usr/local/sbin/haproxy-netbind
#   EDGETUNE_MAXCONN                   the maxconn wanted; default: the config's fd budget line.
#                                      Either way lowered to what `ulimit -Hn` fits, and exported
#                                      (with EDGETUNE_MAXPIPES) for the config's maxconn "${EDGETUNE_MAXCONN}".
#   EDGETUNE_MANAGEMENT_ADDRESS        the metrics and health bind (the pod sets it from status.hostIP), or
#   EDGETUNE_MANAGEMENT_CIDR           resolved here to this node's first IPv4 address inside it
#   EDGETUNE_SCOPE and the *_ROOT variables are passed through to tune.sh.
set -eu

HAPROXY_CFG=${HAPROXY_CFG:-/usr/local/etc/haproxy/haproxy.cfg}
TUNE_SH=${TUNE_SH:-/etc/edgetune/tune.sh}
RUNTIME_DIR=${RUNTIME_DIR:-/var/run/haproxy}
HAPROXY_NETBIND_BIN=${HAPROXY_NETBIND_BIN:-/usr/local/sbin/haproxy-netbind}

# Kubernetes cannot grant ambient capabilities, so a non-root HAProxy gets
# NET_BIND_SERVICE only from file capabilities (the image's haproxy-netbind
# copy, setcap +ep). The kernel refuses to exec such a file when the cap is
# not in the bounding set (pod drops ALL without adding it), so pick the
# binary by the bounding set: bit 10 of CapBnd.
has_net_bind_service() {
  _bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status 2>/dev/null)
  [ -n "$_bnd" ] || return 1
  _low=${_bnd#"${_bnd%????}"}
  [ $((0x$_low & 0x400)) -ne 0 ]
}
if [ -z "${HAPROXY_BIN:-}" ]; then
  if [ -x "$HAPROXY_NETBIND_BIN" ] && has_net_bind_service; then HAPROXY_BIN=$HAPROXY_NETBIND_BIN; else HAPROXY_BIN=haproxy; fi
fi

if [ -r "$TUNE_SH" ]; then
  # Run through sh: ConfigMap files may be mounted without the exec bit.
  # A failing check is reported but must not keep the proxy down.
  sh "$TUNE_SH" check || echo "WARN edgetune: tune.sh check failed (exit $?)" >&2
else
  echo "INFO edgetune: no $TUNE_SH, kernel parameter check skipped" >&2
fi

# HAProxy needs its fds up front: 2 per connection (5 per 2 with splice pipes) plus listeners,
# checks and its own sockets. A maxconn the hard limit cannot hold makes it refuse to start
# ("Cannot raise FD limit"), and the runtime's limit is only known here, not where the config
# was rendered. So: raise the soft limit to the hard one, and fit maxconn into it with the
# formula the renderer wrote into the config (`# edgetune-fd-budget:`), never one of our own.
is_count() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
fit_maxconn() {
  _budget=$(sed -n 's/^# edgetune-fd-budget: //p' "$HAPROXY_CFG" 2>/dev/null | head -n 1) || _budget=""
  _want="" _reserved="" _fds="" _conns="" _pipes="" _pconns=""
  for _kv in $_budget; do
    case $_kv in
      maxconn=*) _want=${_kv#maxconn=} ;;
      reserved-fds=*) _reserved=${_kv#reserved-fds=} ;;
      fds-per-conn=*/*) _f=${_kv#fds-per-conn=} && _fds=${_f%/*} && _conns=${_f#*/} ;;
      pipes-per-conn=*/*) _p=${_kv#pipes-per-conn=} && _pipes=${_p%/*} && _pconns=${_p#*/} ;;
    esac
  done
  if ! is_count "$_want" || ! is_count "$_reserved" || ! is_count "$_fds" || ! is_count "$_conns" || [ "$_fds" -eq 0 ]; then
    echo "INFO edgetune: no edgetune fd budget line in $HAPROXY_CFG; maxconn is what the config says" >&2
    return 0
  fi
  if [ -n "${EDGETUNE_MAXCONN:-}" ]; then
    if ! is_count "$EDGETUNE_MAXCONN" || [ ${#EDGETUNE_MAXCONN} -gt 9 ] || [ "$EDGETUNE_MAXCONN" -lt 1 ]; then
      echo "ERROR edgetune: EDGETUNE_MAXCONN=$EDGETUNE_MAXCONN; allowed: an integer 1-999999999" >&2
      exit 1
    fi
    _want=$EDGETUNE_MAXCONN _from="EDGETUNE_MAXCONN"
  else
    _from="the config"
  fi
  # -H and -S are not POSIX (only -f is) but every sh this runs under has them: busybox ash (the image's), dash, bash.
  # shellcheck disable=SC3045
  _hard=$(ulimit -H -n)
  if [ "$_hard" = unlimited ]; then
    _max=$_want _why="ulimit -Hn is unlimited"
  else
    # The soft limit is what the process gets by default; HAProxy raises it itself, but only up to the hard one.
    # shellcheck disable=SC3045
    ulimit -S -n "$_hard" 2>/dev/null || true
    _fits=$(((_hard - _reserved) * _conns / _fds))
    _why="ulimit -Hn $_hard fits ($_hard - $_reserved reserved fds) / ($_fds/$_conns fds per connection) = $_fits"
    _max=$_want
    [ "$_fits" -lt "$_max" ] && _max=$_fits
  fi
  [ "$_max" -lt 1 ] && _max=1
  EDGETUNE_MAXCONN=$_max
  export EDGETUNE_MAXCONN
  _pipe_note=""
  if is_count "$_pipes" && is_count "$_pconns" && [ "$_pconns" -gt 0 ]; then
    EDGETUNE_MAXPIPES=$((_max * _pipes / _pconns))
    [ "$EDGETUNE_MAXPIPES" -lt 1 ] && EDGETUNE_MAXPIPES=1
    export EDGETUNE_MAXPIPES
    _pipe_note=", maxpipes $EDGETUNE_MAXPIPES"
  fi
  if [ "$_max" -lt "$_want" ]; then
    echo "WARN edgetune: maxconn $_max${_pipe_note} (not $_want from $_from): $_why" >&2
  else
    echo "INFO edgetune: maxconn $_max${_pipe_note} from $_from: $_why" >&2
  fi
}
fit_maxconn

if ! mkdir -p "$RUNTIME_DIR" 2>/dev/null || [ ! -w "$RUNTIME_DIR" ]; then
  echo "ERROR edgetune: runtime directory $RUNTIME_DIR is not writable (mount an emptyDir there)" >&2
  exit 1
fi

# ---- management address and sources (IPv4; the same functions in proxy-image/entrypoint.sh and components/nodes/tuner.sh) ----
ip4_int() { # a.b.c.d -> its 32-bit value; fails on anything else
  case $1 in '' | *[!0-9.]* | *..* | .* | *.) return 1 ;; esac
  _ifs=$IFS IFS=.
  # shellcheck disable=SC2086
  set -- $1
  IFS=$_ifs
  [ $# -eq 4 ] || return 1
  # A leading zero would be octal in $((...)).
  for _o; do case $_o in 0?*) return 1 ;; esac; [ ${#_o} -le 3 ] && [ "$_o" -le 255 ] || return 1; done
  echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}
in_cidr4() { # address cidr
  _a=$(ip4_int "$1") && _n=$(ip4_int "${2%/*}") || return 1
  _bits=${2#*/}
  case $_bits in '' | *[!0-9]*) return 1 ;; esac
  [ "$_bits" -le 32 ] || return 1
  _mask=$(((0xFFFFFFFF << (32 - _bits)) & 0xFFFFFFFF))
  [ $((_a & _mask)) -eq $((_n & _mask)) ]
}
local_in_cidr4() { # cidr: the first of this network namespace's IPv4 addresses inside it (/proc/net/fib_trie: no iproute2 needed)
  _last=''
  while read -r _f1 _f2 _f3 _f4; do
    case $_f1 in
      '|--') _last=$_f2 ;;
      /32) if [ "$_f2 $_f3" = "host LOCAL" ] && in_cidr4 "$_last" "$1"; then echo "$_last"; return 0; fi ;;
    esac
  done <"${FIB_TRIE:-/proc/net/fib_trie}"
  return 1
}

# management.address as a CIDR (docs/management.md): bind the first of this node's IPv4 addresses
# inside it, for the config's "${EDGETUNE_MANAGEMENT_ADDRESS}". Without one the start fails: the
# endpoints must not fall back to every address.
if [ -n "${EDGETUNE_MANAGEMENT_CIDR:-}" ] && [ -z "${EDGETUNE_MANAGEMENT_ADDRESS:-}" ]; then
  if ! EDGETUNE_MANAGEMENT_ADDRESS=$(local_in_cidr4 "$EDGETUNE_MANAGEMENT_CIDR"); then
    echo "ERROR edgetune: no IPv4 address of this node is inside EDGETUNE_MANAGEMENT_CIDR=$EDGETUNE_MANAGEMENT_CIDR (management.address)" >&2
    exit 1
  fi
  export EDGETUNE_MANAGEMENT_ADDRESS
  echo "INFO edgetune: metrics and health bind $EDGETUNE_MANAGEMENT_ADDRESS (in $EDGETUNE_MANAGEMENT_CIDR)" >&2
fi

# -W master-worker: reloads (SIGUSR2) start new workers while old ones drain;
# -db: stay in the foreground so the container's PID 1 is the master;
# -S: the master CLI, to reload or inspect workers from inside the pod.
exec "$HAPROXY_BIN" -W -db -S "$RUNTIME_DIR/master.sock" -f "$HAPROXY_CFG" "$@"
