#!/usr/bin/env bash
# Builds a Debian trixie base image without any image registry:
# debootstrap --variant=minbase into a scratch folder, then `docker import`.
#
# Usage: images/base/build.sh TAG
# Env:   MIRROR  Debian mirror URL (default: read from this machine's apt sources)
#        SUITE   Debian suite (default: trixie)
set -euo pipefail
tag=${1:?usage: build.sh TAG}
suite=${SUITE:-trixie}
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- -security | head -n1 || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$MIRROR" ] || { echo "build.sh: no Debian mirror found in apt sources; set MIRROR" >&2; exit 1; }
docker=/usr/bin/docker; [ -x "$docker" ] || docker=docker

root=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite (minbase) from $MIRROR"
debootstrap --variant=minbase "$suite" "$root" "$MIRROR" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# apt inside the image talks to the same mirror; no recommends, no caches.
cat >"$root/etc/apt/sources.list" <<SRC
deb $MIRROR $suite main
SRC
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90patchbay"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "docker import -> $tag"
tar -C "$root" --numeric-owner -c . | "$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "built $tag"
