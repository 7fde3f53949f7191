# Sourced by a suite's run.sh in the guest (busybox sh). Runs a list of
# tests with liburing's semantics and prints one KTAP document:
#   exit 0 pass, 77 skip, 4 skip (kselftest), anything else fail;
#   killed at the per-test timeout: fail, "# TIMEOUT";
#   a kernel splat (BUG, WARNING, Oops, KASAN, UBSAN, lockdep, hung task,
#   RCU stall) in the kernel log while the test ran is noted as a "# kernel:"
#   line, and the test keeps its own result: splats are judged per kernel
#   boot on the host (a WARN_ON_ONCE lands in whichever test reaches it
#   first), not per test.
# Each test is announced in the kernel log ("patchbay: test SUITE/NAME
# start"), so a crash on the console can be traced to the test.
#
# The list file has one test per line: NAME COMMAND [ARGS...]. Lines
# starting with # are ignored. When PATCHBAY_ONLY is set (names separated
# by spaces), only those tests run (see ktap_selected).
#
# A test's output becomes diagnostics ("# " before each line) above its
# result line; a kselftest program's own KTAP is so nested under it (its
# "TAP version 13" starts the block). See ktap_output for what is kept.
# The guest's init sources this file too, for ktap_nest.

# What ktap_output keeps of a test's output (bytes count a line's newline):
KTAP_OUT_BYTES=65536   # a failing test's diagnostics: all, or the head and tail halves
KTAP_OUT_LINES=40      # a passing or skipped test's diagnostics: the last lines
KTAP_OUT_KTAP=65536    # KTAP lines (version, plan, result...) of any test, from the start
KTAP_OUT_LINE=4096     # longer lines are cut to this

KTAP_SPLAT='BUG:|WARNING:|Oops|KASAN:|UBSAN:|general protection fault|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: task .* blocked|rcu_.*detected stalls|Kernel panic'

# A test runs when PATCHBAY_ONLY is unset, or names it or one of its
# subtests ("NAME.sub").
ktap_selected() {
  [ -z "${PATCHBAY_ONLY:-}" ] && return 0
  for want in $PATCHBAY_ONLY; do
    case "$want" in "$1"|"$1".*) return 0 ;; esac
  done
  return 1
}

# State letter of a process (R, S, D, Z, ...), empty once it is reaped.
# Shell builtins only: polling must not cost a fork under TCG.
ktap_state() {
  st=
  [ -r "/proc/$1/status" ] || return 0
  while read -r k v _; do
    if [ "$k" = State: ]; then st=$v; return 0; fi
  done < "/proc/$1/status"
}

# Whole seconds since boot.
ktap_now() {
  read -r up _ < /proc/uptime
  now=${up%.*}
}

# ktap_wait PID LIMIT: waits for PID at most LIMIT seconds; sets rc to its
# exit status, "timeout" when it had to be killed, or "stuck" when even
# SIGKILL did not end it within 10 s (a task hung in the kernel: its kernel
# stack is printed and it is left behind). PID leads its own process group
# (setsid): a timeout kills the whole group, children and pipelines too.
ktap_wait() {
  pid=$1
  ktap_now; deadline=$((now + $2))
  while [ "$now" -lt "$deadline" ]; do
    ktap_state "$pid"
    if [ -z "$st" ] || [ "$st" = Z ]; then wait "$pid"; rc=$?; return 0; fi
    sleep 0.1; ktap_now
  done
  kill -9 -"$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null
  deadline=$((now + 10))
  while [ "$now" -lt "$deadline" ]; do
    ktap_state "$pid"
    if [ -z "$st" ] || [ "$st" = Z ]; then wait "$pid"; rc=timeout; return 0; fi
    sleep 0.1; ktap_now
  done
  echo "# pid $pid stuck in state $st, wchan $(cat "/proc/$pid/wchan" 2>/dev/null)" >> /tmp/ktap.out
  sed 's/^/# stack: /' "/proc/$pid/stack" 2>/dev/null >> /tmp/ktap.out
  for task in /proc/"$pid"/task/*; do
    echo "# thread ${task##*/}: $(sed -n 's/^State:[[:space:]]*//p' "$task/status" 2>/dev/null), wchan $(cat "$task/wchan" 2>/dev/null)" >> /tmp/ktap.out
  done
  rc=stuck
}

# ktap_output FILE fail|pass: FILE (a test's output) as diagnostics, "# "
# before each line. Lines that are KTAP inside it (a version line, a plan, a
# result, "# Subtest:", "Bail out!", behind any "# " and blanks) are kept up
# to KTAP_OUT_KTAP bytes, so a kselftest program's subtests come out whole
# whatever its test did. Of the other lines a failing test keeps
# KTAP_OUT_BYTES (all of them, or the first and last halves), a passing one
# its last KTAP_OUT_LINES. Where lines go, one line says how many:
#   "# patchbay: diagnostics cut: ..." where the first diagnostic went;
#   "# patchbay: output cut: ..." where the first KTAP line went (the
#   parser then knows results may be missing: KTAP_CUT_MARKER in ktap.ts).
# One awk, reading the file three times (totals, what goes, output): no
# process per line.
ktap_output() {
  awk -v f="$1" -v mode="$2" -v cap="$KTAP_OUT_BYTES" -v plines="$KTAP_OUT_LINES" \
    -v scap="$KTAP_OUT_KTAP" -v lcap="$KTAP_OUT_LINE" '
    function structural(s) {
      sub(/^[# \t]+/, "", s)
      return s ~ /^(K?TAP version [0-9]|1\.\.[0-9]|ok( |#|$)|not ok( |#|$)|Bail out!|Subtest:)/
    }
    function reset() { sfull = 0; sc = 0; di = 0; dc = 0 }
    # Whether line l is kept; st is set to whether it is a KTAP line.
    function keep(l,   n, at) {
      n = length(l) + 1
      st = structural(l)
      if (st) {
        if (sfull || sc + n > scap) { sfull = 1; return 0 }
        sc += n
        return 1
      }
      di++; at = dc; dc += n
      if (mode == "pass") return di > dn - plines
      if (dt <= cap) return 1
      return at + n <= cap / 2 || at >= dt - cap / 2
    }
    BEGIN {
      while ((getline l < f) > 0) {
        l = substr(l, 1, lcap); lines++
        if (!structural(l)) { dn++; dt += length(l) + 1 }
      }
      close(f)
      reset()
      while ((getline l < f) > 0) {
        l = substr(l, 1, lcap)
        if (keep(l)) continue
        if (st) { ks++; kb += length(l) + 1 } else { ds++; db += length(l) + 1 }
      }
      close(f)
      reset()
      while ((getline l < f) > 0) {
        l = substr(l, 1, lcap)
        if (keep(l)) { print "# " l; continue }
        if (st && !kmark) {
          kmark = 1
          printf "# patchbay: output cut: %d KTAP lines (%d bytes) not shown from here on: the results among them are missing\n", ks, kb
        }
        if (!st && !dmark) {
          dmark = 1
          printf "# patchbay: diagnostics cut: %d of %d lines (%d bytes) not shown from here on; KTAP lines are kept\n", ds, lines, db
        }
      }
      close(f)
    }' < /dev/null
}

# ktap_nest NAME: a suite's output (stdin) as one subtest block of the
# guest's KTAP document (init): "# Subtest: NAME", then every line indented
# four spaces, each written as it comes to stdout (the console) and to fd 3
# (the KTAP channel). Shell builtins only: no process per line.
ktap_nest() {
  printf '    # Subtest: %s\n' "$1"
  printf '    # Subtest: %s\n' "$1" >&3
  while IFS= read -r line || [ -n "$line" ]; do
    printf '    %s\n' "$line"
    printf '    %s\n' "$line" >&3
  done
}

# ktap_run_list LISTFILE TIMEOUT SUITE
ktap_run_list() {
  list=$1; limit=$2; suite=$3
  sel=/tmp/ktap.selected.$$
  : > "$sel"
  while read -r name cmd; do
    case "$name" in ''|'#'*) continue ;; esac
    ktap_selected "$name" && printf '%s %s\n' "$name" "$cmd" >> "$sel"
  done < "$list"
  echo "KTAP version 1"
  echo "1..$(wc -l < "$sel")"
  i=0
  while read -r name cmd; do
    i=$((i + 1))
    dmesg -c > /dev/null 2>&1
    echo "patchbay: test $suite/$name start" > /dev/kmsg
    start=$(cut -d' ' -f1 /proc/uptime)
    # The test's own output becomes KTAP diagnostics; stdin is empty. It
    # runs in a process group of its own (setsid does not fork here: a
    # background job of a shell without job control is no group leader),
    # and whatever is left of that group when it ends is killed, so no
    # child of one test lives on into the next.
    setsid sh -c "exec $cmd" < /dev/null > /tmp/ktap.out 2>&1 &
    tpid=$!
    ktap_wait "$tpid" "$limit"
    [ "$rc" = stuck ] || kill -9 -"$tpid" 2>/dev/null
    took=$(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')
    echo "patchbay: test $suite/$name end" > /dev/kmsg
    splat=$(dmesg 2>/dev/null | grep -E "$KTAP_SPLAT" | grep -v 'patchbay: test' | head -n 1)
    # A test that fails keeps more of its output (the names of a
    # kselftest's failing subtests, what it said before it broke).
    case "$splat:$rc" in :0|:77|:4) keep=pass ;; *) keep=fail ;; esac
    ktap_output /tmp/ktap.out "$keep"
    [ -z "$splat" ] || echo "# kernel: $splat"
    case "$rc" in
      0) echo "ok $i $name # time=${took}s" ;;
      77|4)
        # The reason is the test's last line that says skip, if any.
        why=$(grep -i 'skip' /tmp/ktap.out | tail -n 1 | sed -e 's/^[[:space:]]*SKIP:*[[:space:]]*//' | cut -c1-160)
        echo "ok $i $name # SKIP ${why:+$why, }exit $rc" ;;
      timeout) echo "not ok $i $name # TIMEOUT ${limit} seconds" ;;
      stuck) echo "not ok $i $name # TIMEOUT ${limit} seconds; SIGKILL did not end it (stuck in the kernel)" ;;
      *) echo "not ok $i $name # exit=$rc time=${took}s" ;;
    esac
  done < "$sel"
  rm -f "$sel" /tmp/ktap.out
  return 0
}
