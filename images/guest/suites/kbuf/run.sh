#!/bin/sh
# kbuf: every test in tests.list (built into the image) and in
# tree-tests.list (built against the tree under test by build-tree.sh) with
# liburing's semantics; prints KTAP.
. /patchbay/lib/ktap.sh
list=/tmp/kbuf-tests.list
cat tests.list > "$list"
[ -f tree-tests.list ] && cat tree-tests.list >> "$list"
ktap_run_list "$list" "${PATCHBAY_TEST_TIMEOUT:-120}" kbuf
