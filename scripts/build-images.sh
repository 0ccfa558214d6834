#!/bin/bash
# Builds edgetune's three images (proxy, tuner, loadgen) from proxy-image/Dockerfile.
#
#   scripts/build-images.sh [--builder buildah|docker] [--tag TAG] [--registry REG]
#                           [--only proxy,tuner,loadgen] [--rootfs DIR] [--archive DIR]
#                           [--platform LIST] [--push|--load] [--base IMAGE] [--mirror URL]
#
# Names: REG/edgetune-{proxy,tuner,loadgen}:TAG (default ghcr.io/edgetune, tag dev).
#
# buildah (the default when no Docker engine answers): the Debian trixie base is made here with
# `mmdebstrap --variant=minbase` from the mirror this machine's apt uses, imported as
# localhost/edgetune-base:trixie, then `buildah bud --isolation chroot --build-arg BASE=...`.
# A base and an image are rebuilt only when their inputs change (a content hash kept in the
# image's io.edgetune.inputs label): the Dockerfile, every file of the build context, the base.
#   --rootfs DIR   also export each image's root filesystem to DIR/<target>/ (chroot-able)
#   --archive DIR  also write DIR/<target>.tar, a docker-archive for `kind load image-archive`
#   --rebuild-base make the base again even if its inputs are unchanged (e.g. for updates)
#   -v, --verbose  show the RUN steps' output (apt), not just the result
#
# docker: `docker buildx build` (GitHub runners, where Docker Hub answers); BASE is the
# Dockerfile's default unless --base is given; --platform, --push and --load are passed on.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONTEXT=$ROOT/proxy-image
DOCKERFILE=$CONTEXT/Dockerfile
SUITE=trixie
BASE_IMAGE=localhost/edgetune-base:$SUITE
LABEL=io.edgetune.inputs

builder="" tag=dev registry=ghcr.io/edgetune only="proxy,tuner,loadgen" rootfs="" archive=""
platform="" output="" base="" mirror="${DEBIAN_MIRROR:-}" rebuild_base=0 quiet=(--quiet)

die() {
  echo "build-images: $*" >&2
  exit 1
}
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --builder) builder=${2:?}; shift 2 ;;
    --tag) tag=${2:?}; shift 2 ;;
    --registry) registry=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --rootfs) rootfs=${2:?}; shift 2 ;;
    --archive) archive=${2:?}; shift 2 ;;
    --platform) platform=${2:?}; shift 2 ;;
    --push) output=push; shift ;;
    --load) output=load; shift ;;
    --base) base=${2:?}; shift 2 ;;
    --mirror) mirror=${2:?}; shift 2 ;;
    --rebuild-base) rebuild_base=1; shift ;;
    -v | --verbose) quiet=(); shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

targets=()
IFS=, read -r -a wanted <<<"$only"
for t in "${wanted[@]}"; do
  case $t in
    proxy | tuner | loadgen) targets+=("$t") ;;
    *) die "--only: unknown target '$t' (proxy, tuner, loadgen)" ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || die "--only: no target"

if [ -z "$builder" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then builder=docker; else builder=buildah; fi
fi

name_of() { echo "$registry/edgetune-$1:$tag"; }

# A hash of the build context (every file's path, mode and content) and the Dockerfile.
context_hash() {
  (
    cd "$CONTEXT"
    find . -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
      printf '%s %s ' "$f" "$(stat -c %a "$f")"
      sha256sum <"$f"
    done
  ) | sha256sum | cut -d' ' -f1
}

if [ "$builder" = docker ]; then
  command -v docker >/dev/null 2>&1 || die "docker not found"
  [ -z "$rootfs" ] || die "--rootfs needs --builder buildah"
  for t in "${targets[@]}"; do
    args=(buildx build --file "$DOCKERFILE" --target "$t" --tag "$(name_of "$t")")
    [ -z "$base" ] || args+=(--build-arg "BASE=$base")
    [ -z "$platform" ] || args+=(--platform "$platform")
    [ "$output" != push ] || args+=(--push)
    [ "$output" != load ] || args+=(--load)
    if [ -n "$archive" ]; then
      mkdir -p "$archive"
      args+=(--output "type=docker,dest=$archive/$t.tar")
    fi
    args+=(--label "$LABEL=$(context_hash)" --metadata-file "${TMPDIR:-/tmp}/edgetune-build-$t.json" "$CONTEXT")
    echo "== docker ${args[*]}"
    docker "${args[@]}"
    digest=$(sed -n 's/.*"containerimage.digest": *"\([^"]*\)".*/\1/p' "${TMPDIR:-/tmp}/edgetune-build-$t.json" | head -n 1)
    echo "built $(name_of "$t") ${digest:-}"
  done
  exit 0
fi

[ "$builder" = buildah ] || die "--builder: buildah or docker, not '$builder'"
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/setup.sh installs it)"
done
[ -z "$output" ] || die "--push/--load need --builder docker (buildah: use --archive, or buildah push)"
[ -z "$platform" ] || die "--platform needs --builder docker"

label_of() { buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
id_of() { buildah inspect --type image --format '{{.FromImageID}}' "$1"; }

# The Debian mirror (and security mirror) this machine's apt uses: deb822 URIs or one-line entries.
apt_uris() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' |
    tr ' ' '\n' | grep -E '^https?://' || true
}
if [ -z "$mirror" ]; then
  mirror=$(apt_uris | grep -E '/debian/?$' | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
mirror=${mirror%/}
security=$(apt_uris | grep -E '/debian-security/?$' | head -n 1 || true)
security=${security%/}

if [ -z "$base" ]; then
  base=$BASE_IMAGE
  sources=("deb $mirror $SUITE main" "deb $mirror $SUITE-updates main")
  [ -z "$security" ] || sources+=("deb $security $SUITE-security main")
  # Like Docker Hub's debian:*-slim: minbase, no docs, man pages or translations.
  mmargs=(--variant=minbase --format=tar
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*' --aptopt='APT::Install-Recommends "false"')
  base_hash=$(printf '%s\n' "$SUITE" "${sources[@]}" "${mmargs[@]}" | sha256sum | cut -d' ' -f1)
  if [ "$rebuild_base" = 1 ] || [ "$(label_of "$base")" != "$base_hash" ]; then
    echo "== base: mmdebstrap $SUITE from $mirror${security:+ (+ $security)}"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    start=$SECONDS
    mmdebstrap "${quiet[@]}" "${mmargs[@]}" "$SUITE" "$work/base.tar" "${sources[@]}"
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$work/base.tar" / >/dev/null
    buildah config --label "$LABEL=$base_hash" --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd bash --os linux --arch "$(dpkg --print-architecture 2>/dev/null || uname -m)" "$ctr"
    buildah commit --quiet --rm "$ctr" "$base" >/dev/null
    rm -rf "$work"
    trap - EXIT
    echo "base $base $(id_of "$base") made in $((SECONDS - start)) s"
  else
    echo "base $base $(id_of "$base") (inputs unchanged)"
  fi
fi

inputs=$( (
  context_hash
  buildah inspect --type image --format '{{.FromImageID}}' "$base" 2>/dev/null || echo "$base"
) | sha256sum | cut -d' ' -f1)

for t in "${targets[@]}"; do
  name=$(name_of "$t")
  hash=$(printf '%s %s\n' "$inputs" "$t" | sha256sum | cut -d' ' -f1)
  if [ "$(label_of "$name")" = "$hash" ]; then
    echo "$name $(id_of "$name") (inputs unchanged)"
  else
    start=$SECONDS
    echo "== buildah bud --target $t -t $name (BASE=$base)"
    buildah bud "${quiet[@]}" --isolation chroot --pull-never --build-arg "BASE=$base" --target "$t" \
      --label "$LABEL=$hash" --tag "$name" --file "$DOCKERFILE" "$CONTEXT" >/dev/null
    echo "$name $(id_of "$name") built in $((SECONDS - start)) s"
  fi
  id=$(id_of "$name")
  if [ -n "$rootfs" ]; then
    mkdir -p "$rootfs"
    dest=$rootfs/$t
    if [ "$(cat "$dest/.edgetune-image-id" 2>/dev/null || true)" = "$id" ]; then
      echo "  rootfs $dest (current)"
    else
      # Exported beside the old copy, then swapped in: a reader never sees half a tree.
      tmp=$(mktemp -d "$rootfs/.$t.XXXXXX")
      ctr=$(buildah from --pull-never "$name")
      mnt=$(buildah mount "$ctr")
      # -a keeps owners, modes and xattrs (haproxy-netbind's file capability).
      cp -a "$mnt/." "$tmp/"
      buildah umount "$ctr" >/dev/null
      buildah rm "$ctr" >/dev/null
      echo "$id" >"$tmp/.edgetune-image-id"
      chmod 0755 "$tmp"
      rm -rf "$dest"
      mv "$tmp" "$dest"
      echo "  rootfs $dest"
    fi
  fi
  if [ -n "$archive" ]; then
    mkdir -p "$archive"
    rm -f "$archive/$t.tar"
    buildah push --quiet "$name" "docker-archive:$archive/$t.tar:$name" >/dev/null
    echo "  archive $archive/$t.tar"
  fi
done
