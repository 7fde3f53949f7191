#!/bin/bash
# Image build step (root): the test sources patchbay runs in the guest,
# from Debian's source packages, built under /opt/patchbay/third-party:
#   liburing  its library (static only, so every test links it in) and its
#             source tree, whose buffer-ring tests the kbuf suite builds;
#   libfuse   built against that liburing, with fuse-over-io-uring, and its
#             example servers (passthrough_ll, passthrough_hp, ...).
# Versions are pinned in versions.env beside this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
prefix=/opt/patchbay/third-party
mkdir -p "$prefix/src"

# Source packages come from the same mirror the image's apt uses, in the
# suite that carries the pinned version.
mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
[ -n "$mirror" ] || { echo "third-party: no mirror in /etc/apt/sources.list" >&2; exit 1; }
echo "deb-src $mirror $SOURCE_SUITE main" > /etc/apt/sources.list.d/patchbay-src.list
# Source lists of a fixed snapshot may carry an expired Valid-Until.
apt-get -o Acquire::Check-Valid-Until=false update -qq
cd "$prefix/src"
for pkg in "liburing=$LIBURING_DEBIAN" "fuse3=$FUSE3_DEBIAN"; do
  # apt-get source unpacks and applies Debian's patches (dpkg-source -x).
  apt-get source -qq "$pkg" >/dev/null
done
rm -f /etc/apt/sources.list.d/patchbay-src.list ./*.dsc ./*.tar.* ./*.asc
rm -rf /var/lib/apt/lists/*

# liburing: the library (static), headers and pkg-config file.
cd "$prefix/src/liburing-$LIBURING_VERSION"
./configure --prefix="$prefix/liburing" --cc=gcc >/dev/null
make -s -j"$(nproc)" -C src >/dev/null
make -s install >/dev/null
rm -f "$prefix/liburing/lib"/liburing*.so*
# The tests' helpers, built once; the kbuf suite compiles the tests it runs.
make -s -C test helpers.o >/dev/null

# libfuse with io_uring, its library static, examples built.
cd "$prefix/src/fuse3-$FUSE3_VERSION"
PKG_CONFIG_PATH="$prefix/liburing/lib/pkgconfig" meson setup build \
  --prefix="$prefix/libfuse" -Ddefault_library=static -Dexamples=true \
  -Dutils=false -Dtests=false -Denable-io-uring=true >/tmp/libfuse-setup.log \
  || { tail -n 40 /tmp/libfuse-setup.log >&2; exit 1; }
grep -q '^#define HAVE_URING' build/fuse_config.h || {
  echo "third-party: libfuse was configured without io_uring support" >&2
  grep -i -E 'uring|numa' /tmp/libfuse-setup.log >&2; exit 1; }
ninja -C build >/dev/null
mkdir -p "$prefix/libfuse/examples"
for ex in passthrough passthrough_ll passthrough_hp hello_ll; do
  cp "build/example/$ex" "$prefix/libfuse/examples/"
done
rm -rf build
echo "third-party: liburing $LIBURING_VERSION, libfuse $FUSE3_VERSION (io_uring) in $prefix"
