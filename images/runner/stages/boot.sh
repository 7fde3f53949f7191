#!/bin/bash
# boot.sh ACCEL TIMEOUT KERNEL OUT SUITE... — packs an initramfs (busybox,
# the guest init, the suites) and boots KERNEL in QEMU. The console (ttyS0)
# is printed and saved to OUT/console.log; the KTAP channel (ttyS1) to
# OUT/ktap.txt. Exit: QEMU's, or 124 when TIMEOUT seconds ran out.
. /opt/patchbay/stages/lib.sh
accel=$1; timeout=$2; kernel=$3; out=$4; shift 4
mkdir -p "$out"
root=$(mktemp -d)
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,patchbay/suites}
cp /bin/busybox "$root/bin/busybox"
# Relative links: `busybox --install -s` would point them at this build folder.
for applet in $(/bin/busybox --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp /opt/patchbay/guest/init "$root/init"
for s in "$@"; do
  cp -a "/opt/patchbay/guest/suites/$s" "$root/patchbay/suites/$s"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("timeoutSeconds", 300))' \
    "/opt/patchbay/guest/suites/$s/manifest.json" > "$root/patchbay/suites/$s/timeout"
done
printf '%s\n' "$@" > "$root/patchbay/suite-list"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$out/initramfs.cpio.gz"
rm -rf "$root"
cpu=max; [ "$accel" = kvm ] && cpu=host
note "booting with $accel (timeout ${timeout}s)"
: > "$out/ktap.txt"
set +e
timeout -s KILL "$timeout" qemu-system-x86_64 \
  -accel "$accel" -cpu "$cpu" -smp 2 -m 1024 \
  -display none -monitor none -no-reboot \
  -kernel "$kernel" -initrd "$out/initramfs.cpio.gz" \
  -append "console=ttyS0 rdinit=/init panic=-1 oops=panic loglevel=7 printk.time=1" \
  -serial stdio -serial "file:$out/ktap.txt" < /dev/null 2>&1 | tee "$out/console.log"
rc=${PIPESTATUS[0]}
[ "$rc" = 137 ] && rc=124
exit "$rc"
