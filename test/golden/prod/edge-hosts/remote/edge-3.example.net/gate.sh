#!/bin/sh
# edgetune: the rollout gate: the next batch starts only when this host verifies.
set -u
host='edge-3.example.net'
sudo -n '/usr/local/lib/edgetune/tune.sh' verify
rc=$?
if [ "$rc" -eq 0 ]; then
  echo "gate: status=passed host=$host"
  exit 0
fi
echo "gate: status=failed host=$host verify-exit=$rc"
echo "edgetune: rollout stopped: host $host failed tune.sh verify (exit $rc) after apply; later batches are not applied" >&2; exit 1
