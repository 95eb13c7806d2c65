// Package backoff waits for a condition that only polling can see: a
// process changing its name at exec, a cgroup emptying, a freezer settling.
// The kernel sends no event for these, so the caller asks again and again.
//
// Why not a time.Ticker: when a Go program has nothing else to do, a timer
// shorter than a millisecond is rounded up to one, because the runtime waits
// for it in epoll_wait, whose timeout counts whole milliseconds. A runtime
// call whose wait is over after 100 µs would sleep a whole millisecond per
// round (the OCI runtime's start measured ~2 ms of such sleeps). The first
// rounds here sleep with nanosleep(2) on the calling thread, which wakes
// when asked; only a long wait moves on to Go timers, doubling up to a cap.
package backoff

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

const (
	fine     = 50 * time.Microsecond // the nanosleep step
	fineFor  = 5 * time.Millisecond  // how long to use it
	coarsest = 5 * time.Millisecond  // the longest timer step after that
)

// Until calls done until it reports true or an error, or ctx ends (then
// ctx's error is returned). It first polls every 50 µs, for 5 ms, then on
// Go timers doubling from 1 ms to 5 ms.
func Until(ctx context.Context, done func() (bool, error)) error {
	start := time.Now()
	step := time.Millisecond
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Since(start) < fineFor {
			ts := unix.NsecToTimespec(int64(fine))
			_ = unix.Nanosleep(&ts, nil) // EINTR: just ask again sooner
			continue
		}
		t := time.NewTimer(step)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		step = min(2*step, coarsest)
	}
}
