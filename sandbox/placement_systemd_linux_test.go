package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// needSystemdDriver skips unless systemd is PID 1 on a pure v2 host, the
// only place the systemd driver can run (.ci/systemdvm boots one).
func needSystemdDriver(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if _, err := cgroups.ResolveDriver(cgroups.DriverSystemd); err != nil {
		t.Skipf("no systemd driver on this host: %v", err)
	}
}

// TestSystemdDriverStart: with the systemd driver the container's init is
// in ctlab.slice/ctlab-<name>.scope (read from /proc/<pid>/cgroup), the
// limits are in that scope's files, the unit is active, and removing the
// container stops the unit.
func TestSystemdDriverStart(t *testing.T) {
	needSystemdDriver(t)
	name := testName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, Config{Name: name, Args: []string{"sleep", "60"}, CgroupDriver: cgroups.DriverSystemd,
		Limits: cgroups.Limits{MemoryMax: 48 << 20, PidsMax: 30, CPUs: 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove(context.Background(), true)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.Pid))
	if err != nil {
		t.Fatal(err)
	}
	unit := cgroups.ScopeUnit(name)
	if got, want := strings.TrimSpace(string(b)), "0::/"+cgroups.SystemdSlice+"/"+unit; got != want {
		t.Fatalf("init's cgroup %q, want %q", got, want)
	}
	dir := filepath.Join("/sys/fs/cgroup", cgroups.SystemdSlice, unit)
	for f, v := range map[string]string{"memory.max": "50331648", "pids.max": "30", "cpu.max": "25000 100000"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || strings.TrimSpace(string(got)) != v {
			t.Errorf("%s = %q (%v), want %s", f, got, err, v)
		}
	}
	if st, err := cgroups.UnitState(ctx, unit); err != nil || st != "active running" {
		t.Fatalf("%s: %q %v", unit, st, err)
	}
	cg, err := c.Cgroup()
	if err != nil || cg.Unit() != unit {
		t.Fatalf("Container.Cgroup() = %v (%v), want the scope", cg, err)
	}
	if err := c.Remove(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("scope cgroup left after Delete: %v", err)
	}
	if st, _ := cgroups.UnitState(ctx, unit); strings.HasPrefix(st, "active") {
		t.Fatalf("%s still %s after Delete", unit, st)
	}
}

// TestSystemdDriverCleanupAfterKill9: ctlab killed at the worst moments
// leaves a scope systemd keeps alive (the container's processes are in
// it); cleanup stops the unit from the journal's record.
func TestSystemdDriverCleanupAfterKill9(t *testing.T) {
	needSystemdDriver(t)
	for _, fp := range []string{"after-cgroup-attach", "after-start"} {
		t.Run(fp, func(t *testing.T) {
			name := testName(t)
			cmd := exec.Command("/proc/self/exe", "crashy-run", name)
			cmd.Env = append(os.Environ(), "CTLAB_FAILPOINT="+fp, "CTLAB_TEST_CGROUP_DRIVER=systemd")
			out, _ := cmd.CombinedOutput()
			if ws := cmd.ProcessState.String(); !strings.Contains(ws, "killed") {
				t.Fatalf("run did not die at %s: %s %s", fp, ws, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			unit := cgroups.ScopeUnit(name)
			st, err := cgroups.UnitState(ctx, unit)
			// Killed right after the attach, the init reads EOF on its
			// pipe and exits by itself: systemd then stops the emptied
			// scope. After the start the container runs on, and only the
			// cleanup can stop its scope.
			t.Logf("after kill -9 at %s: %s %q (%v)", fp, unit, st, err)
			if fp == "after-start" && st != "active running" {
				t.Fatalf("after kill -9 at %s the scope is %q (%v), want active running", fp, st, err)
			}
			if _, err := Cleanup(ctx, CleanupOptions{}); err != nil {
				t.Fatal(err)
			}
			if st, _ := cgroups.UnitState(ctx, unit); strings.HasPrefix(st, "active") {
				t.Fatalf("%s still %s after cleanup", unit, st)
			}
			if left := objects(t, name); len(left) > 0 {
				t.Errorf("after cleanup: %v", left)
			}
		})
	}
}
