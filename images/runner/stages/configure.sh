#!/bin/bash
# configure.sh FRAGMENT — tinyconfig + FRAGMENT, then checks every option of
# the fragment made it into the final .config (exit 3 naming the ones that
# did not: a fragment the tree cannot satisfy).
. /opt/patchbay/stages/lib.sh
frag=$1
mkdir -p "$OBJ"
kmake -s tinyconfig
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "$frag" >/dev/null
kmake -s olddefconfig
missing=()
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qxF "$line" "$OBJ/.config" || missing+=("$line") ;;
    "# CONFIG_"*" is not set")
      name=${line#\# }; name=${name%% *}
      grep -q "^$name=" "$OBJ/.config" && missing+=("$line") ;;
  esac
done < "$frag"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "patchbay: config options not satisfied by this tree:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 3
fi
note "configured: $(grep -c '=y' "$OBJ/.config") options set"
