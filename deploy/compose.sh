#!/usr/bin/env bash
# The split deployment (deploy/compose.yaml) on this Docker host.
#
#   deploy/compose.sh up [OPTIONS]   prepare the host, build the images, start
#                                    the stack (detached), wait for /readyz
#   deploy/compose.sh build          prepare the host, build the images
#   deploy/compose.sh ARGS...        docker-compose ARGS with this project's
#                                    file, name and settings (down -v, logs -f,
#                                    ps, exec api ..., up --scale worker=N ...)
#
# Env: COMPOSE_PROJECT_NAME  project name (default patchbay)
#      PATCHBAY_COMPOSE_ENV  the settings file (default deploy/.env, written on
#                            first use: cache folder, worker folder, database
#                            password, address)
#      Settings in the environment win over the file's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
project=${COMPOSE_PROJECT_NAME:-patchbay}
settings=${PATCHBAY_COMPOSE_ENV:-$here/.env}
say() { printf 'compose: %s\n' "$*" >&2; }
die() { printf 'compose: error: %s\n' "$*" >&2; exit 1; }
case "${1:-}" in "" | -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac

if [ ! -f "$settings" ]; then
  (umask 077; cat >"$settings" <<SETTINGS
# deploy/compose.sh settings (not in git). The database password is fixed
# when its volume is created; \`deploy/compose.sh down -v\` starts over.
PATCHBAY_CACHE=${PATCHBAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchbay}
PATCHBAY_WORKER_STATE=${PATCHBAY_WORKER_STATE:-${PATCHBAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchbay}/compose/$project}
PATCHBAY_DB_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
PATCHBAY_LISTEN=127.0.0.1:8080
SETTINGS
  )
  say "wrote the settings to $settings"
fi
# Settings files written before Redis had a password get one.
if ! grep -q '^PATCHBAY_REDIS_PASSWORD=' "$settings"; then
  # (after a newline: a file written by hand may not end in one)
  if [ -s "$settings" ] && [ -n "$(tail -c1 "$settings")" ]; then echo >>"$settings"; fi
  (umask 077; printf 'PATCHBAY_REDIS_PASSWORD=%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >>"$settings")
fi
# A setting: the environment's value, else the file's.
setting() { local v; v=$(sed -n "s/^$1=//p" "$settings" | tail -n1); printf '%s' "${!1:-$v}"; }
PATCHBAY_CACHE=$(setting PATCHBAY_CACHE)
[ -n "$PATCHBAY_CACHE" ] || die "PATCHBAY_CACHE is not set in $settings"
# The worker's own folder (its cache, the filter's socket): the host's
# PATCHBAY_CACHE holds only what the host's `patchbay prepare` makes.
PATCHBAY_WORKER_STATE=$(setting PATCHBAY_WORKER_STATE)
PATCHBAY_WORKER_STATE=${PATCHBAY_WORKER_STATE:-$PATCHBAY_CACHE/compose/$project}
# The engine socket's group, which the filter (uid 990) joins.
PATCHBAY_DOCKER_GID=$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)
export PATCHBAY_CACHE PATCHBAY_WORKER_STATE PATCHBAY_DOCKER_GID

compose() { docker-compose --env-file "$settings" --project-name "$project" --file "$here/compose.yaml" "$@"; }

# The host's part: packages and dockerd (prepare.sh), then the base and runner
# images and the tree mirrors in the shared cache (`patchbay prepare`).
prepare() {
  bash "$repo/deploy/host/prepare.sh" --quiet
  command -v docker-compose >/dev/null || die "docker-compose is missing (deploy/host/prepare.sh installs it)"
  local base
  base=$(node "$repo/bin/patchbay.mjs" prepare | awk '$1 == "base" { print $2 }')
  [ -n "$base" ] || die "patchbay prepare printed no base image"
  export PATCHBAY_BASE_IMAGE=$base
  say "base image $base"
  # uid 990 is the service image's patchbay user: the worker writes its
  # cache, the filter makes its socket (0700: the worker alone reaches it).
  install -d -m 0755 "$PATCHBAY_WORKER_STATE"
  install -d -o 990 -g 990 -m 0755 "$PATCHBAY_WORKER_STATE/cache" "$PATCHBAY_WORKER_STATE/cache/jobs"
  install -d -o 990 -g 990 -m 0700 "$PATCHBAY_WORKER_STATE/docker"
  say "worker folder $PATCHBAY_WORKER_STATE (uid 990)"
}

wait_ready() {
  local listen url
  listen=$(setting PATCHBAY_LISTEN)
  url="http://${listen:-127.0.0.1:8080}/readyz"
  say "waiting for $url"
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then
      say "ready: http://${listen:-127.0.0.1:8080}/ (admin token: deploy/compose.sh exec api cat /var/lib/patchbay/admin-token)"
      return 0
    fi
    sleep 1
  done
  compose ps >&2
  compose logs --tail=30 >&2
  die "$url did not answer 200 in 120 s"
}

case "${1:-}" in
  up)
    shift
    prepare
    compose build
    compose up --detach "$@"
    wait_ready
    ;;
  build)
    shift
    prepare
    compose build "$@"
    ;;
  *)
    compose "$@"
    ;;
esac
