#!/bin/sh
# edgetune: apply profile 'edge' on this host.
set -u
staged='/var/tmp/edgetune/b68efcc18bf87f3a/tune.sh'
installed='/usr/local/lib/edgetune/tune.sh'
if ! printf '%s  %s\n' 'b68efcc18bf87f3a0e803ae42a65f4214c1dbb985a3d2a8cc386c5f2f1bc32a8' "$staged" | sha256sum -c --status; then
  echo "edgetune: $staged is missing or differs from the rendered tune.sh; not running it" >&2
  exit 1
fi
sudo -n mkdir -p "$(dirname "$installed")" && sudo -n cp "$staged" "$installed.new" && sudo -n chmod 0755 "$installed.new" && sudo -n mv -f "$installed.new" "$installed" || exit 1
sudo -n "$installed" apply
rc=$?
# 3 is degraded: what this host supports was applied and the summary line counts the rest.
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"
