package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// hierarchyDirs maps controller -> the directory of the cgroup at rel in
// each hierarchy the test looks at (v1: pids and memory; v2: the root).
func hierarchyDirs(rel string) map[string]string {
	if cgroups.Effective() == cgroups.V2 {
		return map[string]string{"pids": filepath.Join("/sys/fs/cgroup", rel), "memory": filepath.Join("/sys/fs/cgroup", rel)}
	}
	return map[string]string{"pids": filepath.Join("/sys/fs/cgroup/pids", rel), "memory": filepath.Join("/sys/fs/cgroup/memory", rel)}
}

// procCgroup is pid's path in the hierarchy of ctrl, from /proc/<pid>/cgroup.
func procCgroup(t *testing.T, pid int, ctrl string) string {
	t.Helper()
	ms, err := cgroups.ReadProcCgroup(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if cgroups.Effective() == cgroups.V2 && m.Hierarchy == 0 {
			return m.Path
		}
		for _, c := range m.Controllers {
			if c == ctrl {
				return m.Path
			}
		}
	}
	t.Fatalf("/proc/%d/cgroup has no %s line", pid, ctrl)
	return ""
}

// mkPre makes the pre-existing parent rel in every hierarchy the test
// reads, and removes it at the end (it must still be there then).
func mkPre(t *testing.T, rel string) {
	t.Helper()
	for _, d := range hierarchyDirs(rel) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, d := range hierarchyDirs(rel) {
			if _, err := os.Stat(d); err != nil {
				t.Errorf("the pre-existing cgroup %s was removed: %v", d, err)
			}
		}
		for _, d := range hierarchyDirs(rel) {
			os.Remove(d)
			os.Remove(filepath.Dir(d))
		}
	})
}

// A container at an absolute and at a relative cgroupsPath (runc's
// meaning) is in that cgroup, as /proc/<pid>/cgroup says; its limits are
// in that cgroup's files; update, freeze and procs act there; removing it
// removes the directories ctlab made and never the parent that was there.
func TestCgroupPath(t *testing.T) {
	requireRoot(t)
	pre := fmt.Sprintf("/ctlabtest-%d/pre", os.Getpid())
	mkPre(t, pre)
	own := procCgroup(t, os.Getpid(), "pids")
	ownMem := procCgroup(t, os.Getpid(), "memory")
	if cgroups.Effective() == cgroups.V2 {
		own, ownMem = filepath.Dir(own), filepath.Dir(own) // runc: the parent of its own on v2
	}
	rel := fmt.Sprintf("ctlabtest-rel-%d/c", os.Getpid())
	for _, tc := range []struct{ path, wantPids, wantMem string }{
		{pre + "/mid/c", pre + "/mid/c", pre + "/mid/c"},
		{rel, filepath.Join(own, rel), filepath.Join(ownMem, rel)},
	} {
		t.Run(strings.ReplaceAll(tc.path, "/", "_"), func(t *testing.T) {
			c, _ := startT(t, Config{Args: []string{"sleep", "60"}, CgroupPath: tc.path,
				Limits: cgroups.Limits{PidsMax: 42, MemoryMax: 64 << 20}})
			if got := procCgroup(t, c.Pid, "pids"); got != tc.wantPids {
				t.Errorf("/proc/%d/cgroup pids: %s, want %s", c.Pid, got, tc.wantPids)
			}
			if got := procCgroup(t, c.Pid, "memory"); got != tc.wantMem {
				t.Errorf("/proc/%d/cgroup memory: %s, want %s", c.Pid, got, tc.wantMem)
			}
			pids, mem := hierarchyDirs(tc.wantPids)["pids"], hierarchyDirs(tc.wantMem)["memory"]
			memFile := "memory.limit_in_bytes"
			if cgroups.Effective() == cgroups.V2 {
				memFile = "memory.max"
			}
			if v := strings.TrimSpace(readFile(t, filepath.Join(pids, "pids.max"))); v != "42" {
				t.Errorf("%s/pids.max = %s, want 42", pids, v)
			}
			if v := strings.TrimSpace(readFile(t, filepath.Join(mem, memFile))); v != fmt.Sprint(64<<20) {
				t.Errorf("%s/%s = %s, want %d", mem, memFile, v, 64<<20)
			}
			checkCgroupOps(t, c, pids)
			if err := c.Remove(context.Background(), true); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{pids, mem, filepath.Dir(pids)} {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there after remove (%v)", d, err)
				}
			}
		})
	}
}

// checkCgroupOps: the container's cgroup handle is the one at pids (the
// pids directory), and update, freeze and procs act on it.
func checkCgroupOps(t *testing.T, c *Container, pids string) {
	t.Helper()
	cg, err := c.Cgroup()
	if err != nil {
		t.Fatal(err)
	}
	if got := cg.Paths()["pids"]; got != pids {
		t.Errorf("Cgroup().Paths()[pids] = %s, want %s", got, pids)
	}
	if err := cg.Update(cgroups.Limits{PidsMax: 43}); err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(readFile(t, filepath.Join(pids, "pids.max"))); v != "43" {
		t.Errorf("after update: pids.max = %s, want 43", v)
	}
	procs, err := cg.Procs()
	if err != nil || len(procs) == 0 || procs[0] != c.Pid {
		t.Errorf("procs = %v, %v; want [%d]", procs, err, c.Pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := cg.FreezerState(); err != nil || !strings.EqualFold(st, "frozen") {
		t.Errorf("after pause: freezer state %q, %v", st, err)
	}
	if err := c.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
}

// Untrusted paths that would leave the cgroup tree, or land in ctlab's own
// subtree, are refused before anything is made.
func TestCgroupPathRefused(t *testing.T) {
	requireRoot(t)
	for _, p := range []string{"../escape", "/a/../../b", "a/../../..", "/", ".", "/ctlab/x", "/ctlab.slice/x"} {
		name := testName(t)
		_, err := Start(context.Background(), Config{Name: name, Args: []string{"true"}, CgroupPath: p})
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("cgroups path %q: err = %v, want an InputError", p, err)
		}
		if _, err := os.Stat(filepath.Join(journalDir(), name+".jsonl")); err == nil {
			t.Errorf("cgroups path %q: a journal was left", p)
		}
	}
}

// A run at a cgroupsPath killed (-9) after its cgroup was made, or once
// started, is undone by cleanup: the directories it made go, the parent
// that was there before stays.
func TestCgroupPathCleanupAfterKill9(t *testing.T) {
	requireRoot(t)
	pre := fmt.Sprintf("/ctlabtest-k9-%d/pre", os.Getpid())
	mkPre(t, pre)
	for _, fp := range []string{"after-cgroup", "after-start"} {
		t.Run(fp, func(t *testing.T) {
			name := testName(t)
			leaf := pre + "/mid/" + name
			cmd := exec.Command("/proc/self/exe", "crashy-run", name)
			cmd.Env = append(os.Environ(), "CTLAB_FAILPOINT="+fp, "CTLAB_TEST_CGROUP_PATH="+leaf)
			out, _ := cmd.CombinedOutput()
			if ws := cmd.ProcessState.String(); !strings.Contains(ws, "killed") {
				t.Fatalf("run did not die at %s: %s %s", fp, ws, out)
			}
			dirs := hierarchyDirs(leaf)
			if _, err := os.Stat(dirs["pids"]); err != nil {
				t.Fatalf("the killed run left no cgroup at %s: %v", dirs["pids"], err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := 0; i < 2; i++ {
				if _, err := Cleanup(ctx, CleanupOptions{}); err != nil {
					t.Fatalf("cleanup #%d: %v", i+1, err)
				}
			}
			for _, d := range []string{dirs["pids"], dirs["memory"], filepath.Dir(dirs["pids"])} {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there after cleanup (%v)", d, err)
				}
			}
		})
	}
}

// With the systemd driver a CgroupPath is runc's "slice:prefix:name": the
// init is in the scope prefix-name.scope of that slice (expanded as systemd
// does), its limits are there, the handle is the unit's, and removing the
// container — or a cleanup after kill -9 — stops the unit.
func TestSystemdCgroupPath(t *testing.T) {
	needSystemdDriver(t)
	name := testName(t)
	c, _ := startT(t, Config{Name: name, Args: []string{"sleep", "60"}, CgroupDriver: cgroups.DriverSystemd,
		CgroupPath: "ctlabtest-x.slice:ctlt:" + name, Limits: cgroups.Limits{PidsMax: 31}})
	unit := "ctlt-" + name + ".scope"
	want := "/ctlabtest.slice/ctlabtest-x.slice/" + unit
	if got := procCgroup(t, c.Pid, "pids"); got != want {
		t.Fatalf("/proc/%d/cgroup: %s, want %s", c.Pid, got, want)
	}
	dir := "/sys/fs/cgroup" + want
	if v := strings.TrimSpace(readFile(t, dir+"/pids.max")); v != "31" {
		t.Errorf("pids.max = %s, want 31", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, err := cgroups.UnitState(ctx, unit); err != nil || st != "active running" {
		t.Errorf("%s: %q %v", unit, st, err)
	}
	cg, err := c.Cgroup()
	if err != nil || cg.Unit() != unit || cg.V2Dir() != dir {
		t.Fatalf("Cgroup(): %v %v", cg, err)
	}
	if err := cg.Update(cgroups.Limits{PidsMax: 32}); err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(readFile(t, dir+"/pids.max")); v != "32" {
		t.Errorf("after update: pids.max = %s, want 32", v)
	}
	if err := c.Remove(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there after remove (%v)", dir, err)
	}

	// kill -9 once started, then cleanup.
	name = testName(t)
	cmd := exec.Command("/proc/self/exe", "crashy-run", name)
	cmd.Env = append(os.Environ(), "CTLAB_FAILPOINT=after-start", "CTLAB_TEST_CGROUP_DRIVER=systemd",
		"CTLAB_TEST_CGROUP_PATH=ctlabtest-x.slice:ctlt:"+name)
	out, _ := cmd.CombinedOutput()
	if ws := cmd.ProcessState.String(); !strings.Contains(ws, "killed") {
		t.Fatalf("run did not die: %s %s", ws, out)
	}
	dir = "/sys/fs/cgroup/ctlabtest.slice/ctlabtest-x.slice/ctlt-" + name + ".scope"
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed run left no scope: %v", err)
	}
	if _, err := Cleanup(ctx, CleanupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there after cleanup (%v)", dir, err)
	}
}
