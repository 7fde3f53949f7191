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
{
  for t in $names; do echo "$t ./bin/$t"; done
  for c in src/*.c; do n=$(basename "$c" .c); echo "$n ./bin/$n"; done
} > tests.list
echo "kbuf: $(wc -l < tests.list) tests"
