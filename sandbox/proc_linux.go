package sandbox

import (
	"fmt"
	"strconv"
	"syscall"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// procStartTime returns the process start time in clock ticks since boot
// (field 22 of /proc/<pid>/stat). Together with the pid it names a process
// uniquely, so a recycled pid is never mistaken for our container (runc's
// InitProcessStartTime).
func procStartTime(pid int) (uint64, error) {
	p, err := kstate.ReadStat(pid)
	return p.Start, err
}

// Alive reports whether pid is still the process that started at start
// (and not a zombie): one read of /proc/<pid>/stat. sandbox/oci uses it
// for the records it keeps under --root.
func Alive(pid int, start uint64) bool {
	_, ok := Comm(pid, start)
	return ok
}

// Comm returns the name of pid (its comm) while it is still the process
// that started at start and not a zombie; ok is false otherwise. The same
// single read of /proc/<pid>/stat as Alive: sandbox/oci tells created from
// running by the name of a live init.
func Comm(pid int, start uint64) (comm string, ok bool) {
	if pid <= 0 {
		return "", false
	}
	p, err := kstate.ReadStat(pid)
	if err != nil || p.Start != start || p.State == 'Z' || p.State == 'X' {
		return "", false
	}
	return p.Comm, true
}

// NSInode returns the inode number of /proc/<pid>/ns/<kind> ("self" allowed
// via pid 0): two processes share a namespace exactly when these match.
func NSInode(pid int, kind Namespace) (uint64, error) {
	p := "self"
	if pid > 0 {
		p = strconv.Itoa(pid)
	}
	var st syscall.Stat_t
	path := "/proc/" + p + "/ns/" + string(kind)
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}
