package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// DriverFacts is what `ctlab doctor` says about cgroup drivers: who owns the
// tree, what ctlab uses by default and what auto would pick, and whether
// this session can create cgroups where the cgroupfs driver puts them.
type DriverFacts struct {
	Default        string   `json:"default"`         // what ctlab run uses without --cgroup-driver
	Auto           string   `json:"auto"`            // what --cgroup-driver auto picks here
	SystemdPID1    bool     `json:"systemd_pid1"`    // /run/systemd/system exists
	SystemdVersion string   `json:"systemd_version"` // from PID 1 over D-Bus; "" without systemd
	RootDelegated  []string `json:"root_delegated"`  // v2: cgroup.subtree_control of the root
	SessionCgroup  string   `json:"session_cgroup"`  // this process's cgroup (v2 line of /proc/self/cgroup)
	CanCreate      bool     `json:"can_create"`      // mkdir + rmdir of a probe cgroup at the root worked
	CreateDetail   string   `json:"create_detail"`
}

// DefaultDriverWhy is the reason cgroupfs is the default, shown by doctor
// and the README.
const DefaultDriverWhy = "the same /ctlab/<name> paths on every host, no D-Bus, works on hybrid hosts"

func gatherDriver() DriverFacts {
	d := DriverFacts{Default: cgroups.DriverCgroupfs, SystemdPID1: cgroups.SystemdRunning()}
	d.Auto, _ = cgroups.ResolveDriver(cgroups.DriverAuto)
	if d.SystemdPID1 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := cgroups.SystemdVersion(ctx)
		cancel()
		if err != nil {
			v = "unknown (" + err.Error() + ")"
		}
		d.SystemdVersion = v
	}
	if cgroups.HostMode() == cgroups.V2 {
		if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil {
			d.RootDelegated = strings.Fields(string(b))
		}
	}
	if ms, err := cgroups.ReadProcCgroup("/proc/self/cgroup"); err == nil {
		for _, m := range ms {
			// The v2 line, or on v1 the memory hierarchy's (where ctlab's limits go).
			if m.Hierarchy == 0 && cgroups.Effective() == cgroups.V2 || slices.Contains(m.Controllers, "memory") {
				d.SessionCgroup = m.Path
			}
		}
	}
	d.CanCreate, d.CreateDetail = probeCreate()
	return d
}

// probeCreate makes and removes an empty cgroup at the root of the tree
// the cgroupfs driver writes (v2: /sys/fs/cgroup; v1: the pids hierarchy).
func probeCreate() (bool, string) {
	root := "/sys/fs/cgroup"
	if cgroups.Effective() == cgroups.V1 {
		root = "/sys/fs/cgroup/pids"
	}
	p := filepath.Join(root, fmt.Sprintf("ctlab-doctor-%d", os.Getpid()))
	if err := os.Mkdir(p, 0o755); err != nil {
		return false, fmt.Sprintf("mkdir %s: %v", p, err)
	}
	if err := os.Remove(p); err != nil {
		return false, fmt.Sprintf("rmdir %s: %v", p, err)
	}
	return true, "mkdir + rmdir in " + root + " work"
}

// driverChecks are doctor's lines about drivers.
func driverChecks(f Facts, add func(name string, ok bool, detail, fix string)) {
	d := f.Driver
	add("cgroup driver", true, fmt.Sprintf("default %s (%s); --cgroup-driver auto here = %s; the tree's manager: %s", d.Default, DefaultDriverWhy, d.Auto, f.CgroupDriver), "")
	if d.SystemdPID1 {
		add("systemd", true, "PID 1, version "+d.SystemdVersion, "")
		if cgroups.HostMode() != cgroups.V2 {
			add("systemd driver", false, "this host is "+cgroups.HostMode().String()+": systemd owns only the v2 tree, the v1 controllers are outside it, so auto uses cgroupfs",
				"boot with systemd.unified_cgroup_hierarchy=1 to use --cgroup-driver systemd")
		}
	}
	if d.RootDelegated != nil {
		add("root delegates", len(d.RootDelegated) > 0, strings.Join(d.RootDelegated, " ")+" (cgroup.subtree_control of /)",
			"echo '+cpu +memory +pids +io' > /sys/fs/cgroup/cgroup.subtree_control")
	}
	add("session cgroup", true, d.SessionCgroup, "")
	add("create cgroups", d.CanCreate, d.CreateDetail, "run ctlab as root (sudo), outside a container")
}
