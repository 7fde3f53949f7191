#!/bin/bash
# boot.sh ACCEL TIMEOUT KERNEL OUT PLAN — packs an initramfs (busybox, the
# guest init and library, the suites of PLAN) and boots KERNEL in QEMU.
# PLAN is a file, one run of a suite a line: "SUITE [TEST...]" (the tests
# limit that run; every line of one suite names the same tests).
# A suite's folder is assembled from, in order: /job/in/suites/SUITE (the
# catalogue's copy), /opt/patchbay/guest/suites/SUITE (the image's build of
# it), and $SUITE_EXTRA/SUITE (what was built from the tree under test).
# Shared libraries of dynamic executables in the suites are copied in.
# The console (ttyS0) is printed and saved to OUT/console.log; the KTAP
# channel (ttyS1) to OUT/ktap.txt. Both stop growing at $CONSOLE_LIMIT bytes
# (a guest that prints forever fills neither the disk nor the logs): each is
# cut with a marker and then drained, so QEMU never blocks on it.
# Exit: QEMU's, or 124 when TIMEOUT ran out.
. /opt/patchbay/stages/lib.sh
accel=$1; timeout=$2; kernel=$3; out=$4; plan=$5
mkdir -p "$out"
root=$(mktemp -d)
# mktemp's 0700 would deny root in a guest user namespace every lookup under /.
chmod 755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,patchbay/suites}
cp /bin/busybox "$root/bin/busybox"
# Relative links: `busybox --install -s` would point them at this build folder.
for applet in $(/bin/busybox --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp /opt/patchbay/guest/init "$root/init"
cp -a /opt/patchbay/guest/lib "$root/patchbay/lib"
: > "$root/patchbay/suite-list"
while read -r s tests; do
  [ -n "$s" ] || continue
  echo "$s" >> "$root/patchbay/suite-list"
  dir="$root/patchbay/suites/$s"
  [ -d "$dir" ] && continue
  mkdir -p "$dir"
  for src in "/job/in/suites/$s" "/opt/patchbay/guest/suites/$s" "${SUITE_EXTRA:-/nonexistent}/$s"; do
    [ -d "$src" ] && cp -a "$src/." "$dir/"
  done
  [ -f "$dir/manifest.json" ] || { echo "boot.sh: suite $s not found" >&2; exit 2; }
  python3 - "$dir" <<'PY'
import json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
open(os.path.join(d, "timeout"), "w").write(f"{m.get('timeoutSeconds', 300)}\n")
if "testTimeoutSeconds" in m:
    open(os.path.join(d, "test-timeout"), "w").write(f"{m['testTimeoutSeconds']}\n")
PY
  [ -z "$tests" ] || echo "$tests" > "$dir/only"
done < "$plan"
# Dynamic executables get their libraries (and the loader) at the same paths.
find "$root/patchbay" -type f -perm -u+x -print0 | while IFS= read -r -d '' f; do
  [ "$(head -c4 "$f" | tr -d '\0')" = $'\x7fELF' ] || continue
  { ldd "$f" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
done | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1) > "$out/initramfs.cpio.gz"
note "initramfs: $(du -sh "$root" | cut -f1) unpacked, suites: $(tr '\n' ' ' < "$root/patchbay/suite-list")"
rm -rf "$root"
cpu=max; [ "$accel" = kvm ] && cpu=host
# Two vCPUs as two sockets: SeaBIOS's MP table (the guest config has no
# ACPI) lists one processor per socket, so "-smp 2" alone boots one CPU.
note "booting with $accel (timeout ${timeout}s)"
: > "$out/ktap.txt"
limit=${CONSOLE_LIMIT:-33554432}
# At most $limit bytes of a stream, a marker, then the rest read and dropped.
cap() { head -c "$limit"; if [ -n "$(head -c 1)" ]; then printf '\npatchbay: %s cut at %s bytes (the limit for it); the rest was discarded\n' "$1" "$limit"; cat > /dev/null; fi; }
# The KTAP channel goes through a FIFO and the same cap into its file.
fifo=$(mktemp -u /tmp/ktap.XXXXXX); mkfifo -m 600 "$fifo"
cap "KTAP channel" < "$fifo" > "$out/ktap.txt" &
reader=$!
set +e
timeout -s KILL "$timeout" qemu-system-x86_64 \
  -accel "$accel" -cpu "$cpu" -smp 2,sockets=2,cores=1,threads=1 -m 1024 \
  -display none -monitor none -no-reboot \
  -kernel "$kernel" -initrd "$out/initramfs.cpio.gz" \
  -append "console=ttyS0 rdinit=/init panic=-1 oops=panic loglevel=7 printk.time=1 fuse.enable_uring=1" \
  -serial stdio -serial "file:$fifo" < /dev/null 2>&1 | cap console | tee "$out/console.log"
rc=${PIPESTATUS[0]}
# QEMU never opened the FIFO when it failed early: open it once so the reader ends.
: > "$fifo" & opener=$!
wait "$reader"; kill "$opener" 2>/dev/null; rm -f "$fifo"
[ "$rc" = 137 ] && rc=124
exit "$rc"
