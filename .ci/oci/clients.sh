#!/usr/bin/env bash
# Real clients drive ctlab's OCI runtime (bin/ctlab-oci):
#   podman --runtime bin/ctlab-oci run   (conmon -> ctlab-oci): output, a served page, exec, a tty,
#     the default bridge network (netavark's netns, joined by path), a pod
#   a private containerd, ctr run --runc-binary bin/ctlab-oci (shim -> ctlab-oci): output, a page, task exec
#   seccomp: the default profiles of both, a podman --security-opt seccomp=FILE denying mkdir (run, exec)
#   the oci-runtime-swap lesson (bin/ctlab scenario test): the same clients, checked from /proc and the call log
# Everything lives in a temp dir: podman's storage, containerd's root, state
# and socket. Traffic goes to 127.0.0.1, and to the bridge address of a
# container in the network namespace netavark made for this test. As root;
# needs make build.
set -euo pipefail
cd "$(dirname "$0")/../.."
RT=$PWD/bin/ctlab-oci
[ -x "$RT" ] || { echo "clients: build first (make build)"; exit 1; }
for b in podman containerd ctr containerd-shim-runc-v2 busybox curl; do
  command -v $b >/dev/null || { echo "clients: SKIP: $b not installed (make deps)"; exit 0; }
done
T=$(mktemp -d /tmp/ctlab-oci-clients.XXXXXX)
CPID=
finish() {
  [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null || true
  podman --root "$T/storage" --runroot "$T/run" pod rm -af >/dev/null 2>&1 || true
  podman --root "$T/storage" --runroot "$T/run" rm -af >/dev/null 2>&1 || true
  umount -R "$T/storage/overlay" 2>/dev/null || true
  rm -rf "$T" 2>/dev/null || true
}
trap finish EXIT
fail() { echo "clients: FAIL: $*"; exit 1; }

# The image: a static busybox and a page, imported from a tarball.
mkdir -p "$T/rootfs/bin" "$T/rootfs/www"
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for c in sh echo cat ls ps id hostname httpd tty sleep; do ln -s busybox "$T/rootfs/bin/$c"; done
echo "served by ctlab-oci" > "$T/rootfs/www/index.html"
printf '#!/bin/sh\nexec sleep 100000\n' > "$T/rootfs/pause"   # a pod's infra command
chmod +x "$T/rootfs/pause"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .

P=(podman --root "$T/storage" --runroot "$T/run" --cgroup-manager cgroupfs --events-backend file)
U=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)   # this host's hard limits (library-notes)
"${P[@]}" import -q "$T/rootfs.tar" localhost/ctlab-oci-bb:1 >/dev/null
R=("${P[@]}" --runtime "$RT")

echo "== podman --runtime $RT"
out=$("${R[@]}" run --rm --network none "${U[@]}" localhost/ctlab-oci-bb:1 sh -c 'echo hi from podman')
[ "$out" = "hi from podman" ] || fail "podman run printed: $out"
# The exit status comes back through conmon, which reaps the container's
# pid 1 itself (no waiter between them).
rc=0; "${R[@]}" run --rm --network none "${U[@]}" localhost/ctlab-oci-bb:1 sh -c 'exit 3' || rc=$?
[ "$rc" = 3 ] || fail "podman run sh -c 'exit 3' exited $rc"
port=$((20000 + RANDOM % 20000))
"${R[@]}" run -d --name web --network host "${U[@]}" localhost/ctlab-oci-bb:1 httpd -f -p 127.0.0.1:$port -h /www >/dev/null
for i in $(seq 50); do page=$(curl -sf "http://127.0.0.1:$port/" || true); [ -n "$page" ] && break; sleep 0.1; done
[ "$page" = "served by ctlab-oci" ] || fail "podman: page: $page"
out=$("${R[@]}" exec web sh -c 'echo exec ok')
[ "$out" = "exec ok" ] || fail "podman exec: $out"
"${R[@]}" rm -f -t 0 web >/dev/null
# The default network (no --network): netavark makes a network namespace
# (a bind-mounted nsfs file, the config's linux.namespaces[].path) and
# ctlab-oci joins it; the page is reached over the container's bridge address.
"${R[@]}" run -d --name br "${U[@]}" localhost/ctlab-oci-bb:1 httpd -f -p 8080 -h /www >/dev/null
read -r ip netns pid <<<"$("${P[@]}" inspect br --format '{{.NetworkSettings.IPAddress}} {{.NetworkSettings.SandboxKey}} {{.State.Pid}}')"
[ -n "$ip" ] && [ -e "$netns" ] || fail "podman bridge: address '$ip', netns '$netns'"
# .State.Pid is the container's pid 1 (NSpid ends in 1), a child of conmon.
nspid=$(awk '/^NSpid:/{print $NF}' "/proc/$pid/status")
parent=$(ps -o comm= -p "$(ps -o ppid= -p "$pid" | tr -d ' ')")
[ "$nspid" = 1 ] && [ "$parent" = conmon ] || fail "podman: State.Pid $pid is pid $nspid of its namespace, child of $parent (want 1, conmon)"
[ "$(stat -L -c %i "$netns")" = "$(stat -L -c %i "/proc/$pid/ns/net")" ] || fail "podman bridge: the container is not in netavark's netns $netns"
for i in $(seq 50); do page=$(curl -sf -m 2 "http://$ip:8080/" || true); [ -n "$page" ] && break; sleep 0.1; done
[ "$page" = "served by ctlab-oci" ] || fail "podman bridge: page from $ip: $page"
"${R[@]}" rm -f -t 0 br >/dev/null
# A pod: its containers join the infra container's net, uts and ipc
# namespaces by /proc/PID/ns paths. The infra container takes no --ulimit.
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' >"$T/containers.conf"
CONTAINERS_CONF=$T/containers.conf "${R[@]}" pod create --name pod --infra-image localhost/ctlab-oci-bb:1 --infra-command /pause >/dev/null
CONTAINERS_CONF=$T/containers.conf "${R[@]}" run -d --pod pod --name member localhost/ctlab-oci-bb:1 sleep 1000 >/dev/null
infra=$("${P[@]}" pod inspect pod --format '{{.InfraContainerID}}')
ipid=$("${P[@]}" inspect "$infra" --format '{{.State.Pid}}')
mpid=$("${P[@]}" inspect member --format '{{.State.Pid}}')
for n in net uts ipc; do
  [ "$(readlink "/proc/$ipid/ns/$n")" = "$(readlink "/proc/$mpid/ns/$n")" ] || fail "pod: the member is not in the infra container's $n namespace"
done
"${P[@]}" pod rm -f -t 0 pod >/dev/null
out=$(script -qec "$(printf '%q ' "${R[@]}") run --rm -t --network none ${U[*]} localhost/ctlab-oci-bb:1 tty" /dev/null | tr -d '\r')
case "$out" in /dev/pts/*) ;; *) fail "podman -t: tty says $out" ;; esac
echo "podman: run, exit 3, a served page, exec, the bridge network ($ip), a pod, tty ($out): ok"

echo "== private containerd, ctr run --runc-binary $RT"
cat > "$T/containerd.toml" <<TOML
version = 2
root = "$T/croot"
state = "$T/cstate"
[grpc]
  address = "$T/containerd.sock"
TOML
containerd --config "$T/containerd.toml" >"$T/containerd.log" 2>&1 &
CPID=$!
C=(ctr -a "$T/containerd.sock")
for i in $(seq 100); do "${C[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${P[@]}" save -q --format docker-archive -o "$T/bb.tar" localhost/ctlab-oci-bb:1
"${C[@]}" images import "$T/bb.tar" >/dev/null
out=$("${C[@]}" run --rm --runc-binary "$RT" localhost/ctlab-oci-bb:1 t1 sh -c 'echo hi from ctr')
[ "$out" = "hi from ctr" ] || fail "ctr run printed: $out"
rc=0; "${C[@]}" run --rm --runc-binary "$RT" localhost/ctlab-oci-bb:1 t3 sh -c 'exit 3' || rc=$?
[ "$rc" = 3 ] || fail "ctr run sh -c 'exit 3' exited $rc"
port=$((20000 + RANDOM % 20000))
"${C[@]}" run -d --runc-binary "$RT" --net-host localhost/ctlab-oci-bb:1 web httpd -f -p 127.0.0.1:$port -h /www
for i in $(seq 50); do page=$(curl -sf "http://127.0.0.1:$port/" || true); [ -n "$page" ] && break; sleep 0.1; done
[ "$page" = "served by ctlab-oci" ] || fail "ctr: page: $page"
out=$("${C[@]}" task exec --exec-id e1 web sh -c 'echo exec via the shim')
[ "$out" = "exec via the shim" ] || fail "ctr task exec: $out"
tpid=$("${C[@]}" task ls | awk '$1=="web"{print $2}')
shim=$(ps -o comm= -p "$(ps -o ppid= -p "$tpid" | tr -d ' ')")
nspid=$(awk '/^NSpid:/{print $NF}' "/proc/$tpid/status")
"${C[@]}" task kill -s KILL web
for i in $(seq 50); do "${C[@]}" task ls | grep -q 'web.*STOPPED' && break; sleep 0.1; done
"${C[@]}" task delete web >/dev/null
"${C[@]}" container delete web
[ "$shim" = containerd-shim ] || fail "the task's parent is $shim, not the shim"
[ "$nspid" = 1 ] || fail "the task's pid $tpid is pid $nspid of its namespace, not the container's pid 1"
grep -q '"caller":"containerd-shim"' /run/ctlab/oci-calls.log || fail "no call from the shim in the call log"
echo "containerd: ctr run, exit 3, a served page, task exec, parent $shim of pid 1: ok"
echo "== seccomp (linux.seccomp) and exec's process"
# podman's default profile is in every config.json above; now it is loaded.
out=$("${R[@]}" run --rm --network none "${U[@]}" localhost/ctlab-oci-bb:1 sh -c 'busybox grep ^Seccomp: /proc/self/status; busybox mkdir /d && echo made')
case "$out" in *"Seccomp:"*2*made*) ;; *) fail "podman default profile: $out" ;; esac
cat > "$T/deny-mkdir.json" <<JSON
{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
JSON
S=(--security-opt seccomp="$T/deny-mkdir.json")
out=$("${R[@]}" run --rm --network none "${U[@]}" "${S[@]}" localhost/ctlab-oci-bb:1 sh -c 'busybox mkdir /d 2>&1; echo rc=$?')
case "$out" in *"Operation not permitted"*rc=1) ;; *) fail "podman seccomp=deny-mkdir: mkdir said: $out" ;; esac
"${R[@]}" run -d --name sc --network none "${U[@]}" "${S[@]}" localhost/ctlab-oci-bb:1 sleep 100 >/dev/null
out=$("${R[@]}" exec sc sh -c 'busybox mkdir /d 2>&1; echo rc=$?')
case "$out" in *"Operation not permitted"*rc=1) ;; *) fail "podman exec under the container's filter: $out" ;; esac
out=$("${R[@]}" exec --user 1000:1000 sc id -u)
[ "$out" = 1000 ] || fail "podman exec --user 1000:1000: id -u says $out"
"${R[@]}" rm -f -t 0 sc >/dev/null
out=$("${C[@]}" run --rm --seccomp --runc-binary "$RT" localhost/ctlab-oci-bb:1 t2 sh -c 'busybox grep ^Seccomp: /proc/self/status; echo hi')
case "$out" in *"Seccomp:"*2*hi) ;; *) fail "ctr run --seccomp (containerd's default profile): $out" ;; esac
echo "seccomp: podman's and containerd's default profiles, a deny-mkdir profile (run and exec), exec --user: ok"
echo "== the oci-runtime-swap lesson: containerd and podman on ctlab-oci, podman on runc"
command -v runc >/dev/null || fail "runc not installed (make deps): the lesson compares with it"
out=$(bin/ctlab scenario test oci-runtime-swap 2>&1) || fail "ctlab scenario test oci-runtime-swap: $out"
echo "$out"
grep -q '^ok *oci-runtime-swap' <<<"$out" || fail "the lesson did not run: $out"
echo "clients: all passed"
