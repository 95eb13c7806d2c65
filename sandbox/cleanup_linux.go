package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// CleanupReport says what Cleanup removed and what it left alone.
type CleanupReport struct {
	Removed []string `json:"removed"` // containers removed (left behind by a killed run, or all with All)
	Kept    []string `json:"kept"`    // healthy containers left running
	Swept   []string `json:"swept"`   // stray ctlab objects with no journal (cgroups, links, mounts, dirs)
}

// CleanupOptions select what Cleanup removes.
type CleanupOptions struct {
	// All also removes healthy running containers (detached ones, and
	// foreground ones whose ctlab process is alive).
	All bool
}

// leftBehind reports whether a container is debris of a killed run: its
// start never completed, its init is gone, or the foreground ctlab process
// that owned it is gone.
func leftBehind(name string) bool {
	c, err := Load(name)
	if err != nil || !c.Running() {
		return true
	}
	if c.Detached {
		return false
	}
	return c.Owner == nil || !Alive(c.Owner.Pid, c.Owner.Start)
}

// Cleanup removes every kernel object and directory a killed ctlab run left
// behind: containers named in the journal, the objects of killed scenario
// runs named in their lab journals, plus stray objects that carry ctlab's
// names (cgroups ctlab/*, links ctl????????[hc], mounts and dirs under
// /var/lib/ctlab/containers). It never touches anything else, and running
// it twice is harmless. A global lock keeps two cleanups apart.
func Cleanup(ctx context.Context, opt CleanupOptions) (*CleanupReport, error) {
	if os.Geteuid() != 0 {
		return nil, &InputError{Problem: "cleanup must run as root", Fix: "sudo ctlab cleanup"}
	}
	if err := ensureDirs(); err != nil {
		return nil, err
	}
	glk, err := os.OpenFile(filepath.Join(RunDir, "cleanup.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer glk.Close()
	if err := unix.Flock(int(glk.Fd()), unix.LOCK_EX); err != nil {
		return nil, err
	}
	rep := &CleanupReport{}
	live, err := cleanupContainers(ctx, opt, rep)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	errs := []error{err}
	errs = append(errs, sweepStrays(ctx, live, rep)...)
	errs = append(errs, cleanupLabs(ctx, rep), sweepLabDirs(rep))
	return rep, errors.Join(errs...)
}

// cleanupContainers removes the containers that have a journal or a state
// file and are debris of a killed run (or all, with opt.All). It returns
// the names of those it kept running.
func cleanupContainers(ctx context.Context, opt CleanupOptions, rep *CleanupReport) (live map[string]bool, err error) {
	names := map[string]bool{}
	jn, err := journalNames()
	if err != nil {
		return nil, err
	}
	for _, n := range jn {
		names[n] = true
	}
	cs, _ := List()
	for _, c := range cs {
		names[c.Name] = true
	}
	var errs []error
	live = map[string]bool{}
	for _, n := range sorted(keys(names)) {
		if ctx.Err() != nil {
			return live, ctx.Err()
		}
		// Decide under the name's lock: a start in progress holds it.
		lk, lerr := lockName(n)
		if !opt.All && !leftBehind(n) {
			rep.Kept = append(rep.Kept, n)
			live[n] = true
		} else if err := cleanupOne(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		} else {
			rep.Removed = append(rep.Removed, n)
		}
		if lerr == nil {
			lk.Close()
		}
	}
	return live, errors.Join(errs...)
}

// sweepStrays removes objects with ctlab's names but no journal (e.g. a
// journal lost with /run at reboot while /var/lib survived). A container
// started by another process since the listing has a journal by now (it is
// written before any object): those are left alone.
func sweepStrays(ctx context.Context, live map[string]bool, rep *CleanupReport) []error {
	tracked := func(n string) bool {
		if live[n] || locked(n) {
			return true
		}
		_, err := os.Stat(filepath.Join(journalDir(), n+".jsonl"))
		return err == nil
	}
	var errs []error
	if cgs, err := cgroups.List(); err == nil {
		for _, n := range cgs {
			if tracked(n) {
				continue
			}
			if err := cgroups.Remove(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("cgroup ctlab/%s: %w", n, err))
			} else {
				rep.Swept = append(rep.Swept, "cgroup ctlab/"+n)
			}
		}
	}
	errs = append(errs, sweepLinks(live, rep)...)
	ents, err := os.ReadDir(containersDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if tracked(e.Name()) {
			continue
		}
		d := filepath.Join(containersDir(), e.Name())
		// rootfs: the root of a container without a mount namespace of
		// its own, mounted in ctlab's; then merged, the overlay.
		if err := overlay.Unmount(filepath.Join(d, "rootfs")); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := overlay.Unmount(filepath.Join(d, "merged")); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		} else {
			rep.Swept = append(rep.Swept, "dir "+d)
		}
	}
	return errs
}

// sweepLinks deletes links with ctlab's names whose container has no
// journal and is not running.
func sweepLinks(live map[string]bool, rep *CleanupReport) []error {
	liveLinks := map[string]bool{}
	now, _ := journalNames()
	for _, n := range append(now, keys(live)...) {
		h, p := network.LinkNames(n)
		liveLinks[h], liveLinks[p] = true, true
	}
	links, err := network.Owned()
	if err != nil {
		return nil
	}
	var errs []error
	for _, l := range links {
		if liveLinks[l] {
			continue
		}
		if err := network.DeleteLink(l); err != nil {
			errs = append(errs, fmt.Errorf("link %s: %w", l, err))
		} else {
			rep.Swept = append(rep.Swept, "link "+l)
		}
	}
	return errs
}

// cleanupLabs removes, by their lab journals, the objects of scenario runs
// that no process runs any more (their lock is free).
func cleanupLabs(ctx context.Context, rep *CleanupReport) error {
	owners, err := labOwners()
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range owners {
		if lockHeld(ScenarioLock(o)) {
			continue
		}
		if err := CleanupLab(ctx, o); err != nil {
			errs = append(errs, fmt.Errorf("scenario %s: %w", o, err))
		} else {
			rep.Swept = append(rep.Swept, "lab "+LabDir(o))
		}
	}
	return errors.Join(errs...)
}

// locked reports whether a start of name is in progress right now.
func locked(name string) bool {
	f, err := os.OpenFile(filepath.Join(lockDir(), name+".lock"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// LabDir is where the scenario engine keeps a scenario's own kernel objects
// that are not containers (stand-alone overlays, committed layers, OCI
// bundles): DataDir/lab/<scenario id>.
// It is the one place that path is computed.
func LabDir(id string) string { return filepath.Join(labRoot(), id) }

func labRoot() string { return filepath.Join(DataDir, "lab") }

// ScenarioLock is the lock file a running scenario holds (flock) for its
// whole run, so a cleanup can tell a live scenario from a killed one.
func ScenarioLock(id string) string { return filepath.Join(RunDir, "locks", "scenarios", id+".lock") }

// sweepLabDirs removes the lab directories of scenarios that no process is
// running (their lock is free) and that have no lab journal (cleanupLabs
// handles those): what a killed scenario run left when /run was lost. A
// directory with something mounted under it is left alone: without a
// journal nothing says the mount is ctlab's.
func sweepLabDirs(rep *CleanupReport) error {
	root := labRoot()
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || lockHeld(ScenarioLock(e.Name())) {
			continue
		}
		if _, err := os.Stat(labJournalPath(e.Name())); err == nil {
			continue
		}
		dir := filepath.Join(root, e.Name())
		mps, err := overlay.MountsUnder(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(mps) > 0 {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Swept = append(rep.Swept, "dir "+dir)
	}
	return errors.Join(errs...)
}

// lockHeld reports whether some process holds an flock on path.
func lockHeld(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}
