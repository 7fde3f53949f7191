#!/bin/sh
# build.tree step (user builder, in this folder, read-only): the tree under
# test's tools/testing/selftests/filesystems/fuse, built with its own
# Makefile against the tree's uapi headers, installed into $OUT/kselftest
# with the list of its tests (kselftest/tests.txt, one program a line), so a
# series that changes these tests is tested as changed.
#   SRC   the kernel tree (not written to)
#   KHDR  the tree's installed uapi headers
#   OUT   what lands here is laid over this folder in the guest
# Exits non-zero only when the tests fail to build.
set -eu
: "${SRC:?}" "${KHDR:?}" "${OUT:?}"
dir=tools/testing/selftests/filesystems/fuse
mkdir -p "$OUT/kselftest"
if [ ! -f "$SRC/$dir/Makefile" ]; then
  echo "fuse: this tree has no $dir; no kselftests to build"
  echo "# none: the tree has no $dir" > "$OUT/kselftest/tests.txt"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
kmake() {
  make -C "$SRC/$dir" OUTPUT="$tmp/build" KHDR_INCLUDES="-isystem $KHDR" "$@"
}
echo "fuse: building $dir"
mkdir -p "$tmp/build"
kmake all
kmake -s INSTALL_PATH="$OUT/kselftest" install
# The programs kselftest's runner would run (TEST_GEN_PROGS, TEST_PROGS...).
kmake -s --no-print-directory emit_tests | sed -n 's/^[^:]*://p' > "$OUT/kselftest/tests.txt"
[ -s "$OUT/kselftest/tests.txt" ] || { echo "fuse: $dir lists no tests (make emit_tests)" >&2; exit 1; }
for t in $(cat "$OUT/kselftest/tests.txt"); do
  [ -x "$OUT/kselftest/$t" ] || { echo "fuse: test $t was not installed" >&2; exit 1; }
done
echo "fuse: kselftests $(tr '\n' ' ' < "$OUT/kselftest/tests.txt")built in $(( $(date +%s) - start ))s"
ls -l "$OUT/kselftest"
