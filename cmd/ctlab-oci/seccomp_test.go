package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// editSpec rewrites the bundle's config.json through edit.
func editSpec(tb testing.TB, dir string, edit func(*specs.Spec)) {
	tb.Helper()
	var s specs.Spec
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		tb.Fatal(err)
	}
	edit(&s)
	if b, err = json.Marshal(&s); err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// TestSeccompConfig runs containers under linux.seccomp and reads the
// kernel's answers back: mkdir denied with EPERM (loaded late under
// no_new_privs, and early, before the capability drop, without it), and
// argument conditions (kill with SIGUSR1 denied, with signal 0 allowed;
// personality other than the 0xffffffff query denied) and the same filter
// on an exec'd process.
func TestSeccompConfig(t *testing.T) {
	rt := built(t)
	for _, nnp := range []bool{true, false} {
		t.Run(fmt.Sprintf("nnp=%v", nnp), func(t *testing.T) {
			dir := bundle(t, "sh", "-c", "mkdir /made 2>&1; echo mkdir=$?; kill -0 $$; echo kill0=$?; kill -USR1 $$ 2>&1; echo usr1=$?; busybox linux32 true 2>&1; echo linux32=$?")
			editSpec(t, dir, func(s *specs.Spec) {
				s.Process.NoNewPrivileges = nnp
				s.Linux.Seccomp = &specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
					Syscalls: []specs.LinuxSyscall{
						{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
						{Names: []string{"kill"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 10, Op: specs.OpEqualTo}}},
						// Only the query: PER_LINUX32 (linux32) is refused.
						{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpNotEqual}}},
					},
				}
			})
			out := run(t, rt, "--root", t.TempDir(), "run", "--bundle", dir, "sc")
			for _, want := range []string{"Operation not permitted", "mkdir=1", "kill0=0", "usr1=1", "linux32=1"} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in the container's output:\n%s", want, out)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "rootfs", "made")); err == nil {
				t.Error("mkdir created the directory")
			}
		})
	}
	// exec runs under the container's filter too.
	dir := bundle(t, "sleep", "100")
	editSpec(t, dir, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(13))}}}
	})
	root := t.TempDir()
	run(t, rt, "--root", root, "run", "-d", "--bundle", dir, "scexec")
	t.Cleanup(func() { exec.Command(rt, "--root", root, "delete", "--force", "scexec").Run() })
	out := run(t, rt, "--root", root, "exec", "scexec", "sh", "-c", "mkdir /made 2>&1; echo mkdir=$?")
	if !strings.Contains(out, "Permission denied") || !strings.Contains(out, "mkdir=1") {
		t.Errorf("exec's mkdir under ERRNO(EACCES):\n%s", out)
	}
}

func ptr[T any](v T) *T { return &v }

// TestSeccompRefused: a NOTIFY action fails create with a clear error.
func TestSeccompRefused(t *testing.T) {
	rt := built(t)
	dir := bundle(t, "true")
	editSpec(t, dir, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	})
	out, err := exec.Command(rt, "--root", t.TempDir(), "create", "--bundle", dir, "nt").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not supported") {
		t.Fatalf("create with SCMP_ACT_NOTIFY: %v\n%s", err, out)
	}
}

// statusField returns a field of /proc/self/status as a process in the
// container read it.
func statusField(t *testing.T, out, field string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in:\n%s", field, out)
	return ""
}

// TestExecFlags: exec --user, --additional-gids, --cap, --env, --cwd and
// --no-new-privs, and a --process file's user and capabilities, each read
// back from the kernel by the exec'd process.
func TestExecFlags(t *testing.T) {
	rt := built(t)
	dir := bundle(t, "sleep", "100")
	root := t.TempDir()
	run(t, rt, "--root", root, "run", "-d", "--bundle", dir, "ef")
	t.Cleanup(func() { exec.Command(rt, "--root", root, "delete", "--force", "ef").Run() })
	out := run(t, rt, "--root", root, "exec", "--user", "1000:1000", "--additional-gids", "5,6", "ef", "cat", "/proc/self/status")
	if u := statusField(t, out, "Uid"); strings.Join(strings.Fields(u), " ") != "1000 1000 1000 1000" {
		t.Errorf("Uid %q", u)
	}
	if g := statusField(t, out, "Gid"); strings.Fields(g)[0] != "1000" {
		t.Errorf("Gid %q", g)
	}
	if g := statusField(t, out, "Groups"); g != "5 6" {
		t.Errorf("Groups %q", g)
	}
	// The config's capabilities (runc spec: AUDIT_WRITE, KILL,
	// NET_BIND_SERVICE) plus CAP_SYS_ADMIN (21).
	out = run(t, rt, "--root", root, "exec", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", "ef", "cat", "/proc/self/status")
	eff, err := strconv.ParseUint(statusField(t, out, "CapEff"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(1<<29 | 1<<5 | 1<<10 | 1<<21)
	if eff != want {
		t.Errorf("CapEff %#x, want %#x", eff, want)
	}
	if statusField(t, out, "NoNewPrivs") != "1" {
		t.Error("--no-new-privs: NoNewPrivs is not 1")
	}
	// --process: the file alone decides user and capabilities.
	caps := []string{"CAP_NET_RAW"}
	b, _ := json.Marshal(specs.Process{Args: []string{"cat", "/proc/self/status"}, Env: []string{"PATH=/bin"}, Cwd: "/",
		User: specs.User{UID: 1234, GID: 4321},
		// A uid other than 0 keeps capabilities across execve as ambient ones.
		Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps}})
	pf := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(pf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out = run(t, rt, "--root", root, "exec", "--process", pf, "ef")
	if u, g := statusField(t, out, "Uid"), statusField(t, out, "Gid"); strings.Fields(u)[0] != "1234" || strings.Fields(g)[0] != "4321" {
		t.Errorf("--process user: Uid %q Gid %q", u, g)
	}
	if e := statusField(t, out, "CapEff"); e != fmt.Sprintf("%016x", 1<<13) {
		t.Errorf("--process capabilities: CapEff %s, want CAP_NET_RAW only", e)
	}
	out = run(t, rt, "--root", root, "exec", "--env", "GREETING=hello", "--cwd", "/bin", "ef", "sh", "-c", "echo $GREETING; pwd; id -u")
	if got := strings.Fields(out); len(got) != 3 || got[0] != "hello" || got[1] != "/bin" || got[2] != "0" {
		t.Errorf("--env/--cwd (and the config's user): %q", out)
	}
}

// TestStartContainerHookInside: a startContainer hook runs in the
// container (its path resolves in the container's root, its write lands
// there), with the state on stdin.
func TestStartContainerHookInside(t *testing.T) {
	rt := built(t)
	dir := bundle(t, "true")
	hook := filepath.Join(dir, "rootfs", "hook.sh")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\ncat > /hook-state\nhostname > /hook-hostname\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	editSpec(t, dir, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/hook.sh"}}}
	})
	run(t, rt, "--root", t.TempDir(), "run", "--bundle", dir, "hk")
	b, err := os.ReadFile(filepath.Join(dir, "rootfs", "hook-hostname"))
	if err != nil || strings.TrimSpace(string(b)) != "ocitest" {
		t.Fatalf("the hook's hostname (the container's UTS namespace): %q %v", b, err)
	}
	var st specs.State
	b, _ = os.ReadFile(filepath.Join(dir, "rootfs", "hook-state"))
	if err := json.Unmarshal(b, &st); err != nil || st.ID != "hk" || st.Bundle != dir || st.Pid == 0 {
		t.Fatalf("the hook's state %q: %v", b, err)
	}
}
