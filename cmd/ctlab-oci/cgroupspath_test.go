package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// withCgroupsPath sets linux.cgroupsPath and a pids limit in the bundle.
func withCgroupsPath(t *testing.T, dir, path string, pids int64) {
	t.Helper()
	var s specs.Spec
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Linux.CgroupsPath = path
	s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &pids}}
	b, _ = json.Marshal(&s)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCgroupsPath: the container is where cgroupsPath says (read back from
// /proc/<pid>/cgroup), update, pause and ps act there, delete removes the
// group, and a path with ".." is refused.
func TestCgroupsPath(t *testing.T) {
	rt := built(t)
	path := fmt.Sprintf("/ctlabtest-oci-%d/c", os.Getpid())
	dir := bundle(t, "sleep", "100")
	withCgroupsPath(t, dir, path, 21)
	root := t.TempDir()
	run(t, rt, "--root", root, "create", "--bundle", dir, "cgp")
	t.Cleanup(func() { exec.Command(rt, "--root", root, "delete", "--force", "cgp").Run() })
	pid := state(t, rt, root, "cgp").Pid
	pidsDir, freezer := "/sys/fs/cgroup/pids"+path, "/sys/fs/cgroup/freezer"+path+"/freezer.state"
	if cgroups.Effective() == cgroups.V2 {
		pidsDir, freezer = "/sys/fs/cgroup"+path, "/sys/fs/cgroup"+path+"/cgroup.freeze"
	}
	ms, err := cgroups.ReadProcCgroup(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ms {
		found = found || (m.Path == path && (m.Hierarchy == 0) == (cgroups.Effective() == cgroups.V2))
	}
	if !found {
		t.Fatalf("/proc/%d/cgroup has no %s: %+v", pid, path, ms)
	}
	read := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if v := read(pidsDir + "/pids.max"); v != "21" {
		t.Errorf("pids.max = %s, want 21", v)
	}
	res := filepath.Join(t.TempDir(), "r.json")
	os.WriteFile(res, []byte(`{"pids":{"limit":22}}`), 0o644)
	run(t, rt, "--root", root, "update", "--resources", res, "cgp")
	if v := read(pidsDir + "/pids.max"); v != "22" {
		t.Errorf("after update: pids.max = %s, want 22", v)
	}
	run(t, rt, "--root", root, "pause", "cgp")
	if v := read(freezer); v != "FROZEN" && v != "1" {
		t.Errorf("after pause: %s = %s", freezer, v)
	}
	run(t, rt, "--root", root, "resume", "cgp")
	if out := run(t, rt, "--root", root, "ps", "--format", "json", "cgp"); !strings.Contains(out, fmt.Sprint(pid)) {
		t.Errorf("ps: %s, want pid %d", out, pid)
	}
	run(t, rt, "--root", root, "delete", "--force", "cgp")
	for _, d := range []string{pidsDir, filepath.Dir(pidsDir)} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s is still there after delete", d)
		}
	}

	bad := bundle(t, "true")
	withCgroupsPath(t, bad, "../../escape", 5)
	out, err := exec.Command(rt, "--root", root, "create", "--bundle", bad, "bad").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `".."`) {
		t.Errorf("create with cgroupsPath ../../escape: %v %s", err, out)
	}
}
