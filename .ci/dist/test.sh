#!/usr/bin/env bash
# make test-dist: the proof that ctlab installs like a tool.
#  1. lintian on the .debs: no errors (warnings are printed).
#  2. The tarball holds the binaries, man pages, completions and INSTALL.
#  3. A clean Debian 12 (debootstrap, cached: .ci/dist/rootfs.sh) without Go
#     gets the amd64 .deb with dpkg; from the installed files it runs
#     ctlab version, ctlab doctor, a scenario with --solve, man ctlab-run and
#     bash completion of "ctlab sce<TAB>"; then it purges the package and
#     checks that nothing of ctlab is left: files, processes, cgroups, mounts,
#     links (.ci/dist/in-chroot.sh).
#
# The chroot is a machine of its own, not just a directory: other ctlab runs
# live on this host, and the purge runs `ctlab cleanup --all`, which sweeps
# every cgroup ctlab/* and link ctl* it can see. So the chroot gets its own
# cgroup namespace rooted at a fresh cgroup (its cgroupfs mounts show only
# that subtree), its own network, mount, pid, UTS and IPC namespaces, and
# its own /run (the journal). Nothing it does is visible to the host's ctlab,
# and the reverse.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=$PWD/.ci/dist
[ "$(id -u)" -eq 0 ] || { echo "test-dist: run as root (sudo make test-dist)" >&2; exit 2; }
start=$SECONDS
shopt -s nullglob
debs=(dist/ctlab_*_amd64.deb dist/ctlab_*_arm64.deb)
tars=(dist/ctlab_*_linux_*.tar.gz)
[ ${#debs[@]} -ge 1 ] && [ ${#tars[@]} -ge 1 ] || { echo "test-dist: no dist/*.deb or *.tar.gz: run make dist" >&2; exit 1; }
deb=$(ls dist/ctlab_*_amd64.deb)
version=$(dpkg-deb -f "$deb" Version)
fail() { echo "test-dist: FAIL: $*" >&2; exit 1; }

echo "== SHA256SUMS"
(cd dist && sha256sum --check --quiet SHA256SUMS) || fail "SHA256SUMS does not match dist/"

echo "== lintian ${debs[*]}"
lint=$(lintian --tag-display-limit 0 "${debs[@]}" 2>&1 | grep -v '^running with root privileges' || true)
echo "${lint:-(no tags)}"
if grep -q '^E:' <<<"$lint"; then fail "lintian reports errors"; fi

echo "== tarballs"
for t in "${tars[@]}"; do
  list=$(tar -tzf "$t")
  top=$(basename "$t" .tar.gz)
  for f in bin/ctlab bin/ctlab-tui bin/ctlab-init bin/ctlab-oci man/man1/ctlab.1.gz man/man1/ctlab-run.1.gz \
    man/man1/ctlab-oci.1.gz man/man1/ctlab-oci-create.1.gz \
    completions/ctlab.bash completions/_ctlab completions/ctlab.fish INSTALL; do
    grep -qx "$top/$f" <<<"$list" || fail "$t lacks $top/$f"
  done
done
tdir=$(mktemp -d)
for t in "${tars[@]}"; do tar -C "$tdir" -xzf "$t"; done
# Every binary is static (no program interpreter) and of its architecture.
for b in "$tdir"/*/bin/*; do
  case $b in *_linux_amd64/*) want="X86-64" ;; *_linux_arm64/*) want=AArch64 ;; esac
  hdr=$(readelf -h -l "$b")
  grep -q "Machine:.*$want" <<<"$hdr" || fail "$b is not $want"
  ! grep -q 'INTERP' <<<"$hdr" || fail "$b is dynamically linked"
done
got=$("$tdir"/*_linux_amd64/bin/ctlab version)
[ "${got%%$'\n'*}" = "ctlab $version" ] || fail "the tarball's ctlab says $got, not version $version"
rm -rf "$tdir"
echo "tarballs: complete, static binaries of their architecture; amd64 ctlab says version $version"

echo "== clean Debian 12 chroot"
tarball=$(bash "$here/rootfs.sh")
root=$(mktemp -d /var/tmp/dist-chroot.XXXXXX)
cg=dist-test.$$
# cgroup mounts of the host: "TYPE DIR OPTIONS" lines.
mapfile -t cgmounts < <(awk '$3 == "cgroup" || $3 == "cgroup2" {print $3, $2, $4}' /proc/self/mounts)
cleanup() {
  # Everything inside died with the namespaces; remove the fresh cgroups
  # (deepest first) and the chroot directory.
  for m in "${cgmounts[@]}"; do
    read -r _ dir _ <<<"$m"
    [ -d "$dir/$cg" ] && find "$dir/$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -C "$root" -I zstd -xf "$tarball"
cp "$deb" "$root/var/tmp/pkg.deb"
cp "$here/in-chroot.sh" "$root/var/tmp/in-chroot.sh"
for m in "${cgmounts[@]}"; do
  read -r _ dir _ <<<"$m"
  mkdir "$dir/$cg"
  # A new v1 cpuset group refuses tasks until it has cpus and mems.
  if [ -e "$dir/cpuset.cpus" ]; then
    cat "$dir/cpuset.cpus" >"$dir/$cg/cpuset.cpus"
    cat "$dir/cpuset.mems" >"$dir/$cg/cpuset.mems"
  fi
done
# The subshell joins the fresh cgroups, then becomes the namespaced setup
# (.ci/dist/machine.sh); the cgroup namespace is rooted where it stands.
(
  for m in "${cgmounts[@]}"; do
    read -r _ dir _ <<<"$m"
    echo "$BASHPID" >"$dir/$cg/cgroup.procs"
  done
  exec unshare --cgroup --mount --net --uts --ipc --propagation private \
    bash "$here/machine.sh" "$root" "$cg" "${cgmounts[@]}"
) || fail "the installed package does not work, or leaves something behind (see above)"

# From the host: the test's cgroups hold nothing of ctlab's.
for m in "${cgmounts[@]}"; do
  read -r _ dir _ <<<"$m"
  left=$(find "$dir/$cg" -mindepth 1 -type d -name 'ctlab*' 2>/dev/null || true)
  [ -z "$left" ] || fail "cgroups left: $left"
done
echo "test-dist: passed in $((SECONDS - start))s"
