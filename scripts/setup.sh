#!/bin/sh
# Installs what edgetune's tests and lab need on a Debian/Ubuntu machine (run as root),
# then the npm dependencies from the lockfile. Idempotent.
set -eu
cd "$(dirname "$0")/.."

# Debian packages, each for a reason:
#   iproute2 ethtool procps kmod util-linux  network namespaces, veth, NIC settings, sysctl, unshare/setpriv
#   dash busybox shellcheck                  tune.sh portability checks (POSIX sh under dash and busybox)
#   haproxy nginx iperf3 wrk curl hping3     the proxy, the lab backend and load generators (hping3: syn-flood, softnet)
#   libnginx-mod-stream                      the lab's NGINX peer: its L4 (stream) listener
#   cloud-init                               `cloud-init schema` for the EC2 user-data
#   nftables iptables                        conntrack NOTRACK rules
#   jq socat                                 the tuner loop: Kubernetes API answers, the metrics endpoint
#   buildah mmdebstrap                       scripts/build-images.sh: the images, over a Debian base made here
#                                            (as root: no uidmap or fuse-overlayfs needed)
PACKAGES="iproute2 ethtool procps kmod util-linux shellcheck dash busybox haproxy nginx libnginx-mod-stream iperf3 wrk curl hping3 cloud-init nftables iptables jq socat buildah mmdebstrap"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages:$missing — run as root or: sudo apt-get install -y$missing" >&2
    exit 1
  fi
  apt-get update -qq
  # edgetune starts its own nginx and haproxy inside network namespaces; the packages'
  # services must not start on the host at install (policy-rc.d 101 = "action forbidden").
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  # shellcheck disable=SC2086 # one word per package on purpose
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  if [ -n "$policy" ]; then rm -f "$policy"; trap - EXIT; fi
fi

npm ci --no-audit --no-fund

# examples/consumer: a separate Pulumi project that uses edgetune by path; `npm test` runs its test.
# After the root install: npm packs edgetune for it (install-links, see its .npmrc), which builds
# dist/ with the root's devDependencies.
(cd examples/consumer && npm ci --no-audit --no-fund)
