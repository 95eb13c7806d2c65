package tui

import (
	"context"
	"testing"
	"time"

	"github.com/ctlab/ctlab/lab"
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
