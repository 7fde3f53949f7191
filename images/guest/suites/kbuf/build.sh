#!/bin/sh
# Image build step: liburing's buffer-ring tests (liburing-tests.txt) and
# patchbay's own tests (src/), all static against the image's liburing.
set -eu
src=$(echo /opt/patchbay/third-party/src/liburing-*)
uring=/opt/patchbay/third-party/liburing
mkdir -p bin
names=$(grep -v -e '^#' -e '^$' liburing-tests.txt | sed 's/$/.t/')
make -s -C "$src/test" -j"$(nproc)" LDFLAGS=-static $names
for t in $names; do cp "$src/test/$t" bin/; done
for c in src/*.c; do
  gcc -O2 -g -Wall -Wextra -static -I"$uring/include" -o "bin/$(basename "$c" .c)" "$c" -L"$uring/lib" -luring -lpthread
done
# The list run.sh runs: liburing's tests by their file name, then our own.
# read-mshot-stdin is interactive upstream (it skips unless given the
# argument "stdin", then reads what is typed): here a pipe feeds it 97 bytes
# and closes, so a multishot read fills four 32-byte ring buffers in order
# and ends at EOF.
{
  for t in $names; do
    case "$t" in
      read-mshot-stdin.t) printf '%s\n' "$t printf 'multishot read of a pipe into 32-byte provided buffers, one buffer per completion, in ring order\n' | ./bin/$t stdin" ;;
      *) echo "$t ./bin/$t" ;;
    esac
  done
  for c in src/*.c; do n=$(basename "$c" .c); echo "$n ./bin/$n"; done
} > tests.list
echo "kbuf: $(wc -l < tests.list) tests"
