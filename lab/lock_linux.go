package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
)

// lockScenario takes the per-scenario lock. Container names are fixed
// ("<id>-<name>"), so two runs of one scenario at once would remove each
// other's containers; the second run waits for the first (until ctx ends).
func lockScenario(ctx context.Context, id string) (*os.File, error) {
	dir := filepath.Join(sandbox.RunDir, "locks", "scenarios") // apart from the sandbox's per-container locks
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock scenario %s: %w", id, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, id+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock scenario %s: %w", id, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != unix.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock scenario %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("scenario %s is being run by another ctlab process: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
