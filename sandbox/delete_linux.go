package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

const sigTERM = syscall.SIGTERM

// Wait blocks until the container's init exits and returns its exit status.
// The status is only known to the process that started the container; for
// one loaded from state, Wait polls the kernel and returns -1.
func (c *Container) Wait(ctx context.Context) (int, error) {
	if c.waited != nil {
		select {
		case <-c.waited:
			return c.exit, c.werr
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.Running() {
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-tick.C:
		}
	}
	return -1, nil
}

// Kill sends sig to the container's init. Note that the init of a pid
// namespace only receives signals it has a handler for, except SIGKILL.
func (c *Container) Kill(sig syscall.Signal) error {
	if !c.Running() {
		return fmt.Errorf("container %s is not running", c.Name)
	}
	return syscall.Kill(c.Pid, sig)
}

// Pause freezes every process of the container (cgroup freezer).
func (c *Container) Pause(ctx context.Context) error {
	cg, err := c.Cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze(ctx)
}

// Unpause thaws the container.
func (c *Container) Unpause(ctx context.Context) error {
	cg, err := c.Cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw(ctx)
}

// Remove deletes the container: its processes, cgroup, veth, overlay mount,
// directories, state and journal. A running container is only removed with
// force.
func (c *Container) Remove(ctx context.Context, force bool) error {
	if c.Running() && !force {
		return &InputError{Problem: fmt.Sprintf("container %q is running", c.Name), Fix: "stop it first or use ctlab rm -f " + c.Name}
	}
	lk, err := lockName(c.Name)
	if err == nil {
		defer lk.Close()
	}
	if err := cleanupWith(ctx, c.Name, &c.State); err != nil {
		return err
	}
	if c.probe != nil {
		c.probe.Close()
		c.probe = nil
	}
	if c.waited != nil {
		select {
		case <-c.waited:
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// cleanupOne removes everything the journal (and the state file) of one
// container names, in reverse order of creation: processes, cgroup, link,
// mount, directory. Every step tolerates the object being already gone, so
// it can run any number of times.
func cleanupOne(ctx context.Context, name string) error { return cleanupWith(ctx, name, nil) }

// cleanupWith is cleanupOne with the container's state already loaded (nil:
// read it from the state file, if there is one).
func cleanupWith(ctx context.Context, name string, st *State) error {
	recs, err := readJournal(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var errs []error
	if st == nil {
		if c, err := Load(name); err == nil {
			st = &c.State
		}
	}
	// 1. processes: the journalled init (pid + start time), then whatever is
	// left in the cgroup.
	for _, r := range recs {
		if r.Kind == recProcess && Alive(r.Pid, r.Start) {
			syscall.Kill(r.Pid, syscall.SIGKILL)
		}
	}
	if st != nil && Alive(st.Pid, st.Start) {
		syscall.Kill(st.Pid, syscall.SIGKILL)
	}
	hasCgroup := false
	var links []string
	var mounts, dirs []string
	for _, r := range recs {
		switch r.Kind {
		case recCgroup:
			hasCgroup = true
		case recLink:
			links = append(links, r.Name)
		case recMount:
			mounts = append(mounts, r.Path)
		case recDir:
			dirs = append(dirs, r.Path)
		}
	}
	if st != nil {
		if st.Layout.Merged != "" {
			mounts = append(mounts, st.Layout.Merged)
		}
		if st.Dir != "" && st.Layout.Upper == filepath.Join(st.Dir, "rw", "upper") {
			mounts = append(mounts, filepath.Join(st.Dir, "rw")) // UpperLimit's tmpfs, after merged
		}
		if st.Dir != "" {
			dirs = append(dirs, st.Dir)
		}
		if st.Net != nil {
			links = append(links, st.Net.HostIf)
		}
		hasCgroup = true
	}
	// The journal and the state file name the same objects: act once each.
	links, mounts, dirs = slices.Compact(sorted(links)), slices.Compact(sorted(mounts)), slices.Compact(sorted(dirs))
	if hasCgroup {
		if err := cgroups.Remove(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	errs = append(errs, removeCgroupAt(ctx, name, recs)...)
	// 2. the veth: it usually died with the network namespace already.
	for _, l := range links {
		if err := network.DeleteLink(l); err != nil {
			errs = append(errs, fmt.Errorf("delete link %s: %w", l, err))
		}
	}
	// 3. the overlay mount and the container directory.
	for _, m := range mounts {
		if err := overlay.UnmountLazy(m); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	for _, d := range dirs {
		if !underDir(d, containersDir()) {
			continue // never remove what is not ours
		}
		// Never walk into a mount: rootfs (a container without a mount
		// namespace of its own) may hold binds of host directories.
		if m := stillMounted(d, "merged", "rootfs"); m != "" {
			errs = append(errs, fmt.Errorf("%s is still mounted; not removing", m))
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// 4. only when everything is gone: forget it.
	if err := os.Remove(statePath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return removeJournal(name)
}

// stillMounted returns the first of dir's subdirectories that is a mount
// point, or "".
func stillMounted(dir string, subs ...string) string {
	for _, sub := range subs {
		if mounted, _ := overlay.IsMounted(filepath.Join(dir, sub)); mounted {
			return filepath.Join(dir, sub)
		}
	}
	return ""
}

func underDir(p, dir string) bool {
	return len(p) > len(dir)+1 && p[:len(dir)+1] == dir+"/"
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
