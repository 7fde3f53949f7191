#!/bin/bash
# build.tree step: patchbay's tests that must see the uapi of the tree under
# test (tree-src/), built static against KHDR; a test whose feature the
# tree's uapi does not declare is built as a SKIP (feature probe).
# Writes OUT/bin/* and OUT/tree-tests.list (NAME COMMAND, read by run.sh).
set -euo pipefail
: "${KHDR:?}" "${OUT:?}"
mkdir -p "$OUT/bin"
: > "$OUT/tree-tests.list"
for c in tree-src/*.c; do
  n=$(basename "$c" .c)
  flags=()
  case "$n" in
    kbuf-kmbuf-ring)
      if grep -q 'IORING_REGISTER_KMBUF_RING' "$KHDR/linux/io_uring.h"; then
        flags+=(-DPATCHBAY_TREE_HAS_KMBUF)
        echo "kbuf: the tree declares kernel-managed buffer rings: $n tests them"
      else
        echo "kbuf: the tree declares no kernel-managed buffer rings: $n will skip"
      fi ;;
  esac
  gcc -O2 -g -Wall -Wextra -Werror -static -isystem "$KHDR" "${flags[@]}" -o "$OUT/bin/$n" "$c"
  echo "$n ./bin/$n" >> "$OUT/tree-tests.list"
done
