#!/bin/sh
# Installs what edgetune's tests and lab need on a Debian/Ubuntu machine (run as root),
# then the npm dependencies from the lockfile. Idempotent.
set -eu
cd "$(dirname "$0")/.."

# Debian packages, each for a reason:
#   iproute2 ethtool procps kmod util-linux  network namespaces, veth, NIC settings, sysctl, unshare/setpriv
#   shellcheck dash busybox                  tune.sh portability checks (POSIX sh under dash and busybox)
#   haproxy nginx iperf3 wrk curl            the proxy, the lab backend and load generators
#   cloud-init                               `cloud-init schema` for the EC2 user-data
#   nftables iptables                        conntrack NOTRACK rules
PACKAGES="iproute2 ethtool procps kmod util-linux shellcheck dash busybox haproxy nginx iperf3 wrk curl cloud-init nftables iptables"

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
  # No service starts on install: the tests start their own nginx/haproxy inside namespaces.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

npm ci --no-audit --no-fund

# examples/consumer: a separate Pulumi project that uses edgetune by path; `npm test` runs its test.
# After the root install: npm packs edgetune for it (install-links, see its .npmrc), which builds
# dist/ with the root's devDependencies.
(cd examples/consumer && npm ci --no-audit --no-fund)
