#!/bin/sh
# transport.sh SERVER TRANSPORT — which channel carried the server's requests.
#   io-uring  the server holds io_uring instances (anon_inode:[io_uring]),
#             each with /dev/fuse registered (fdinfo UserFiles), and their
#             CQ tail and SQ head (fdinfo CqTail, SqHead, summed over the
#             rings) advance by at least one per request across two bursts:
#               lookups  N stats of names never seen: N LOOKUPs, synchronous
#                        (foreground) requests;
#               files    N files created, written, read back, removed: among
#                        them the background requests (writes, reads,
#                        releases), which the kernel queues separately.
#             Each request the kernel hands over through the ring completes
#             one FUSE_IO_URING_CMD_COMMIT_AND_FETCH (a CQE); the server
#             answers with the next one (an SQE). Requests over /dev/fuse
#             move neither counter.
#   dev-fuse  the control: the same bursts are served, by a server that holds
#             no io_uring instance, so the check above is not trivially true.
. ./common.sh
server=$1; transport=$2
require_transport "$transport"
N=64

fuse_mount "$server" "$transport"
rings=$(ring_fds "$PID" | wc -l)
if [ "$transport" = io-uring ]; then
  cpus=$(nproc --all 2>/dev/null || nproc)
  echo "$rings io_uring instance(s) in $server (pid $PID), $cpus CPU(s), queue depth $Q_DEPTH"
  files=$(ring_files)
  nfuse=$(printf '%s\n' "$files" | grep -c '^/dev/fuse ')
  [ "$nfuse" = "$rings" ] && pass "every ring has /dev/fuse registered" ||
    fail "rings with /dev/fuse registered: $nfuse of $rings (registered files: $(printf '%s' "$files" | tr '\n' '|'))"
else
  [ "$rings" = 0 ] && pass "no io_uring instance in $server (pid $PID): it serves /dev/fuse" ||
    fail "$server was mounted without -o io_uring but holds $rings io_uring instance(s)"
fi

# snap: the rings' counters now, in cq and sq (nothing for dev-fuse).
snap() {
  [ "$transport" = io-uring ] || return 0
  cq=$(ring_sum CqTail) && sq=$(ring_sum SqHead) || die "cannot read the rings' counters from /proc/$PID/fdinfo"
}
# ring_moved BURST N: the counters moved by at least N since snap.
ring_moved() {
  if [ "$transport" = io-uring ]; then
    cq0=$cq; sq0=$sq; snap
    dcq=$((cq - cq0)); dsq=$((sq - sq0))
    if [ "$dcq" -ge "$2" ] && [ "$dsq" -ge "$2" ]; then
      pass "$1: CqTail +$dcq, SqHead +$dsq on the rings (at least $2 requests, each through io_uring)"
    else
      fail "$1: CqTail +$dcq, SqHead +$dsq on the rings for at least $2 requests: they did not go through io_uring"
    fi
  else
    r=$(ring_fds "$PID" | wc -l)
    [ "$r" = 0 ] || fail "$1: $r io_uring instance(s) appeared in $server"
  fi
}

# Burst 1: N lookups of new names (each fails with ENOENT, from the server).
snap
bad=0
i=0; while [ $i -lt $N ]; do stat "$MNT/never-$i" > /dev/null 2>&1 && bad=$((bad + 1)); i=$((i + 1)); done
[ "$bad" = 0 ] && pass "lookups: $N new names, each ENOENT" || fail "lookups: $bad of $N names that do not exist were found"
ring_moved lookups $N

# Burst 2: N new files written, read back, listed and removed.
head -c 4096 /dev/urandom > "$WORK/block"
snap
i=0; while [ $i -lt $N ]; do cp "$WORK/block" "$MNT/t.$i"; i=$((i + 1)); done
bad=0
i=0; while [ $i -lt $N ]; do cmp -s "$MNT/t.$i" "$WORK/block" && cmp -s "$SRCDIR/t.$i" "$WORK/block" || bad=$((bad + 1)); i=$((i + 1)); done
listed=$(ls "$MNT" | grep -c '^t\.')
rm "$MNT"/t.*
left=$(ls "$SRCDIR" | grep -c '^t\.')
[ "$bad" = 0 ] && [ "$listed" = $N ] && [ "$left" = 0 ] &&
  pass "files: $N of 4096 bytes created, read back, listed and removed" ||
  fail "files: of $N, $bad differ, $listed listed, $left left in the source after rm"
ring_moved files $N

fuse_umount
finish
