#!/usr/bin/env bash
# Run ctlab's kernel tests and scenario self-tests inside a qemu VM that boots
# Debian 12 the way most learners' VMs do: systemd as PID 1, cgroup v2 only
# (systemd.unified_cgroup_hierarchy=1), no busybox. The host is hybrid and the
# v2 VM's PID 1 is a busybox script: only here does systemd own the tree.
#
# Everything runs twice the way a learner runs it:
#   session: `sudo ...` typed in a login shell (agetty --autologin on ttyS0, a
#            PAM login: /user.slice/user-0.slice/session-N.scope);
#   service: `systemd-run --wait` (a transient unit in /system.slice).
# The cgroup of every item is read from /proc/self/cgroup and checked.
#
# Usage: .ci/systemdvm/run.sh
#
# Environment:
#   CTLAB_SYSTEMDVM_CACHE    image cache (default /var/cache/ctlab-systemdvm; see image.sh)
#   CTLAB_SYSTEMDVM_TIMEOUT  wall-clock limit for the VM (default 25m)
#   CTLAB_SYSTEMDVM_PKGS     Go packages whose test binaries run from the session (default ./sandbox/...)
#   CTLAB_SYSTEMDVM_TESTARGS extra args for every test binary
#   CTLAB_SYSTEMDVM_MEM      VM memory in MiB (default 2048)
#   CTLAB_SYSTEMDVM_SCENARIOS=0  skip the `ctlab scenario test --all` items
#   CTLAB_SYSTEMDVM_IMAGE    use this image dir (root.img, vmlinuz, initrd.img) instead of image.sh's
#   CTLAB_SYSTEMDVM_KEEP=1   keep the work dir
set -euo pipefail

T_START=$(date +%s.%N)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CTLAB_SYSTEMDVM_CACHE:-/var/cache/ctlab-systemdvm}
TIMEOUT=${CTLAB_SYSTEMDVM_TIMEOUT:-25m}
PKGS=${CTLAB_SYSTEMDVM_PKGS:-./sandbox/...}
TESTARGS=${CTLAB_SYSTEMDVM_TESTARGS:-}
MEM=${CTLAB_SYSTEMDVM_MEM:-2048}

say() { printf '[systemdvm %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
	say "ERROR: $*" >&2
	exit 2
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: make deps"
command -v go >/dev/null || die "go not found in PATH"

IMG=${CTLAB_SYSTEMDVM_IMAGE:-}
[ -n "$IMG" ] || IMG=$(bash "$HERE/image.sh") || die "image build failed"
[ -e "$IMG/.done" ] || die "image.sh printed no image dir"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctlab-systemdvm.XXXXXX")
QPIDFILE="$WORK/qemu.pid"
stop_vm() {
	if [ -s "$QPIDFILE" ] && kill -0 "$(cat "$QPIDFILE")" 2>/dev/null; then
		kill "$(cat "$QPIDFILE")" 2>/dev/null || true
	fi
	[ -z "${VM_BG:-}" ] || wait "$VM_BG" 2>/dev/null || true
}
cleanup() {
	stop_vm
	if [ "${CTLAB_SYSTEMDVM_KEEP:-0}" = 1 ]; then say "work dir kept: $WORK"; else rm -rf "$WORK" || true; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# ---------------------------------------------------------------- build
DATA="$WORK/data"
mkdir -p "$DATA/bin" "$DATA/src"
cd "$REPO"
MODPATH=$(go list -m -f '{{.Dir}}')
GOTAGS=netgo,osusergo
LDFLAGS='-linkmode external -extldflags "-static"'
T_BUILD=$(date +%s.%N)
say "building ctlab and test binaries (static)"
CGO_ENABLED=1 go build -tags "$GOTAGS" -ldflags "$LDFLAGS" -o "$DATA/bin/ctlab" ./cmd/ctlab
# ctlab-init as make build links it (musl where installed): the pure-v2 VM
# runs the same C stage as the release.
CC="$(command -v musl-gcc || echo "${CC:-gcc}")" CGO_ENABLED=1 go build -tags "$GOTAGS" -ldflags "$LDFLAGS" -o "$DATA/bin/ctlab-init" ./cmd/ctlab-init
# items: MODE NAME DIR COMMAND...; MODE session = `sudo` from the login shell, service = systemd-run --wait.
ITEMS="$DATA/items"
: >"$ITEMS"
declare -a BUILD_FAILED=()
# shellcheck disable=SC2086 # PKGS is a list
while IFS=$'\t' read -r ipath dir ntest; do
	[ "$ntest" != 0 ] || continue
	rel=${dir#"$MODPATH"/}
	bin=$(echo "$rel" | tr '/.' '__').test
	mkdir -p "$DATA/src/$rel"
	if ! CGO_ENABLED=1 go test -c -tags "$GOTAGS" -ldflags "$LDFLAGS" -o "$DATA/src/$rel/$bin" "./$rel" >"$WORK/build-$bin.log" 2>&1; then
		sed 's/^/    /' "$WORK/build-$bin.log" | head -n 30
		BUILD_FAILED+=("$ipath")
		continue
	fi
	[ -d "$dir/testdata" ] && cp -a "$dir/testdata" "$DATA/src/$rel/"
	printf 'session %s /srv/ctlab/src/%s ./%s -test.v -test.count=1 -test.timeout=10m %s\n' "$ipath" "$rel" "$bin" "$TESTARGS" >>"$ITEMS"
done < <(go list -tags "$GOTAGS" -f '{{.ImportPath}}	{{.Dir}}	{{len .TestGoFiles}}	{{len .XTestGoFiles}}' $PKGS |
	awk -F'\t' '{ print $1 "\t" $2 "\t" $3 + $4 }')
# What a learner sees first, and one container with each driver.
printf 'session doctor /srv/ctlab /srv/ctlab/bin/ctlab doctor\n' >>"$ITEMS"
printf 'session run-systemd-driver /srv/ctlab /srv/ctlab/bin/ctlab run --rm --ns mnt,uts,pid --cgroup-driver systemd --memory 64M -- cat /proc/self/cgroup\n' >>"$ITEMS"
printf 'session run-auto-driver /srv/ctlab /srv/ctlab/bin/ctlab run --rm --ns mnt,uts,pid --cgroup-driver auto -- cat /proc/self/cgroup\n' >>"$ITEMS"
# Every scenario as a learner would test it, then once more from a system service.
if [ "${CTLAB_SYSTEMDVM_SCENARIOS:-1}" = 1 ]; then
	printf 'session scenarios /srv/ctlab /srv/ctlab/bin/ctlab scenario test --all --trust\n' >>"$ITEMS"
	printf 'service scenarios-svc /srv/ctlab /srv/ctlab/bin/ctlab scenario test --all --trust\n' >>"$ITEMS"
fi
T_BUILT=$(date +%s.%N)
say "build done in $(elapsed "$T_BUILD" "$T_BUILT")s: $(wc -l <"$ITEMS") items, ${#BUILD_FAILED[@]} failed to build"

cp "$HERE/guest.sh" "$DATA/run.sh"
chmod 755 "$DATA/run.sh"
size=$(($(du -sm "$DATA" | cut -f1) + 256))
mkfs.ext4 -q -F -L ctlabdata -d "$DATA" "$WORK/data.img" "${size}M"

# ---------------------------------------------------------------- boot
mkdir -p "$CACHE/logs"
LOG="$CACHE/logs/$(date -u +%Y%m%dT%H%M%SZ)-$$.log"
: >"$LOG"
ln -sfn "$LOG" "$CACHE/logs/last.log"
find "$CACHE/logs" -maxdepth 1 -name '*.log' -type f -printf '%T@ %p\n' | sort -rn | tail -n +21 | cut -d' ' -f2- | xargs -r rm -f
say "booting Debian 12 ($(cat "$IMG/kver")) with systemd under qemu TCG (timeout $TIMEOUT, log $LOG)"
T_BOOT=$(date +%s.%N)
{
	set +e
	# KVM hangs on this host at "Booting from ROM": TCG only. snapshot=on: the cached image is never written.
	timeout --foreground -k 15s "$TIMEOUT" qemu-system-x86_64 -pidfile "$QPIDFILE" \
		-machine accel=tcg -cpu max -smp 2 -m "$MEM" -no-reboot \
		-nodefaults -display none -serial stdio \
		-kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
		-drive "file=$IMG/root.img,if=virtio,format=raw,snapshot=on" \
		-drive "file=$WORK/data.img,if=virtio,format=raw" \
		-append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 quiet loglevel=3 systemd.show_status=false panic=-1" \
		</dev/null 2>&1 | tee "$WORK/console.raw" |
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line//$'\r'/}
			line=${line//$'\e'c/}
			line=${line//$'\e[?7l'/}
			line=${line//$'\e[2J'/}
			line=${line//$'\e[0m'/}
			printf '%s\n' "$line"
			printf '%s\n' "$line" >>"$LOG"
			case "$line" in
			*"=== SDVM BOOTED"*) date +%s.%N >"$WORK/t_booted" ;;
			*"=== SDVM DONE"*) date +%s.%N >"$WORK/t_done" ;;
			esac
		done
	echo "${PIPESTATUS[0]}" >"$WORK/qemu.rc"
} &
VM_BG=$!
wait "$VM_BG" || true
QRC=$(cat "$WORK/qemu.rc" 2>/dev/null || echo unknown)
T_END=$(date +%s.%N)
VM_SECS=$(elapsed "$T_BOOT" "$T_END")
TOTAL_SECS=$(elapsed "$T_START" "$T_END")

# ---------------------------------------------------------------- summary
FAIL=0
declare -a REASONS=()
case "$QRC" in
0) ;;
124 | 137) FAIL=1 REASONS+=("VM timed out after $TIMEOUT") ;;
*) REASONS+=("qemu exited $QRC") ;;
esac
[ -e "$WORK/t_done" ] || FAIL=1 REASONS+=("VM did not finish (no DONE marker)")
info() { sed -n "s/^.*=== SDVM INFO $1=//p" "$LOG" | head -n 1; }
# Per item: rc from END, the cgroup it ran in, Go test counts, scenario PASS/FAIL lines.
awk '
	/=== SDVM BEGIN / { sub(/^.*=== SDVM BEGIN /, ""); cur = $1; seen[cur] = 1; next }
	/=== SDVM CGROUP / { sub(/^.*=== SDVM CGROUP /, ""); cg[$1] = $2; next }
	/=== SDVM END / { sub(/^.*=== SDVM END /, ""); sub(/^rc=/, "", $2); rc[$1] = $2; cur = ""; next }
	cur != "" && /^ *--- PASS/ { p[cur]++ }
	cur != "" && /^ *--- FAIL/ { f[cur]++ }
	cur != "" && /^ *--- SKIP/ { s[cur]++ }
	cur ~ /^scenarios/ && /^(PASS|ok) / { p[cur]++ }
	cur ~ /^scenarios/ && /^FAIL / { f[cur]++ }
	cur ~ /^scenarios/ && /^SKIP / { s[cur]++ }
	END { for (k in seen) printf "%s %s %s %d %d %d\n", k, (k in rc) ? rc[k] : "none", (k in cg) ? cg[k] : "?", p[k], f[k], s[k] }
' "$LOG" >"$WORK/results"

echo
echo "==================== systemd VM results ===================="
echo "kernel:   $(info kernel) (Debian 12, $(cat "$IMG/kver"))"
echo "PID 1:    $(info pid1), $(info systemd)"
echo "cgroup:   $(info cgroupfs); root controllers: $(info controllers); subtree_control: $(info subtree)"
echo "boot:     $(info boot)"
printf '%-8s %-32s %5s %5s %5s %5s  %s\n' MODE ITEM RC PASS FAIL SKIP CGROUP
TP=0 TF=0 TS=0
while read -r mode name _; do
	res=$(awk -v k="$name" '$1 == k { print $2, $3, $4, $5, $6 }' "$WORK/results")
	[ -n "$res" ] || res="none ? 0 0 0"
	read -r rc cgp np nf ns <<<"$res"
	printf '%-8s %-32s %5s %5s %5s %5s  %s\n' "$mode" "$name" "$rc" "$np" "$nf" "$ns" "$cgp"
	TP=$((TP + np)) TF=$((TF + nf)) TS=$((TS + ns))
	[ "$rc" = 0 ] || FAIL=1 REASONS+=("$name: rc=$rc")
	case "$mode:$cgp" in
	session:/user.slice/user-0.slice/session-*.scope) ;;
	service:/system.slice/*.service) ;;
	*) FAIL=1 REASONS+=("$name ran in cgroup '$cgp', not where a $mode runs") ;;
	esac
done <"$ITEMS"
for p in "${BUILD_FAILED[@]}"; do FAIL=1 REASONS+=("$p: build failed"); done
printf '%-8s %-32s %5s %5s %5s %5s\n' TOTAL "" "" "$TP" "$TF" "$TS"
[ "$TP" -gt 0 ] || FAIL=1 REASONS+=("nothing passed: the run proves nothing")
booted=n/a
[ -e "$WORK/t_booted" ] && booted=$(elapsed "$T_BOOT" "$(cat "$WORK/t_booted")")
echo "timing:   build $(elapsed "$T_BUILD" "$T_BUILT")s, qemu start -> login session ${booted}s, VM ${VM_SECS}s, total ${TOTAL_SECS}s"
echo "log:      $LOG"
if ! bash "$REPO/.ci/check-skips.sh" "$LOG" systemdvm; then
	FAIL=1 REASONS+=("a Go test skipped that is not on .ci/expected-skips for the systemd VM")
fi
for r in "${REASONS[@]}"; do echo "  - $r"; done
if [ "$FAIL" != 0 ]; then
	echo "systemd VM: FAIL"
	exit 1
fi
echo "systemd VM: PASS"
