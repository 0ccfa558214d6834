#!/bin/sh
# edgetune: put back what profile 'edge' changed on this host, then remove edgetune.
set -u
installed='/usr/local/lib/edgetune/tune.sh'
# First, so no boot or NIC event re-applies while the originals are being put back.
sysroot='/'
if command -v systemctl >/dev/null 2>&1 && [ -e '/etc/systemd/system/edgetune-tune.service' ]; then sudo -n systemctl --quiet --root="$sysroot" disable edgetune-tune.service; fi
sudo -n rm -f '/etc/systemd/system/edgetune-tune.service' '/etc/udev/rules.d/90-edgetune-nic.rules'
if [ "$sysroot" = / ] && [ -d /run/systemd/system ]; then sudo -n systemctl daemon-reload; fi
if [ "$sysroot" = / ] && command -v udevadm >/dev/null 2>&1; then sudo -n udevadm control --reload; fi
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
find '/var/tmp/edgetune/b68efcc18bf87f3a' -depth -type d -empty -delete 2>/dev/null
rmdir '/var/tmp/edgetune' 2>/dev/null
exit 0
