#!/bin/sh
# edgetune: apply profile 'edge' on this host.
set -u
staged='/var/tmp/edgetune/a038ad834360e7d3/tune.sh'
installed='/usr/local/lib/edgetune/tune.sh'
if ! printf '%s  %s\n' 'a038ad834360e7d3558d4c7e48224614770e00d33592b7b62b62058d6f713309' "$staged" | sha256sum -c --status; then
  echo "edgetune: $staged is missing or differs from the rendered tune.sh; not running it" >&2
  exit 1
fi
sudo -n mkdir -p "$(dirname "$installed")" && sudo -n cp "$staged" "$installed.new" && sudo -n chmod 0755 "$installed.new" && sudo -n mv -f "$installed.new" "$installed" || exit 1
sudo -n "$installed" apply
rc=$?
# 3 is degraded: what this host supports was applied and the summary line counts the rest.
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"
