#!/bin/sh
# kbuf: every test in tests.list (built into the image) with liburing's
# semantics; prints KTAP.
. /patchbay/lib/ktap.sh
ktap_run_list tests.list "${PATCHBAY_TEST_TIMEOUT:-120}" kbuf
