#!/bin/bash
# checkout.sh REPO_URL COMMIT — the base tree at COMMIT into /work/linux.
. /opt/patchbay/stages/lib.sh
url=$1; commit=$2
note "fetching $commit from $url"
git init -q "$SRC"
git -C "$SRC" fetch --depth=1 --no-tags --progress "$url" "$commit" 2>&1
git -C "$SRC" checkout -q --detach FETCH_HEAD
# The tree is saved in an image and reused in new containers, which changes
# inodes and ctimes: compare only mtime and size, or every job's git would
# re-hash the whole tree.
git -C "$SRC" config core.checkStat minimal
git -C "$SRC" config core.trustctime false
note "checked out $(git -C "$SRC" rev-parse HEAD)"
