#!/bin/bash
# build.tree: the kselftest folders the series adds or changes whose name
# says io_uring, uring or fuse (filesystems/fuse belongs to the fuse suite),
# built against the tree's own uapi headers (KHDR) and installed into OUT/kselftest.
# The base tree has no changes: nothing is built, and the suite skips.
set -euo pipefail
changed=/job/out/changed-files.txt
if [ ! -s "$changed" ]; then
  echo "selftests: no series applied here: nothing to build"
  exit 0
fi
targets=$(grep -E '^tools/testing/selftests/' "$changed" | while read -r f; do
  rel=${f#tools/testing/selftests/}
  dir=$(dirname "$rel")
  # The kselftest target is the deepest folder above the file with a Makefile.
  while [ "$dir" != . ] && [ ! -f "$SRC/tools/testing/selftests/$dir/Makefile" ]; do dir=$(dirname "$dir"); done
  case "$dir" in
    .|filesystems/fuse|filesystems/fuse/*) ;;
    *io_uring*|*uring*|*fuse*) echo "$dir" ;;
  esac
done | sort -u)
if [ -z "$targets" ]; then
  echo "selftests: the series changes no io_uring or FUSE selftest folder"
  exit 0
fi
echo "selftests: building $(echo $targets)"
for t in $targets; do
  make -C "$SRC/tools/testing/selftests" TARGETS="$t" O="$OUT/build" \
    KHDR_INCLUDES="-isystem $KHDR" INSTALL_PATH="$OUT/kselftest" install
done
rm -rf "$OUT/build"
echo "selftests: $(wc -l < "$OUT/kselftest/kselftest-list.txt") test(s) installed"
