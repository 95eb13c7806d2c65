package sandbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// exec gives a process whose eight namespace inodes all equal the init's
// and whose cgroup is the container's; a second run gives new ones.
func TestExecJoinsEveryNamespace(t *testing.T) {
	c, _ := startT(t, sleeper())
	cg, err := c.Cgroup()
	if err != nil {
		t.Fatal(err)
	}
	before := map[int]bool{}
	procs, _ := cg.Procs()
	for _, p := range procs {
		before[p] = true
	}
	done := make(chan struct{})
	go func() {
		c.Exec(context.Background(), ExecConfig{Args: []string{"sleep", "5"}})
		close(done)
	}()
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		procs, _ := cg.Procs()
		for _, p := range procs {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); !before[p] && strings.HasPrefix(string(b), "sleep\x005") {
				pid = p
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("the exec'd process never appeared in the container's cgroup")
	}
	for _, ns := range AllNamespaces {
		a, _ := NSInode(c.Pid, ns)
		b, err := NSInode(pid, ns)
		if err != nil || a != b {
			t.Errorf("%s: init %d, exec'd %d (%v)", ns, a, b, err)
		}
	}
	if a, b := readFile(t, fmt.Sprintf("/proc/%d/cgroup", c.Pid)), readFile(t, fmt.Sprintf("/proc/%d/cgroup", pid)); a != b {
		t.Errorf("cgroup differs:\ninit:\n%s\nexec:\n%s", a, b)
	}
	c.Kill(9)
	<-done

	c2, _ := startT(t, sleeper())
	for _, ns := range AllNamespaces {
		a, _ := NSInode(c.Pid, ns)
		b, _ := NSInode(c2.Pid, ns)
		if c.Running() && a == b {
			t.Errorf("%s: a second run shares the first's namespace", ns)
		}
	}
}

func TestExecExitStatus(t *testing.T) {
	c, _ := startT(t, sleeper())
	if _, code := execOut(t, c, "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exit status = %d, want 7", code)
	}
	if _, code := execOut(t, c, "no-such-command"); code != 127 {
		t.Errorf("missing command status = %d, want 127", code)
	}
}

// Bad input changes nothing.
func TestBadInput(t *testing.T) {
	requireRoot(t)
	cgBefore, _ := os.ReadDir("/sys/fs/cgroup/memory/ctlab")
	cases := map[string]Config{
		"no command":     {Name: "bad1"},
		"bad name":       {Name: "Bad Name!", Args: []string{"true"}},
		"missing rootfs": {Name: "bad2", Rootfs: "/nonexistent/rootfs", Args: []string{"true"}},
		"net without ns": {Name: "bad3", Namespaces: []Namespace{NSMount}, Net: true, Args: []string{"true"}},
		"userns, no mnt": {Name: "bad4", Namespaces: []Namespace{NSUser, NSUTS}, Args: []string{"true"}},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Start(context.Background(), cfg)
			if err == nil {
				t.Fatal("Start accepted bad input")
			}
			var ie *InputError
			if !asInputError(err, &ie) {
				t.Errorf("error %v is not an InputError", err)
			}
			if _, err := os.Stat("/var/lib/ctlab/containers/" + cfg.Name); err == nil {
				t.Errorf("a directory was created for bad input")
			}
		})
	}
	c, _ := startT(t, sleeper())
	if _, err := Start(context.Background(), Config{Name: c.Name, Args: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := ParseNamespaces("mnt,bogus"); err == nil {
		t.Error("ParseNamespaces accepted an unknown kind")
	}
	cgAfter, _ := os.ReadDir("/sys/fs/cgroup/memory/ctlab")
	if len(cgAfter) > len(cgBefore)+1 { // +1: the running duplicate-name container
		t.Errorf("cgroups grew from %d to %d entries", len(cgBefore), len(cgAfter))
	}
}
