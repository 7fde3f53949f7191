#!/bin/sh
# selftests: every test of the installed kselftest folders (build-tree.sh),
# one ktap.sh test each, named COLLECTION/TEST; skips when the series
# changed no io_uring or FUSE selftests.
. /patchbay/lib/ktap.sh
if [ ! -s kselftest/kselftest-list.txt ]; then
  echo "KTAP version 1"
  echo "1..0 # SKIP the series adds or changes no io_uring or FUSE selftests"
  exit 0
fi
list=/tmp/selftests.list
here=$(pwd)
while IFS=: read -r coll test; do
  [ -n "$test" ] && echo "$coll/$test sh -c 'cd $here/kselftest/$coll && exec ./$test'"
done < kselftest/kselftest-list.txt > "$list"
ktap_run_list "$list" "${PATCHBAY_TEST_TIMEOUT:-300}" selftests
