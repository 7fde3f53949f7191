#!/usr/bin/env bash
# Host preparation for patchbay: installs what is missing from Debian's
# packages and starts dockerd and redis-server when they are not running.
# Idempotent: a second run installs nothing and starts nothing.
#
# Usage: deploy/host/prepare.sh [--quiet]
# Env:   PATCHBAY_CACHE (default ~/.cache/patchbay) for logs and state.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PATCHBAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchbay}
mkdir -p "$cache/log"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || printf 'prepare: %s\n' "$*" >&2; }
die() { printf 'prepare: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, starts dockerd)"

# --- Debian's mirror, read from this machine's apt sources -----------------
mirror_url() {
  local url=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    url=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources \
      | grep -v -- '-security' | head -n1 || true)
  fi
  if [ -z "$url" ] && [ -f /etc/apt/sources.list ]; then
    url=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$url" ] || die "cannot find Debian's mirror in /etc/apt/sources.list{,.d}"
  printf '%s\n' "$url"
}
MIRROR=$(mirror_url)
export MIRROR

# deb-src lines for the releases whose source packages patchbay imports
# (linux, liburing, fuse3). Written once; apt-get update runs only if the
# file changed or a package is missing.
src_file=/etc/apt/sources.list.d/patchbay-src.sources
src_want="Types: deb-src
URIs: $MIRROR
Suites: bookworm trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
need_update=0
if [ ! -f "$src_file" ] || [ "$(cat "$src_file")" != "$src_want" ]; then
  printf '%s\n' "$src_want" > "$src_file"
  need_update=1
fi

packages=(
  ca-certificates curl git xz-utils zstd gzip cpio rsync debootstrap
  docker.io qemu-system-x86 redis-server
  docker-compose # deploy/compose.yaml, the split deployment
  dpkg-dev # apt-get source
  postgresql # the store's tests run a throwaway server
  chromium # the pages' tests drive a headless browser
  public-inbox libsearch-xapian-perl # a lore stand-in on loopback for the tests
  b4 # the series rules are checked against it (services/domain/test/b4-crosscheck.itest.ts)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
stamp="$cache/apt-update.stamp"
if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" = 1 ]; then
  if [ "$need_update" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
    say "apt-get update"
    apt-get update -qq >"$cache/log/apt-update.log" 2>&1 || { cat "$cache/log/apt-update.log" >&2; die "apt-get update failed"; }
    touch "$stamp"
  fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$cache/log/apt-install.log" 2>&1 || { tail -n 40 "$cache/log/apt-install.log" >&2; die "apt-get install failed"; }
fi

# --- dockerd ----------------------------------------------------------------
# The Debian package's client is /usr/bin/docker; use it even if another
# client is earlier on PATH.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
# Containers run in a user namespace (dockerd's userns-remap): root and the
# job's build user (uid 1000) inside are unprivileged uids on the host
# (dockremap's range from /etc/subuid), never the host's own uid 0 or 1000.
# Chosen by measurement over gVisor (issue 9's note, bench/README.md): no
# cost measured for builds or QEMU. The setting is the daemon's; a running
# dockerd without it is restarted, which stops its containers.
daemon_json=/etc/docker/daemon.json
mkdir -p /etc/docker
python3 - "$daemon_json" <<'PY'
import json, os, sys
path = sys.argv[1]
conf = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) > 0 else {}
if conf.get("userns-remap") != "default":
    conf["userns-remap"] = "default"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
PY
start_dockerd() {
  dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
  setsid nohup "$dockerd_bin" >"$cache/log/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -n 30 "$cache/log/dockerd.log" >&2; die "dockerd did not come up in 60 s"; }
}
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd"
  start_dockerd
elif ! "$DOCKER" info --format '{{json .SecurityOptions}}' | grep -q 'name=userns'; then
  say "restarting dockerd with userns-remap (its running containers stop)"
  pid=$(cat /var/run/docker.pid 2>/dev/null || pgrep -x dockerd | head -1)
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  start_dockerd
fi
"$DOCKER" info --format '{{json .SecurityOptions}}' | grep -q 'name=userns' || die "dockerd runs without userns-remap; see $daemon_json"
# The job's build user (uid 1000 inside) on the host.
remap_base=$(awk -F: '$1 == "dockremap" { print $2; exit }' /etc/subuid)
[ -n "$remap_base" ] || die "no dockremap range in /etc/subuid (dockerd creates it with userns-remap=default)"
build_uid=$(( remap_base + 1000 ))

# The compiler cache volume belongs to the runner image's build user. Runner
# images built before the Dockerfile kept /ccache empty left root-owned files
# in a new volume, after which every warm-base build's ccache fails with
# EACCES: give such files back to the build user (the cache itself is kept).
ccache_volume=${PATCHBAY_CCACHE_VOLUME:-patchbay-ccache}
if mp=$("$DOCKER" volume inspect -f '{{.Mountpoint}}' "$ccache_volume" 2>/dev/null) && [ -d "$mp" ] \
   && [ -n "$(find "$mp" ! -uid "$build_uid" -print -quit)" ]; then
  say "giving the $ccache_volume volume's files back to the build user"
  chown -R "$build_uid:$build_uid" "$mp"
fi

# --- redis-server -------------------------------------------------------------
redis_port=${PATCHBAY_REDIS_PORT:-6379}
if ! redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
  say "starting redis-server on 127.0.0.1:$redis_port"
  mkdir -p "$cache/redis"
  redis-server "$repo/deploy/redis.conf" --port "$redis_port" --dir "$cache/redis" \
    --daemonize yes --logfile "$cache/log/redis.log" --pidfile "$cache/redis/redis.pid"
  for _ in $(seq 1 30); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.5
  done
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG || die "redis-server did not answer on port $redis_port"
fi

# --- node dependencies ---------------------------------------------------------
# Install the locked versions when node_modules is missing or older than the
# lock file. `npm install` rather than `npm ci`: the lock cannot list the
# optional per-platform builds of msgpackr-extract (a BullMQ dependency) that
# the registry here does not serve, and `npm ci` refuses a lock without them.
if [ ! -f "$repo/node_modules/.package-lock.json" ] || [ "$repo/package-lock.json" -nt "$repo/node_modules/.package-lock.json" ]; then
  say "npm install (locked versions)"
  (cd "$repo" && npm install --no-audit --no-fund --loglevel=error) >"$cache/log/npm-install.log" 2>&1 || {
    tail -n 30 "$cache/log/npm-install.log" >&2; die "npm install failed"; }
fi

say "host ready (mirror: $MIRROR, docker: $("$DOCKER" version --format '{{.Server.Version}}'), redis :$redis_port)"
