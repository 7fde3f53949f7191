# Shared by the stage scripts. Source tree /work/linux, build output
# /work/build (O=), job input /job/in, job output /job/out.
set -euo pipefail
SRC=/work/linux
OBJ=/work/build
JOBS=${PATCHBAY_JOBS:-$(nproc)}
kmake() {
  make -C "$SRC" O="$OBJ" ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j"$JOBS" "$@"
}
note() { printf 'patchbay: %s\n' "$*"; }
