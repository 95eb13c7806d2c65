// Package host checks what this machine offers a container lab: root,
// kernel version, namespace kinds, cgroup mode and controllers, overlayfs
// and user namespaces, each with the fix when something is missing.
package host

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Check is one line of `ctlab doctor`.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Facts is what the scenario preflight needs to know about the host.
type Facts struct {
	Root         bool            `json:"root"`
	Kernel       string          `json:"kernel"`
	KernelMajor  int             `json:"kernel_major"`
	KernelMinor  int             `json:"kernel_minor"`
	Namespaces   map[string]bool `json:"namespaces"`
	CgroupMode   string          `json:"cgroup_mode"` // v1, v2, hybrid, unavailable
	Effective    string          `json:"cgroup_effective"`
	Controllers  []string        `json:"controllers"`
	CgroupDriver string          `json:"cgroup_driver"`
	Driver       DriverFacts     `json:"driver"` // cgroupdriver_linux.go
	Overlay      bool            `json:"overlay"`
	UserNS       bool            `json:"userns"`
	Busybox      bool            `json:"busybox"`
	Binaries     map[string]bool `json:"binaries"`
}

// NamespaceKinds are the eight kinds as named in /proc/self/ns
// (kstate.NamespaceKinds, the one list).
var NamespaceKinds = kstate.NamespaceKinds

// Gather reads the facts from the kernel.
func Gather() Facts {
	f := Facts{Root: os.Geteuid() == 0, Namespaces: map[string]bool{}, Binaries: map[string]bool{}}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		f.Kernel = unix.ByteSliceToString(u.Release[:])
		f.KernelMajor, f.KernelMinor = parseVersion(f.Kernel)
	}
	for _, k := range NamespaceKinds {
		_, err := os.Stat("/proc/self/ns/" + k)
		f.Namespaces[k] = err == nil
	}
	f.CgroupMode = cgroups.HostMode().String()
	f.Effective = cgroups.Effective().String()
	f.Controllers, _ = cgroups.Controllers()
	f.CgroupDriver, _ = cgroups.Driver()
	f.Driver = gatherDriver()
	f.Overlay = hasFilesystem("overlay")
	if !f.Overlay {
		// The module may just not be loaded yet; mounting loads it.
		if exec.Command("modprobe", "overlay").Run() == nil {
			f.Overlay = hasFilesystem("overlay")
		}
	}
	f.UserNS = f.Namespaces["user"] && readInt("/proc/sys/user/max_user_namespaces") > 0
	_, err := os.Stat("/bin/busybox")
	f.Busybox = err == nil
	for _, b := range []string{"runc", "ip", "ipcmk", "umoci"} {
		_, err := exec.LookPath(b)
		f.Binaries[b] = err == nil
	}
	return f
}

// AtLeast reports whether the kernel is at least major.minor.
func (f Facts) AtLeast(major, minor int) bool {
	return f.KernelMajor > major || (f.KernelMajor == major && f.KernelMinor >= minor)
}

// HasController reports whether a controller is usable ("io" and "blkio"
// are the same thing under two names).
func (f Facts) HasController(c string) bool {
	for _, have := range f.Controllers {
		if have == c || (c == "io" && have == "blkio") || (c == "blkio" && have == "io") {
			return true
		}
	}
	return false
}

// Doctor turns the facts into checks with fixes.
func Doctor(f Facts) []Check {
	var out []Check
	add := func(name string, ok bool, detail, fix string) {
		c := Check{Name: name, OK: ok, Detail: detail}
		if !ok {
			c.Fix = fix
		}
		out = append(out, c)
	}
	add("root", f.Root, fmt.Sprintf("euid %d", os.Geteuid()), "run ctlab with sudo")
	add("kernel", f.AtLeast(5, 6), f.Kernel, "the time namespace needs Linux 5.6+; cgroup v2 freezer 5.2+; use a newer kernel")
	for _, k := range NamespaceKinds {
		fix := "enable CONFIG_" + strings.ToUpper(map[string]string{"mnt": "namespaces", "uts": "uts_ns", "ipc": "ipc_ns", "pid": "pid_ns", "net": "net_ns", "user": "user_ns", "cgroup": "cgroups", "time": "time_ns"}[k]) + " in the kernel"
		if k == "time" {
			fix = "the time namespace needs Linux 5.6+ with CONFIG_TIME_NS"
		}
		add("namespace "+k, f.Namespaces[k], "/proc/self/ns/"+k, fix)
	}
	mode := f.CgroupMode
	if mode == "hybrid" {
		mode += " (v1 controllers + a v2 tree: ctlab uses v1, like runc and containerd)"
	}
	add("cgroup mode", f.CgroupMode != "unavailable", mode, "mount cgroup2 on /sys/fs/cgroup (systemd does this at boot)")
	for _, c := range []string{"cpu", "memory", "pids", "freezer", "io", "devices"} {
		ok := f.HasController(c)
		detail := "available"
		fix := "enable the " + c + " controller (v2: echo +" + c + " > /sys/fs/cgroup/cgroup.subtree_control)"
		if c == "freezer" && f.Effective == "v2" {
			detail, ok = "cgroup.freeze (built into v2)", true
		}
		if c == "devices" && f.Effective == "v2" {
			detail, ok = "eBPF device programs (built into v2)", true
		}
		if !ok {
			detail = "missing"
		}
		add("controller "+c, ok, detail, fix)
	}
	driverChecks(f, add)
	add("overlayfs", f.Overlay, "in /proc/filesystems", "modprobe overlay")
	add("user namespaces", f.UserNS, "/proc/sys/user/max_user_namespaces", "sysctl -w user.max_user_namespaces=15000")
	add("busybox", f.Busybox, "/bin/busybox (optional: default rootfs uses host binaries without it)", "apt-get install busybox-static")
	add("runc", f.Binaries["runc"], "optional: for the runtimes lesson and benchmarks", "apt-get install runc")
	return out
}

func hasFilesystem(fs string) bool {
	fh, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fs {
			return true
		}
	}
	return false
}

func readInt(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func parseVersion(rel string) (int, int) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	maj, _ := strconv.Atoi(parts[0])
	min := 0
	for i, r := range parts[1] {
		if r < '0' || r > '9' {
			parts[1] = parts[1][:i]
			break
		}
	}
	min, _ = strconv.Atoi(parts[1])
	return maj, min
}
