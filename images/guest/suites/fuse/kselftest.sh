#!/bin/sh
# kselftest.sh NAME — one of the tree's filesystems/fuse kselftests (built by
# build-tree.sh into kselftest/), run from its folder as kselftest's runner
# does (fusectl_test starts ./fuse_mnt). Its KTAP becomes this test's
# diagnostics; its exit code is kselftest's: 0 pass, 4 skip, else fail.
name=$1
dir=$(pwd)/kselftest
if [ ! -f "$dir/tests.txt" ]; then
  echo "FAIL: kselftest/tests.txt is missing: the suite's build.tree step did not run or its output was not copied into the guest"
  exit 1
fi
if [ "$name" = kselftests ]; then
  # The tree has no fuse kselftests (build-tree.sh says why).
  echo "SKIP: $(sed -n 's/^# none: //p' "$dir/tests.txt")"
  exit 4
fi
case "$name" in
  fusectl_test)
    # It mounts FUSE inside a new user namespace (unshare(CLONE_NEWUSER)).
    [ -e /proc/self/ns/user ] || { echo "SKIP: fusectl_test needs user namespaces: this kernel has no CONFIG_USER_NS"; exit 4; }
    # Inside the new user namespace root has no capability over the
    # initramfs's own inodes: "/" must be searchable by others.
    mode=$(stat -c %a /)
    [ $(( 0$mode & 1 )) = 1 ] ||
      echo "warning: / is mode $mode (owner uid $(stat -c %u /)): path lookups from a user namespace fail with EACCES; the initramfs root needs mode 755"
    grep -q ' /sys/fs/fuse/connections fusectl ' /proc/mounts ||
      echo "warning: fusectl is not mounted on /sys/fs/fuse/connections (the test will skip)" ;;
esac
cd "$dir" && exec "./$name"
