# Sourced by the fuse suite's test scripts (busybox sh, root, cwd = the
# suite's folder). Mounts one of libfuse's example servers (bin/) over a
# fresh source folder in /tmp, in the foreground so its pid and exit status
# are ours, over one of two transports:
#   dev-fuse  requests read from and answered on /dev/fuse;
#   io-uring  -o io_uring: after INIT, requests travel through io_uring
#             (IORING_OP_URING_CMD on /dev/fuse, one ring per CPU).
# Output is the test's diagnostics (ktap.sh shows the last 40 lines): one
# line per check, "ok: ..." or "FAIL: ...". Exit: 0 pass, 1 fail, 4 skip.

SUITE_DIR=$(pwd)
BIN=$SUITE_DIR/bin
# Queue depth of each io_uring queue (libfuse's default is 8).
Q_DEPTH=8
failures=0
PID=
MNT=

pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
skip() { echo "SKIP: $*"; cleanup; exit 4; }
die() { echo "FAIL: $*"; server_log; cleanup; exit 1; }
finish() {
  cleanup
  [ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
  exit 0
}

# The server's own output, when something went wrong.
server_log() {
  [ -s "${LOG:-}" ] || return 0
  echo "server log (last 10 lines):"
  tail -n 10 "$LOG" | sed 's/^/  | /'
}

# Leaves nothing behind for the next test: no mount, no server.
cleanup() {
  if [ -n "$MNT" ] && grep -q " $MNT " /proc/mounts; then umount -l "$MNT" 2>/dev/null; fi
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
  PID=
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
  WORK=
}
trap cleanup EXIT

# require_transport TRANSPORT: skips (exit 4) when the kernel cannot serve
# it, says why; fails when it was asked for on the command line and is off.
require_transport() {
  [ -c /dev/fuse ] || die "/dev/fuse is missing (CONFIG_FUSE_FS=y and devtmpfs expected)"
  [ "$1" = io-uring ] || return 0
  p=/sys/module/fuse/parameters/enable_uring
  [ -f "$p" ] || skip "this kernel has no FUSE over io_uring ($p is absent: CONFIG_FUSE_IO_URING is off)"
  v=$(cat "$p")
  case "$v" in Y|y|1) return 0 ;; esac
  if grep -qE '(^| )fuse\.enable_uring(=(1|y|Y|on|true))?( |$)' /proc/cmdline; then
    die "the kernel command line sets fuse.enable_uring=1, but $p reads $v"
  fi
  arg=$(tr ' ' '\n' < /proc/cmdline | grep '^fuse\.enable_uring' | tail -n 1)
  skip "fuse.enable_uring is off ($p reads $v; kernel command line: ${arg:-no fuse.enable_uring}): the io_uring transport cannot be tested"
}

# The io_uring instances the process holds, as fd numbers.
ring_fds() {
  for f in /proc/"$1"/fd/*; do
    [ "$(readlink "$f" 2>/dev/null)" = "anon_inode:[io_uring]" ] && echo "${f##*/}"
  done
}

# ring_field PID FD FIELD: a counter from the ring's fdinfo (io_uring/fdinfo.c:
# SqHead, SqTail, CqHead, CqTail...). The kernel prints nothing when the ring
# lock is busy (mutex_trylock), so it retries for up to 5 s.
ring_field() {
  n=0
  while [ "$n" -lt 50 ]; do
    v=$(awk -v k="$3:" '$1 == k { print $2; exit }' "/proc/$1/fdinfo/$2" 2>/dev/null)
    [ -n "$v" ] && { echo "$v"; return 0; }
    n=$((n + 1)); sleep 0.1
  done
  return 1
}

# ring_sum FIELD: the field summed over the server's rings.
ring_sum() {
  total=0
  for fd in $(ring_fds "$PID"); do
    v=$(ring_field "$PID" "$fd" "$1") || { echo "fdinfo of ring fd $fd shows no $1" >&2; return 1; }
    total=$((total + v))
  done
  echo "$total"
}

# ring_files: the files registered with each ring (fdinfo "UserFiles"), one
# line a ring.
ring_files() {
  for fd in $(ring_fds "$PID"); do
    awk '/^UserFiles:/ { on = 1; next } on && /^ *[0-9]+: / { printf "%s ", $2; next } on { exit }' "/proc/$PID/fdinfo/$fd"
    echo
  done
}

# fuse_mount SERVER TRANSPORT: mounts SERVER on $MNT over $SRCDIR (both under
# $WORK, which the caller may already have filled), waits for the mount and,
# for io-uring, for every ring to have registered its entries with the
# kernel (fdinfo SqHead), so everything after goes through the ring. Dies
# with the server's log when it does not come up.
fuse_mount() {
  server=$1; transport=$2
  [ -x "$BIN/$server" ] || die "$BIN/$server is missing (the suite's build.image step)"
  [ -n "${WORK:-}" ] || WORK=$(mktemp -d /tmp/fuse.XXXXXX)
  SRCDIR=$WORK/src; MNT=$WORK/mnt; LOG=$WORK/server.log
  mkdir -p "$SRCDIR" "$MNT"
  uring=
  [ "$transport" = io-uring ] && uring="io_uring,io_uring_q_depth=$Q_DEPTH"
  case "$server" in
    passthrough_ll)
      set -- "$BIN/passthrough_ll" -f -o "source=$SRCDIR${uring:+,$uring}" "$MNT" ;;
    passthrough_hp)
      # --nopassthrough: reads and writes go to the server (and so through
      # the transport under test), not straight to the backing file.
      set -- "$BIN/passthrough_hp" --foreground --nopassthrough ${uring:+-o "$uring"} "$SRCDIR" "$MNT" ;;
    *) die "unknown server $server" ;;
  esac
  echo "server: $*" | sed "s|$SUITE_DIR/||g"
  "$@" > "$LOG" 2>&1 &
  PID=$!
  n=0
  until grep -q " $MNT fuse" /proc/mounts; do
    kill -0 "$PID" 2>/dev/null || { wait "$PID"; die "$server exited ($?) before mounting $MNT"; }
    n=$((n + 1)); [ "$n" -le 100 ] || die "$MNT not mounted after 10 s"
    sleep 0.1
  done
  # The first request waits for INIT; after it the server starts its rings.
  ls "$MNT" > /dev/null || die "ls $MNT: the mount does not answer"
  [ "$transport" = io-uring ] || return 0
  n=0
  while :; do
    rings=$(ring_fds "$PID" | wc -l)
    ready=0
    if [ "$rings" -gt 0 ]; then
      ready=1
      for fd in $(ring_fds "$PID"); do
        h=$(ring_field "$PID" "$fd" SqHead) || h=0
        [ "$h" -ge "$Q_DEPTH" ] || ready=0
      done
    fi
    [ "$ready" = 1 ] && break
    n=$((n + 1))
    if [ "$n" -gt 50 ]; then
      [ "$rings" -gt 0 ] || die "-o io_uring, but after 5 s $server holds no io_uring instance: libfuse fell back to /dev/fuse (did INIT offer FUSE_OVER_IO_URING?)"
      die "$rings ring(s), but not every ring registered its $Q_DEPTH entries within 5 s (SqHead below $Q_DEPTH)"
    fi
    sleep 0.1
  done
}

# server_exited AFTER: waits up to 10 s for the server to exit on its own;
# then sets rc to its exit status and clears PID. Otherwise fails ("did not
# exit within 10 s of AFTER"), shows its log and returns 1.
server_exited() {
  n=0
  while kill -0 "$PID" 2>/dev/null; do
    n=$((n + 1))
    [ "$n" -le 100 ] || { fail "the server did not exit within 10 s of $1"; server_log; return 1; }
    sleep 0.1
  done
  wait "$PID"; rc=$?
  PID=
}

# fuse_umount: unmounts, and checks the server then exits on its own, with 0.
fuse_umount() {
  umount "$MNT" 2> "$WORK/umount.err" || { fail "umount $MNT: $(cat "$WORK/umount.err")"; return; }
  server_exited "the unmount" || return
  if [ "$rc" -eq 0 ]; then pass "unmounted; the server exited cleanly"
  else fail "unmounted, but the server exited with $rc"; server_log; fi
}

# same FILE EXPECTED: the two files hold the same bytes; otherwise says how
# they differ (sizes and md5sums).
same() {
  cmp -s "$1" "$2" && return 0
  echo "  $1: $(stat -c %s "$1" 2>/dev/null || echo missing) bytes, md5 $(md5sum < "$1" 2>/dev/null | cut -d' ' -f1)"
  echo "  $2: $(stat -c %s "$2" 2>/dev/null || echo missing) bytes, md5 $(md5sum < "$2" 2>/dev/null | cut -d' ' -f1)"
  return 1
}
