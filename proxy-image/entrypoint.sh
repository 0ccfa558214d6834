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

if ! mkdir -p "$RUNTIME_DIR" 2>/dev/null || [ ! -w "$RUNTIME_DIR" ]; then
  echo "ERROR edgetune: runtime directory $RUNTIME_DIR is not writable (mount an emptyDir there)" >&2
  exit 1
fi

# -W master-worker: reloads (SIGUSR2) start new workers while old ones drain;
# -db: stay in the foreground so the container's PID 1 is the master;
# -S: the master CLI, to reload or inspect workers from inside the pod.
exec "$HAPROXY_BIN" -W -db -S "$RUNTIME_DIR/master.sock" -f "$HAPROXY_CFG" "$@"
