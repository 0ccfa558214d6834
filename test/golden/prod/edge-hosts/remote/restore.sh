#!/bin/sh
# edgetune: put back what profile 'edge' changed on this host, then remove edgetune.
set -u
installed='/usr/local/lib/edgetune/tune.sh'
staging='/var/tmp/edgetune/b68efcc18bf87f3a'
if [ ! -e "$installed" ]; then
  echo "summary: restore status=nothing (no $installed)"
  exit 0
fi
sudo -n "$installed" restore
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
sudo -n rm -f "$installed"
sudo -n rmdir "$(dirname "$installed")" 2>/dev/null
rm -f '/var/tmp/edgetune/b68efcc18bf87f3a/tune.sh'
rm -f '/var/tmp/edgetune/b68efcc18bf87f3a/etc/sysctl.d/99-zz-edgetune.conf'
rm -f '/var/tmp/edgetune/b68efcc18bf87f3a/etc/security/limits.d/99-edgetune.conf'
rm -f '/var/tmp/edgetune/b68efcc18bf87f3a/etc/systemd/system.conf.d/99-edgetune.conf'
rm -f '/var/tmp/edgetune/b68efcc18bf87f3a/etc/modules-load.d/edgetune.conf'
find "$staging" -depth -type d -empty -delete 2>/dev/null
rmdir "$(dirname "$staging")" 2>/dev/null
exit 0
