# Sourced by a suite's run.sh in the guest (busybox sh). Runs a list of
# tests with liburing's semantics and prints one KTAP document:
#   exit 0 pass, 77 skip, 4 skip (kselftest), anything else fail;
#   killed at the per-test timeout: fail, "# TIMEOUT";
#   a kernel splat (BUG, WARNING, Oops, KASAN, UBSAN, lockdep, hung task,
#   RCU stall) in the kernel log while the test ran fails it.
# Each test is announced in the kernel log ("patchbay: test SUITE/NAME
# start"), so a crash on the console can be traced to the test.
#
# The list file has one test per line: NAME COMMAND [ARGS...]. Lines
# starting with # are ignored. When PATCHBAY_ONLY is set (names separated
# by spaces), only those tests run.

KTAP_SPLAT='BUG:|WARNING:|Oops|KASAN:|UBSAN:|general protection fault|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: task .* blocked|rcu_.*detected stalls|Kernel panic'

ktap_selected() {
  [ -z "${PATCHBAY_ONLY:-}" ] && return 0
  for want in $PATCHBAY_ONLY; do [ "$want" = "$1" ] && return 0; done
  return 1
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
    # The test's own output becomes KTAP diagnostics; stdin is empty.
    timeout -s KILL "$limit" sh -c "exec $cmd" < /dev/null > /tmp/ktap.out 2>&1
    rc=$?
    took=$(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')
    echo "patchbay: test $suite/$name end" > /dev/kmsg
    sed -e 's/^/# /' /tmp/ktap.out | tail -n 40
    splat=$(dmesg 2>/dev/null | grep -E "$KTAP_SPLAT" | grep -v 'patchbay: test' | head -n 1)
    if [ -n "$splat" ]; then
      echo "# kernel: $splat"
      echo "not ok $i $name # kernel splat while the test ran (exit $rc, ${took}s)"
      continue
    fi
    case "$rc" in
      0) echo "ok $i $name # time=${took}s" ;;
      77|4) echo "ok $i $name # SKIP exit $rc" ;;
      137) echo "not ok $i $name # TIMEOUT ${limit} seconds" ;;
      *) echo "not ok $i $name # exit=$rc time=${took}s" ;;
    esac
  done < "$sel"
  rm -f "$sel" /tmp/ktap.out
  return 0
}
