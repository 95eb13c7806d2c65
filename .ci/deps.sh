#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages ctlab's tests and benchmarks use.
# Idempotent: does nothing when everything is present.
set -euo pipefail
# Usage: deps.sh [build|dist]   ("build": only what compiling ctlab needs;
#                                "dist": what make dist and its test need)
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
pkgs=(runc umoci skopeo buildah podman containerd hyperfine qemu-system-x86 busybox-static tmux iproute2 e2fsprogs cpio xz-utils zstd kmod util-linux nginx iputils-ping libc6-dev musl-tools)
# make dist / test-dist: the arm64 cross build, packaging, the Debian 12 chroot.
dist=(libc6-dev musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross lintian debootstrap zstd)
pkgs+=("${dist[@]:1}")
if [ "${1:-}" = build ]; then
  command -v dpkg-query >/dev/null || exit 0   # not Debian/Ubuntu: trust the toolchain
  pkgs=(libc6-dev musl-tools)                   # libc.a for the static build; musl for ctlab-init
elif [ "${1:-}" = dist ]; then
  command -v dpkg-query >/dev/null || exit 0
  pkgs=("${dist[@]}")
fi
for p in "${pkgs[@]}"; do
  have "$p" || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${need[*]}; run as root: sudo make deps" >&2
  exit 2
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages such as nginx would start a service on install; the tests only
# need their files (they build images from them).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "deps: done"
