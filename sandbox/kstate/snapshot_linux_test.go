package kstate

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// A container-like subject (own uts, net and ipc namespaces, a ctlab
// cgroup, an overlay) read with every part: each part holds what was done
// to the kernel, and names where it was read.
func TestReadSnapshotOfAContainer(t *testing.T) {
	needRoot(t)
	name := "kstate-snap-" + strconv.Itoa(os.Getpid())
	cg, err := cgroups.Create(name, cgroups.Limits{PidsMax: 42})
	if err != nil {
		t.Skipf("cannot create a cgroup here: %v", err)
	}
	defer cgroups.Remove(context.Background(), name)
	child := startChild(t, syscall.CLONE_NEWUTS|syscall.CLONE_NEWNET|syscall.CLONE_NEWIPC,
		"sh", "-c", "hostname snap-test && exec sleep 60")
	pid := child.Process.Pid
	if err := cg.Add(pid); err != nil {
		t.Fatal(err)
	}
	l := testOverlay(t)
	os.WriteFile(filepath.Join(l.Merged, "new"), []byte("x"), 0o644)
	eventually(t, func() string {
		if h, _, _, _ := UTSNames(pid); h != "snap-test" {
			return "hostname not set yet: " + h
		}
		return ""
	})

	s := ReadSnapshot(Subject{Name: "box", Pid: pid, Cgroup: name, Layout: l}, PartsAll, nil)
	if len(s.Errors) != 0 || s.Name != "box" || s.Pid != pid {
		t.Fatalf("snapshot %s pid %d errors %v", s.Name, s.Pid, s.Errors)
	}
	for kind, shared := range map[string]bool{"uts": false, "net": false, "ipc": false, "mnt": true, "user": true} {
		if ns := s.Namespaces[kind]; ns.Shared != shared || ns.Container == 0 || ns.Host == 0 {
			t.Errorf("namespace %s: %+v, want shared=%v", kind, ns, shared)
		}
	}
	if _, ok := s.Namespaces["pid_for_children"]; ok {
		t.Error("a for-children link is listed among the namespaces")
	}
	p := s.Process
	if p == nil || p.Hostname.Value != "snap-test" || p.Status.Value.Pid != pid || !p.UIDMap.OK() || !p.Mounts.OK() {
		t.Fatalf("process %+v", p)
	}
	if s.CgroupStats == nil || s.CgroupStats.PidsMax != 42 || s.CgroupStats.PidsCurrent < 1 || len(s.CgroupFiles) == 0 ||
		!strings.Contains(s.Sources["cgroup"], name) {
		t.Errorf("cgroup %+v, %d files, from %q", s.CgroupStats, len(s.CgroupFiles), s.Sources["cgroup"])
	}
	host, _ := NSInode(os.Getpid(), "net")
	if s.NetNS == 0 || s.NetNS == host || len(s.Links) != 1 || s.Links[0].Name != "lo" ||
		!strings.Contains(s.Sources["links"], "/proc/"+itoa(pid)+"/ns/net") {
		t.Errorf("links in netns %d (host %d): %+v from %q", s.NetNS, host, s.Links, s.Sources["links"])
	}
	if s.Layout == nil || len(s.Upper) != 1 || s.Upper[0].Path != "/new" || s.Upper[0].Kind != overlay.Added {
		t.Errorf("upper: %+v", s.Upper)
	}
	if e := s.Err(); e != "" {
		t.Errorf("Err() = %q", e)
	}
}

// Only the parts asked for are read; a cache serves the slow ones for up
// to SlowEvery; an exited process is an error of the snapshot, not a
// failure of the read.
func TestReadSnapshotPartsAndCache(t *testing.T) {
	needRoot(t)
	child := startChild(t, 0, "sh", "-c", "sleep 60 & sleep 60 & wait")
	pid := child.Process.Pid
	var kids []Proc
	eventually(t, func() string {
		kids, _ = Descendants(pid)
		if len(kids) != 2 {
			return "want two sleeps, have " + strconv.Itoa(len(kids))
		}
		return ""
	})

	s := ReadSnapshot(Subject{Name: "p", Pid: pid}, PartUTS, nil)
	if s.Process == nil || s.Process.Hostname.Value == "" || s.Process.Status.Source != "" || s.Namespaces != nil || s.Links != nil {
		t.Errorf("asked for the uts part only, got %+v", s)
	}

	host, _ := NSInode(os.Getpid(), "net")
	s = ReadSnapshot(Subject{Pid: pid, OwnNetOnly: true}, PartLinks, nil)
	if s.NetNS != host || s.Links != nil || !strings.Contains(s.Sources["links"], "not read") {
		t.Errorf("links of a process in the host's net namespace, own only: netns %d (host %d) %v from %q", s.NetNS, host, s.Links, s.Sources["links"])
	}
	if s = ReadSnapshot(Subject{Pid: pid}, PartLinks, nil); s.NetNS != host || len(s.Links) == 0 {
		t.Errorf("links of a process in the host's net namespace: netns %d (host %d) %v", s.NetNS, host, s.Links)
	}

	var c Cache
	first := ReadSnapshot(Subject{Pid: pid}, PartChildren, &c)
	syscall.Kill(kids[0].Pid, syscall.SIGKILL)
	eventually(t, func() string {
		if d := ReadSnapshot(Subject{Pid: pid}, PartChildren, nil).Process.Descendants.Value; len(d) != 1 {
			return "the killed sleep is still listed: " + strconv.Itoa(len(d))
		}
		return ""
	})
	if time.Since(first.Time) < SlowEvery {
		if d := ReadSnapshot(Subject{Pid: pid}, PartChildren, &c).Process.Descendants.Value; len(d) != 2 {
			t.Errorf("cached read within %s: %d descendants, want the 2 of the first read", SlowEvery, len(d))
		}
	}
	time.Sleep(SlowEvery)
	if d := ReadSnapshot(Subject{Pid: pid}, PartChildren, &c).Process.Descendants.Value; len(d) != 1 {
		t.Errorf("after %s the cache still serves %d descendants, want 1", SlowEvery, len(d))
	}

	syscall.Kill(-pid, syscall.SIGKILL)
	child.Wait()
	gone := ReadSnapshot(Subject{Name: "p", Pid: pid}, PartsAll, &c)
	if gone.Process != nil || gone.Errors["process"] == "" {
		t.Errorf("exited process: %+v", gone)
	}
}

func testOverlay(t *testing.T) overlay.Layout {
	t.Helper()
	dir := t.TempDir()
	l := overlay.Layout{Lower: []string{filepath.Join(dir, "lower")}, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged")}
	for _, d := range []string{l.Lower[0], l.Upper, l.Work, l.Merged} {
		os.MkdirAll(d, 0o755)
	}
	if err := overlay.Mount(l); err != nil {
		t.Skipf("overlayfs not available: %v", err)
	}
	t.Cleanup(func() { overlay.Unmount(l.Merged) })
	return l
}
