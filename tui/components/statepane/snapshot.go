// Package statepane draws the live kernel state beside a lesson step: namespace inodes, names, cgroup usage, overlay changes, links, id maps and clocks.
package statepane

import "time"

// Snapshot is one reading of the kernel for the panes a step shows. It is
// plain data: the TUI maps it from the lab engine's snapshot (see
// tui/stateview.go) and this package only draws it, so View never touches
// the kernel.
type Snapshot struct {
	Taken     time.Time
	Container string // the scenario container being watched, "" if none runs
	Pid       int    // its init's host pid
	Err       string // why the container could not be read at all

	Namespaces []NSRow
	Hostname   Pair
	Domainname Pair
	Cgroup     *Cgroup
	Overlay    *Overlay
	Nets       []NetNS
	UIDMap     []string // lines "inside outside count"
	GIDMap     []string
	Time       *Time
	Procs      []string // "pid(inner) comm"
	Mounts     []string // "mountpoint fstype"
	IPC        []string
	Caps       string
}

// NSRow compares one namespace kind of the host and the container by the
// inode of /proc/<pid>/ns/<kind>: equal inodes mean one shared namespace.
type NSRow struct {
	Kind            string
	Host, Container uint64
}

// Same reports whether host and container share the namespace.
func (r NSRow) Same() bool { return r.Host == r.Container }

// Pair is one value seen from the host and from the container.
type Pair struct{ Host, Container string }

// Cgroup is the container's cgroup: limits against usage.
type Cgroup struct {
	Path                 string
	MemCurrent, MemMax   int64 // Max -1 = unlimited
	PidsCurrent, PidsMax int64
	CPUUsageUsec         uint64
	CPUQuotaUsec         int64 // -1 = unlimited
	CPUPeriodUsec        uint64
	NrThrottled          uint64
	OOMKills             uint64
	Frozen               bool
}

// Overlay is the container's upperdir, where every change to the merged
// view lands.
type Overlay struct {
	Upper   string
	Lowers  int
	Changes []Change
}

// Change is one upperdir entry; Kind is added, modified (a copy-up),
// deleted (a whiteout) or opaque.
type Change struct {
	Path string
	Kind string
}

// NetNS is one network namespace and its links.
type NetNS struct {
	Name  string // "host" or the container's name
	Inode uint64
	Links []Link
}

// Link is one interface with its addresses.
type Link struct {
	Name, State string
	Addrs       []string
}

// Time is the container's time namespace offsets.
type Time struct {
	Monotonic, Boottime time.Duration
}
