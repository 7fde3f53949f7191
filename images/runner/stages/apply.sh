#!/bin/bash
# apply.sh MBOX — git am -3 the series (patches only, mboxrd) onto the base.
# On failure prints git's message and exits 1 (the executor names the
# patch); writes the list of changed files to /job/out/changed-files.txt.
. /opt/patchbay/stages/lib.sh
mbox=$1
cd "$SRC"
base=$(git rev-parse HEAD)
if ! git am -3 --patch-format=mboxrd "$mbox" 2>&1; then
  git am --abort >/dev/null 2>&1 || true
  exit 1
fi
git diff --name-only "$base" HEAD > /job/out/changed-files.txt
note "applied $(git rev-list --count "$base"..HEAD) patches; $(wc -l < /job/out/changed-files.txt) files changed; HEAD $(git rev-parse HEAD)"
