package cgroups

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needSystemd skips unless systemd is PID 1 on a pure v2 host: the systemd
// driver exists only there (.ci/systemdvm runs these tests in such a VM).
func needSystemd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: euid %d", os.Geteuid())
	}
	if _, err := ResolveDriver(DriverSystemd); err != nil {
		t.Skipf("no systemd driver on this host: %v", err)
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// sleeperInScope starts `sleep 300` and puts it in a new scope for name
// with limits l; the test's cleanup kills it and stops the scope.
func sleeperInScope(ctx context.Context, t *testing.T, name string, l Limits) (*Cgroup, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = StopScope(context.Background(), name)
	})
	c, err := CreateSystemd(ctx, name, l, cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return c, cmd
}

// TestResolveDriver: auto picks systemd exactly when systemd is PID 1 on a
// pure v2 host, and an explicit systemd elsewhere says why it cannot work.
func TestResolveDriver(t *testing.T) {
	got, err := ResolveDriver(DriverAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := DriverCgroupfs
	if SystemdRunning() && HostMode() == V2 {
		want = DriverSystemd
	}
	if got != want {
		t.Fatalf("auto = %s on a host with systemd=%v mode=%s, want %s", got, SystemdRunning(), HostMode(), want)
	}
	if _, err := ResolveDriver(DriverSystemd); (err == nil) != (want == DriverSystemd) {
		t.Fatalf("ResolveDriver(systemd) = %v on a host where auto is %s", err, want)
	}
	if _, err := ResolveDriver("docker"); err == nil {
		t.Fatal("an unknown driver name was accepted")
	}
}

// TestSystemdScope: a transient scope under ctlab.slice holds the process,
// the limits are in the kernel's files, an update goes through systemd (and
// survives daemon-reload, which re-applies unit properties), and Delete
// stops the unit and removes its cgroup.
func TestSystemdScope(t *testing.T) {
	needSystemd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("sdtest-%d", os.Getpid())
	c, cmd := sleeperInScope(ctx, t, name, Limits{MemoryMax: 64 << 20, PidsMax: 20, CPUs: 0.5})
	dir := filepath.Join("/sys/fs/cgroup", SystemdSlice, ScopeUnit(name))
	if c.V2Dir() != dir || c.Unit() != ScopeUnit(name) {
		t.Fatalf("dir %s unit %s, want %s and %s", c.V2Dir(), c.Unit(), dir, ScopeUnit(name))
	}
	want := "0::/" + SystemdSlice + "/" + ScopeUnit(name)
	if got := readTrim(t, fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid)); got != want {
		t.Fatalf("/proc/PID/cgroup = %q, want %q", got, want)
	}
	for file, v := range map[string]string{"memory.max": "67108864", "pids.max": "20", "cpu.max": "50000 100000"} {
		if got := readTrim(t, filepath.Join(dir, file)); got != v {
			t.Errorf("%s = %q, want %q", file, got, v)
		}
	}
	if st, err := UnitState(ctx, ScopeUnit(name)); err != nil || st != "active running" {
		t.Fatalf("unit state %q (%v), want active running", st, err)
	}

	if err := c.Update(Limits{MemoryMax: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "systemctl", "daemon-reload").CombinedOutput(); err != nil {
		t.Fatalf("systemctl daemon-reload: %v: %s", err, out)
	}
	for file, v := range map[string]string{"memory.max": "33554432", "pids.max": "max", "cpu.max": "max 100000"} {
		if got := readTrim(t, filepath.Join(dir, file)); got != v {
			t.Errorf("after update + daemon-reload: %s = %q, want %q", file, got, v)
		}
	}

	if err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("scope cgroup still there after Delete: %v", err)
	}
	if st, _ := UnitState(ctx, ScopeUnit(name)); strings.HasPrefix(st, "active") {
		t.Fatalf("unit still %s after Delete", st)
	}
}

// TestSystemdSecondManager shows why one manager must own a cgroup: a limit
// written straight into a systemd scope's file is replaced by systemd's own
// value at the next daemon-reload.
func TestSystemdSecondManager(t *testing.T) {
	needSystemd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _ := sleeperInScope(ctx, t, fmt.Sprintf("sd2nd-%d", os.Getpid()), Limits{MemoryMax: 64 << 20})
	f := filepath.Join(c.V2Dir(), "memory.max")
	if err := os.WriteFile(f, []byte("16777216"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, f); got != "16777216" {
		t.Fatalf("direct write did not take: %s", got)
	}
	if out, err := exec.CommandContext(ctx, "systemctl", "daemon-reload").CombinedOutput(); err != nil {
		t.Fatalf("systemctl daemon-reload: %v: %s", err, out)
	}
	if got := readTrim(t, f); got != "67108864" {
		t.Fatalf("after daemon-reload memory.max = %s, want systemd's 67108864 back", got)
	}
	if err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}
