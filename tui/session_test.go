package tui

import (
	"context"
	"testing"
	"time"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/sandbox"
)

func shipped(t testing.TB, id string) *lab.Scenario {
	t.Helper()
	list, err := lab.Shipped()
	if err != nil && len(list) == 0 {
		t.Fatalf("load scenarios: %v", err)
	}
	s, err := lab.Find(list, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSessionPrepareResumes rebuilds the kernel state of step 2 of ns-uts
// (its container running) as a re-opened lesson does, and cleans up.
func TestSessionPrepareResumes(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := shipped(t, "ns-uts")
	sess, err := NewBackend().Open(ctx, s, "en")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sess.Close(context.Background(), false); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if err := sess.Prepare(ctx, 1); err != nil {
		t.Fatalf("prepare step 1: %v", err)
	}
	snap := sess.Snapshot(ctx, 1)
	if snap.Container != "ns-uts-box" || snap.Hostname.Container != "ctlab" {
		t.Fatalf("after prepare: container %q hostname %q, want ns-uts-box / ctlab", snap.Container, snap.Hostname.Container)
	}
}

// TestSnapshotReadsTheKernel reads every section of the task step's panes
// from a real container and checks each against what was done to it.
func TestSnapshotReadsTheKernel(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, err := testBackend(t).Open(ctx, goldenScenario(t), "en")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sess.Close(context.Background(), false); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if ok, err := sess.Run(ctx, 0); err != nil || !ok {
		t.Fatalf("run step 1: passed %v, %v", ok, err)
	}
	c, err := sandbox.Load("golden-uts-box")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.Exec(ctx, sandbox.ExecConfig{Args: []string{"sh", "-c", "echo hi > /newfile"}}); err != nil || code != 0 {
		t.Fatalf("write a file in the container: exit %d, %v", code, err)
	}
	snap := sess.Snapshot(ctx, 1) // hostname, cgroup, overlay, links, ids, time
	if snap.Err != "" {
		t.Errorf("reading errors: %s", snap.Err)
	}
	if snap.Container != "golden-uts-box" || snap.Pid != c.Pid {
		t.Errorf("watched %s pid %d, want golden-uts-box pid %d", snap.Container, snap.Pid, c.Pid)
	}
	if snap.Hostname.Container != "ctlab" || snap.Hostname.Host == "" {
		t.Errorf("hostname pair %+v", snap.Hostname)
	}
	if snap.Cgroup == nil || snap.Cgroup.PidsCurrent < 1 {
		t.Errorf("cgroup: %+v, want at least the init counted", snap.Cgroup)
	}
	found := false
	if snap.Overlay != nil {
		for _, ch := range snap.Overlay.Changes {
			found = found || (ch.Path == "/newfile" && ch.Kind == "added")
		}
	}
	if !found {
		t.Errorf("overlay: /newfile not listed as added: %+v", snap.Overlay)
	}
	if len(snap.Nets) == 0 || snap.Nets[0].Name != "host" || snap.Nets[0].Inode == 0 {
		t.Errorf("links: %+v", snap.Nets)
	}
	if len(snap.UIDMap) == 0 || snap.Time == nil {
		t.Errorf("uid map %v, time offsets %v", snap.UIDMap, snap.Time)
	}
}
