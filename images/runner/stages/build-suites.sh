#!/bin/sh
# Image build step: runs each suite manifest's build.image commands in the
# suite's folder (e.g. compiling a static test binary).
set -eu
for manifest in "$1"/*/manifest.json; do
  dir=$(dirname "$manifest")
  python3 - "$manifest" <<'PY' > "$dir/.build.sh"
import json, shlex, sys
m = json.load(open(sys.argv[1]))
for cmd in (m.get("build") or {}).get("image") or []:
    print(cmd)
PY
  echo "suite $(basename "$dir"): building"
  (cd "$dir" && sh -eux ./.build.sh)
  rm -f "$dir/.build.sh"
done
