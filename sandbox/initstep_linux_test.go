package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary is the containers' init (TestMain): the step registered
// here runs in it. It renames the init args[0] and, with args[1] "fail",
// fails instead of calling ready.
func init() {
	RegisterInitStep("test-step", func(args []string, ready func() error) error {
		if len(args) > 1 && args[1] == "fail" {
			return errors.New("the test step refuses")
		}
		name, _ := unix.BytePtrFromString(args[0])
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
			return err
		}
		if err := ready(); err != nil {
			return err
		}
		time.Sleep(time.Hour) // until the test removes the container
		return nil
	})
}

// A registered step runs in the container's init itself, and Start returns
// once it says ready: the init's name is already the step's, with no exec.
func TestInitStepRunsInProcess(t *testing.T) {
	c, _ := startT(t, Config{Args: []string{"/.ctlab/ctlab", "test-step", "stepped"}})
	if comm := strings.TrimSpace(readFile(t, fmt.Sprintf("/proc/%d/comm", c.Pid))); comm != "stepped" {
		t.Errorf("the init's comm when Start returned: %q, want the step's %q", comm, "stepped")
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.Pid))
	if self, _ := os.Executable(); err != nil || exe != self {
		t.Errorf("the init runs %q (%v), want the init binary %q: no exec of /.ctlab/ctlab", exe, err, self)
	}
}

// A step that fails before ready fails Start, which removes what it made.
func TestInitStepErrorFailsStart(t *testing.T) {
	requireRoot(t)
	name := testName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Name: name, MountSelf: true, Args: []string{"/.ctlab/ctlab", "test-step", "x", "fail"}})
	if err == nil {
		c.Remove(context.Background(), true)
		t.Fatal("Start succeeded with a failing step")
	}
	if !strings.Contains(err.Error(), "the test step refuses") {
		t.Errorf("Start's error %q does not carry the step's", err)
	}
	if _, err := Load(name); err == nil {
		t.Error("the container's state is still there")
	}
	if _, err := os.Stat(filepath.Join(journalDir(), name+".jsonl")); err == nil {
		t.Error("the container's journal is still there")
	}
}
