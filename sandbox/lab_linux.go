package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// The scenario engine's own kernel objects (not containers) are journalled
// like a container's: per owner (a scenario id) in
// RunDir/journal/lab/<owner>.jsonl, each intent written before the object
// exists. `ctlab cleanup` removes them by that record once the owner's
// scenario lock is free (a killed run), and CleanupLab removes them when
// the scenario resets. Every recorded path must lie under LabDir(owner),
// and cleanup re-checks that, so a record can never make ctlab touch
// anything else.

// Record kinds of a lab journal (besides recMount and recDir).
const (
	recBind         = "bind"        // Path: a bind mount point (may be stacked)
	recForeignGroup = "cgroup-path" // Path: a cgroup another runtime makes for us ("/ctlab-runc-...")
	labJournalSub   = "lab"         // journalDir()/lab/<owner>.jsonl
	labRecordFile   = ".jsonl"      // suffix of a journal file
)

func labJournalPath(owner string) string {
	return filepath.Join(journalDir(), labJournalSub, owner+labRecordFile)
}

// validOwner keeps an owner usable as one path component.
func validOwner(owner string) error {
	if owner == "" || owner == "." || owner == ".." || filepath.Base(owner) != owner {
		return fmt.Errorf("invalid lab owner %q", owner)
	}
	return nil
}

// intendLab appends r to owner's lab journal, creating it the first time.
// Paths must lie under LabDir(owner).
func intendLab(owner string, r Record) error {
	if err := validOwner(owner); err != nil {
		return err
	}
	if r.Path != "" && r.Kind != recForeignGroup && !underDir(filepath.Clean(r.Path), LabDir(owner)) {
		return fmt.Errorf("%s %s is not under %s", r.Kind, r.Path, LabDir(owner))
	}
	if err := ensureDirs(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(labJournalPath(owner)), 0o700); err != nil {
		return fmt.Errorf("create lab journal dir: %w", err)
	}
	f, err := os.OpenFile(labJournalPath(owner), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open lab journal: %w", err)
	}
	j := &journal{f: f}
	defer j.close()
	return j.intend(r)
}

// MountOverlay mounts a stand-alone overlay for owner (a scenario id),
// journalled first. l.Merged must lie under LabDir(owner); its directories
// must exist.
func MountOverlay(owner string, l overlay.Layout) error {
	if err := intendLab(owner, Record{Kind: recMount, Path: l.Merged}); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return overlay.Mount(l)
}

// Commit copies the upperdir of l into the new layer directory dst (see
// overlay.CommitDir), journalled first; dst must lie under LabDir(owner).
func Commit(owner string, l overlay.Layout, dst string) error {
	if err := intendLab(owner, Record{Kind: recDir, Path: dst}); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return overlay.CommitDir(l, dst)
}

// MakeLabDir creates the directory dir (under LabDir(owner)), journalled
// first, so `ctlab cleanup` removes it after a killed run (a build
// context the lab writes for `ctlab build`).
func MakeLabDir(owner, dir string) error {
	if err := intendLab(owner, Record{Kind: recDir, Path: dir}); err != nil {
		return fmt.Errorf("lab dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// BindMount bind-mounts src on dst (which must exist and lie under
// LabDir(owner)), journalled first.
func BindMount(owner, src, dst string) error {
	if err := intendLab(owner, Record{Kind: recBind, Path: dst}); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	return nil
}

// IntendCgroupPath journals a cgroup that another runtime will create for
// owner, such as the cgroupsPath of an OCI bundle ctlab writes
// ("/ctlab-runc-..."): cleanup kills its processes and removes it.
func IntendCgroupPath(owner, path string) error {
	return intendLab(owner, Record{Kind: recForeignGroup, Path: path})
}

// LinkContainer connects a running container's network namespace to the
// host with a veth pair (network.Setup), journalled in the container's own
// journal first, so removing or cleaning up the container deletes it.
func LinkContainer(ctx context.Context, c *Container) (*network.Attachment, error) {
	host, _ := network.LinkNames(c.Name)
	j, err := openJournal(c.Name)
	if err != nil {
		return nil, err
	}
	err = j.intend(Record{Kind: recLink, Name: host})
	j.close()
	if err != nil {
		return nil, err
	}
	return network.Setup(ctx, c.Name, c.Pid)
}

// CleanupLab removes every object owner's lab journal names, in reverse
// order (bind mounts, overlays, cgroups, committed layers), then the lab
// directory and the journal. The caller owns the scenario (holds its lock,
// or knows it is dead). Nothing outside LabDir(owner) and ctlab-* cgroups is
// touched; a missing object is fine.
func CleanupLab(ctx context.Context, owner string) error {
	if err := validOwner(owner); err != nil {
		return err
	}
	recs, ok, err := labRecords(owner)
	if !ok || err != nil {
		return err
	}
	dir := LabDir(owner)
	var errs []error
	slices.Reverse(recs)
	for _, r := range recs {
		if r.Kind != recForeignGroup && r.Kind != recOCIContainer && !underDir(filepath.Clean(r.Path), dir) {
			continue // never act on a path that is not the owner's
		}
		if err := undoLab(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.Kind, r.Path, err))
		}
	}
	if len(errs) == 0 {
		if mps, _ := overlay.MountsUnder(dir); len(mps) > 0 {
			errs = append(errs, fmt.Errorf("%s: still mounted (not by ctlab's records): %v", dir, mps))
		} else if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(labJournalPath(owner)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// labRecords reads owner's lab journal; ok is false when there is none.
func labRecords(owner string) (recs []Record, ok bool, err error) {
	if err := validOwner(owner); err != nil {
		return nil, false, err
	}
	recs, err = readJournalFile(labJournalPath(owner))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return recs, err == nil, err
}

// undoLab removes the object of one lab record.
func undoLab(ctx context.Context, r Record) error {
	switch r.Kind {
	case recMount, recBind:
		for i := 0; i < 8; i++ { // a bind may have been stacked by a replay
			if ok, _ := overlay.IsMounted(r.Path); !ok {
				return nil
			}
			if err := unix.Unmount(r.Path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return err
			}
		}
		return fmt.Errorf("still mounted")
	case recForeignGroup:
		return cgroups.RemovePath(ctx, r.Path)
	case recProcsIn, recOCIContainer:
		return undoDaemon(ctx, r)
	case recDir:
		if mps, _ := overlay.MountsUnder(r.Path); len(mps) > 0 {
			return fmt.Errorf("mounted on: %v", mps)
		}
		return os.RemoveAll(r.Path)
	}
	return nil
}

// labOwners lists the owners that have a lab journal.
func labOwners() ([]string, error) {
	return journalFiles(filepath.Join(journalDir(), labJournalSub))
}
