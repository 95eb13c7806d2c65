#!/usr/bin/env bash
# Runs in fresh cgroup, mount, network, UTS and IPC namespaces (test.sh):
# makes ROOT a machine of its own and runs in-chroot.sh there, in a fresh
# pid namespace.  Usage: machine.sh ROOT CGROUP "TYPE DIR OPTIONS"...
set -euo pipefail
root=$1 cg=$2
shift 2
# Leave the cgroup namespace's root for a leaf: on cgroup v2 a cgroup with
# processes cannot hand controllers to its children (ctlab/ below).
for m in "$@"; do
  read -r _ dir _ <<<"$m"
  mkdir -p "$dir/$cg/setup"
  if [ -e "$dir/cpuset.cpus" ]; then
    cat "$dir/$cg/cpuset.cpus" >"$dir/$cg/setup/cpuset.cpus"
    cat "$dir/$cg/cpuset.mems" >"$dir/$cg/setup/cpuset.mems"
  fi
  echo $$ >"$dir/$cg/setup/cgroup.procs"
done
hostname dist-test
# A machine's / is a mount point (a container's start makes it private and
# pivots away from it): bind the directory onto itself.
mount --bind "$root" "$root"
ip link set lo up
mount -t sysfs sysfs "$root/sys"
# The cgroup filesystems, laid out as on the host but mounted afresh in the
# new cgroup namespace: their root is the test's cgroup.
for m in "$@"; do
  read -r type dir opts <<<"$m"
  if [ "$dir" = /sys/fs/cgroup ]; then   # pure v2
    mount -t "$type" -o "$opts" "$type" "$root/sys/fs/cgroup"
    continue
  fi
  if ! mountpoint -q "$root/sys/fs/cgroup"; then
    mount -t tmpfs -o mode=755 tmpfs "$root/sys/fs/cgroup"
  fi
  mkdir -p "$root$dir"
  mount -t "$type" -o "$opts" "$type" "$root$dir"
done
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp" -o mode=1777,size=64m
# pivot_root, not chroot: the kernel refuses to create user namespaces
# (ctlab run's default --ns all) from inside a chroot.
mount -t proc proc "$root/proc"   # for umount below; the pid namespace gets its own
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
# From here on, every program is the Debian machine's own.
exec /usr/bin/unshare --pid --fork --mount --mount-proc \
  /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8 \
  /bin/bash /var/tmp/in-chroot.sh
