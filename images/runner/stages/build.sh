#!/bin/bash
# build.sh [clean] — make bzImage in /work/build (incremental unless
# "clean", which starts from an empty build folder with the saved config).
. /opt/patchbay/stages/lib.sh
if [ "${1:-}" = clean ]; then
  note "clean build"
  cp "$OBJ/.config" /tmp/saved.config
  rm -rf "$OBJ"; mkdir -p "$OBJ"; cp /tmp/saved.config "$OBJ/.config"
  kmake -s olddefconfig
fi
start=$(date +%s)
kmake bzImage 2>&1
note "bzImage built in $(( $(date +%s) - start ))s: $(stat -c %s "$OBJ/arch/x86/boot/bzImage") bytes"
if [ -d /job/out ]; then
  cp "$OBJ/arch/x86/boot/bzImage" /job/out/bzImage
  cp "$OBJ/.config" /job/out/kernel.config
fi
