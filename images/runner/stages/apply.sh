#!/bin/bash
# apply.sh MBOX — git am -3 the series (patches only, mboxrd) onto the base.
# Writes the list of changed files to /job/out/changed-files.txt.
# Exit status (read by runners/executor/stages/apply.ts):
#   0    applied
#   1    git am failed: its own output (above) says why; the executor blames
#        a patch only when git named it ("Patch failed at NNNN", "Patch is
#        empty.") with its error or CONFLICT lines
#   125  the harness failed, not git's verdict on a patch: git am killed by a
#        signal, or a step of this script failed; "patchbay: apply harness
#        failed: ..." says which
. /opt/patchbay/stages/lib.sh
harness_failed() {
  # A subshell that failed has said why already (it exits 125 too).
  [ "$1" = 125 ] || { shift; printf 'patchbay: apply harness failed: %s\n' "$*" >&2; }
  exit 125
}
set -E
trap 'rc=$?; harness_failed "$rc" "line $LINENO: $BASH_COMMAND (exit $rc)"' ERR
mbox=$1
cd "$SRC"
base=$(git rev-parse HEAD)
rc=0
git am -3 --patch-format=mboxrd "$mbox" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
  git am --abort >/dev/null 2>&1 || true
  if [ "$rc" -gt 128 ]; then harness_failed 1 "git am was killed by signal $((rc - 128))"; fi
  note "git am failed (exit $rc)"
  exit 1
fi
git diff --name-only "$base" HEAD > /job/out/changed-files.txt
note "applied $(git rev-list --count "$base"..HEAD) patches; $(wc -l < /job/out/changed-files.txt) files changed; HEAD $(git rev-parse HEAD)"
