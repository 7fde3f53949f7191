#!/bin/bash
# runtimes.sh IMAGE INITRD ENDPOINT:RUNTIME... — what a container runtime
# costs a job: in a hardened container from IMAGE (a job image: the warm base
# with the runner's tools), a QEMU TCG boot of the warm base's kernel with
# INITRD (a job's initramfs.cpio.gz artifact) to the end of its suites, then
# a partial cold build (io_uring/, fs/ and lib/ removed from the build folder
# and rebuilt without ccache). ENDPOINT is a Docker socket ("default" for the
# usual one), RUNTIME a runtime that engine knows (runc, runsc). Runs the
# pairs in the order given, one line of figures each.
#
# The figures in bench/README.md ("isolation") came from:
#   a second dockerd with userns-remap beside the usual one:
#     dockerd --userns-remap=default --data-root /var/lib/docker-userns \
#       --exec-root /var/run/docker-userns -H unix:///var/run/docker-userns.sock \
#       --pidfile /var/run/docker-userns.pid --bridge=none --iptables=false &
#     docker save IMAGE | DOCKER_HOST=unix:///var/run/docker-userns.sock docker load
#   gVisor from Debian's runsc package, registered in /etc/docker/daemon.json
#     as {"runtimes": {"runsc": {"path": "/usr/bin/runsc"}}} (dockerd reloads on SIGHUP)
#   bash bench/runtimes.sh IMAGE INITRD default:runc default:runsc \
#     unix:///var/run/docker-userns.sock:runc default:runc
set -euo pipefail
image=$1; initrd=$2; shift 2
for pair in "$@"; do
  endpoint=${pair%:*}; runtime=${pair##*:}
  if [ "$endpoint" = default ]; then export -n DOCKER_HOST 2>/dev/null || true; unset DOCKER_HOST; else export DOCKER_HOST=$endpoint; fi
  c=$(docker create --runtime "$runtime" --network none --cap-drop ALL --security-opt no-new-privileges \
        --memory 6g --memory-swap 6g --pids-limit 4096 --tmpfs /tmp:rw,exec,size=1g "$image" sleep infinity)
  docker start "$c" >/dev/null
  docker cp "$initrd" "$c:/work/initrd.gz"
  t0=$(date +%s.%N)
  booted=$(docker exec "$c" bash -c 'timeout 300 qemu-system-x86_64 -accel tcg -cpu max -smp 2,sockets=2,cores=1,threads=1 -m 1024 \
      -display none -monitor none -no-reboot -kernel /work/build/arch/x86/boot/bzImage -initrd /work/initrd.gz \
      -append "console=ttyS0 rdinit=/init panic=-1" -serial stdio -serial null </dev/null 2>&1 | grep -c "all suites done" || true')
  t1=$(date +%s.%N)
  built=$(docker exec "$c" bash -c 'rm -rf /work/build/io_uring /work/build/fs /work/build/lib
      cd /work/linux && CCACHE_DISABLE=1 make -s O=/work/build ARCH=x86_64 CC="ccache gcc" HOSTCC="ccache gcc" -j"$(nproc)" bzImage >/tmp/make.log 2>&1; echo "rc=$?"
      echo "objects=$(find /work/build/io_uring /work/build/fs /work/build/lib -name "*.o" | wc -l)"
      echo "stderr-lines=$(grep -c . /tmp/make.log || true)"' | tr '\n' ' ')
  t2=$(date +%s.%N)
  printf '%s %s: boot+suites %.1f s (done markers: %s); partial cold build %.1f s (%s)\n' \
    "$endpoint" "$runtime" "$(echo "$t1 - $t0" | bc)" "$booted" "$(echo "$t2 - $t1" | bc)" "$built"
  docker rm -f "$c" >/dev/null
done
