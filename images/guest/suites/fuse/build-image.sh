#!/bin/sh
# Image build step (root, in this folder): libfuse 3.18's example servers
# (built with io_uring support by runner/third-party/build.sh), stripped,
# into bin/. They stay dynamic: boot.sh copies their libraries (libnuma,
# libstdc++) into the guest.
set -eu
examples=/opt/patchbay/third-party/libfuse/examples
mkdir -p bin
for server in passthrough_ll passthrough_hp; do
  strip -o "bin/$server" "$examples/$server"
done
# A libfuse without io_uring would silently serve over /dev/fuse: refuse it
# here rather than in every guest run (the option strings exist either way,
# the ring code only when it was compiled in).
grep -q 'fuse-ring-%d' bin/passthrough_hp || {
  echo "fuse: bin/passthrough_hp has no fuse-over-io-uring code" >&2; exit 1; }
ls -l bin
