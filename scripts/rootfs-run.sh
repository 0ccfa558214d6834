#!/bin/sh
# Runs a command inside an image's exported root filesystem (scripts/build-images.sh --rootfs DIR
# writes DIR/proxy, DIR/tuner, DIR/loadgen), the way a container runtime would, without one:
# a private mount namespace with /proc, /sys, /dev and a fresh tmpfs /tmp, the given binds,
# then chroot, as the given user, with only the given environment (plus PATH and HOME).
# Run it under `ip netns exec NS` to put it in a network namespace. Every mount lives in the
# mount namespace it creates, so nothing is left mounted when its processes end.
#
#   rootfs-run.sh [-b SRC[:DST]]... [-e KEY=VALUE]... [-u UID:GID] [-p] ROOTFS CMD [ARG...]
#     -b  bind SRC (file or directory) at DST inside (default: the same path); a missing DST under
#         /tmp is made in the tmpfs, elsewhere in ROOTFS itself
#     -e  environment variable for CMD
#     -u  run CMD as UID:GID (numeric) instead of root
#     -p  also a new PID namespace: everything CMD started dies with it (not for daemons that fork away)
# Needs root (or CAP_SYS_ADMIN + CAP_SYS_CHROOT), unshare and chroot (util-linux, coreutils).
set -eu

if [ "${EDGETUNE_ROOTFS_INNER:-}" != 1 ]; then
  pid=""
  for a in "$@"; do
    case $a in -p) pid="--pid --fork --kill-child" ;; -*) ;; *) break ;; esac
  done
  export EDGETUNE_ROOTFS_INNER=1
  # shellcheck disable=SC2086 # two words or none
  exec unshare --mount --propagation private $pid sh "$0" "$@"
fi
unset EDGETUNE_ROOTFS_INNER

binds="" envs="" user="" newpid=0
nl='
'
while [ $# -gt 0 ]; do
  case $1 in
    -b) binds="$binds$2$nl"; shift 2 ;;
    -e) envs="$envs$2$nl"; shift 2 ;;
    -u) user=$2; shift 2 ;;
    -p) newpid=1; shift ;;
    --) shift; break ;;
    -*) echo "rootfs-run: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: rootfs-run.sh [-b SRC[:DST]]... [-e K=V]... [-u UID:GID] [-p] ROOTFS CMD [ARG...]" >&2; exit 2; }
root=$(cd "$1" && pwd)
shift
[ -x "$root/bin/sh" ] || { echo "rootfs-run: $root is not a root filesystem (no /bin/sh)" >&2; exit 2; }

if [ "$newpid" = 1 ]; then mount -t proc proc "$root/proc"; else mount --rbind /proc "$root/proc"; fi
# Under `ip netns exec`, /sys is the network namespace's own sysfs.
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
printf '%s' "$binds" | while IFS= read -r b; do
  [ -n "$b" ] || continue
  src=${b%%:*}
  dst=${b#*:}
  [ "$dst" != "$b" ] || dst=$src
  if [ -d "$src" ]; then
    mkdir -p "$root$dst"
  else
    mkdir -p "$root$(dirname "$dst")"
    [ -e "$root$dst" ] || : >"$root$dst"
  fi
  mount --bind "$src" "$root$dst"
done

set -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ "$@"
if [ -n "$envs" ]; then
  # Inserted after `env -i PATH HOME`, one argument each, in order.
  first=$1 && shift && p=$1 && shift && h=$1 && shift
  rest_count=$#
  old_ifs=$IFS && IFS=$nl
  # shellcheck disable=SC2086 # one KEY=VALUE per line
  set -- "$@" $envs
  IFS=$old_ifs
  # Rotate: move the KEY=VALUE arguments in front of the command.
  i=0
  while [ "$i" -lt "$rest_count" ]; do
    a=$1 && shift && set -- "$@" "$a"
    i=$((i + 1))
  done
  set -- "$first" "$p" "$h" "$@"
fi
if [ -n "$user" ]; then
  exec chroot --userspec="$user" --groups="${user#*:}" "$root" "$@"
fi
exec chroot "$root" "$@"
