package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procStartTime returns field 22 of /proc/<pid>/stat: the process start time
// in clock ticks since boot. Together with the pid it names a process
// uniquely, so a recycled pid is never mistaken for our container
// (runc's InitProcessStartTime).
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// The command name (field 2) may contain spaces and parentheses; the
	// fields we want come after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// procState returns field 3 of /proc/<pid>/stat ('R', 'S', 'Z', ...).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return s[i+2], nil
}

// alive reports whether pid is still the process that started at start
// (and not a zombie).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStartTime(pid)
	if err != nil || st != start {
		return false
	}
	state, err := procState(pid)
	return err == nil && state != 'Z' && state != 'X'
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
