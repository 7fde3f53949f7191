#!/usr/bin/env bash
# Imports the upstream tarball of a Debian source package (e.g. linux 7.1.8-2)
# into a local bare git repository, with a tag, so trees work offline.
#
# The commit is deterministic (fixed author, committer and date), so the same
# tarball gives the same commit id on every machine: fixtures can name it in
# their base-commit: trailer.
#
# Usage: import-debian-source.sh PACKAGE VERSION BARE_REPO TAG
# Env:   PATCHBAY_CACHE  cache root (sources are kept in $PATCHBAY_CACHE/sources)
set -euo pipefail
pkg=${1:?PACKAGE}; version=${2:?VERSION}; repo=${3:?BARE_REPO}; tag=${4:?TAG}
cache=${PATCHBAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patchbay}
upstream=${version%-*}          # 7.1.8-2 -> 7.1.8
upstream=${upstream#*:}         # drop an epoch
srcdir="$cache/sources"
mkdir -p "$srcdir"

if git --git-dir="$repo" rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null 2>&1; then
  echo "$repo already has $tag ($(git --git-dir="$repo" rev-parse "refs/tags/$tag^{commit}"))"
  exit 0
fi

tarball=$(ls "$srcdir/${pkg}_${upstream}.orig.tar."* 2>/dev/null | head -n1 || true)
if [ -z "$tarball" ]; then
  echo "downloading source package $pkg=$version from Debian's mirror"
  # apt-get may exit non-zero when the Debian part of an old version is gone
  # from the mirror; the upstream tarball is all we need, so check for it.
  (cd "$srcdir" && apt-get source --download-only "$pkg=$version") >"$srcdir/$pkg-$version.log" 2>&1 || true
  tarball=$(ls "$srcdir/${pkg}_${upstream}.orig.tar."* 2>/dev/null | head -n1 || true)
  [ -n "$tarball" ] || { tail -n 20 "$srcdir/$pkg-$version.log" >&2
    echo "import: ${pkg}_${upstream}.orig.tar.* was not downloaded (is there a deb-src line? run deploy/host/prepare.sh)" >&2; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-import.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "unpacking $(basename "$tarball")"
mkdir "$work/src"
tar -C "$work/src" --strip-components=1 --no-same-owner -xf "$tarball"

echo "committing the tree (this takes a minute for a kernel)"
export GIT_AUTHOR_NAME="patchbay import" GIT_AUTHOR_EMAIL="import@patchbay.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z"
git -C "$work/src" init -q -b import
git -C "$work/src" config core.autocrlf false
# No automatic gc: after a commit of a whole kernel, git starts one in the
# background, which then races the removal of $work (rm: Directory not empty).
git -C "$work/src" config gc.auto 0
git -C "$work/src" config maintenance.auto false
git -C "$work/src" add -A -f
git -C "$work/src" commit -q --no-verify -m "$pkg $upstream (upstream tarball of Debian source package $pkg $version)"

mkdir -p "$(dirname "$repo")"
tmp_repo="$repo.tmp.$$"
rm -rf "$tmp_repo"
git init -q --bare "$tmp_repo"
git --git-dir="$tmp_repo" config receive.autogc false
git -C "$work/src" push -q "$tmp_repo" "import:refs/heads/$tag-import"
git --git-dir="$tmp_repo" tag "$tag" "refs/heads/$tag-import"
# Containers fetch a base commit by id from this repository.
git --git-dir="$tmp_repo" config uploadpack.allowAnySHA1InWant true
if [ -d "$repo" ]; then
  # An existing mirror (other tags): move the new objects and refs in.
  git --git-dir="$repo" fetch -q "$tmp_repo" "refs/tags/$tag:refs/tags/$tag" "refs/heads/$tag-import:refs/heads/$tag-import"
  rm -rf "$tmp_repo"
else
  mv "$tmp_repo" "$repo"
fi
echo "imported $pkg $upstream as $tag = $(git --git-dir="$repo" rev-parse "refs/tags/$tag^{commit}")"
