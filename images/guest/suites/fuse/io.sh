#!/bin/sh
# io.sh SERVER TRANSPORT — file I/O through a libfuse passthrough server:
# every change made through the mount must show in the source folder (the
# server did it), and files put in the source folder must read back through
# the mount (the server served them). Fresh names each time, so no kernel
# cache can answer for the server.
. ./common.sh
server=$1; transport=$2
require_transport "$transport"

SIZES="0 1 4095 4096 131073 1048577"
WORK=$(mktemp -d /tmp/fuse.XXXXXX)
REF=$WORK/ref
mkdir -p "$REF" "$WORK/src"
for s in $SIZES; do head -c "$s" /dev/urandom > "$REF/$s"; done
# Files for the read check, there before the mount.
for s in $SIZES; do cp "$REF/$s" "$WORK/src/r.$s"; done
for i in 1 2 3 4; do cp "$REF/1048577" "$WORK/src/pr.$i"; done

fuse_mount "$server" "$transport"
S=$SRCDIR; M=$MNT

# The connection shows in the fuse control filesystem (fusectl).
conn=/sys/fs/fuse/connections/$(stat -c %d "$M")
if [ -r "$conn/waiting" ]; then
  pass "mounted; fusectl connection ${conn##*/} (waiting=$(cat "$conn/waiting"))"
else
  fail "mounted, but $conn/waiting is missing (fusectl: $(grep -c fusectl /proc/mounts) mount(s))"
fi

# read: files the server has never been asked about, through the mount.
bad=
for s in $SIZES; do same "$M/r.$s" "$REF/$s" || bad="$bad $s"; done
[ -z "$bad" ] && pass "read $(echo $SIZES | tr ' ' ,) bytes" || fail "read through the mount differs from the source for size(s):$bad"

# write: through the mount, then the source folder holds the same bytes,
# they read back through the mount, and the mount reports the size.
bad=
for s in $SIZES; do
  cp "$REF/$s" "$M/w.$s" || { bad="$bad $s(cp)"; continue; }
  same "$S/w.$s" "$REF/$s" || bad="$bad $s(source)"
  same "$M/w.$s" "$REF/$s" || bad="$bad $s(read-back)"
  [ "$(stat -c %s "$M/w.$s")" = "$s" ] || bad="$bad $s(stat:$(stat -c %s "$M/w.$s"))"
done
[ -z "$bad" ] && pass "write $(echo $SIZES | tr ' ' ,) bytes; the source holds them, they read back" || fail "write through the mount, wrong for size(s):$bad"

# write in place at an offset, and append.
cp "$REF/1048577" "$WORK/expect"
dd if="$REF/4096" of="$WORK/expect" bs=4096 seek=100 conv=notrunc 2>/dev/null
head -c 4095 "$REF/4095" >> "$WORK/expect"
dd if="$REF/4096" of="$M/w.1048577" bs=4096 seek=100 conv=notrunc 2>/dev/null &&
  cat "$REF/4095" >> "$M/w.1048577" &&
  same "$S/w.1048577" "$WORK/expect" &&
  pass "overwrite 4096 bytes at offset 409600 and append 4095: the source matches" ||
  fail "overwrite at an offset / append through the mount: the source differs"

# parallel: 4 writers and 4 readers of 1 MiB + 1 at once, so several
# requests are in flight together (on the ring, several queue entries).
pids=
for i in 1 2 3 4; do
  cp "$REF/1048577" "$M/pw.$i" & pids="$pids $!"
  cat "$M/pr.$i" > "$WORK/pr.$i" & pids="$pids $!"
done
bad=
for p in $pids; do wait "$p" || bad="$bad pid$p"; done
for i in 1 2 3 4; do
  same "$S/pw.$i" "$REF/1048577" || bad="$bad write$i"
  same "$WORK/pr.$i" "$REF/1048577" || bad="$bad read$i"
done
[ -z "$bad" ] && pass "4 writers and 4 readers of 1048577 bytes at once: all bytes right" ||
  fail "parallel I/O through the mount:$bad"

# rename
if mv "$M/w.4096" "$M/renamed" && [ ! -e "$S/w.4096" ] && [ ! -e "$M/w.4096" ] && same "$S/renamed" "$REF/4096"; then
  pass "rename w.4096 -> renamed: the source has the new name and the same bytes"
else
  fail "rename through the mount: source has w.4096=$([ -e "$S/w.4096" ] && echo yes || echo no), renamed=$([ -e "$S/renamed" ] && echo yes || echo no)"
fi

# unlink
if rm "$M/renamed" && [ ! -e "$S/renamed" ] && [ ! -e "$M/renamed" ]; then
  pass "unlink renamed: gone from the mount and the source"
else
  fail "unlink through the mount: renamed still in the source ($([ -e "$S/renamed" ] && echo yes || echo no)) or the mount ($([ -e "$M/renamed" ] && echo yes || echo no))"
fi

# mkdir, readdir (a short directory and one that needs several READDIR
# replies), rmdir.
mkdir "$M/dir" "$M/dir/sub" && touch "$M/dir/a" "$M/dir/b" && echo c > "$M/dir/c"
got=$(ls "$M/dir" | tr '\n' ' ')
src=$(ls "$S/dir" 2>/dev/null | tr '\n' ' ')
if [ "$got" = "a b c sub " ] && [ "$src" = "$got" ] && [ -d "$S/dir/sub" ] && [ "$(cat "$S/dir/c")" = c ]; then
  pass "mkdir and readdir: dir/ lists a b c sub through the mount and in the source"
else
  fail "mkdir/readdir: the mount lists '$got', the source '$src' (want 'a b c sub ')"
fi
mkdir "$M/many"
i=0; while [ $i -lt 100 ]; do : > "$M/many/file-with-a-longish-name-$i"; i=$((i + 1)); done
n=$(ls "$M/many" | wc -l); u=$(ls "$M/many" | sort -u | wc -l); ns=$(ls "$S/many" | wc -l)
[ "$n" = 100 ] && [ "$u" = 100 ] && [ "$ns" = 100 ] && pass "readdir of 100 entries: all listed once" ||
  fail "readdir of 100 entries: the mount lists $n ($u distinct), the source holds $ns"
if rm -r "$M/dir" "$M/many" && [ ! -e "$S/dir" ] && [ ! -e "$S/many" ]; then
  pass "rmdir: dir/ and many/ gone from the source"
else
  fail "rm -r through the mount: the source still has dir=$([ -e "$S/dir" ] && echo yes || echo no) many=$([ -e "$S/many" ] && echo yes || echo no)"
fi

# truncate: shrink, grow (zeros), to zero; the source follows each time.
head -c 10 "$WORK/expect" > "$WORK/t10"
cp "$WORK/t10" "$WORK/t70000"; truncate -s 70000 "$WORK/t70000"
bad=
truncate -s 10 "$M/w.1048577" && same "$S/w.1048577" "$WORK/t10" || bad="$bad shrink-to-10"
truncate -s 70000 "$M/w.1048577" && same "$S/w.1048577" "$WORK/t70000" && same "$M/w.1048577" "$WORK/t70000" || bad="$bad grow-to-70000"
truncate -s 0 "$M/w.1048577" && [ "$(stat -c %s "$S/w.1048577")" = 0 ] && [ "$(stat -c %s "$M/w.1048577")" = 0 ] || bad="$bad to-0"
[ -z "$bad" ] && pass "truncate to 10, 70000 (zero-filled), 0: the source follows" || fail "truncate through the mount:$bad"

# symlink
if ln -s w.1 "$M/link" && [ "$(readlink "$S/link")" = w.1 ] && same "$M/link" "$REF/1"; then
  pass "symlink: the source has link -> w.1, reading it through the mount follows it"
else
  fail "symlink through the mount: source link -> '$(readlink "$S/link" 2>/dev/null)'"
fi

fuse_umount
finish
