#!/usr/bin/env bash
# Prints the path of a cached tarball of a clean Debian 12 (bookworm) system
# without Go, made once with debootstrap: the "learner's VM" the dist test
# installs the .deb into. man-db and bash-completion are what a learner's
# Debian has and what the test drives (man ctlab-run, ctlab sce<TAB>).
set -euo pipefail
cache=${CTLAB_DIST_CACHE:-/var/cache/ctlab-dist}
include=man-db,bash-completion,less
tarball=$cache/bookworm-minbase-$(echo "$include" | md5sum | cut -c1-8).tar.zst
if [ -s "$tarball" ]; then
  echo "$tarball"
  exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d "$cache/debootstrap.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "rootfs: debootstrap bookworm into $work (once; cached as $tarball)" >&2
debootstrap --variant=minbase --include="$include" bookworm "$work/root" http://deb.debian.org/debian >"$work/log" 2>&1 ||
  { tail -20 "$work/log" >&2; exit 1; }
rm -rf "$work/root"/var/cache/apt/archives/*.deb "$work/root"/var/lib/apt/lists/*_Packages
tar -C "$work/root" --numeric-owner -I 'zstd -T0 -3' -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
