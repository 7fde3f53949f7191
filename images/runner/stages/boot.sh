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
# cut with a marker and then drained, so QEMU never blocks on it. QEMU's own
# messages (stderr) are printed after it ends, as "qemu: ...".
# The first line of output is the QEMU command line, as
# "patchbay: qemu command: ARG ..." (an argument quoted in '' when it holds
# more than letters, digits and _ . / : , = + @ % -), printed before
# anything else and before QEMU starts: the executor records it
# (JobResult.environment.qemuCommand) and reads no other line for it.
#
# Exit status (read by runGuest in runners/executor/guest.ts):
#   0      QEMU exited by itself with 0: the guest rebooted (-no-reboot
#          turns the init's reboot, or a panic's, into an exit)
#   1..119 QEMU's own exit status (it failed; its messages say why)
#   123    QEMU was killed by a signal the timeout did not send (the OOM
#          killer, another process): "patchbay: QEMU was killed by signal N
#          ..." says which. Nothing about the kernel follows from it.
#   124    TIMEOUT ran out: QEMU was stopped by the timeout (SIGTERM, then
#          SIGKILL 10 s later if it was still running)
#   125    the harness failed (this script before or after QEMU, or QEMU
#          could not be started, or its output could not be saved):
#          "patchbay: boot harness failed: ..." says where. Nothing about
#          the kernel follows from it.
# (GNU timeout exits 137 both when its own SIGKILL ended QEMU and when
# someone else's did; the time QEMU ran tells the two apart.)
#
# PATCHBAY_TEST_FAULT is for the fault-injection tests only
# (runners/executor/test/faults.itest.ts): the host sets it in the exec's
# environment, which nothing in a job can reach. "no-ktap-port" boots
# without the KTAP serial port (ttyS1).
. /opt/patchbay/stages/lib.sh
harness_failed() {
  # A subshell that failed has said why already (it exits 125 too).
  [ "$1" = 125 ] || { shift; printf 'patchbay: boot harness failed: %s\n' "$*" >&2; }
  exit 125
}
set -E
trap 'rc=$?; harness_failed "$rc" "line $LINENO: $BASH_COMMAND (exit $rc)"' ERR
accel=$1; timeout=$2; kernel=$3; out=$4; plan=$5
[ -f "$kernel" ] || harness_failed 1 "no kernel at $kernel"
cpu=max; [ "$accel" = kvm ] && cpu=host
fifo=$(mktemp -u /tmp/ktap.XXXXXX)
ktap_port=(-serial "file:$fifo")
if [ "${PATCHBAY_TEST_FAULT:-}" = no-ktap-port ]; then ktap_port=(); fi
# Two vCPUs as two sockets: SeaBIOS's MP table (the guest config has no
# ACPI) lists one processor per socket, so "-smp 2" alone boots one CPU.
qemu=(qemu-system-x86_64
  -accel "$accel" -cpu "$cpu" -smp 2,sockets=2,cores=1,threads=1 -m 1024
  -display none -monitor none -no-reboot
  -kernel "$kernel" -initrd "$out/initramfs.cpio.gz"
  -append "console=ttyS0 rdinit=/init panic=-1 oops=panic loglevel=7 printk.time=1 fuse.enable_uring=1"
  -serial stdio "${ktap_port[@]}")
words=
for arg in "${qemu[@]}"; do
  if [[ $arg =~ ^[A-Za-z0-9_./:,=+@%-]+$ ]]; then words+=" $arg"; else words+=" '${arg//\'/\'\\\'\'}'"; fi
done
printf 'patchbay: qemu command:%s\n' "$words"
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
  [ -f "$dir/manifest.json" ] || harness_failed 1 "suite $s not found (no manifest.json in /job/in/suites, the image or SUITE_EXTRA)"
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
note "booting with $accel (timeout ${timeout}s)"
: > "$out/ktap.txt"
limit=${CONSOLE_LIMIT:-33554432}
qerr=$(mktemp /tmp/qemu-stderr.XXXXXX)
mkfifo -m 600 "$fifo"
if [ "${#ktap_port[@]}" = 0 ]; then note "test fault: booting without the KTAP serial port"; fi

# From here on, failures are QEMU's result or checked one by one.
trap - ERR
set +e
# At most $limit bytes of a stream, a marker, then the rest read and dropped;
# fails when its output could not be written.
cap() {
  local rc=0
  head -c "$limit" || rc=$?
  if [ -n "$(head -c 1)" ]; then printf '\npatchbay: %s cut at %s bytes (the limit for it); the rest was discarded\n' "$1" "$limit" || rc=$?; cat > /dev/null; fi
  return "$rc"
}
# The KTAP channel goes through a FIFO and the same cap into its file.
cap "KTAP channel" < "$fifo" > "$out/ktap.txt" &
reader=$!
started=$SECONDS
timeout -s TERM -k 10 "$timeout" "${qemu[@]}" < /dev/null 2> "$qerr" | cap console | tee "$out/console.log"
status=("${PIPESTATUS[@]}")
elapsed=$((SECONDS - started))
rc=${status[0]}
# QEMU never opened the FIFO when it failed early: open it once so the reader ends.
: > "$fifo" & opener=$!
wait "$reader"; reader_rc=$?
kill "$opener" 2>/dev/null; rm -f "$fifo"
# QEMU ends itself on SIGTERM, SIGINT or SIGHUP ("terminating on signal N"):
# when the timeout did not send it, that is no exit of the guest's.
term=$(grep -o 'terminating on signal [0-9]*' "$qerr" | head -n 1 | grep -o '[0-9]*$')
if [ -s "$qerr" ]; then head -c 65536 "$qerr" | sed 's/^/qemu: /' >&2; fi
rm -f "$qerr"
killed() {
  printf 'patchbay: QEMU was killed by signal %s (%s) after %ss, not by the timeout (%ss)\n' "$1" "$(kill -l "$1" 2>/dev/null || echo '?')" "$elapsed" "$timeout" >&2
  exit 123
}

[ "${status[1]}" = 0 ] && [ "${status[2]}" = 0 ] || harness_failed 1 "the console could not be saved (cap exit ${status[1]}, tee exit ${status[2]})"
[ "$reader_rc" = 0 ] || harness_failed 1 "the KTAP channel could not be saved (exit $reader_rc)"
case "$rc" in
  124)
    note "QEMU stopped by the timeout after ${elapsed}s"
    exit 124 ;;
  125|126|127)
    harness_failed 1 "QEMU could not be started (timeout exit $rc)" ;;
esac
if [ "$rc" -gt 128 ]; then
  if [ "$elapsed" -ge "$timeout" ]; then
    # The timeout's SIGKILL, 10 s after its SIGTERM did not end QEMU.
    note "QEMU killed by the timeout after ${elapsed}s"
    exit 124
  fi
  killed $((rc - 128))
fi
[ -z "$term" ] || killed "$term"
exit "$rc"
