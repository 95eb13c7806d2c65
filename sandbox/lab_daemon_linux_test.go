package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/overlay"
)

// TestLabDaemonsStopped: a daemon that names the lab directory (and
// re-parents itself, like containerd's shim: here, a new session) is
// killed, a mount it made under the directory detached, by StopLabDaemons
// (the reset) with the journal kept; CleanupLab then removes the directory
// and the journal. A process that names another directory survives, and
// an oci-container record of a container already gone is no error.
func TestLabDaemonsStopped(t *testing.T) {
	requireRoot(t)
	owner := testName(t)
	dir := filepath.Join(LabDir(owner), "cd")
	if err := MakeLabDir(owner, dir); err != nil {
		t.Fatal(err)
	}
	defer CleanupLab(context.Background(), owner)
	if err := IntendLabProcesses(owner, dir); err != nil {
		t.Fatal(err)
	}
	start := func(arg string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", "sleep 600", arg) // arg is $0: it only has to be in argv
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	daemon, bystander := start(filepath.Join(dir, "config.toml")), start("--config="+dir+"-other/x")
	defer bystander.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	mnt := filepath.Join(dir, "state", "rootfs")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := IntendLabContainer(owner, "oci-"+owner+"-gone"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := StopLabDaemons(ctx, owner); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the process naming the lab dir survived StopLabDaemons")
	}
	if ok, _ := overlay.IsMounted(mnt); ok {
		t.Errorf("%s still mounted", mnt)
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process naming another directory was killed: %v", err)
	}
	if _, err := os.Stat(labJournalPath(owner)); err != nil {
		t.Errorf("StopLabDaemons must keep the journal: %v", err)
	}
	if err := CleanupLab(ctx, owner); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	for _, p := range []string{LabDir(owner), labJournalPath(owner)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survived cleanup", p)
		}
	}
}
