package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/oci"
)

// subreaper makes the test process a child subreaper, as containerd's shim
// and conmon are, for the rest of the test: a container's init whose
// runtime exited is re-parented to it.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// reap waits (at most 10 s) for pid, a child of the test, and returns its
// wait status.
func reap(t *testing.T, pid int) unix.WaitStatus {
	t.Helper()
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				if err != nil {
					t.Errorf("wait4 %d: %v", pid, err)
				}
				done <- ws
				return
			}
		}
	}()
	select {
	case ws := <-done:
		return ws
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d did not exit in 10s", pid)
	}
	return 0
}

// pidFileInit reads the pid file and checks, from /proc, that it names pid 1
// of its own pid namespace, the container's init, whose parent is the test.
func pidFileInit(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	st, err := kstate.ReadStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.NSpid); n < 2 || st.NSpid[0] != pid || st.NSpid[n-1] != 1 {
		t.Fatalf("pid file names %d, NSpid %v: not pid 1 of the container's pid namespace", pid, st.NSpid)
	}
	if p, err := kstate.ReadStat(pid); err != nil || p.PPid != os.Getpid() {
		t.Fatalf("parent of the container's init: %+v %v, want the subreaper %d", p, err, os.Getpid())
	}
	return pid
}

// TestInitIsReapedBySubreaper: as with runc there is no waiter; the pid
// file and state name the container's pid 1, re-parented to the caller's
// subreaper once create exits, which reaps it and reads its status.
func TestInitIsReapedBySubreaper(t *testing.T) {
	rt := built(t)
	subreaper(t)
	dir := bundle(t, "sh", "-c", "while [ ! -e /go ]; do sleep 0.02; done; exit 7")
	root := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	run(t, rt, "--root", root, "create", "--bundle", dir, "--pid-file", pidFile, "rp")
	t.Cleanup(func() { exec.Command(rt, "--root", root, "delete", "--force", "rp").Run() })
	pid := pidFileInit(t, pidFile)
	if st := state(t, rt, root, "rp"); st.Pid != pid || st.Status != specs.StateCreated {
		t.Fatalf("state after create: %+v, pid file %d", st, pid)
	}
	run(t, rt, "--root", root, "start", "rp")
	if st := state(t, rt, root, "rp"); st.Pid != pid || st.Status != specs.StateRunning {
		t.Fatalf("state after start: %+v, pid file %d", st, pid)
	}
	if p, err := kstate.ReadStat(pid); err != nil || p.Comm != "sh" || p.PPid != os.Getpid() {
		t.Fatalf("after start the init is %+v (%v): want sh, child of the test", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if ws := reap(t, pid); !ws.Exited() || ws.ExitStatus() != 7 {
		t.Fatalf("the init's wait status: %v, want exit 7", ws)
	}
	if st := state(t, rt, root, "rp"); st.Status != specs.StateStopped {
		t.Fatalf("state after the init exited: %+v", st)
	}
	run(t, rt, "--root", root, "delete", "rp")

	// kill signals pid 1 itself: no waiter forwards it.
	if err := os.Remove(filepath.Join(dir, "rootfs", "go")); err != nil {
		t.Fatal(err)
	}
	run(t, rt, "--root", root, "create", "--bundle", dir, "--pid-file", pidFile, "rp")
	pid = pidFileInit(t, pidFile)
	run(t, rt, "--root", root, "start", "rp")
	run(t, rt, "--root", root, "kill", "rp", "KILL")
	if ws := reap(t, pid); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the init's wait status after kill: %v, want SIGKILL", ws)
	}
	run(t, rt, "--root", root, "delete", "rp")
}

// TestRunExitStatus: ctlab-oci run makes itself the subreaper of the
// container's init, so it reaps it and exits with its status.
func TestRunExitStatus(t *testing.T) {
	rt := built(t)
	for _, c := range []struct {
		sh   string
		want int
	}{{"exit 3", 3}, {"exit 0", 0}} {
		dir := bundle(t, "sh", "-c", c.sh)
		root := t.TempDir()
		cmd := exec.Command(rt, "--root", root, "run", "--bundle", dir, "rs")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != c.want {
			t.Fatalf("run %q: %v %s, want exit %d", c.sh, err, out, c.want)
		}
	}
	// Killed from outside: 128+9, read from the reaped init.
	dir := bundle(t, "sleep", "100")
	root := t.TempDir()
	cmd := exec.Command(rt, "--root", root, "run", "--bundle", dir, "rk")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command(rt, "--root", root, "state", "rk").Output()
		if strings.Contains(string(out), `"running"`) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("run did not start: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	run(t, rt, "--root", root, "kill", "rk", "KILL")
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 137 {
		t.Fatalf("run of a container killed by SIGKILL exited %d, want 137", code)
	}
}

// TestKilledRuntimeCleanup: create is killed -9 while a createRuntime hook
// runs (the init exists, its stage has exited); the init is the subreaper's
// child, and delete --force still kills it and removes every object.
func TestKilledRuntimeCleanup(t *testing.T) {
	rt := built(t)
	subreaper(t)
	dir := bundle(t, "sleep", "100")
	marker := filepath.Join(t.TempDir(), "hook")
	hookHang(t, dir, marker)
	root := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pid")
	create := exec.Command(rt, "--root", root, "create", "--bundle", dir, "--pid-file", pidFile, "kr")
	if err := create.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(rt, "--root", root, "delete", "--force", "kr").Run() })
	hook := 0
	for deadline := time.Now().Add(10 * time.Second); hook == 0; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(marker)
		hook, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if hook == 0 && time.Now().After(deadline) {
			create.Process.Kill()
			t.Fatal("the createRuntime hook did not run in 10s")
		}
	}
	create.Process.Kill()
	create.Wait()
	syscall.Kill(hook, syscall.SIGKILL) // re-parented to the test too
	reap(t, hook)
	pid := pidFileInit(t, pidFile)
	name := (&oci.Runtime{Root: root}).SandboxName("kr")
	run(t, rt, "--root", root, "delete", "--force", "kr")
	if ws := reap(t, pid); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the init after delete --force: %v, want killed", ws)
	}
	if _, err := sandbox.Load(name); err == nil {
		t.Fatalf("sandbox container %s still has a state after delete", name)
	}
	left, _ := filepath.Glob("/sys/fs/cgroup/*/ctlab/" + name)
	if _, err := os.Stat("/sys/fs/cgroup/ctlab/" + name); err == nil {
		left = append(left, "/sys/fs/cgroup/ctlab/"+name)
	}
	if len(left) > 0 {
		t.Fatalf("cgroups left after delete: %v", left)
	}
	if _, err := os.Stat(filepath.Join(root, "kr")); err == nil {
		t.Fatal("the runtime's record is left after delete")
	}
}

// hookHang adds a createRuntime hook to the bundle that writes its pid to
// marker and sleeps.
func hookHang(t *testing.T, dir, marker string) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	s, err := oci.LoadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on the host for the hook")
	}
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: sh, Args: []string{"sh", "-c", "echo $$ > " + marker + "; exec sleep 100"}}}}
	b, err := json.Marshal(s)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}
