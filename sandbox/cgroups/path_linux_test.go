package cgroups

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ResolvePath follows runc: absolute below each hierarchy's root, relative
// below this process's own group (v2: its parent); ".." and ctlab's own
// trees are refused.
func TestResolvePath(t *testing.T) {
	if Effective() == Unavailable {
		t.Skip("no cgroup filesystem mounted")
	}
	for _, bad := range []string{"", "..", "../x", "/a/../b", "a/b/..", "/", ".", "/ctlab/x", "/ctlab.slice/x", "a\nb"} {
		if rels, err := ResolvePath(bad); err == nil {
			t.Errorf("ResolvePath(%q) = %v, want an error", bad, rels)
		}
	}
	rels, err := ResolvePath("/a/b/")
	if err != nil {
		t.Fatal(err)
	}
	for c, r := range rels {
		if r != "/a/b" {
			t.Errorf("absolute: %s -> %s", c, r)
		}
	}
	rels, err = ResolvePath("x/y")
	if err != nil {
		t.Fatal(err)
	}
	own, err := ReadProcCgroup("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range own {
		if Effective() == V2 && m.Hierarchy == 0 {
			if want := filepath.Join(filepath.Dir(m.Path), "x/y"); rels["pids"] != want {
				t.Errorf("relative on v2: %s, want %s", rels["pids"], want)
			}
		}
		for _, c := range m.Controllers {
			if r, ok := rels[c]; ok && Effective() == V1 && r != filepath.Join(m.Path, "x/y") {
				t.Errorf("relative on v1: %s -> %s, want below %s", c, r, m.Path)
			}
		}
	}
}

// CreateAt below a group that exists announces and makes only the missing
// directories, applies an OCI config's raw values, and RemoveAt removes
// exactly what was made: a leaf that existed before stays.
func TestCreateAtRemoveAt(t *testing.T) {
	needRoot(t)
	top := fmt.Sprintf("/ctlabtest-at-%d", os.Getpid())
	pre, err := ResolvePath(top + "/pre")
	if err != nil {
		t.Fatal(err)
	}
	preDirs, _ := dirsOf(new(v1Mounts), pre)
	for _, d := range preDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, d := range preDirs {
			os.Remove(d)
			os.Remove(filepath.Dir(d))
		}
	}()
	rels, err := ResolvePath(top + "/pre/mid/leaf")
	if err != nil {
		t.Fatal(err)
	}
	l := Limits{PidsMax: 7, CPUs: 0.4, OCI: OCIResources{CPUShares: 1000, CPUPeriod: 500000}}
	root, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if Effective() == V1 || strings.Contains(string(root), "cpuset") {
		l.OCI.CpusetCPUs, l.OCI.CpusetMems = "0", "0"
	}
	leaves := map[string]string{}
	var made []string
	c, err := CreateAt(fmt.Sprintf("at-%d", os.Getpid()), rels, l, Intents{
		Leaf:  func(ctrl, dir string) error { leaves[ctrl] = dir; return nil },
		Mkdir: func(dir string) error { made = append(made, dir); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range made {
		if !strings.Contains(m, top+"/pre/mid") {
			t.Errorf("announced %s, which existed before", m)
		}
	}
	want := map[string]string{"pids.max": "7"}
	if Effective() == V1 {
		want = map[string]string{"pids.max": "7", "cpu.shares": "1000", "cpu.cfs_period_us": "500000", "cpu.cfs_quota_us": "200000"}
		if d, ok := c.Paths()["cpuset"]; !ok || readTrim(t, filepath.Join(d, "cpuset.cpus")) != "0" {
			t.Errorf("cpuset: %v", c.Paths())
		}
	} else {
		want["cpu.max"] = "200000 500000"
		if l.OCI.CpusetCPUs != "" {
			want["cpuset.cpus"] = "0"
		}
	}
	for f, v := range want {
		ctrl, _, _ := strings.Cut(f, ".")
		dir := c.Paths()[ctrl]
		if Effective() == V2 {
			dir = c.V2Dir()
		}
		if got := readTrim(t, filepath.Join(dir, f)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The leaf as if it had existed before: RemoveAt keeps it.
	if err := RemoveAt(ctx, "x", leaves, without2(made, leaves)); err != nil {
		t.Fatal(err)
	}
	for _, d := range leaves {
		if !exists(d) {
			t.Errorf("RemoveAt removed the leaf %s it did not make", d)
		}
	}
	if err := RemoveAt(ctx, "x", leaves, made); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(made, sortedValues(leaves)...) {
		if exists(d) {
			t.Errorf("%s is still there", d)
		}
	}
	for _, d := range preDirs {
		if !exists(d) {
			t.Errorf("the pre-existing %s was removed", d)
		}
	}
	if err := RemoveAt(ctx, "x", map[string]string{"pids": "/etc"}, nil); err == nil {
		t.Error("RemoveAt accepted a directory outside /sys/fs/cgroup")
	}
}

func without2(made []string, leaves map[string]string) []string {
	var out []string
	for _, m := range made {
		leaf := false
		for _, l := range leaves {
			leaf = leaf || l == m
		}
		if !leaf {
			out = append(out, m)
		}
	}
	return out
}

// ParseScope reads runc's slice:prefix:name and expands the slice as
// systemd does; anything that could be a path is refused.
func TestParseScope(t *testing.T) {
	for in, want := range map[string]string{
		"system.slice:docker:abc": "/sys/fs/cgroup/system.slice/docker-abc.scope",
		"a-b-c.slice:p:n":         "/sys/fs/cgroup/a.slice/a-b.slice/a-b-c.slice/p-n.scope",
		":crio:x":                 "/sys/fs/cgroup/system.slice/crio-x.scope",
		"-.slice::x":              "/sys/fs/cgroup/x.scope",
	} {
		sc, err := ParseScope(in)
		var dir string
		if err == nil {
			dir, err = sc.Dir()
		}
		if err != nil || dir != want {
			t.Errorf("ParseScope(%q): %s %v, want %s", in, dir, err, want)
		}
	}
	for _, bad := range []string{"/a/b", "a:b", "system.slice:p:../x", "x/y.slice:p:n", "system.slice:p:", "a--b.slice:p:n", "system.slice:p:x.slice", "nota:p:n"} {
		if sc, err := ParseScope(bad); err == nil {
			t.Errorf("ParseScope(%q) = %+v, want an error", bad, sc)
		}
	}
}
