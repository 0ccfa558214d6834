#!/bin/sh
# edgetune tuner: keeps one node tuned. The tuner DaemonSet's container and the proxy pod's
# tuning sidecar run it.
#
#   tuner.sh [run]             apply, then watch: NIC poll, periodic verify; SIGTERM restores only
#                              when the tuning was removed from this node (never on a mere stop)
#   tuner.sh ready             readiness/startup probe: exit 0 only when the last apply succeeded
#   tuner.sh metrics-response  one HTTP response with the metrics (socat runs it per connection)
#
# A pod stopping is not tuning being removed: a DaemonSet roll, a drain, a node shutdown or an
# eviction stops the pod while the node keeps serving, and must leave it tuned (OpenShift's Node
# Tuning Operator shipped the opposite and fixed it as severity-critical, PR 699). Removal is
# what `pulumi destroy` or a dropped node group does — the DaemonSet is deleted — or a node
# leaving the nodeSelector; the Kubernetes API tells them apart, so SIGTERM asks it.
#
# Environment (the pod spec sets them; defaults in brackets):
#   TUNE_SH [/edgetune/tune.sh]  STATUS_FILE (required)  NODE_NAME [hostname]  TUNER_NAME [tuner]
#   VERIFY_INTERVAL_SECONDS [300]  REAPPLY_ON_DRIFT [0]  NIC_POLL_SECONDS [5; 0 off]
#   RESTORE_ON_REMOVE [1]  READY_WHEN [no-failures | applied]
#   METRICS_PORT [0 off]  METRICS_FILE [beside STATUS_FILE]
#   METRICS_BIND: the address to serve on (the pod sets the node's from status.hostIP), or
#   METRICS_BIND_CIDR: serve on this namespace's first IPv4 address inside it; neither: not served
#   METRICS_ALLOW [127.0.0.0/8]: source CIDRs answered (IPv4), besides the bind address itself;
#   METRICS_ALLOW_ANY [0]: 1 answers every source (management.exposePublicly)
#   KUBE_API [https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; empty: no API]
#   KUBE_TOKEN_FILE  KUBE_CA_FILE  POD_NAMESPACE  DAEMONSET_NAME  NODE_SELECTOR [{}]  ANNOTATE_NODE [1]
#   SYS_ROOT [/sys]; tune.sh's own (ETC_ROOT, STATE_DIR, EDGETUNE_SCOPE, ...) pass through.
set -u
TUNE_SH=${TUNE_SH:-/edgetune/tune.sh}
# No default: the probe reads this file, so its one path is the one the pod spec passes to both.
: "${STATUS_FILE:?is not set (the pod spec sets it)}"
NODE_NAME=${NODE_NAME:-$(hostname)}
TUNER_NAME=${TUNER_NAME:-tuner}
VERIFY_INTERVAL_SECONDS=${VERIFY_INTERVAL_SECONDS:-300}
REAPPLY_ON_DRIFT=${REAPPLY_ON_DRIFT:-0}
NIC_POLL_SECONDS=${NIC_POLL_SECONDS:-5}
RESTORE_ON_REMOVE=${RESTORE_ON_REMOVE:-1}
READY_WHEN=${READY_WHEN:-no-failures}
METRICS_PORT=${METRICS_PORT:-0}
METRICS_BIND=${METRICS_BIND:-}
METRICS_BIND_CIDR=${METRICS_BIND_CIDR:-}
METRICS_ALLOW=${METRICS_ALLOW-127.0.0.0/8}
METRICS_ALLOW_ANY=${METRICS_ALLOW_ANY:-0}
RUN_DIR=$(dirname "$STATUS_FILE")
METRICS_FILE=${METRICS_FILE:-$RUN_DIR/metrics}
if [ -z "${KUBE_API+set}" ] && [ -n "${KUBERNETES_SERVICE_HOST:-}" ]; then
  KUBE_API="https://$KUBERNETES_SERVICE_HOST:${KUBERNETES_SERVICE_PORT:-443}"
fi
KUBE_API=${KUBE_API:-}
KUBE_TOKEN_FILE=${KUBE_TOKEN_FILE:-/var/run/secrets/edgetune/token}
KUBE_CA_FILE=${KUBE_CA_FILE:-/var/run/secrets/edgetune/ca.crt}
POD_NAMESPACE=${POD_NAMESPACE:-}
DAEMONSET_NAME=${DAEMONSET_NAME:-}
NODE_SELECTOR=${NODE_SELECTOR:-\{\}}
ANNOTATE_NODE=${ANNOTATE_NODE:-1}
SYS_ROOT=${SYS_ROOT:-/sys}
ANNOTATION="tuning.edgetune.io/$TUNER_NAME"

log() { printf 'edgetune: node=%s %s\n' "$NODE_NAME" "$*"; }

# One key=value of a summary line ("status=applied changed=3 ...").
field() { printf ' %s\n' "$2" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
# The same, as a count (0 when absent).
num() {
  _n=$(field "$1" "$2")
  case $_n in '' | *[!0-9]*) echo 0 ;; *) echo "$_n" ;; esac
}

write_file() { # path: stdin through a rename, so a reader never sees half a file
  cat >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# ---- the Kubernetes API (curl + jq): node annotation, and removal vs stop ----

API_BODY="$RUN_DIR/api-response"
api() { # method path [json-body] -> prints the HTTP status ("000" when unreachable); body in $API_BODY
  if [ -z "$KUBE_API" ] || ! command -v curl >/dev/null 2>&1; then echo 000; return; fi
  _tok=$(cat "$KUBE_TOKEN_FILE" 2>/dev/null)
  _ca=''
  [ -r "$KUBE_CA_FILE" ] && _ca=$KUBE_CA_FILE
  # The token goes through a header file, not argv, so it never shows in ps.
  printf 'Authorization: Bearer %s\n' "$_tok" >"$RUN_DIR/api-auth"
  if [ -n "${3:-}" ]; then
    printf '%s' "$3" | curl -sS --max-time 5 ${_ca:+--cacert "$_ca"} -H "@$RUN_DIR/api-auth" -H 'Content-Type: application/merge-patch+json' \
      -X "$1" --data-binary @- -o "$API_BODY" -w '%{http_code}' "$KUBE_API$2" 2>/dev/null || true
  else
    curl -sS --max-time 5 ${_ca:+--cacert "$_ca"} -H "@$RUN_DIR/api-auth" -X "$1" -o "$API_BODY" -w '%{http_code}' "$KUBE_API$2" 2>/dev/null || true
  fi
}

annotate() { # value, or nothing to remove the annotation
  [ "$ANNOTATE_NODE" = 1 ] && [ -n "$KUBE_API" ] || return 0
  if [ $# -gt 0 ]; then
    _patch=$(jq -cn --arg k "$ANNOTATION" --arg v "$1" '{metadata: {annotations: {($k): $v}}}')
  else
    _patch=$(jq -cn --arg k "$ANNOTATION" '{metadata: {annotations: {($k): null}}}')
  fi
  _code=$(api PATCH "/api/v1/nodes/$NODE_NAME" "$_patch")
  [ "$_code" = 200 ] || log "node annotation $ANNOTATION not written (HTTP $_code)"
}

# Sets $why; returns 0 when the tuning was removed from this node, 1 when this is a stop, 2 when
# the API cannot tell (then the tuning stays: an untuned serving node is the worse mistake).
removed() {
  if [ -z "$KUBE_API" ] || [ -z "$DAEMONSET_NAME" ] || [ -z "$POD_NAMESPACE" ]; then
    why="no Kubernetes API configured"
    return 2
  fi
  _code=$(api GET "/apis/apps/v1/namespaces/$POD_NAMESPACE/daemonsets/$DAEMONSET_NAME")
  case $_code in
    404) why="DaemonSet $POD_NAMESPACE/$DAEMONSET_NAME is gone"; return 0 ;;
    200)
      if jq -e '.metadata.deletionTimestamp != null' "$API_BODY" >/dev/null 2>&1; then
        why="DaemonSet $POD_NAMESPACE/$DAEMONSET_NAME is being deleted"
        return 0
      fi ;;
    *) why="cannot read DaemonSet $POD_NAMESPACE/$DAEMONSET_NAME (HTTP $_code)"; return 2 ;;
  esac
  _code=$(api GET "/api/v1/nodes/$NODE_NAME")
  if [ "$_code" != 200 ]; then why="cannot read node $NODE_NAME (HTTP $_code)"; return 2; fi
  if jq -e --argjson sel "$NODE_SELECTOR" '(.metadata.labels // {}) as $l | all($sel | to_entries[]; $l[.key] == .value)' "$API_BODY" >/dev/null 2>&1; then
    why="DaemonSet present and the node still selected (a roll, drain, eviction or shutdown)"
    return 1
  fi
  why="node no longer matches the nodeSelector $NODE_SELECTOR"
  return 0
}

# ---- status, readiness, metrics ----

last_apply='' applied_at=0 drifted=0 nic_reapplies=0

write_metrics() {
  _l="tuner=\"$TUNER_NAME\",node=\"$NODE_NAME\",profile=\"$(field profile "$last_apply")\""
  _ok=0
  is_ready >/dev/null && _ok=1
  {
    echo '# HELP edgetune_tuning_items Items of the profile by state: applied, skipped, failed at the last apply; drifted at the last verify.'
    echo '# TYPE edgetune_tuning_items gauge'
    echo "edgetune_tuning_items{$_l,state=\"applied\"} $(($(num changed "$last_apply") + $(num unchanged "$last_apply")))"
    echo "edgetune_tuning_items{$_l,state=\"skipped\"} $(num skipped "$last_apply")"
    echo "edgetune_tuning_items{$_l,state=\"failed\"} $(num failed "$last_apply")"
    echo "edgetune_tuning_items{$_l,state=\"drifted\"} $drifted"
    echo '# HELP edgetune_tuning_last_apply_timestamp_seconds When the last apply finished (Unix time).'
    echo '# TYPE edgetune_tuning_last_apply_timestamp_seconds gauge'
    echo "edgetune_tuning_last_apply_timestamp_seconds{$_l} $applied_at"
    echo '# HELP edgetune_tuning_last_apply_success 1 when the last apply counts as ready (READY_WHEN), else 0.'
    echo '# TYPE edgetune_tuning_last_apply_success gauge'
    echo "edgetune_tuning_last_apply_success{$_l} $_ok"
    echo '# HELP edgetune_tuning_nic_reapplies_total NIC re-applies that changed something (an interface appeared or came back).'
    echo '# TYPE edgetune_tuning_nic_reapplies_total counter'
    echo "edgetune_tuning_nic_reapplies_total{$_l} $nic_reapplies"
  } | write_file "$METRICS_FILE"
}

is_ready() { # from the status file, so the probe (another process) and the loop agree
  if [ ! -s "$STATUS_FILE" ]; then echo "not ready: no apply has finished yet"; return 1; fi
  _s=$(cat "$STATUS_FILE")
  case $(field status "$_s") in
    applied) return 0 ;;
    degraded)
      if [ "$READY_WHEN" = no-failures ] && [ "$(field failed "$_s")" = 0 ]; then return 0; fi ;;
  esac
  echo "not ready (READY_WHEN=$READY_WHEN): last apply $_s"
  return 1
}

apply() {
  out=$(sh "$TUNE_SH" apply 2>&1)
  rc=$?
  printf '%s\n' "$out"
  last_apply=$(printf '%s\n' "$out" | sed -n 's/^summary: //p' | tail -n 1)
  [ -n "$last_apply" ] || last_apply="status=failed failed=1 reason=tune.sh-exited-$rc-without-a-summary"
  applied_at=$(date +%s)
  # One line per node that "kubectl logs" users can grep for.
  log "apply rc=$rc $last_apply"
  printf '%s at=%s\n' "$last_apply" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | write_file "$STATUS_FILE"
  write_metrics
  annotate "status=$(field status "$last_apply") profile=$(field profile "$last_apply") digest=$(field digest "$last_apply") changed=$(field changed "$last_apply") failed=$(field failed "$last_apply") skipped=$(field skipped "$last_apply") at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

# A NIC that was reset (link down/up), re-created or hot-plugged comes back with driver defaults.
# Netlink sees every such event: `ip monitor link` appends one line per event to LINK_EVENTS, and
# the poll compares its size. The interface list (name, index, carrier changes) backs it up where
# ip monitor cannot run; on its own it would miss a NIC re-created under the same index.
LINK_EVENTS="$RUN_DIR/link-events"
nic_fingerprint() {
  wc -c <"$LINK_EVENTS" 2>/dev/null
  for _d in "$SYS_ROOT"/class/net/*; do
    [ -e "$_d" ] || continue
    printf '%s:%s:%s ' "${_d##*/}" "$(cat "$_d/ifindex" 2>/dev/null)" "$(cat "$_d/carrier_changes" 2>/dev/null)"
  done
}
watch_links() {
  [ "$NIC_POLL_SECONDS" -gt 0 ] || return 0
  : >"$LINK_EVENTS"
  # Appending (O_APPEND), so truncating the file below keeps later events at its new end.
  ip -o monitor link >>"$LINK_EVENTS" 2>/dev/null &
  monitor_pid=$!
}

nic_reapply() {
  _out=$(EDGETUNE_ONLY=nic sh "$TUNE_SH" apply 2>&1)
  _rc=$?
  _sum=$(printf '%s\n' "$_out" | sed -n 's/^summary: //p' | tail -n 1)
  # Pod veths come and go on a Kubernetes node all the time: only a re-apply that did something is news.
  if [ "$(num changed "$_sum")" != 0 ] || [ "$(num failed "$_sum")" != 0 ]; then
    printf '%s\n' "$_out" | grep -E '^(changed|failed) ' | while read -r _line; do log "nic $_line"; done
    log "nic re-apply rc=$_rc $_sum"
    [ "$(num changed "$_sum")" != 0 ] && nic_reapplies=$((nic_reapplies + 1))
    write_metrics
  fi
}

verify() {
  out=$(sh "$TUNE_SH" verify 2>&1)
  rc=$?
  drifted=$(num drift "$(printf '%s\n' "$out" | sed -n 's/^summary: //p' | tail -n 1)")
  if [ "$rc" -eq 4 ]; then
    printf '%s\n' "$out" | grep -E '^(drift|overridden) ' | while read -r line; do log "$line"; done
    if [ "$REAPPLY_ON_DRIFT" = 1 ]; then apply; else log "verify status=drift (reapplyOnDrift off)"; fi
  else
    log "verify rc=$rc"
  fi
  write_metrics
}

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

# socat passes the peer of each connection as SOCAT_PEERADDR.
metrics_peer_allowed() {
  [ "$METRICS_ALLOW_ANY" = 1 ] && return 0
  _peer=${SOCAT_PEERADDR:-}
  _peer=${_peer#"::ffff:"}
  [ -n "$_peer" ] || return 1
  [ "$_peer" = "$METRICS_BIND" ] && return 0
  for _c in $METRICS_ALLOW; do
    case $_c in */*) ;; *) _c=$_c/32 ;; esac
    in_cidr4 "$_peer" "$_c" && return 0
  done
  return 1
}

# ---- the loop ----

pid='' metrics_pid='' monitor_pid=''

on_term() {
  # The trap can run inside a redirected call (is_ready >/dev/null): log to the container's own
  # stdout and stderr, saved when the loop started.
  exec 1>&3 2>&4
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$metrics_pid" ] && kill "$metrics_pid" 2>/dev/null
  [ -n "$monitor_pid" ] && kill "$monitor_pid" 2>/dev/null
  if [ "$RESTORE_ON_REMOVE" != 1 ]; then
    log "stopping; tuning left in place (restoreOnRemove off)"
    exit 0
  fi
  removed
  case $? in
    0)
      out=$(sh "$TUNE_SH" restore 2>&1)
      rc=$?
      printf '%s\n' "$out"
      log "restore rc=$rc ($why) $(printf '%s\n' "$out" | sed -n 's/^summary: //p' | tail -n 1)"
      if [ "$rc" -eq 0 ]; then annotate; else annotate "status=restore-failed at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; fi ;;
    1) log "stopping; tuning left in place ($why)" ;;
    *) log "stopping; tuning left in place: removal cannot be told from a stop ($why)" ;;
  esac
  exit 0
}

serve_metrics() {
  [ "$METRICS_PORT" != 0 ] || return 0
  if ! command -v socat >/dev/null 2>&1; then log "metrics not served: socat is not installed"; return 0; fi
  # Never every address: an edge node's public one would serve the internet (docs/management.md).
  if [ -z "$METRICS_BIND" ] && [ -n "$METRICS_BIND_CIDR" ]; then
    METRICS_BIND=$(local_in_cidr4 "$METRICS_BIND_CIDR") || METRICS_BIND=''
    [ -n "$METRICS_BIND" ] || { log "metrics not served: no address of this node in METRICS_BIND_CIDR=$METRICS_BIND_CIDR"; return 0; }
  fi
  [ -n "$METRICS_BIND" ] || { log "metrics not served: METRICS_BIND is not set"; return 0; }
  export METRICS_BIND METRICS_ALLOW METRICS_ALLOW_ANY
  if [ "$METRICS_ALLOW_ANY" = 1 ]; then log "metrics on $METRICS_BIND:$METRICS_PORT for every source"; else log "metrics on $METRICS_BIND:$METRICS_PORT for $METRICS_BIND $METRICS_ALLOW"; fi
  socat "TCP-LISTEN:$METRICS_PORT,bind=$METRICS_BIND,reuseaddr,fork" SYSTEM:"exec sh '$0' metrics-response" &
  metrics_pid=$!
}

run() {
  mkdir -p "$RUN_DIR"
  exec 3>&1 4>&2
  trap on_term TERM INT
  serve_metrics
  # The NIC poll runs only when the profile has NIC items.
  sed -n '/^edgetune_items() {$/,/^}$/p' "$TUNE_SH" | grep -q '^  nic_' || NIC_POLL_SECONDS=0
  tick=$NIC_POLL_SECONDS
  [ "$tick" -gt 0 ] || tick=$VERIFY_INTERVAL_SECONDS
  # Watched from before the first apply: a NIC that comes back while it runs is caught too.
  watch_links
  fp=$(nic_fingerprint)
  apply
  elapsed=0
  while :; do
    sleep "$tick" &
    pid=$!
    wait "$pid"
    pid=''
    elapsed=$((elapsed + tick))
    if [ "$NIC_POLL_SECONDS" -gt 0 ]; then
      now=$(nic_fingerprint)
      if [ "$now" != "$fp" ]; then
        nic_reapply
        # Bounded: the events are only ever compared, never read. (emptyDir is 1 MiB.)
        [ "$(wc -c <"$LINK_EVENTS" 2>/dev/null || echo 0)" -lt 65536 ] || : >"$LINK_EVENTS"
        fp=$(nic_fingerprint)
      fi
    fi
    [ "$elapsed" -ge "$VERIFY_INTERVAL_SECONDS" ] || continue
    elapsed=0
    # A failed apply is retried; a good one is verified.
    if is_ready >/dev/null; then verify; else apply; fi
  done
}

metrics_response() {
  # A source outside the allowlist gets nothing: the connection is closed unanswered.
  metrics_peer_allowed || exit 0
  # The request line, then headers up to the blank line: read them all so closing does not reset the client.
  IFS= read -r _req || _req=''
  while IFS= read -r _h; do
    case $_h in '' | "$(printf '\r')") break ;; esac
  done
  case $_req in
    "GET /metrics "* | "GET /metrics") ;;
    *)
      printf 'HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n'
      return 0 ;;
  esac
  _body=$(cat "$METRICS_FILE" 2>/dev/null; echo x)
  _body=${_body%x}
  printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: %s\r\n\r\n%s' \
    "$(printf '%s' "$_body" | wc -c | tr -d ' ')" "$_body"
}

case ${1:-run} in
  run) run ;;
  ready) is_ready ;;
  metrics-response) metrics_response ;;
  *) echo "usage: tuner.sh [run|ready|metrics-response]" >&2; exit 2 ;;
esac
