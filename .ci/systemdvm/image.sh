#!/usr/bin/env bash
# Build (once) the Debian 12 disk image of the systemd test VM and print the
# directory holding root.img, vmlinuz and initrd.img. Sourced by run.sh's
# caller as a separate step so its cache logic stays small.
#
# The image is what a learner's VM is: debootstrap'ed Debian 12 with systemd
# as PID 1, Debian's own kernel (the linux-image-amd64 package, the same one
# .ci/v2vm/run.sh fetches) with its full module tree so udev/modprobe load
# overlay, veth and bridge on demand, sudo, no busybox.
#
# Environment: CTLAB_SYSTEMDVM_CACHE (default /var/cache/ctlab-systemdvm),
# CTLAB_SYSTEMDVM_MIRROR (default: the first Debian URI apt uses here).
set -euo pipefail

CACHE=${CTLAB_SYSTEMDVM_CACHE:-/var/cache/ctlab-systemdvm}
# Bump IMAGE_VERSION whenever the configuration below changes: it is the cache key.
IMAGE_VERSION=5
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,sudo,systemd-container,linux-image-amd64,initramfs-tools,iproute2,procps,kmod,udev,e2fsprogs,util-linux,findutils,iputils-ping
SIZE=4G

say() { printf '[systemdvm-image %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	say "ERROR: $*"
	exit 2
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
KEY=$(printf '%s\n%s\n%s\n' "$IMAGE_VERSION" "$PACKAGES" "$SIZE" | sha256sum | cut -c1-12)
OUT="$CACHE/image-$KEY"
if [ -e "$OUT/.done" ]; then
	say "image cached: $OUT"
	echo "$OUT"
	exit 0
fi

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ "${#need[@]}" -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "${need[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; } ||
		die "apt-get install ${need[*]} failed"
fi
MIRROR=${CTLAB_SYSTEMDVM_MIRROR:-}
if [ -z "$MIRROR" ]; then
	MIRROR=$(grep -hsE '^(URIs:|deb ) *' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
		grep -v security | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//' | awk '{ print $1; exit }' || true)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

mkdir -p "$CACHE/debs"
exec 9>"$CACHE/.image.lock"
flock 9
if [ -e "$OUT/.done" ]; then # built by whoever held the lock
	echo "$OUT"
	exit 0
fi
T0=$(date +%s)
BUILD="$CACHE/build.tmp"
rm -rf "$BUILD"
mkdir -p "$BUILD"
ROOT="$BUILD/root"
say "debootstrap bookworm from $MIRROR (packages cached in $CACHE/debs)"
debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" \
	>"$BUILD/debootstrap.log" 2>&1 || {
	tail -n 30 "$BUILD/debootstrap.log" >&2
	die "debootstrap failed (log $BUILD/debootstrap.log)"
}

echo ctlab-systemdvm >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tctlab-systemdvm\n::1\tlocalhost\n' >"$ROOT/etc/hosts"
cat >"$ROOT/etc/fstab" <<'EOF'
/dev/vda / ext4 rw,errors=remount-ro 0 1
EOF
mkdir -p "$ROOT/srv/ctlab"
chroot "$ROOT" passwd -d root >/dev/null
# A learner types `sudo ctlab ...` in a login shell: root's serial console logs
# in by itself (agetty --autologin, a PAM login, so pam_systemd puts the shell
# in /user.slice/user-0.slice/session-N.scope) and its profile runs the suite.
mkdir -p "$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 %I dumb
EOF
cat >"$ROOT/root/.profile" <<'EOF'
# Written by .ci/systemdvm/image.sh: the serial login runs the suite once.
# The run disk (/dev/vdb: test binaries, ctlab, the script) is mounted here,
# not from fstab: under TCG its device can show up after any fstab timeout.
if [ "$(tty)" = /dev/ttyS0 ] && [ ! -e /run/ctlab-systemdvm.started ]; then
	touch /run/ctlab-systemdvm.started
	i=0
	while [ ! -b /dev/vdb ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i + 1)); done
	mountpoint -q /srv/ctlab || mount /dev/vdb /srv/ctlab
	if [ -x /srv/ctlab/run.sh ]; then
		exec /srv/ctlab/run.sh
	fi
	echo "=== SDVM ERROR no /srv/ctlab/run.sh (is the run disk /dev/vdb attached?)"
	systemctl poweroff -ff
fi
EOF
# Volatile journal: less disk I/O under TCG, nothing to keep between runs.
mkdir -p "$ROOT/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$ROOT/etc/systemd/journald.conf.d/volatile.conf"
# Timers and units that only cost boot time in a throwaway VM.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
	man-db.timer getty@tty1.service systemd-timesyncd.service dpkg-db-backup.timer; do
	ln -sf /dev/null "$ROOT/etc/systemd/system/$u"
done
rm -f "$ROOT"/var/cache/apt/archives/*.deb

kimg=$(find "$ROOT/boot" -name 'vmlinuz-*-amd64' | sort -V | tail -n 1)
initrd="$ROOT/boot/initrd.img-${kimg##*/vmlinuz-}"
[ -f "$kimg" ] && [ -f "$initrd" ] || die "no kernel/initrd in $ROOT/boot (linux-image-amd64 not installed?)"
cp "$kimg" "$BUILD/vmlinuz"
cp "$initrd" "$BUILD/initrd.img"
basename "$kimg" | sed 's/^vmlinuz-//' >"$BUILD/kver"
say "mkfs.ext4 -d: $SIZE image from the tree"
mkfs.ext4 -q -F -L ctlabroot -d "$ROOT" -E lazy_itable_init=0,lazy_journal_init=0 "$BUILD/root.img" "$SIZE" ||
	die "mkfs.ext4 -d failed"
rm -rf "$ROOT"
touch "$BUILD/.done"
rm -rf "$OUT"
mv "$BUILD" "$OUT"
# Older images (other keys) are no longer used by this checkout.
find "$CACHE" -maxdepth 1 -name 'image-*' -type d ! -path "$OUT" -exec rm -rf {} +
say "image built in $(($(date +%s) - T0))s: $OUT"
echo "$OUT"
