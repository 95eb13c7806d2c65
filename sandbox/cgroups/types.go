// Package cgroups puts one container's processes under cpu, memory, pids, freezer, block-I/O and device limits on cgroup v1 or v2.
package cgroups

import (
	"fmt"
)

// Mode is the cgroup layout of the host.
//
// v1 mounts one hierarchy per controller (/sys/fs/cgroup/memory, /sys/fs/cgroup/cpu, ...);
// v2 mounts one unified tree at /sys/fs/cgroup; hybrid mounts the v1 controllers and an
// (in practice empty) v2 tree at /sys/fs/cgroup/unified.
type Mode int

// The host modes. Hybrid is treated as V1 (see Effective): the controllers live on v1.
const (
	Unavailable Mode = iota
	V1
	V2
	Hybrid
)

// String returns "v1", "v2", "hybrid" or "unavailable".
func (m Mode) String() string {
	switch m {
	case V1:
		return "v1"
	case V2:
		return "v2"
	case Hybrid:
		return "hybrid"
	default:
		return "unavailable"
	}
}

// IOLimit is one block-device throttle: at most Rate bytes per second on the
// whole disk Major:Minor (partitions cannot be throttled, their disk can).
type IOLimit struct {
	Major, Minor uint32
	Rate         uint64 // bytes/s
}

// DeviceRule is one line of a device-cgroup policy, as in v1 devices.allow /
// devices.deny: "c 1:3 rwm". Type 'a' means every device (major/minor ignored).
type DeviceRule struct {
	Allow        bool
	Type         byte   // 'a', 'c' or 'b'
	Major, Minor int64  // -1 = any ("*")
	Access       string // subset of "rwm": read, write, mknod
}

// String renders the rule in the v1 devices.allow syntax ("c 1:3 rwm").
func (r DeviceRule) String() string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
}

// Limits is everything ctlab can limit for one container, independent of the
// cgroup version. A zero field means "no limit" (Update removes a limit that
// was set before when its field is zero).
type Limits struct {
	MemoryMax int64   // bytes; 0 = no limit. Swap is disabled for a limited cgroup, so the limit is real.
	CPUs      float64 // e.g. 0.5 → quota 50000 / period 100000; 0 = no limit
	CPUWeight uint64  // v2 scale 1..10000 (v1 cpu.shares is derived); 0 = default (100 / 1024 shares)
	PidsMax   int64   // 0 = no limit

	IOReadBPS, IOWriteBPS []IOLimit

	// Devices are rules added AFTER the default policy: deny all, then allow
	// the standard nodes (null, zero, full, random, urandom, tty, ptmx, pts).
	Devices []DeviceRule
	// DenyDefault drops the standard-node allow list: the policy becomes
	// "deny all" followed only by Devices (and DenyDevices).
	DenyDefault bool
	// DenyDevices are explicit denies applied after the allows, so a lesson
	// can deny /dev/zero while /dev/null stays allowed. On v1 a deny only
	// removes an allow rule with the same type and major:minor (kernel
	// semantics); the default allows are all exact, so denying one works.
	DenyDevices []DeviceRule

	// OCI holds an OCI config's knobs that ctlab's lessons do not use,
	// applied as runc applies them (the zero value changes nothing).
	OCI OCIResources
}

// OCIResources are linux.resources fields with no ctlab lesson of their
// own, kept as the config gives them so the kernel shows those values.
type OCIResources struct {
	CPUShares uint64 // v1 cpu.shares as given (else derived from CPUWeight)
	CPUPeriod uint64 // CFS period in µs (else 100000); the quota stays CPUs × period
	// MemoryReservation is v1 memory.soft_limit_in_bytes, v2 memory.low.
	MemoryReservation int64
	// MemorySwap is OCI's memory+swap (v1 memory.memsw.limit_in_bytes; on
	// v2 swap.max is this minus the limit); -1 = unlimited; 0 = ctlab's
	// default (no swap under a memory limit).
	MemorySwap       int64
	Swappiness       *uint64 // v1 memory.swappiness
	DisableOOMKiller bool    // v1 memory.oom_control
	// CpusetCPUs and CpusetMems pin the group (cpuset.cpus, cpuset.mems).
	// On v1 only a cgroup at a path (CreateAt) joins the cpuset hierarchy;
	// ctlab/<name> does not. On v2 the cpuset controller is enabled down
	// the path when they are set.
	CpusetCPUs, CpusetMems string
}

// DefaultDevices is the standard allow list (runc's defaults, without the
// blanket mknod rules): the nodes every program expects in /dev.
var DefaultDevices = []DeviceRule{
	{Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rwm"},    // /dev/null
	{Allow: true, Type: 'c', Major: 1, Minor: 5, Access: "rwm"},    // /dev/zero
	{Allow: true, Type: 'c', Major: 1, Minor: 7, Access: "rwm"},    // /dev/full
	{Allow: true, Type: 'c', Major: 1, Minor: 8, Access: "rwm"},    // /dev/random
	{Allow: true, Type: 'c', Major: 1, Minor: 9, Access: "rwm"},    // /dev/urandom
	{Allow: true, Type: 'c', Major: 5, Minor: 0, Access: "rwm"},    // /dev/tty
	{Allow: true, Type: 'c', Major: 5, Minor: 2, Access: "rwm"},    // /dev/ptmx
	{Allow: true, Type: 'c', Major: 136, Minor: -1, Access: "rwm"}, // /dev/pts/*
}

// DeviceRules returns the complete ordered policy for l, as written to the
// kernel: deny all, the default allows (unless DenyDefault), l.Devices, then
// l.DenyDevices. The last matching rule wins on both v1 and v2.
func (l Limits) DeviceRules() []DeviceRule {
	rules := []DeviceRule{{Allow: false, Type: 'a', Major: -1, Minor: -1, Access: "rwm"}}
	if !l.DenyDefault {
		rules = append(rules, DefaultDevices...)
	}
	rules = append(rules, l.Devices...)
	for _, d := range l.DenyDevices {
		d.Allow = false
		rules = append(rules, d)
	}
	return rules
}

// File is one row of the teaching table: a limit or usage file under both
// names, where it is on this host, and what the kernel says it contains now.
type File struct {
	Controller, V1Name, V2Name, Path, Value string
}

// NamePairs is the v1 ↔ v2 dictionary shown by lessons (Path and Value empty).
// A v2 file that replaces two v1 files appears in two rows.
var NamePairs = []File{
	{Controller: "memory", V1Name: "memory.limit_in_bytes", V2Name: "memory.max"},
	{Controller: "memory", V1Name: "memory.usage_in_bytes", V2Name: "memory.current"},
	{Controller: "memory", V1Name: "memory.max_usage_in_bytes", V2Name: "memory.peak"},
	{Controller: "memory", V1Name: "memory.memsw.limit_in_bytes", V2Name: "memory.swap.max"},
	{Controller: "memory", V1Name: "memory.oom_control", V2Name: "memory.events"},
	{Controller: "memory", V1Name: "memory.failcnt", V2Name: "memory.events"},
	{Controller: "cpu", V1Name: "cpu.cfs_quota_us", V2Name: "cpu.max"},
	{Controller: "cpu", V1Name: "cpu.cfs_period_us", V2Name: "cpu.max"},
	{Controller: "cpu", V1Name: "cpu.shares", V2Name: "cpu.weight"},
	{Controller: "cpu", V1Name: "cpu.stat", V2Name: "cpu.stat"},
	{Controller: "cpu", V1Name: "cpuacct.usage", V2Name: "cpu.stat"},
	{Controller: "pids", V1Name: "pids.max", V2Name: "pids.max"},
	{Controller: "pids", V1Name: "pids.current", V2Name: "pids.current"},
	{Controller: "freezer", V1Name: "freezer.state", V2Name: "cgroup.freeze"},
	{Controller: "freezer", V1Name: "freezer.state", V2Name: "cgroup.events"},
	{Controller: "io", V1Name: "blkio.throttle.read_bps_device", V2Name: "io.max"},
	{Controller: "io", V1Name: "blkio.throttle.write_bps_device", V2Name: "io.max"},
	{Controller: "io", V1Name: "blkio.throttle.io_service_bytes", V2Name: "io.stat"},
	{Controller: "devices", V1Name: "devices.allow", V2Name: V2DevicesName},
	{Controller: "devices", V1Name: "devices.deny", V2Name: V2DevicesName},
	{Controller: "devices", V1Name: "devices.list", V2Name: V2DevicesName},
	{Controller: "cgroup", V1Name: "cgroup.procs", V2Name: "cgroup.procs"},
	{Controller: "cgroup", V1Name: "(freeze, SIGKILL every pid, thaw)", V2Name: "cgroup.kill"},
}

// V2DevicesName stands for the v2 device controller, which has no file: it is
// an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the directory.
const V2DevicesName = "(eBPF BPF_CGROUP_DEVICE program)"

// Stats is a snapshot read from the cgroup files at the time of the call.
type Stats struct {
	Mode Mode

	MemoryCurrent, MemoryMax, MemoryPeak int64  // Max -1 = unlimited; Peak 0 if the kernel has no peak file
	OOMEvents, OOMKills                  uint64 // v2 memory.events oom/oom_kill; v1 has only oom_kill (memory.oom_control), used for both
	MemoryLimitHits                      uint64 // v2 memory.events max; v1 memory.failcnt: how often usage hit the limit (v1 on Linux 6.18 leaves failcnt at 0)

	PidsCurrent, PidsMax int64 // Max -1 = unlimited

	CPUUsageUsec, NrPeriods, NrThrottled, ThrottledUsec uint64
	CPUQuotaUsec                                        int64 // -1 = unlimited
	CPUPeriodUsec                                       uint64

	Frozen       bool
	FreezerState string

	IOReadBytes, IOWriteBytes uint64
	IOMax                     []string // v2: io.max lines; v1: "<file>: <line>" of blkio.throttle.{read,write}_bps_device

	Devices []string // v1: devices.list lines; v2: the attached eBPF program(s)
}

// NameOK reports whether name matches [a-z0-9][a-z0-9_.-]{0,62}: a loop,
// not a regexp, whose compilation at package init (the bounded repetition
// unrolls into 62 states) cost about 0.2 ms of every start of every ctlab
// binary.
func NameOK(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '_' || c == '.' || c == '-')) {
			return false
		}
	}
	return true
}

// ValidName reports whether name can be a ctlab cgroup name: it must stay one
// path component under /ctlab, so "..", "/" and upper case are refused.
func ValidName(name string) error {
	if !NameOK(name) || name == "." || name == ".." {
		return fmt.Errorf("invalid cgroup name %q: want [a-z0-9][a-z0-9_.-]{0,62}", name)
	}
	return nil
}
