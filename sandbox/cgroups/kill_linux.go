package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/internal/backoff"
)

// Kill SIGKILLs every process in the cgroup (and its sub-groups) and waits
// until none is left. v2 with cgroup.kill (5.14+) lets the kernel do it
// atomically; otherwise, as runc does: freeze (so nobody can fork a new
// child between our listing and our signal), SIGKILL each pid, thaw (frozen
// tasks only die once thawed), and repeat until empty.
func (c *Cgroup) Kill(ctx context.Context) error {
	if err := c.checkNotSelf(); err != nil {
		return err
	}
	if c.mode == V2 {
		if f := filepath.Join(c.v2dir, "cgroup.kill"); exists(f) {
			if err := writeFile(f, "1"); err != nil {
				return fmt.Errorf("kill cgroup %s: %w", c.name, err)
			}
			if err := c.waitEmpty(ctx); err != nil {
				return fmt.Errorf("kill cgroup %s: %w", c.name, err)
			}
			return nil
		}
	}
	for {
		pids, err := c.Procs()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kill cgroup %s: %w", c.name, err)
		}
		if len(pids) == 0 {
			return nil
		}
		_, noFreezer := c.freezerFile()
		if noFreezer == nil && c.setFrozen(ctx, true) == nil {
			pids, _ = c.Procs() // the final list, now that nobody can fork
		}
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL) // ESRCH: it already exited
		}
		if noFreezer == nil {
			tctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = c.setFrozen(tctx, false)
			cancel()
		}
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err = c.waitEmpty(wctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			left, _ := c.Procs()
			return fmt.Errorf("kill cgroup %s: processes %v still there: %w", c.name, left, ctx.Err())
		}
	}
}

// checkNotSelf refuses to kill a cgroup that contains the calling process.
func (c *Cgroup) checkNotSelf() error {
	pids, err := c.Procs()
	if err != nil {
		return nil
	}
	for _, p := range pids {
		if p == os.Getpid() {
			return fmt.Errorf("kill cgroup %s: refusing, it contains this process (pid %d)", c.name, p)
		}
	}
	return nil
}

// waitEmpty polls until no process is left (v2: cgroup.events populated 0).
func (c *Cgroup) waitEmpty(ctx context.Context) error {
	err := backoff.Until(ctx, func() (bool, error) {
		if c.mode == V2 {
			ev, err := readKV(filepath.Join(c.v2dir, "cgroup.events"))
			return errors.Is(err, os.ErrNotExist) || (err == nil && ev["populated"] == 0), nil
		}
		pids, err := c.Procs()
		return errors.Is(err, os.ErrNotExist) || (err == nil && len(pids) == 0), nil
	})
	if err != nil && ctx.Err() != nil {
		left, _ := c.Procs()
		return fmt.Errorf("processes %v still in the cgroup: %w", left, ctx.Err())
	}
	return err
}

// Delete kills the processes, then removes the directories in every
// hierarchy. A cgroup that is already gone is fine.
func (c *Cgroup) Delete(ctx context.Context) error {
	if err := c.Kill(ctx); err != nil {
		return fmt.Errorf("delete cgroup %s: %w", c.name, err)
	}
	if c.unit != "" { // systemd removes the scope's directory when the unit stops
		return StopUnit(ctx, c.unit)
	}
	if err := c.removeDirs(ctx); err != nil {
		return fmt.Errorf("delete cgroup %s: %w", c.name, err)
	}
	return nil
}

// removeDirs rmdirs the cgroup directories, deepest sub-group first. A cgroup
// directory is removed with rmdir even though it "contains" control files
// (os.RemoveAll would try to unlink them and fail with EPERM); EBUSY means a
// task is still exiting, so we retry until ctx ends.
func (c *Cgroup) removeDirs(ctx context.Context) error {
	var errs []error
	for _, d := range c.dirs() {
		var tree []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				tree = append(tree, p)
			}
			return nil
		})
		// Longest path first = children before parents.
		sort.Slice(tree, func(i, j int) bool { return len(tree[i]) > len(tree[j]) })
		for _, p := range tree {
			if !strings.HasPrefix(p, d) {
				continue
			}
			if err := rmdirRetry(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func rmdirRetry(ctx context.Context, p string) error {
	var busy error
	err := backoff.Until(ctx, func() (bool, error) {
		err := unix.Rmdir(p)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return true, nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return false, fmt.Errorf("rmdir %s: %w", p, err)
		}
		busy = err
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("rmdir %s: %w (%v)", p, busy, ctx.Err())
	}
	return err
}

// RemovePath kills the processes of the cgroup at rel (a path relative to
// each hierarchy's root, such as an OCI bundle's cgroupsPath
// "/ctlab-runc-ID-AS") and removes its directories in every hierarchy. Only
// paths whose first component starts with "ctlab-" are accepted, so it can
// only ever remove a cgroup ctlab asked a runtime to make. A missing cgroup
// is not an error.
func RemovePath(ctx context.Context, rel string) error {
	clean := filepath.Clean("/" + rel)
	top, _, _ := strings.Cut(strings.TrimPrefix(clean, "/"), "/")
	if clean != rel || !strings.HasPrefix(top, parentName+"-") {
		return fmt.Errorf("remove cgroup %s: not a ctlab-* cgroup path", rel)
	}
	c := &Cgroup{name: rel, mode: Effective(), paths: map[string]string{}}
	switch c.mode {
	case V1:
		// Every mounted hierarchy, not only those ctlab uses: the other
		// runtime makes its group in each (net_cls, systemd, unified ...).
		ents, err := os.ReadDir(unifiedRoot)
		if err != nil {
			return fmt.Errorf("remove cgroup %s: %w", rel, err)
		}
		for _, e := range ents {
			if p := filepath.Join(unifiedRoot, e.Name(), clean); exists(p) {
				c.paths[e.Name()] = p
			}
		}
	case V2:
		if p := filepath.Join(unifiedRoot, clean); exists(p) {
			c.v2dir, c.paths["unified"] = p, p
		}
	}
	if len(c.paths) == 0 {
		return nil
	}
	return c.Delete(ctx)
}
