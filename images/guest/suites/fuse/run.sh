#!/bin/sh
# fuse: the tree's filesystems/fuse kselftests (kselftest/, built from the
# tree under test by build-tree.sh), then libfuse's passthrough servers over
# /dev/fuse and over io_uring (tests.list); prints KTAP.
. /patchbay/lib/ktap.sh
list=/tmp/fuse-tests.list
{
  if [ ! -f kselftest/tests.txt ]; then
    echo "kselftests ./kselftest.sh missing"
  elif grep -q '^# none:' kselftest/tests.txt; then
    echo "kselftests ./kselftest.sh kselftests"
  else
    grep -v -e '^#' -e '^$' kselftest/tests.txt | while read -r t; do echo "$t ./kselftest.sh $t"; done
  fi
  cat tests.list
} > "$list"
ktap_run_list "$list" "${PATCHBAY_TEST_TIMEOUT:-120}" fuse
