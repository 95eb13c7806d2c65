package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// cfgReparent tells the C stage to exit once it reported the init's pid
// instead of staying as its waiter (Config.Reparent).
const cfgReparent = "reparent"

// reapStage reaps the C stage of a Reparent start, which exits right after
// it reported the init's pid. Its exit re-parents the init to the nearest
// child subreaper before the stage becomes a zombie, so once this returns
// the init's parent is final. Only the process is waited for: stdio copies
// that are not files end with the init, which holds the other ends.
func reapStage(cmd *exec.Cmd) error {
	ps, err := cmd.Process.Wait()
	if err != nil {
		return fmt.Errorf("reap the init stage: %w", err)
	}
	if !ps.Success() {
		return fmt.Errorf("init stage: %s", ps)
	}
	return nil
}

// waitReparented waits for a re-parented init (pid, started at start) to
// exit. When this process is its parent (the subreaper: ctlab-oci run), it
// reaps the init and returns its status (128+signal when killed); any
// other process watches it exit and returns -1, as Wait does for a
// container loaded from state: the status belongs to the reaper.
func waitReparented(pid int, start uint64) (int, error) {
	p, err := kstate.ReadStat(pid)
	if err != nil || p.Start != start {
		return -1, nil // gone (and reaped) already
	}
	if p.PPid != os.Getpid() {
		return -1, watchExit(pid, start)
	}
	// Our child: its pid cannot be reused before this wait4.
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return -1, fmt.Errorf("wait for init %d: %w", pid, err)
	}
	code, _ := shellCode(ws)
	return code, nil
}

// watchExit returns once pid, not our child, has exited: a pidfd becomes
// readable then (a zombie included); before Linux 5.3, poll /proc.
func watchExit(pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		for Alive(pid, start) {
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
	if errors.Is(err, unix.ESRCH) {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("pidfd of init %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if p, err := kstate.ReadStat(pid); err != nil || p.Start != start {
		return nil // the pid was reused before the pidfd was taken
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(pfd, -1)
		if err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("watch init %d: %w", pid, err)
			}
			return nil
		}
	}
}
