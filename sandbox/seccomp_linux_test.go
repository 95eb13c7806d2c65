//go:build cgo

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/seccomp"
)

// The attack helper runs inside a container as "/.ctlab/ctlab
// seccomp-attack": it must act before TestMain (which belongs to the other
// roles of this binary), so it hooks in at package init.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "seccomp-attack" {
		os.Exit(seccompAttacks())
	}
}

// attacks each try one thing the filter must refuse and return the errno
// (0 when the call succeeded, i.e. the attack worked).
var attacks = []struct {
	name string
	want unix.Errno
	try  func() unix.Errno
}{
	// CLONE_NEWUSER|CLONE_NEWNS: without the filter the new user namespace
	// grants the mount namespace, so this works with no capability at all.
	{"clone-newns", unix.EPERM, func() unix.Errno {
		return rawFork(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | uintptr(unix.SIGCHLD))
	}},
	{"clone3", unix.ENOSYS, func() unix.Errno {
		// struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, ...
		var args [11]uint64
		args[0], args[4] = unix.CLONE_NEWUSER, uint64(unix.SIGCHLD)
		r, _, e := unix.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args[0])), unsafe.Sizeof(args), 0)
		if e == 0 && r == 0 {
			unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		return e
	}},
	{"io_uring_setup", unix.EPERM, func() unix.Errno {
		var params [120]byte // struct io_uring_params
		_, _, e := unix.RawSyscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
		return e
	}},
	{"fsopen", unix.EPERM, func() unix.Errno {
		_, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
		return errnoOf(err)
	}},
	{"mount", unix.EPERM, func() unix.Errno {
		return errnoOf(unix.Mount("none", "/tmp", "tmpfs", 0, ""))
	}},
	{"keyctl", unix.EPERM, func() unix.Errno {
		_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 1, 0, 0)
		return errnoOf(err)
	}},
	{"add_key", unix.EPERM, func() unix.Errno {
		_, err := unix.AddKey("user", "ctlab", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
		return errnoOf(err)
	}},
	{"bpf", unix.EPERM, func() unix.Errno {
		_, _, e := unix.RawSyscall(unix.SYS_BPF, 0, 0, 0)
		return e
	}},
	{"socket-af_alg", unix.EPERM, func() unix.Errno {
		fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET, 0)
		if err == nil {
			unix.Close(fd)
		}
		return errnoOf(err)
	}},
	// Unprivileged user namespaces need no capability: only the filter
	// stops this one. unshare(CLONE_NEWUSER) needs a single-threaded
	// caller, so a forked child tries it.
	{"unshare-newuser", unix.EPERM, func() unix.Errno { return forkUnshare(unix.CLONE_NEWUSER) }},
}

// x32Attack calls keyctl through the x32 ABI (its number with
// __X32_SYSCALL_BIT): a filter matching plain numbers would miss it.
func x32Attack() unix.Errno {
	const x32Bit = 0x40000000
	session := int64(unix.KEY_SPEC_SESSION_KEYRING)
	_, _, e := unix.RawSyscall(x32Bit|unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(session), 1)
	return e
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if err == nil {
		return 0
	}
	if errors.As(err, &e) {
		return e
	}
	return unix.EINVAL
}

// rawFork calls clone(2) directly; should it succeed, the child exits at
// once (it is a copy of this Go process and must not run Go code).
func rawFork(flags uintptr) unix.Errno {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, _, e := unix.RawSyscall6(unix.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	if e == 0 && r == 0 {
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	if e == 0 {
		var ws unix.WaitStatus
		unix.Wait4(int(r), &ws, 0, nil)
	}
	return e
}

// forkUnshare forks (plain clone) and has the single-threaded child call
// unshare(flags); the child's exit status is the errno. Only raw syscalls
// run in the child, as in syscall.forkAndExecInChild.
//
//go:norace
func forkUnshare(flags uintptr) unix.Errno {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, _, e := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	if r == 0 {
		_, _, e := unix.RawSyscall(unix.SYS_UNSHARE, flags, 0, 0)
		unix.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(e), 0, 0)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(int(r), &ws, 0, nil); err != nil {
		return errnoOf(err)
	}
	return unix.Errno(ws.ExitStatus())
}

// seccompAttacks prints "name errno" per attack; the test judges.
func seccompAttacks() int {
	for _, a := range attacks {
		fmt.Printf("%s %d\n", a.name, int(a.try()))
	}
	if runtime.GOARCH == "amd64" {
		fmt.Printf("keyctl-x32 %d\n", int(x32Attack()))
	}
	// Ordinary process creation still works under the filter (libc's
	// fork, Go's os/exec).
	fmt.Printf("fork-plain %d\n", int(rawFork(uintptr(unix.SIGCHLD))))
	return 0
}

func wantAttacks() map[string]unix.Errno {
	w := map[string]unix.Errno{"fork-plain": 0}
	for _, a := range attacks {
		w[a.name] = a.want
	}
	if runtime.GOARCH == "amd64" {
		w["keyctl-x32"] = unix.ENOSYS
	}
	return w
}

// TestSeccompAttacks performs each attack inside a hardened container and
// checks the filter's answer (EPERM, or ENOSYS for clone3 and x32).
func TestSeccompAttacks(t *testing.T) {
	c, out := startT(t, Config{
		Namespaces: []Namespace{NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Harden:     Hardening{DropCaps: true, NoNewPrivs: true, MaskPaths: true, Seccomp: true},
		Args:       []string{"/.ctlab/ctlab", "seccomp-attack"},
	})
	if code, err := c.Wait(context.Background()); err != nil || code != 0 {
		t.Fatalf("attack helper: exit %d, %v\n%s", code, err, out)
	}
	checkAttacks(t, out.String(), wantAttacks())
}

// TestSeccompAttacksControl runs the same helper unhardened: the attacks
// that only the filter stops must then succeed (or fail differently), which
// shows the hardened test measures the filter and not something else.
func TestSeccompAttacksControl(t *testing.T) {
	c, out := startT(t, Config{
		Namespaces: []Namespace{NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Args:       []string{"/.ctlab/ctlab", "seccomp-attack"},
	})
	if code, err := c.Wait(context.Background()); err != nil || code != 0 {
		t.Fatalf("attack helper: exit %d, %v\n%s", code, err, out)
	}
	got := parseAttacks(t, out.String())
	for _, n := range []string{"unshare-newuser", "clone-newns", "keyctl", "mount"} {
		if got[n] != 0 {
			t.Errorf("unfiltered %s: %v, want success (the control must show the attack works without the filter)", n, got[n])
		}
	}
}

func parseAttacks(t *testing.T, out string) map[string]unix.Errno {
	t.Helper()
	got := map[string]unix.Errno{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var name string
		var e int
		if _, err := fmt.Sscanf(l, "%s %d", &name, &e); err == nil {
			got[name] = unix.Errno(e)
		}
	}
	return got
}

func checkAttacks(t *testing.T, out string, want map[string]unix.Errno) {
	t.Helper()
	got := parseAttacks(t, out)
	for n, w := range want {
		g, ok := got[n]
		if !ok {
			t.Errorf("%s: no result in %q", n, out)
			continue
		}
		if g != w {
			t.Errorf("%s: errno %d (%v), want %d (%v)", n, int(g), g, int(w), w)
		}
	}
}

// Every name in the allow-list exists in some architecture's table: a typo
// would silently deny a syscall Docker allows. The compiler warns about a
// name no architecture knows (x86_64, i386, x32, aarch64, arm); the
// profile gets every architecture's additions so all of them are checked.
func TestSeccompNames(t *testing.T) {
	p := seccompProfile()
	extra := strings.Fields(seccompArchAllowed["amd64"] + " " + seccompArchAllowed["arm64"])
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: extra, Action: specs.ActAllow})
	var unknown []string
	if _, err := seccomp.Compile(p, seccompOptions, func(w string) { unknown = append(unknown, w) }); err != nil {
		t.Fatal(err)
	}
	for _, w := range unknown {
		t.Error(w)
	}
	f, err := seccompFilter()
	if err != nil || len(f.Prog)/8 < 100 {
		t.Fatalf("program of %d instructions: %v", len(f.Prog)/8, err)
	}
}
