#!/usr/bin/env bash
# Run Go kernel tests inside a qemu VM that boots Debian's kernel with only
# cgroup v2 mounted: the build/CI host is a hybrid-cgroup machine, while most
# learners' VMs are pure v2, so the v2 code paths can only be proven here.
#
# Usage: .ci/v2vm/run.sh [PKG...]     (default: ./sandbox/... packages with tests)
#
# Environment:
#   CTLAB_V2VM_CACHE        cache dir for the kernel package (default /var/cache/ctlab-v2vm)
#   CTLAB_V2VM_TIMEOUT      wall-clock limit for the VM, seconds or with s/m/h suffix (default 25m)
#   CTLAB_V2VM_PKG_TIMEOUT  -test.timeout for each test binary (default 10m)
#   CTLAB_V2VM_TESTARGS     extra args for every test binary (e.g. "-test.run TestFoo")
#   CTLAB_V2VM_MODULES      extra kernel modules to insmod (with their deps), space separated
#   CTLAB_V2VM_KERNEL_PKG   Debian kernel package to use instead of linux-image-amd64's dependency
#   CTLAB_V2VM_TMPDIR       TMPDIR inside the VM (default /var/tmp: disk-backed like the host's /tmp)
#   CTLAB_V2VM_MEM          VM memory in MiB (default 2048)
#   CTLAB_V2VM_LOG          console log file (default $CACHE/logs/<time>-<pid>.log; $CACHE/logs/last.log)
#   CTLAB_V2VM_HOST_TOOLS   host commands copied into the VM with their shared libraries, replacing the
#                           busybox applet of the same name (default: a Debian-like userland, see
#                           HOST_TOOLS below); "" = busybox only
#   CTLAB_V2VM_RUN          extra shell commands run in the VM after the test binaries, one per line, each
#                           reported as "cmd:N" (e.g. "ctlab scenario test --all"; ctlab is /usr/local/bin/ctlab)
#   CTLAB_V2VM_CGROUP       cgroup the tests run in (default /user.slice/user-0.slice/session-v2vm.scope, where
#                           `sudo ctlab` runs on a systemd VM; init itself moves to /init.scope); "/" = root
#   CTLAB_V2VM_TAGS         extra Go build tags (comma separated), added to netgo,osusergo
#   CTLAB_V2VM_KEEP=1       keep the work dir (initramfs staging, disk image) for debugging
set -euo pipefail

T_START=$(date +%s.%N)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CTLAB_V2VM_CACHE:-/var/cache/ctlab-v2vm}
TIMEOUT=${CTLAB_V2VM_TIMEOUT:-25m}
PKG_TIMEOUT=${CTLAB_V2VM_PKG_TIMEOUT:-10m}
TESTARGS=${CTLAB_V2VM_TESTARGS:-}
VM_TMPDIR=${CTLAB_V2VM_TMPDIR:-/var/tmp}
MEM=${CTLAB_V2VM_MEM:-2048}
# Order matters: virtio_pci finds the disk's PCI device, ext4 mounts it on /var;
# llc, stp, bridge, veth, overlay are what the sandbox needs (Debian builds them as modules).
# nfnetlink and xfrm_user: netlink.NewHandle/NewHandleAt() with no families opens NETLINK_NETFILTER and
# NETLINK_XFRM sockets too; a real host autoloads them via modprobe, this VM has no module tree to load from.
MODULES="virtio_pci virtio_blk ext4 llc stp bridge veth overlay nfnetlink xfrm_user ${CTLAB_V2VM_MODULES:-}"

say() { printf '[v2vm %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { say "ERROR: $*" >&2; exit 2; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, mknod, mkfs)"
[ "$(uname -m)" = x86_64 ] || die "x86_64 host required"

# ---------------------------------------------------------------- host tools
APT_UPDATED=0
apt_update_once() {
	if [ "$APT_UPDATED" = 0 ]; then
		say "apt-get update"
		apt-get update -qq >/dev/null || say "WARN: apt-get update failed"
		APT_UPDATED=1
	fi
}
need_pkgs=()
for pair in qemu-system-x86_64:qemu-system-x86 cpio:cpio depmod:kmod \
	mkfs.ext4:e2fsprogs xz:xz-utils zstd:zstd dpkg-deb:dpkg gzip:gzip timeout:coreutils; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
# The dynamically linked "busybox" package would not run in the initramfs: we need busybox-static.
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
	say "installing ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq "${need_pkgs[@]}" >/dev/null; then
		apt_update_once
		apt-get install -y -qq "${need_pkgs[@]}" >/dev/null || die "apt-get install ${need_pkgs[*]} failed"
	fi
fi
BUSYBOX=$(command -v busybox)
command -v go >/dev/null || die "go not found in PATH"

# ---------------------------------------------------------------- kernel
# Debian's own kernel, the one a Debian 12 learner VM boots, not this host's.
pick_kernel_pkg() {
	if [ -n "${CTLAB_V2VM_KERNEL_PKG:-}" ]; then
		echo "$CTLAB_V2VM_KERNEL_PKG"
		return
	fi
	local p
	p=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$p" ]; then
		p=$(apt-cache pkgnames linux-image-6.1 2>/dev/null |
			grep -E '^linux-image-6\.1\.[0-9]+-[0-9]+-amd64(-unsigned)?$' | sort -V | tail -n 1 || true)
	fi
	echo "$p"
}
candidate_version() {
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'
}

mkdir -p "$CACHE/debs" "$CACHE/kernel" "$CACHE/logs"
# Two runs at once (a developer and CI) must not unpack into the same dir.
exec 9>"$CACHE/.lock"
flock 9
KPKG=$(pick_kernel_pkg)
KVERSION=""
[ -n "$KPKG" ] && KVERSION=$(candidate_version "$KPKG")
if [ -z "$KPKG" ] || [ -z "$KVERSION" ] || [ "$KVERSION" = "(none)" ]; then
	apt_update_once
	KPKG=$(pick_kernel_pkg)
	KVERSION=""
	[ -n "$KPKG" ] && KVERSION=$(candidate_version "$KPKG")
fi
if [ -n "$KPKG" ] && [ -n "$KVERSION" ] && [ "$KVERSION" != "(none)" ]; then
	KDIR="$CACHE/kernel/${KPKG}_${KVERSION//:/%3a}"
else
	# Offline and no package lists: fall back to the newest kernel already cached.
	KDIR=$(find "$CACHE/kernel" -mindepth 1 -maxdepth 1 -type d -exec test -e '{}/.done' ';' -print | sort -V | tail -n 1)
	[ -n "$KDIR" ] || die "no Debian kernel package found by apt-cache and none cached in $CACHE/kernel"
	say "WARN: apt-cache found no kernel package; using cached $(basename "$KDIR")"
fi

if [ ! -e "$KDIR/.done" ]; then
	deb=$(find "$CACHE/debs" -maxdepth 1 -name "${KPKG}_${KVERSION//:/%3a}_*.deb" | head -n 1)
	if [ -z "$deb" ]; then
		say "downloading $KPKG $KVERSION (apt-get download)"
		dl=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
		# _apt must be able to write the target dir, or apt warns and downloads unsandboxed.
		chown _apt "$dl" 2>/dev/null || true
		(cd "$dl" && apt-get download -qq "$KPKG=$KVERSION") || { rm -rf "$dl"; die "apt-get download $KPKG=$KVERSION failed"; }
		deb=$(find "$dl" -maxdepth 1 -name '*.deb' | head -n 1)
		mv "$deb" "$CACHE/debs/"
		rm -rf "$dl"
		deb="$CACHE/debs/$(basename "$deb")"
	fi
	say "unpacking $(basename "$deb")"
	rm -rf "$KDIR" "$KDIR.tmp"
	mkdir -p "$KDIR.tmp"
	dpkg-deb -x "$deb" "$KDIR.tmp"
	kver=$(basename "$(find "$KDIR.tmp/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
	[ -n "$kver" ] || die "no lib/modules/<version> in $deb"
	# The package leaves modules.dep to its postinst; generate it for modprobe --show-depends.
	depmod -b "$KDIR.tmp" "$kver"
	echo "$kver" >"$KDIR.tmp/.kver"
	touch "$KDIR.tmp/.done"
	mv "$KDIR.tmp" "$KDIR"
else
	say "kernel cached: $(basename "$KDIR")"
fi
KVER=$(cat "$KDIR/.kver")
flock -u 9
VMLINUZ="$KDIR/boot/vmlinuz-$KVER"
[ -f "$VMLINUZ" ] || VMLINUZ=$(find "$KDIR/boot" -name 'vmlinuz-*' | head -n 1)
[ -f "$VMLINUZ" ] || die "no vmlinuz in $KDIR/boot"

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctlab-v2vm.XXXXXX")
QPIDFILE="$WORK/qemu.pid"
# Stop the VM if we are interrupted or killed: qemu is the only process we started that can outlive us.
stop_vm() {
	if [ -s "$QPIDFILE" ] && kill -0 "$(cat "$QPIDFILE")" 2>/dev/null; then
		kill "$(cat "$QPIDFILE")" 2>/dev/null || true
	fi
	# Let the console reader finish before its work dir goes away.
	[ -z "${VM_BG:-}" ] || wait "$VM_BG" 2>/dev/null || true
}
cleanup() {
	stop_vm
	if [ "${CTLAB_V2VM_KEEP:-0}" = 1 ]; then
		say "work dir kept: $WORK"
	else
		rm -rf "$WORK" || true
	fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM
ROOT="$WORK/root"
# Merged /usr like Debian 12 and the learners' distributions.
mkdir -p "$ROOT"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/local/bin,etc/ctlab-v2vm,dev,proc,sys,run,tmp,var,root,src,newroot}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$ROOT/$d"; done
mkdir -p "$ROOT/lib/modules/ctlab"

# ---------------------------------------------------------------- build
cd "$REPO"
MODPATH=$(go list -m -f '{{.Dir}}')
[ $# -gt 0 ] || set -- ./sandbox/...
T_BUILD=$(date +%s.%N)
# One line per package: import path, dir, number of test files.
GOTAGS=netgo,osusergo${CTLAB_V2VM_TAGS:+,$CTLAB_V2VM_TAGS}
mapfile -t PKGLINES < <(go list -e -tags "$GOTAGS" -f '{{.ImportPath}}	{{.Dir}}	{{len .TestGoFiles}}	{{len .XTestGoFiles}}' "$@" || true)
[ "${#PKGLINES[@]}" -gt 0 ] || die "go list found no packages in: $*"

# cgo (the namespace-joining C constructor) + static: the initramfs has no libc.
LDFLAGS='-linkmode external -extldflags "-static"'
declare -a RUN_PKGS=() BUILD_FAILED=() NO_TESTS=()
: >"$ROOT/etc/ctlab-v2vm/pkgs"
for line in "${PKGLINES[@]}"; do
	IFS=$'\t' read -r ipath dir ntest nxtest <<<"$line"
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		say "no package at $ipath"
		BUILD_FAILED+=("$ipath")
		continue
	fi
	rel=${dir#"$MODPATH"}
	rel=${rel#/}
	[ -n "$rel" ] || rel=.
	if [ "$((ntest + nxtest))" = 0 ]; then
		NO_TESTS+=("$ipath")
		continue
	fi
	bin=$(echo "$rel" | tr '/.' '__').test
	mkdir -p "$ROOT/src/$rel"
	say "building $ipath (static test binary)"
	if ! CGO_ENABLED=1 go test -c -tags "$GOTAGS" -ldflags "$LDFLAGS" -o "$ROOT/src/$rel/$bin" "./$rel" \
		>"$WORK/build-$bin.log" 2>&1 || [ ! -x "$ROOT/src/$rel/$bin" ]; then
		sed 's/^/    /' "$WORK/build-$bin.log" | head -n 40
		BUILD_FAILED+=("$ipath")
		continue
	fi
	# Static glibc warnings (getpwnam, dlopen...) mean that call will not work in the VM: show them.
	grep -i 'warning' "$WORK/build-$bin.log" | sed 's/^/    /' || true
	[ -d "$dir/testdata" ] && cp -a "$dir/testdata" "$ROOT/src/$rel/"
	printf '%s %s %s\n' "$ipath" "$rel" "$bin" >>"$ROOT/etc/ctlab-v2vm/pkgs"
	RUN_PKGS+=("$ipath")
done
CTLAB_BUILT=none
if [ -d cmd/ctlab ] && go list ./cmd/ctlab >/dev/null 2>&1; then
	say "building ./cmd/ctlab (static) -> /usr/local/bin/ctlab"
	if CGO_ENABLED=1 go build -tags "$GOTAGS" -ldflags "$LDFLAGS" -o "$ROOT/usr/local/bin/ctlab" ./cmd/ctlab \
		>"$WORK/build-ctlab.log" 2>&1; then
		CTLAB_BUILT=ok
	else
		sed 's/^/    /' "$WORK/build-ctlab.log" | head -n 40
		CTLAB_BUILT=FAILED
	fi
fi
NGO=${#RUN_PKGS[@]}
# Extra commands (scenario self-tests through the ctlab binary...) run after the Go tests.
: >"$ROOT/etc/ctlab-v2vm/cmds"
declare -A CMD_TEXT=()
n=0
while IFS= read -r cmd; do
	[ -n "${cmd//[[:space:]]/}" ] || continue
	n=$((n + 1))
	printf '%s\n' "$cmd" >>"$ROOT/etc/ctlab-v2vm/cmds"
	RUN_PKGS+=("cmd:$n")
	CMD_TEXT["cmd:$n"]=$cmd
done <<<"${CTLAB_V2VM_RUN:-}"
T_BUILT=$(date +%s.%N)
say "build done in $(elapsed "$T_BUILD" "$T_BUILT")s: $NGO to run, ${#BUILD_FAILED[@]} failed to build, ${#NO_TESTS[@]} without tests"
if [ "${#RUN_PKGS[@]}" = 0 ]; then
	say "FAIL: nothing to run (build failed: ${BUILD_FAILED[*]:-none}; without tests: ${NO_TESTS[*]:-none})"
	exit 1
fi

# ---------------------------------------------------------------- initramfs
say "initramfs: busybox, modules ($KVER), test binaries"
# Real host tools first (tests call GNU find -printf, util-linux unshare/ipcmk, bash...):
# a learner's VM has them. Each comes with its ELF interpreter and libraries.
HOST_TOOLS=${CTLAB_V2VM_HOST_TOOLS-bash dash find xargs unshare nsenter ipcmk ipcs ipcrm lsns ip ps tar mount umount
	ls cat hostname domainname sleep echo env id mkdir rm touch cp mv ln grep sed awk head tail wc cut dd date
	uname readlink stat free df kill true false chmod chown sort tr seq whoami printf test nproc}
copied=() missing=()
for tool in $HOST_TOOLS; do
	path=$(type -P "$tool" 2>/dev/null || true) # a file, not a shell builtin
	case "$path" in /*) ;; *)
		missing+=("$tool")
		continue
		;;
	esac
	cp -L "$path" "$ROOT$path"
	copied+=("$tool")
	# ldd lines: "libx.so => /lib/.../libx.so (0x..)" and "/lib64/ld-linux-x86-64.so.2 (0x..)".
	{ ldd "$path" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		while read -r lib; do
			[ -e "$ROOT$lib" ] || { mkdir -p "$(dirname "$ROOT$lib")" && cp -L "$lib" "$ROOT$lib"; }
		done
done
say "host tools: ${#copied[@]} copied${missing[*]:+ (not on this host: ${missing[*]})}"
# /bin/sh is dash on Debian; the init script below names busybox itself.
[ ! -x "$ROOT/usr/bin/dash" ] || ln -s dash "$ROOT/usr/bin/sh"
cp "$BUSYBOX" "$ROOT/usr/bin/busybox"
while read -r applet; do
	[ -e "$ROOT/$applet" ] || [ -L "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
done < <("$BUSYBOX" --list-full)
mknod -m 600 "$ROOT/dev/console" c 5 1
mknod -m 666 "$ROOT/dev/null" c 1 3

# Modules in dependency order, each once, decompressed (busybox insmod reads plain .ko).
mkdir -p "$WORK/modprobe.d"
: >"$ROOT/etc/ctlab-v2vm/modules"
declare -A SEEN=()
for m in $MODULES; do
	out=$(modprobe -C "$WORK/modprobe.d" -d "$KDIR" -S "$KVER" --show-depends "$m" 2>&1) ||
		die "module $m not in $KPKG: $out"
	while read -r kind path _; do
		[ "$kind" = insmod ] || continue # "builtin X": nothing to load
		name=$(basename "$path")
		name=${name%.xz}
		name=${name%.zst}
		name=${name%.gz}
		[ -z "${SEEN[$name]:-}" ] || continue
		SEEN[$name]=1
		case "$path" in
		*.xz) xz -dc "$path" >"$ROOT/lib/modules/ctlab/$name" ;;
		*.zst) zstd -qdc "$path" >"$ROOT/lib/modules/ctlab/$name" ;;
		*.gz) gzip -dc "$path" >"$ROOT/lib/modules/ctlab/$name" ;;
		*) cp "$path" "$ROOT/lib/modules/ctlab/$name" ;;
		esac
		echo "$name" >>"$ROOT/etc/ctlab-v2vm/modules"
	done <<<"$out"
done

cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$ROOT/etc/hosts"
echo ctlab-v2vm >"$ROOT/etc/hostname"
printf '%s\n' "$TESTARGS" >"$ROOT/etc/ctlab-v2vm/testargs"
TEST_CGROUP=${CTLAB_V2VM_CGROUP:-/user.slice/user-0.slice/session-v2vm.scope}
case "$TEST_CGROUP" in /*) ;; *) die "CTLAB_V2VM_CGROUP must be absolute: $TEST_CGROUP" ;; esac
printf 'PKG_TIMEOUT=%s\nVM_TMPDIR=%s\nTEST_CGROUP=%s\n' "$PKG_TIMEOUT" "$VM_TMPDIR" "$TEST_CGROUP" >"$ROOT/etc/ctlab-v2vm/env"

cat >"$ROOT/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the v2 test VM (written by .ci/v2vm/run.sh).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
if [ "$1" != stage2 ]; then
	read -r T1 _ </proc/uptime 2>/dev/null || { mount -t proc proc /proc && read -r T1 _ </proc/uptime && umount /proc; }
	# Stage 1: the initramfs root cannot be pivot_root()ed away from (EINVAL), and
	# the sandbox pivot_roots into every container: move everything onto a tmpfs.
	mount -t tmpfs -o mode=0755,size=80% rootfs /newroot
	for e in /*; do
		[ "$e" = /newroot ] || cp -a "$e" /newroot/
	done
	exec switch_root /newroot /init stage2 "$T1"
	echo "=== V2VM ERROR switch_root failed"
fi

# shellcheck source=/dev/null
. /etc/ctlab-v2vm/env
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
# Same options systemd uses on a learner's VM.
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
for c in cpu cpuset io memory pids; do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "=== V2VM WARN cannot enable $c"
done
# Like systemd: PID 1 in /init.scope, the user's shell in a session scope deep in user.slice,
# memory and pids accounting enabled down that tree. Code that assumes it runs in the root
# cgroup, or creates cgroups below its own, fails here as it would on a learner's VM.
if [ "$TEST_CGROUP" != / ]; then
	mkdir -p /sys/fs/cgroup/init.scope
	echo 0 >/sys/fs/cgroup/init.scope/cgroup.procs
	d=/sys/fs/cgroup
	for part in $(echo "${TEST_CGROUP#/}" | tr / ' '); do
		[ "$d" = /sys/fs/cgroup ] || echo "+memory +pids" >"$d/cgroup.subtree_control" ||
			echo "=== V2VM WARN cannot enable memory pids in $d"
		d="$d/$part"
		mkdir -p "$d"
	done
fi
while read -r m; do
	insmod "/lib/modules/ctlab/$m" || echo "=== V2VM WARN insmod $m failed"
done </etc/ctlab-v2vm/modules
hostname -F /etc/hostname
ip link set lo up
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
# /var on a real block device: O_DIRECT reads and io.max throttling need one.
mount -t ext4 /dev/vda /var || echo "=== V2VM WARN cannot mount /dev/vda on /var"
mkdir -p /var/tmp /var/lib
chmod 1777 /var/tmp
export TMPDIR="$VM_TMPDIR"

# An empty line first: the firmware's screen-clearing escapes end up in front of the first line.
echo
echo "=== V2VM INFO kernel=$(uname -r)"
echo "=== V2VM INFO cgroup.controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"
echo "=== V2VM INFO cgroup.subtree_control=$(cat /sys/fs/cgroup/cgroup.subtree_control) tests_in=$TEST_CGROUP"
echo "=== V2VM INFO cgroupfs_magic=0x$(stat -f -c %t /sys/fs/cgroup) var=$(grep ' /var ' /proc/mounts | cut -d' ' -f1,3) vda=$(cat /sys/block/vda/dev 2>/dev/null)"
echo "=== V2VM INFO modules=$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
echo "=== V2VM BOOTED uptime=$(cut -d' ' -f1 /proc/uptime) (init started at $2)"
read -r TESTARGS </etc/ctlab-v2vm/testargs || true
while read -r pkg dir bin; do
	echo "=== V2VM BEGIN $pkg"
	# shellcheck disable=SC2086 # TESTARGS is a list of flags
	(echo 0 >"/sys/fs/cgroup${TEST_CGROUP%/}/cgroup.procs" && cd "/src/$dir" && exec "./$bin" -test.v -test.count=1 -test.timeout="$PKG_TIMEOUT" $TESTARGS) </dev/null 2>&1
	rc=$?
	# The leading newline keeps the marker on its own line after a partial line (e.g. a panic).
	printf '\n=== V2VM END %s rc=%d\n' "$pkg" "$rc"
	cd /
done </etc/ctlab-v2vm/pkgs
n=0
while IFS= read -r cmd; do
	n=$((n + 1))
	echo "=== V2VM BEGIN cmd:$n $cmd"
	(echo 0 >"/sys/fs/cgroup${TEST_CGROUP%/}/cgroup.procs" && cd /src && exec /bin/sh -c "$cmd") </dev/null 2>&1
	rc=$?
	printf '\n=== V2VM END cmd:%d rc=%d\n' "$n" "$rc"
done </etc/ctlab-v2vm/cmds
echo "=== V2VM DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
umount /var 2>/dev/null
poweroff -f
echo o >/proc/sysrq-trigger
sleep 5
EOF
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$WORK/initrd.gz"
say "initramfs $(du -h "$WORK/initrd.gz" | cut -f1), modules: $(tr '\n' ' ' <"$ROOT/etc/ctlab-v2vm/modules")"

# A fresh sparse disk each run; tables written now so ext4lazyinit does no I/O during tests.
truncate -s 512M "$WORK/disk.img"
mkfs.ext4 -q -F -L ctlabvar -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/disk.img"

# ---------------------------------------------------------------- boot
# The pid in the name: two runs (a developer's and CI's) may boot in the same second.
LOG=${CTLAB_V2VM_LOG:-$CACHE/logs/$(date -u +%Y%m%dT%H%M%SZ)-$$.log}
mkdir -p "$(dirname "$LOG")"
: >"$LOG"
if [ -z "${CTLAB_V2VM_LOG:-}" ]; then
	ln -sfn "$LOG" "$CACHE/logs/last.log"
	# Keep the 20 newest console logs.
	find "$CACHE/logs" -maxdepth 1 -name '*.log' -type f -printf '%T@ %p\n' | sort -rn | tail -n +21 |
		cut -d' ' -f2- | xargs -r rm -f
fi
say "booting $(basename "$VMLINUZ") under qemu TCG (timeout $TIMEOUT, log $LOG)"
T_BOOT=$(date +%s.%N)
# In the background + wait, so a signal to this script runs its trap (stop_vm) at once.
# --foreground: timeout does not move qemu to a process group of its own.
# KVM hangs on this host at "Booting from ROM": TCG only.
{
	set +e # the pipeline's status is the result we want, not a reason to stop
	timeout --foreground -k 15s "$TIMEOUT" qemu-system-x86_64 -pidfile "$QPIDFILE" \
		-machine accel=tcg -cpu max -smp 2 -m "$MEM" \
		-nographic -no-reboot \
		-kernel "$VMLINUZ" -initrd "$WORK/initrd.gz" \
		-drive "file=$WORK/disk.img,if=virtio,format=raw" \
		-append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null 2>&1 |
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line//$'\r'/}
			# SeaBIOS resets and clears the terminal: keep those escapes out of the log and the markers.
			line=${line//$'\e'c/}
			line=${line//$'\e[?7l'/}
			line=${line//$'\e[2J'/}
			line=${line//$'\e[0m'/}
			printf '%s\n' "$line"
			printf '%s\n' "$line" >>"$LOG"
			case "$line" in
			"=== V2VM BEGIN "*) [ -e "$WORK/t_first" ] || date +%s.%N >"$WORK/t_first" ;;
			"=== V2VM DONE"*) date +%s.%N >"$WORK/t_done" ;;
			esac
		done
	echo "${PIPESTATUS[0]}" >"$WORK/qemu.rc"
} &
VM_BG=$!
wait "$VM_BG" || true
QRC=$(cat "$WORK/qemu.rc" 2>/dev/null || echo unknown)
T_END=$(date +%s.%N)

# ---------------------------------------------------------------- summary
FAIL=0
declare -a REASONS=()
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
	FAIL=1
	REASONS+=("VM timed out after $TIMEOUT")
elif [ "$QRC" != 0 ]; then
	REASONS+=("qemu exited $QRC")
fi
if grep -q 'Kernel panic' "$LOG"; then
	FAIL=1
	REASONS+=("kernel panic in the VM: $(grep -m1 'Kernel panic' "$LOG" | sed 's/^\[[ 0-9.]*\] //')")
fi
[ -e "$WORK/t_done" ] || {
	FAIL=1
	REASONS+=("VM did not finish (no DONE marker)")
}

kernel=$(sed -n 's/^.*=== V2VM INFO kernel=//p' "$LOG" | head -n 1)
controllers=$(sed -n 's/^.*=== V2VM INFO cgroup.controllers=//p' "$LOG" | head -n 1)
booted=$(sed -n 's/^.*=== V2VM BOOTED uptime=\([0-9.]*\).*/\1/p' "$LOG" | head -n 1)
initat=$(sed -n 's/^.*=== V2VM BOOTED .*init started at \([0-9.]*\).*/\1/p' "$LOG" | head -n 1)

# Per package: rc from the END marker; PASS/FAIL/SKIP lines (subtests included) between the markers.
awk '
	/^=== V2VM BEGIN / { pkg = $4; seen[pkg] = 1; p[pkg] = f[pkg] = s[pkg] = 0; cur = pkg; next }
	/^=== V2VM END / { sub(/^rc=/, "", $5); rc[$4] = $5; cur = ""; next }
	cur != "" && /^ *--- PASS/ { p[cur]++ }
	cur != "" && /^ *--- FAIL/ { f[cur]++ }
	cur != "" && /^ *--- SKIP/ { s[cur]++ }
	END { for (k in seen) printf "%s %s %d %d %d\n", k, (k in rc) ? rc[k] : "none", p[k], f[k], s[k] }
' "$LOG" >"$WORK/results"

TOTAL_P=0 TOTAL_F=0 TOTAL_S=0
W=7
for pkg in "${RUN_PKGS[@]}" "${BUILD_FAILED[@]}"; do
	[ "${#pkg}" -le "$W" ] || W=${#pkg}
done
row() { printf "%-${W}s %6s %6s %6s %6s\n" "$@"; }
echo
echo "==================== v2 VM results ===================="
echo "kernel:             ${kernel:-unknown} (Debian $KPKG ${KVERSION:-cached})"
echo "cgroup.controllers: ${controllers:-unknown}"
row PACKAGE RC PASS FAIL SKIP
for pkg in "${RUN_PKGS[@]}"; do
	res=$(awk -v k="$pkg" '$1 == k { print $2, $3, $4, $5 }' "$WORK/results")
	[ -n "$res" ] || res="none 0 0 0"
	read -r rc np nf ns <<<"$res"
	row "$pkg" "$rc" "$np" "$nf" "$ns"
	TOTAL_P=$((TOTAL_P + np)) TOTAL_F=$((TOTAL_F + nf)) TOTAL_S=$((TOTAL_S + ns))
	if [ "$rc" = none ]; then
		FAIL=1
		REASONS+=("$pkg: no END marker")
	elif [ "$rc" != 0 ]; then
		FAIL=1
		REASONS+=("$pkg: rc=$rc")
	fi
done
for pkg in "${BUILD_FAILED[@]}"; do
	row "$pkg" build - - -
	FAIL=1
	REASONS+=("$pkg: build failed")
done
row TOTAL "" "$TOTAL_P" "$TOTAL_F" "$TOTAL_S"
[ "${#NO_TESTS[@]}" = 0 ] || echo "no test files:      ${NO_TESTS[*]}"
for k in "${!CMD_TEXT[@]}"; do echo "$k:             ${CMD_TEXT[$k]}"; done | sort
if [ "$NGO" -gt 0 ] && [ "$TOTAL_P" = 0 ]; then
	FAIL=1
	REASONS+=("no kernel test passed ($TOTAL_S skipped): the run proves nothing")
fi
[ "$CTLAB_BUILT" != FAILED ] || REASONS+=("WARN: ./cmd/ctlab failed to build; not in the VM")
first=""
[ -e "$WORK/t_first" ] && first=$(elapsed "$T_BOOT" "$(cat "$WORK/t_first")")
echo "timing:             build $(elapsed "$T_BUILD" "$T_BUILT")s, qemu start -> first test ${first:-n/a}s (guest clock: init ${initat:-n/a}s, first test ${booted:-n/a}s), VM $(elapsed "$T_BOOT" "$T_END")s, total $(elapsed "$T_START" "$T_END")s"
echo "log:                $LOG"
if ! bash "$REPO/.ci/check-skips.sh" "$LOG" v2vm; then
	FAIL=1
	REASONS+=("a test skipped that is not on .ci/expected-skips for the v2 VM")
fi
for r in "${REASONS[@]}"; do echo "  - $r"; done
if [ "$FAIL" != 0 ]; then
	echo "v2 VM: FAIL"
	exit 1
fi
echo "v2 VM: PASS"
