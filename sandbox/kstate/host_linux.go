package kstate

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// InitInfo is what decides whether systemd runs this machine: the name of
// pid 1, its cgroup, and whether /run/systemd/system exists (systemd's own
// test, sd_booted(3): systemd creates that directory early at boot, and a
// systemd that is not pid 1 -- in a container, say -- does not).
type InitInfo struct {
	Comm       string `json:"comm"`        // /proc/1/comm
	Cgroup     string `json:"cgroup"`      // /proc/1/cgroup, lines joined with "; "
	SystemdDir bool   `json:"systemd_dir"` // /run/systemd/system is a directory
}

// Systemd reports whether systemd manages this machine, as sd_booted() decides.
func (i InitInfo) Systemd() bool { return i.SystemdDir }

// String is the evidence line: "pid 1 is systemd, /run/systemd/system exists".
func (i InitInfo) String() string {
	dir := "no /run/systemd/system"
	if i.SystemdDir {
		dir = "/run/systemd/system exists"
	}
	return fmt.Sprintf("pid 1 is %s, %s (pid 1 cgroup %s)", i.Comm, dir, i.Cgroup)
}

// InitSourceFiles names what ReadInit reads; nothing else is read, so a
// check built on it shows no arbitrary host file.
const InitSourceFiles = "/proc/1/comm, /proc/1/cgroup, lstat /run/systemd/system"

// ReadInit reads the three fixed facts of InitInfo.
func ReadInit() (InitInfo, error) {
	var i InitInfo
	b, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		return i, fmt.Errorf("kstate: read /proc/1/comm: %w", err)
	}
	i.Comm = strings.TrimSpace(string(b))
	if m, err := readCgroup("/proc/1/cgroup"); err == nil {
		var lines []string
		for _, x := range m {
			lines = append(lines, fmt.Sprintf("%d:%s:%s", x.Hierarchy, strings.Join(x.Controllers, ","), x.Path))
		}
		i.Cgroup = strings.Join(lines, "; ")
	}
	var st unix.Stat_t
	i.SystemdDir = unix.Lstat("/run/systemd/system", &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
	return i, nil
}

// HostRelease is the kernel release uname(2) returns to ctlab.
func HostRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("kstate: uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// KernelRelease reads /proc/sys/kernel/osrelease on a thread inside pid's
// uts namespace: the release uname(2) returns to processes there
// (kernel/utsname_sysctl.c reads it from the reader's uts namespace, which
// copies the one kernel's release and cannot change it).
func KernelRelease(pid int) (release, source string, err error) {
	source = fmt.Sprintf("setns(/proc/%d/ns/uts) + /proc/sys/kernel/osrelease", pid)
	err = InNamespace(pid, "uts", func() error {
		b, err := os.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			return fmt.Errorf("read osrelease: %w", err)
		}
		release = strings.TrimSpace(string(b))
		return nil
	})
	return release, source, err
}

// ParseUptime reads the first field of /proc/uptime (seconds since boot,
// CLOCK_BOOTTIME as seen in the reader's time namespace: fs/proc/uptime.c
// adds the namespace's boottime offset).
func ParseUptime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("kstate: empty /proc/uptime")
	}
	sec, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("kstate: parse /proc/uptime %q: %w", f[0], err)
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// HostUptime reads ctlab's own /proc/uptime.
func HostUptime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, fmt.Errorf("kstate: %w", err)
	}
	return ParseUptime(string(b))
}

// CgroupPath returns pid's cgroup as ctlab (in the host's cgroup
// namespace) reads it from /proc/<pid>/cgroup: the v2 "0::" line when
// controller is "", else the line of the v1 hierarchy carrying controller.
// The kernel prints the path relative to the reader's cgroup namespace
// root (kernel/cgroup/cgroup.c, proc_cgroup_show), so the container itself
// reads "/" where the host reads "/ctlab/<name>".
func CgroupPath(pid int, controller string) (path, source string, err error) {
	source = fmt.Sprintf("/proc/%d/cgroup", pid)
	m, err := readCgroup(source)
	if err != nil {
		return "", source, err
	}
	for _, x := range m {
		if controller == "" && x.Hierarchy == 0 && len(x.Controllers) == 0 {
			return x.Path, source + " 0::", nil
		}
		for _, c := range x.Controllers {
			if c == controller {
				return x.Path, fmt.Sprintf("%s %d:%s", source, x.Hierarchy, strings.Join(x.Controllers, ",")), nil
			}
		}
	}
	want := "the v2 0:: line"
	if controller != "" {
		want = "a " + controller + " line"
	}
	return "", source, fmt.Errorf("kstate: %s has no %s", source, want)
}
