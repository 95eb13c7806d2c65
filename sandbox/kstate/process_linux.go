package kstate

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// Read is one value read from the kernel, with where it came from: the
// Source lets a lesson check show the learner the file it read, so they can
// read the same file themselves. Err is set (and Value zero) when the read
// failed, e.g. the process exited or the kernel lacks the feature.
type Read[T any] struct {
	Value  T      `json:"value"`
	Source string `json:"source"`
	Err    string `json:"error,omitempty"`
}

// OK reports whether the value was read.
func (r Read[T]) OK() bool { return r.Err == "" }

func readOf[T any](v T, source string, err error) Read[T] {
	r := Read[T]{Value: v, Source: source}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// Process is the snapshot of one process.
type Process struct {
	Pid  int       `json:"pid"`
	Time time.Time `json:"time"`

	// Namespaces maps kind -> inode number of /proc/<pid>/ns/<kind>
	// (two processes share a namespace iff the inodes are equal).
	Namespaces map[string]Read[uint64] `json:"namespaces"`
	Status     Read[Status]            `json:"status"`
	UIDMap     Read[[]IDMap]           `json:"uid_map"`
	GIDMap     Read[[]IDMap]           `json:"gid_map"`
	// TimeOffsets is what the kernel says the process's time namespace adds
	// to CLOCK_MONOTONIC and CLOCK_BOOTTIME.
	TimeOffsets Read[TimeOffsets] `json:"time_offsets"`
	// Clocks are the clocks as seen inside the process's time namespace.
	Clocks  Read[Clocks]         `json:"clocks"`
	Cgroups Read[[]CgroupMember] `json:"cgroups"`
	Mounts  Read[[]Mount]        `json:"mounts"`
	// Hostname and Domainname of the process's uts namespace.
	Hostname   Read[string] `json:"hostname"`
	Domainname Read[string] `json:"domainname"`
	// IPC lists the SysV IPC objects visible in the process's ipc namespace.
	IPC Read[IPC] `json:"ipc"`
	// Descendants are the process's children, grandchildren, ... (from a
	// scan of /proc/*/stat), in pid order.
	Descendants Read[[]Proc] `json:"descendants"`
}

// Status is the part of /proc/<pid>/status a lesson shows.
type Status struct {
	Name       string `json:"name"`
	Pid        int    `json:"pid"`
	PPid       int    `json:"ppid"`
	NSpid      []int  `json:"nspid"` // host pid first, innermost pid namespace last
	UID        [4]int `json:"uid"`   // real, effective, saved, filesystem
	GID        [4]int `json:"gid"`
	CapEff     uint64 `json:"cap_eff"`
	CapBnd     uint64 `json:"cap_bnd"`
	NoNewPrivs bool   `json:"no_new_privs"`
	Seccomp    int    `json:"seccomp"` // 0 off, 1 strict, 2 filter
}

// InnerPid is the pid the process has in its own (innermost) pid namespace.
func (s Status) InnerPid() int {
	if len(s.NSpid) == 0 {
		return s.Pid
	}
	return s.NSpid[len(s.NSpid)-1]
}

// IDMap is one line of uid_map/gid_map: ids Inside..Inside+Count-1 in the
// namespace are Outside.. in the parent user namespace.
type IDMap struct {
	Inside, Outside, Count int64
}

func (m IDMap) String() string { return fmt.Sprintf("%d %d %d", m.Inside, m.Outside, m.Count) }

// TimeOffsets are the clock offsets of a time namespace.
type TimeOffsets struct {
	Monotonic time.Duration `json:"monotonic"`
	Boottime  time.Duration `json:"boottime"`
}

// Clocks are CLOCK_MONOTONIC and CLOCK_BOOTTIME values.
type Clocks struct {
	Monotonic time.Duration `json:"monotonic"`
	Boottime  time.Duration `json:"boottime"`
}

// CgroupMember is one line of /proc/<pid>/cgroup (parsed by package
// cgroups, the one parser of that format).
type CgroupMember = cgroups.Member

// Proc is one process of a tree.
type Proc struct {
	Pid  int    `json:"pid"`
	PPid int    `json:"ppid"`
	Comm string `json:"comm"`
	// State (field 3: R, S, Z, ...) and Start (field 22: clock ticks since
	// boot, which with the pid names one process across pid reuse).
	State byte   `json:"-"`
	Start uint64 `json:"-"`
}

// Host returns the snapshot of ctlab's own process: the host's view.
func Host() (*Process, error) { return Of(os.Getpid()) }

// ErrNoProcess is returned when the pid does not exist.
var ErrNoProcess = errors.New("no such process")

// Of reads the snapshot of process pid. It fails only when the process
// does not exist; parts that cannot be read carry their own Err.
func Of(pid int) (*Process, error) { return readParts(pid, PartsProcess, nil) }

// NSInode returns the inode of /proc/<pid>/ns/<kind>.
func NSInode(pid int, kind string) (uint64, error) {
	var st unix.Stat_t
	p := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
	if err := unix.Stat(p, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", p, err)
	}
	return st.Ino, nil
}

// ReadStatus parses /proc/<pid>/status.
func ReadStatus(pid int) (Status, error) {
	p := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		return Status{}, fmt.Errorf("read %s: %w", p, err)
	}
	return parseStatus(string(b))
}

// ParseStatus parses the text of a /proc/<pid>/status file read
// elsewhere (e.g. by a process inside a container, whose user namespace
// the kernel translated the ids for).
func ParseStatus(s string) (Status, error) { return parseStatus(s) }

func parseStatus(s string) (Status, error) {
	var st Status
	ints := func(v string) []int {
		var out []int
		for _, f := range strings.Fields(v) {
			n, err := strconv.Atoi(f)
			if err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			st.Name = v
		case "Pid":
			st.Pid, _ = strconv.Atoi(v)
		case "PPid":
			st.PPid, _ = strconv.Atoi(v)
		case "NSpid":
			st.NSpid = ints(v)
		case "Uid":
			copy(st.UID[:], ints(v))
		case "Gid":
			copy(st.GID[:], ints(v))
		case "CapEff":
			st.CapEff, _ = strconv.ParseUint(v, 16, 64)
		case "CapBnd":
			st.CapBnd, _ = strconv.ParseUint(v, 16, 64)
		case "NoNewPrivs":
			st.NoNewPrivs = v == "1"
		case "Seccomp":
			st.Seccomp, _ = strconv.Atoi(v)
		}
	}
	if st.Pid == 0 {
		return st, errors.New("status has no Pid line")
	}
	return st, nil
}

func readIDMap(p string) ([]IDMap, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var out []IDMap
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var m IDMap
		var e1, e2, e3 error
		m.Inside, e1 = strconv.ParseInt(f[0], 10, 64)
		m.Outside, e2 = strconv.ParseInt(f[1], 10, 64)
		m.Count, e3 = strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(e1, e2, e3); err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// ReadTimeOffsets parses /proc/<pid>/timens_offsets ("monotonic SECS NSECS").
func ReadTimeOffsets(pid int) (TimeOffsets, error) {
	p := fmt.Sprintf("/proc/%d/timens_offsets", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		return TimeOffsets{}, fmt.Errorf("read %s: %w", p, err)
	}
	var off TimeOffsets
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		sec, e1 := strconv.ParseInt(f[1], 10, 64)
		nsec, e2 := strconv.ParseInt(f[2], 10, 64)
		if e1 != nil || e2 != nil {
			return off, fmt.Errorf("parse %s: %q", p, line)
		}
		d := time.Duration(sec)*time.Second + time.Duration(nsec)
		switch f[0] {
		case "monotonic", "1": // older kernels print the clock id
			off.Monotonic = d
		case "boottime", "7":
			off.Boottime = d
		}
	}
	return off, nil
}

// clocksFor computes the clocks as seen inside a time namespace. A Go
// process cannot setns into a time namespace (the kernel refuses it for a
// multi-threaded caller), so instead of reading them inside, this is the
// host clock plus the offsets the kernel reports -- which is exactly what
// the vDSO inside computes.
func clocksFor(off TimeOffsets, offErr error) Read[Clocks] {
	src := "clock_gettime(CLOCK_MONOTONIC, CLOCK_BOOTTIME) on the host + timens_offsets"
	if offErr != nil {
		return readOf(Clocks{}, src, offErr)
	}
	var mono, boot unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return readOf(Clocks{}, src, err)
	}
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return readOf(Clocks{}, src, err)
	}
	return readOf(Clocks{
		Monotonic: time.Duration(mono.Nano()) + off.Monotonic,
		Boottime:  time.Duration(boot.Nano()) + off.Boottime,
	}, src, nil)
}

func readCgroup(p string) ([]CgroupMember, error) { return cgroups.ReadProcCgroup(p) }
