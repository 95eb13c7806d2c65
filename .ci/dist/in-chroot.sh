#!/bin/bash
# Runs inside the clean Debian 12 machine of test.sh (as root, pid 1 of its
# own pid namespace): installs /var/tmp/pkg.deb, uses ctlab from the
# installed files only, purges it and checks that nothing of ctlab is left.
set -euo pipefail
fail() { echo "in-chroot: FAIL: $*" >&2; exit 1; }
step() { echo "-- $*"; }

! command -v go >/dev/null || fail "this machine has Go; the point is one without"
step "dpkg -i ctlab.deb (no Go, no network: dpkg alone)"
dpkg -i /var/tmp/pkg.deb >/dev/null
rm /var/tmp/pkg.deb
installed=$(dpkg-query -L ctlab)
want=$(dpkg-query -W -f='${Version}' ctlab)

step "ctlab version / --version"
ctlab version
[ "$(ctlab version | sed -n 1p)" = "ctlab $want" ] || fail "ctlab version is not the package's $want"
[ "$(ctlab --version)" = "$(ctlab version)" ] || fail "ctlab --version differs from ctlab version"

step "ctlab doctor"
ctlab doctor || fail "ctlab doctor failed"

step "ctlab scenario run ns-uts --plain --solve"
timeout 300 ctlab scenario run ns-uts --plain --solve || fail "scenario ns-uts --solve failed"

step "a container left running, for the purge to remove"
ctlab run -d --name distleft --net --memory 64M -- sleep 600
ctlab ps
# So that the checks after the purge are known to see such objects:
grep -q '^ctl' <<<"$(ls /sys/class/net)" || fail "no ctl* link for the running container"
[ -n "$(find /sys/fs/cgroup -path '*ctlab/distleft' -type d)" ] || fail "no cgroup ctlab/distleft"
grep -q ctlab /proc/self/mountinfo || fail "no ctlab mount for the running container"

step "ctlab-oci run of a bundle (the installed runtime, runc's command line)"
# The bundle's rootfs is one static program, the installed ctlab itself: the
# container prints its version through its own pid, mount, UTS, IPC and
# network namespaces. The record it leaves under /run/ctlab-oci (a container
# left created) is for the purge to remove.
b=/var/tmp/oci-bundle
mkdir -p "$b/rootfs/proc"
cp /usr/bin/ctlab "$b/rootfs/ctlab"
cat >"$b/config.json" <<'JSON'
{"ociVersion": "1.0.2",
 "process": {"args": ["/ctlab", "version"], "cwd": "/", "env": ["PATH=/"], "user": {"uid": 0, "gid": 0}},
 "root": {"path": "rootfs"}, "hostname": "distoci",
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]}}
JSON
out=$(timeout 60 ctlab-oci run --bundle "$b" distoci) || fail "ctlab-oci run: $out"
[ "$(sed -n 1p <<<"$out")" = "ctlab $want" ] || fail "ctlab-oci run printed: $out"
ctlab-oci create --bundle "$b" distleft-oci
[ "$(ctlab-oci state distleft-oci | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')" = created ] ||
  fail "ctlab-oci state: $(ctlab-oci state distleft-oci)"
rm -rf "$b"
page=$(MANPAGER=cat MANWIDTH=100 man ctlab-oci-create 2>&1) || fail "man ctlab-oci-create: $page"
grep -q -- '--bundle' <<<"$page" || fail "man ctlab-oci-create does not describe --bundle"

step "man ctlab-run"
# (Width 100, not 80: man-db caches pages formatted at 80 columns in
# /var/cache/man, which is man-db's business, not the package's.)
page=$(MANPAGER=cat MANWIDTH=100 man ctlab-run 2>&1) || fail "man ctlab-run: $page"
head -12 <<<"$page"
grep -q 'ctlab run' <<<"$page" || fail "man ctlab-run does not describe ctlab run"

step "bash completion of: ctlab sce<TAB>"
got=$(bash -c '
  source /usr/share/bash-completion/bash_completion
  _completion_loader ctlab || true        # what bash does on the first <TAB>
  fn=$(complete -p ctlab | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
  [ -n "$fn" ] || { echo "no completion for ctlab"; exit 1; }
  COMP_LINE="ctlab sce" COMP_POINT=9 COMP_WORDS=(ctlab sce) COMP_CWORD=1 COMP_TYPE=9
  "$fn" ctlab sce ctlab 2>/dev/null   # compopt: only in a real completion
  printf "%s\n" "${COMPREPLY[@]}"')
echo "$got"
grep -qx 'scenario' <<<"$(sed 's/[[:space:]]*$//' <<<"$got")" || fail "ctlab sce<TAB> does not complete to scenario"

step "dpkg --purge ctlab"
dpkg --purge ctlab

step "nothing of ctlab is left"
left=""
for f in $installed; do
  [ -d "$f" ] && continue          # shared directories like /usr/bin stay
  [ -e "$f" ] && left+=" $f"
done
[ -z "$left" ] || fail "package files left:$left"
# Any file with ctlab in its name, on disk and in /run; the learner's
# progress (~/.config/ctlab) is user data and stays, as Debian asks.
files=$(find / /run /tmp -xdev -name '*ctlab*' -not -path '/root/.config/ctlab*' 2>/dev/null || true)
[ -z "$files" ] || fail "files left: $files"
[ ! -e /var/lib/ctlab ] && [ ! -e /run/ctlab ] && [ ! -e /run/ctlab-oci ] ||
  fail "/var/lib/ctlab, /run/ctlab or /run/ctlab-oci left"
cgs=$(find /sys/fs/cgroup -name 'ctlab*' -type d 2>/dev/null || true)
[ -z "$cgs" ] || fail "cgroups left: $cgs"
mnts=$(grep -E 'ctlab|overlay' /proc/self/mountinfo || true)
[ -z "$mnts" ] || fail "mounts left: $mnts"
links=$(ls /sys/class/net | grep -v '^lo$' || true)
[ -z "$links" ] || fail "links left: $links"
procs=""
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null || true)
  case $exe in *ctlab* | */sleep) procs+=" ${p#/proc/}:$exe" ;; esac
done
[ -z "$procs" ] || fail "processes left:$procs"
echo "in-chroot: passed (no files, cgroups, mounts, links or processes of ctlab left)"
