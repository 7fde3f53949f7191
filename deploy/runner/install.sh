#!/usr/bin/env bash
# Installs a patchbay lab runner on this machine (README.md, "Lab runners"):
# the system user, the systemd unit, /etc/patchbay/runner.json (from
# runner.example.json, with this machine's server, name, capacity and
# labels) and the one-time registration token. Run it as root from the
# patchbay checkout (/opt/patchbay); then `systemctl enable --now
# patchbay-runner`.
#
#   deploy/runner/install.sh --server URL --name NAME [--capacity N]
#       [--label KEY=VALUE ...] [--tree NAME ...] [--root DIR] TOKEN
#
# --root DIR writes under DIR instead of / and creates no user (tests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server='' name='' capacity=1 root='' labels=() trees=()
while [ $# -gt 0 ]; do
  case "$1" in
    --server) server="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --capacity) capacity="$2"; shift 2 ;;
    --label) labels+=("$2"); shift 2 ;;
    --tree) trees+=("$2"); shift 2 ;;
    --root) root="$2"; shift 2 ;;
    -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
token="${1:-}"
if [ -z "$server" ] || [ -z "$name" ] || [ -z "$token" ]; then
  echo "usage: install.sh --server URL --name NAME [--capacity N] [--label KEY=VALUE ...] [--tree NAME ...] TOKEN" >&2
  exit 2
fi
if [ -z "$root" ]; then
  id patchbay-runner >/dev/null 2>&1 || useradd --system --home-dir /var/lib/patchbay-runner --shell /usr/sbin/nologin patchbay-runner
  for g in docker kvm; do getent group "$g" >/dev/null && usermod -aG "$g" patchbay-runner; done
fi
install -d -m 0755 "$root/etc/systemd/system"
install -d -m 0750 "$root/etc/patchbay"
install -m 0644 "$here/patchbay-runner.service" "$root/etc/systemd/system/patchbay-runner.service"
# The configuration: the example with this machine's values (node validates nothing here; the runner does at start).
SERVER="$server" NAME="$name" CAPACITY="$capacity" LABELS="${labels[*]:-}" TREES="${trees[*]:-}" \
  node -e '
    const fs = require("node:fs");
    const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    c.server = process.env.SERVER; c.name = process.env.NAME; c.capacity = Number(process.env.CAPACITY);
    const extra = {};
    for (const kv of (process.env.LABELS || "").split(" ").filter(Boolean)) { const i = kv.indexOf("="); extra[kv.slice(0, i)] = kv.slice(i + 1); }
    c.labels = { kvm: "auto", extra, ...(process.env.TREES ? { trees: process.env.TREES.split(" ") } : {}) };
    process.stdout.write(JSON.stringify(c, null, 2) + "\n");
  ' "$here/runner.example.json" > "$root/etc/patchbay/runner.json"
umask 077
printf '%s\n' "$token" > "$root/etc/patchbay/registration-token"
if [ -z "$root" ]; then
  chgrp patchbay-runner /etc/patchbay /etc/patchbay/runner.json /etc/patchbay/registration-token
  chmod 0640 /etc/patchbay/runner.json /etc/patchbay/registration-token
  systemctl daemon-reload
fi
echo "patchbay runner $name installed; start it with: systemctl enable --now patchbay-runner" >&2
