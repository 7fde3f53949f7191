#!/bin/bash
# build-tree-suites.sh OUTROOT SUITE... — runs each suite's build.tree
# commands (its manifest) against the tree in /work/linux: cwd the suite's
# folder, SRC the tree, OBJ its build folder, OUT=OUTROOT/SUITE (laid over
# the suite's folder in the guest), KHDR the tree's uapi headers (installed
# once, before the first suite that builds from the tree).
# Exit status (read by runners/executor/stages/build.ts):
#   0    every suite built
#   1    a suite's build, or the tree's uapi headers, failed: the output
#        above says why (the executor takes it as evidence only with a
#        compiler or linker diagnostic in it); the last line names the suite
#   125  the harness failed (reading a manifest, preparing a folder), not a
#        suite's build: "patchbay: build-tree-suites harness failed: ..."
. /opt/patchbay/stages/lib.sh
harness_failed() {
  # A subshell that failed has said why already (it exits 125 too).
  [ "$1" = 125 ] || { shift; printf 'patchbay: build-tree-suites harness failed: %s\n' "$*" >&2; }
  exit 125
}
set -E
trap 'rc=$?; harness_failed "$rc" "line $LINENO: $BASH_COMMAND (exit $rc)"' ERR
outroot=$1; shift
khdr=
for s in "$@"; do
  dir=/opt/patchbay/guest/suites/$s
  [ -f "$dir/manifest.json" ] || dir=/job/in/suites/$s
  [ -f "$dir/manifest.json" ] || harness_failed 1 "suite $s not found"
  cmds=$(python3 -c 'import json,sys; print("\n".join((json.load(open(sys.argv[1])).get("build") or {}).get("tree") or []))' "$dir/manifest.json")
  [ -n "$cmds" ] || continue
  if [ -z "$khdr" ]; then
    note "uapi headers of the tree"
    make -s -C "$SRC" O="$OBJ" ARCH=x86_64 headers || { note "installing the tree's uapi headers failed"; exit 1; }
    khdr=$OBJ/usr/include
  fi
  out="$outroot/$s"
  rm -rf "$out"; mkdir -p "$out"
  note "suite $s: building from the tree ($(git -C "$SRC" rev-parse --short HEAD))"
  start=$(date +%s)
  if ! (trap - ERR; cd "$dir" && SRC=$SRC OBJ=$OBJ KHDR=$khdr OUT=$out bash -euo pipefail -c "$cmds") 2>&1; then
    note "suite $s: build from the tree failed"
    exit 1
  fi
  note "suite $s: built from the tree in $(( $(date +%s) - start ))s"
done
