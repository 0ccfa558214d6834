#!/bin/sh
# edgetune tuner loop: apply, then verify every VERIFY_INTERVAL_SECONDS.
# Settings come from the environment (the DaemonSet sets them):
#   TUNE_SH  VERIFY_INTERVAL_SECONDS  REAPPLY_ON_DRIFT=0|1  RESTORE_ON_DELETE=0|1  NODE_NAME  STATUS_FILE
set -u
TUNE_SH=${TUNE_SH:-/edgetune/tune.sh}
VERIFY_INTERVAL_SECONDS=${VERIFY_INTERVAL_SECONDS:-300}
REAPPLY_ON_DRIFT=${REAPPLY_ON_DRIFT:-0}
RESTORE_ON_DELETE=${RESTORE_ON_DELETE:-0}
NODE_NAME=${NODE_NAME:-$(hostname)}
# No default: the DaemonSet's readiness probe tests this file, so its one path is STATUS_FILE in
# k8s-tuner.ts, which the DaemonSet passes here (a second copy could drift from the probe's).
: "${STATUS_FILE:?is not set (the DaemonSet sets it)}"
pid=''

log() { printf 'edgetune: node=%s %s\n' "$NODE_NAME" "$*"; }

apply() {
  out=$(sh "$TUNE_SH" apply 2>&1)
  rc=$?
  printf '%s\n' "$out"
  summary=$(printf '%s\n' "$out" | sed -n 's/^summary: //p' | tail -n 1)
  # One line per node that "kubectl logs" users can grep for.
  log "apply rc=$rc $summary"
  mkdir -p "$(dirname "$STATUS_FILE")" && printf '%s\n' "$summary" >"$STATUS_FILE"
}

on_term() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  if [ "$RESTORE_ON_DELETE" = 1 ]; then
    sh "$TUNE_SH" restore
    log "restore rc=$? (restoreOnDelete)"
  else
    log "stopping; tuning left in place (restoreOnDelete off)"
  fi
  exit 0
}
trap on_term TERM INT

apply
while :; do
  sleep "$VERIFY_INTERVAL_SECONDS" &
  pid=$!
  wait "$pid"
  pid=''
  out=$(sh "$TUNE_SH" verify 2>&1)
  rc=$?
  if [ "$rc" -eq 4 ]; then
    printf '%s\n' "$out" | grep -E '^(drift|overridden) ' | while read -r line; do log "$line"; done
    if [ "$REAPPLY_ON_DRIFT" = 1 ]; then apply; else log "verify status=drift (reapplyOnDrift off)"; fi
  else
    log "verify rc=$rc"
  fi
done
