package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/overlay"
)

// A lesson may run other programs' daemons inside its lab directory (a
// private containerd, podman's storage): they outlive the command that
// started them on purpose (containerd's shims and podman's conmon re-parent
// themselves to PID 1), so a killed ctlab cannot take them along. Two
// records name them before they exist:
//
//   - processes-in DIR: every process whose command line names DIR or a
//     path under it (the daemon's --config, a shim's -address, conmon's -b)
//     is killed, then every mount under DIR is detached;
//   - oci-container NAME: a sandbox container another program creates
//     through ctlab's OCI runtime (bin/ctlab-oci), removed like any other.
//
// Cleanup only ever kills processes that name the owner's own lab directory.
const (
	recProcsIn      = "processes-in"  // Path: a directory under LabDir(owner)
	recOCIContainer = "oci-container" // Name: a sandbox container made by ctlab-oci
)

// IntendLabProcesses journals dir (under LabDir(owner)) as the home of
// daemons the lesson is about to start: cleanup kills every process that
// names it and detaches the mounts under it.
func IntendLabProcesses(owner, dir string) error {
	return intendLab(owner, Record{Kind: recProcsIn, Path: dir})
}

// IntendLabContainer journals the sandbox container name that ctlab's OCI
// runtime is about to create for the lesson (a `ctr run`, a `podman run`).
func IntendLabContainer(owner, name string) error {
	if name == "" || filepath.Base(name) != name {
		return fmt.Errorf("invalid container name %q", name)
	}
	return intendLab(owner, Record{Kind: recOCIContainer, Name: name})
}

// StopLabDaemons undoes owner's processes-in and oci-container records
// (newest first) and keeps the journal: a reset calls it before it removes
// the lab directory, since a daemon still writes there and its mounts hold
// files in it. CleanupLab later undoes them again, harmlessly.
func StopLabDaemons(ctx context.Context, owner string) error {
	recs, _, err := labRecords(owner)
	if err != nil {
		return err
	}
	var errs []error
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Kind != recProcsIn && r.Kind != recOCIContainer {
			continue
		}
		if r.Kind == recProcsIn && !underDir(filepath.Clean(r.Path), LabDir(owner)) {
			continue
		}
		if err := undoDaemon(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("%s %s%s: %w", r.Kind, r.Path, r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// undoDaemon removes the object of a processes-in or oci-container record.
func undoDaemon(ctx context.Context, r Record) error {
	if r.Kind == recOCIContainer {
		lk, err := lockName(r.Name)
		if err == nil {
			defer lk.Close()
		}
		return cleanupOne(ctx, r.Name)
	}
	return stopProcessesIn(ctx, filepath.Clean(r.Path))
}

// stopProcessesIn SIGKILLs every process whose command line names dir,
// waits for them to go, then detaches every mount under dir.
func stopProcessesIn(ctx context.Context, dir string) error {
	for try := 0; ; try++ {
		pids := processesNaming(dir)
		if len(pids) == 0 {
			break
		}
		if try == 100 {
			return fmt.Errorf("processes naming %s survive SIGKILL: %v", dir, pids)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	mps, err := overlay.MountsUnder(dir)
	if err != nil {
		return err
	}
	for _, mp := range mps { // deepest first
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	return nil
}

// processesNaming lists the live processes (not zombies) that have an
// argument equal to dir or inside it ("--config=DIR/x" counts too).
func processesNaming(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 { // gone, or a zombie/kernel thread
			continue
		}
		for _, a := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
			s := string(a)
			if _, v, ok := strings.Cut(s, "="); ok && strings.HasPrefix(s, "-") {
				s = v
			}
			if s == dir || strings.HasPrefix(s, dir+"/") {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
