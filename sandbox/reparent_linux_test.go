package sandbox

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// TestReparentWait: with Reparent the C stage exits once it reported the
// init, pid 1 of its pid namespace, which goes to the nearest child
// subreaper. As that subreaper, Wait reaps the init and gets its status;
// otherwise the init is no child of ours and Wait sees its exit, status -1.
func TestReparentWait(t *testing.T) {
	requireRoot(t)
	ns := []Namespace{NSMount, NSUTS, NSIPC, NSPID}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _ := startT(t, Config{Namespaces: ns, Reparent: true, Args: []string{"sleep", "100"}})
	st, err := kstate.ReadStatus(c.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.NSpid); n < 2 || st.NSpid[n-1] != 1 {
		t.Fatalf("init %d: NSpid %v, want pid 1 of its own namespace", c.Pid, st.NSpid)
	}
	if p, err := kstate.ReadStat(c.Pid); err != nil || p.PPid != os.Getpid() {
		t.Fatalf("init %+v (%v): want a child of the subreaper %d", p, err, os.Getpid())
	}
	if err := c.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx); code != 128+9 || err != nil {
		t.Fatalf("Wait after SIGKILL: %d %v, want 137", code, err)
	}
	c, _ = startT(t, Config{Namespaces: ns, Reparent: true, Args: []string{"sh", "-c", "exit 7"}})
	if code, err := c.Wait(ctx); code != 7 || err != nil {
		t.Fatalf("Wait: %d %v, want 7", code, err)
	}

	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	c, _ = startT(t, Config{Namespaces: ns, Reparent: true, Args: []string{"sleep", "100"}})
	if p, err := kstate.ReadStat(c.Pid); err != nil || p.PPid == os.Getpid() {
		t.Fatalf("init %+v (%v): re-parented to the test, which is no subreaper", p, err)
	}
	if err := c.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx); code != -1 || err != nil {
		t.Fatalf("Wait outside the subreaper: %d %v, want -1 once it exits", code, err)
	}
}
