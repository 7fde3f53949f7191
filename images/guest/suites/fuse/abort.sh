#!/bin/sh
# abort.sh SERVER TRANSPORT — aborting the connection through fusectl
# (/sys/fs/fuse/connections/N/abort) while a file is open: the next read on
# that file fails, a new lookup fails with ENOTCONN, the server notices and
# exits, the mount can be unmounted, and the connection leaves fusectl.
# Over io_uring this is the ring's teardown with its entries still queued.
. ./common.sh
server=$1; transport=$2
require_transport "$transport"
[ -d /sys/fs/fuse/connections ] && grep -q ' /sys/fs/fuse/connections fusectl ' /proc/mounts ||
  skip "fusectl is not mounted on /sys/fs/fuse/connections"

WORK=$(mktemp -d /tmp/fuse.XXXXXX)
mkdir -p "$WORK/src"
head -c 8192 /dev/urandom > "$WORK/src/f"
fuse_mount "$server" "$transport"
conn=/sys/fs/fuse/connections/$(stat -c %d "$MNT")
[ -w "$conn/abort" ] || die "$conn/abort is missing"
exec 3< "$MNT/f" || die "open $MNT/f failed"
echo 1 > "$conn/abort" || fail "write to $conn/abort failed"
pass "aborted connection ${conn##*/} with $MNT/f open"

# A read within i_size goes to readahead, whose failed request surfaces as
# EIO; one past it asks for the size first (GETATTR: ENOTCONN). Either way
# it must fail, with one of those.
err=$(head -c 100 <&3 2>&1 > /dev/null) && fail "read on the open file still succeeds after the abort" ||
  case "$err" in
    *"not connected"*|*"Input/output error"*) pass "read on the open file fails: ${err##*: }" ;;
    *) fail "read on the open file failed, but not with ENOTCONN or EIO: $err" ;;
  esac
exec 3<&-
err=$(stat "$MNT/never-looked-up" 2>&1) && fail "lookup through the aborted mount succeeds" ||
  case "$err" in
    *"not connected"*) pass "lookup of a new name: ENOTCONN" ;;
    *) fail "lookup of a new name failed, but not with ENOTCONN: $err" ;;
  esac

server_exited "the abort" && pass "the server exited after the abort (status $rc)"
if umount "$MNT" 2> "$WORK/umount.err"; then
  pass "the aborted mount unmounts"
else
  fail "umount of the aborted mount: $(cat "$WORK/umount.err")"
fi
n=0
while [ -d "$conn" ]; do
  n=$((n + 1))
  [ "$n" -le 50 ] || { fail "connection ${conn##*/} still in fusectl 5 s after the unmount"; break; }
  sleep 0.1
done
[ -d "$conn" ] || pass "connection ${conn##*/} gone from fusectl"
finish
