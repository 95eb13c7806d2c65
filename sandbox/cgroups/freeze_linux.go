package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/internal/backoff"
)

// Freezing stops every task of the group without killing it: v1 writes
// FROZEN to freezer.state, v2 writes 1 to cgroup.freeze. Both are
// asynchronous, so we poll the kernel's answer. containerd's loops have no
// bound; ours stop at ctx's deadline (then the group is thawed again).

// Freeze stops every process in the cgroup and waits until the kernel says FROZEN.
func (c *Cgroup) Freeze(ctx context.Context) error {
	if err := c.setFrozen(ctx, true); err != nil {
		// Do not leave a half-frozen group behind (runc does the same).
		tctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = c.setFrozen(tctx, false)
		return fmt.Errorf("freeze cgroup %s: %w", c.name, err)
	}
	return nil
}

// Thaw resumes the processes and waits until the kernel says THAWED.
func (c *Cgroup) Thaw(ctx context.Context) error {
	if err := c.setFrozen(ctx, false); err != nil {
		return fmt.Errorf("thaw cgroup %s: %w", c.name, err)
	}
	return nil
}

func (c *Cgroup) freezerFile() (string, error) {
	if c.mode == V2 {
		f := filepath.Join(c.v2dir, "cgroup.freeze")
		if !exists(f) {
			return "", errors.New("cgroup.freeze missing (v2 freezer needs Linux 5.2+)")
		}
		return f, nil
	}
	dir, ok := c.paths["freezer"]
	if !ok {
		return "", errors.New("the v1 freezer controller is not mounted")
	}
	return filepath.Join(dir, "freezer.state"), nil
}

func (c *Cgroup) setFrozen(ctx context.Context, frozen bool) error {
	f, err := c.freezerFile()
	if err != nil {
		return err
	}
	want, val := "THAWED", "0"
	if frozen {
		want, val = "FROZEN", "1"
	}
	if c.mode == V1 {
		val = want
	}
	if err := writeFile(f, val); err != nil {
		return err
	}
	// A v1 group can stay FREEZING when a task sleeps where it cannot be
	// frozen (e.g. in vfork); runc's remedy is to thaw and retry, here
	// every 100 ms.
	var st string
	retried := time.Now()
	err = backoff.Until(ctx, func() (bool, error) {
		var err error
		if st, err = c.FreezerState(); err != nil || st == want {
			return err == nil, err
		}
		if c.mode == V1 && frozen && time.Since(retried) >= 100*time.Millisecond {
			retried = time.Now()
			_ = writeFile(f, "THAWED")
			if err := writeFile(f, "FROZEN"); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("still %s, wanted %s: %w", st, want, ctx.Err())
	}
	return err
}

// Freezer names the files that hold a cgroup's freezer state, so that a
// later process can read the state without opening the cgroup: an OCI
// runtime's state and start ask for it on every call, and opening a v1
// cgroup means scanning mountinfo and stat-ing every hierarchy.
type Freezer struct {
	// File is v1's freezer.state or v2's cgroup.freeze.
	File string `json:"file"`
	// Events is v2's cgroup.events ("frozen 1" once done); empty on v1.
	Events string `json:"events,omitempty"`
}

// Freezer returns the cgroup's freezer files.
func (c *Cgroup) Freezer() (Freezer, error) {
	f, err := c.freezerFile()
	if err != nil {
		return Freezer{}, err
	}
	if c.mode == V1 {
		return Freezer{File: f}, nil
	}
	return Freezer{File: f, Events: filepath.Join(c.v2dir, "cgroup.events")}, nil
}

// State reads the kernel's state: "THAWED", "FREEZING" or "FROZEN". v2 has
// no such file: cgroup.freeze says what was asked and cgroup.events
// "frozen 1" says it is done; asked-but-not-done is FREEZING, and
// "THAWING" the other way round.
func (f Freezer) State() (string, error) {
	b, err := os.ReadFile(f.File)
	if err != nil {
		return "", err
	}
	if f.Events == "" {
		return strings.TrimSpace(string(b)), nil
	}
	ev, err := readKV(f.Events)
	if err != nil {
		return "", err
	}
	switch {
	case strings.TrimSpace(string(b)) == "0":
		if ev["frozen"] == 1 {
			return "THAWING", nil
		}
		return "THAWED", nil
	case ev["frozen"] == 1:
		return "FROZEN", nil
	default:
		return "FREEZING", nil
	}
}

// FreezerState reads the kernel's freezer state of the cgroup (see
// Freezer.State).
func (c *Cgroup) FreezerState() (string, error) {
	f, err := c.Freezer()
	if err == nil {
		var st string
		if st, err = f.State(); err == nil {
			return st, nil
		}
	}
	return "", fmt.Errorf("freezer state of %s: %w", c.name, err)
}
