package cgroups

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	cg "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/moby/sys/userns"
	"golang.org/x/sys/unix"
)

const (
	// unifiedRoot is where a pure v2 host mounts its single tree.
	unifiedRoot = "/sys/fs/cgroup"
	// parentName is the directory ctlab owns in every hierarchy.
	parentName = "ctlab"
)

// HostMode reports the host's cgroup layout, as detected by containerd's
// cgroups.Mode() (a statfs of /sys/fs/cgroup and /sys/fs/cgroup/unified).
func HostMode() Mode {
	switch cg.Mode() {
	case cg.Legacy:
		return V1
	case cg.Hybrid:
		return Hybrid
	case cg.Unified:
		return V2
	default:
		return Unavailable
	}
}

// Effective is the mode ctlab uses: Hybrid becomes V1, because on a hybrid
// host the resource controllers are attached to the v1 hierarchies and the v2
// tree has none (runc and containerd make the same choice).
func Effective() Mode {
	m := HostMode()
	if m == Hybrid {
		return V1
	}
	return m
}

// Driver names who should own the cgroup tree: "systemd" when systemd is PID 1
// (it then considers itself the single writer of /sys/fs/cgroup), else
// "cgroupfs". ctlab always writes the files itself under its own /ctlab
// subtree; the answer is shown so a lesson can explain the difference.
func Driver() (name, why string) {
	comm, _ := os.ReadFile("/proc/1/comm")
	if _, err := os.Stat("/run/systemd/system"); err == nil || strings.TrimSpace(string(comm)) == "systemd" {
		return "systemd", "systemd is PID 1 (/run/systemd/system exists), so it manages the cgroup tree and runtimes like runc ask it over D-Bus for a scope; ctlab still writes only its own /ctlab subtree directly."
	}
	return "cgroupfs", fmt.Sprintf("PID 1 is %q, not systemd, so nobody else manages the cgroup tree and ctlab creates directories and writes limit files in cgroupfs directly.", strings.TrimSpace(string(comm)))
}

// v1Controllers are the v1 hierarchies ctlab creates /ctlab/<name> in.
// cpuset is left out on purpose: a new v1 cpuset group starts with empty
// cpuset.cpus/mems and refuses tasks until they are copied from the parent.
var v1Controllers = []cgroup1.Name{cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Memory, cgroup1.Pids, cgroup1.Freezer, cgroup1.Blkio, cgroup1.Devices}

// v2Controllers are the v2 controllers ctlab enables (freezer and devices
// need no controller on v2: cgroup.freeze is core, devices are eBPF).
var v2Controllers = []string{"cpu", "memory", "pids", "io"}

// pather is the part of containerd's v1 Subsystem that knows its directory.
type pather interface {
	cgroup1.Subsystem
	Path(path string) string
}

// v1Mounts reads the v1 hierarchies (containerd's cgroup1.Default, a scan
// of /proc/self/mountinfo: about 60 µs here) at most once for one call of
// this package's API, whose steps (roots, paths, containerd's New or Load)
// share that read instead of each scanning again. It never outlives the
// call, so a hierarchy mounted between two calls is seen by the second.
type v1Mounts struct {
	done bool
	all  []cgroup1.Subsystem
	err  error
}

func (m *v1Mounts) read() ([]cgroup1.Subsystem, error) {
	if !m.done {
		m.done = true
		if m.all = v1Usual(); m.all != nil {
			return m.all, nil
		}
		if m.all, m.err = cgroup1.Default(); m.err != nil {
			m.err = fmt.Errorf("list v1 hierarchies: %w", m.err)
		}
	}
	return m.all, m.err
}

// usualRoot is where systemd, Docker and Debian mount the v1 hierarchies.
const usualRoot = "/sys/fs/cgroup"

// v1Usual is cgroup1.Default for the usual layout, found without a scan of
// mountinfo: it builds only the controllers ctlab uses (of v1Controllers
// and cpuset, in Default's order) and keeps each whose directory under
// /sys/fs/cgroup is a cgroup filesystem, as statfs(2) says. containerd's
// Default also builds and stats the dozen others (hugetlb lists
// /sys/kernel/mm/hugepages); this costs a third of it, ~0.1 ms less in
// each create and delete of the OCI runtime. nil means the layout is not
// the usual one (something else is mounted there, or nothing is): then
// Default's scan decides.
func v1Usual() []cgroup1.Subsystem {
	subs := []pather{cgroup1.NewFreezer(usualRoot), cgroup1.NewPids(usualRoot), cgroup1.NewCpuset(usualRoot),
		cgroup1.NewCpu(usualRoot), cgroup1.NewCpuacct(usualRoot), cgroup1.NewMemory(usualRoot), cgroup1.NewBlkio(usualRoot)}
	// As in Default: a user namespace may not change device rules.
	if !userns.RunningInUserNS() {
		subs = append(subs, cgroup1.NewDevices(usualRoot))
	}
	var out []cgroup1.Subsystem
	for _, s := range subs {
		var st unix.Statfs_t
		if err := unix.Statfs(s.Path("/"), &st); err != nil {
			continue // not mounted: Default's Lstat drops it too
		}
		if st.Type != unix.CGROUP_SUPER_MAGIC {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// hierarchy is containerd's default hierarchy (read from mountinfo)
// reduced to the controllers in v1Controllers, so New/Load never create
// directories in net_cls, perf_event, the name=systemd tree, and so on.
func (m *v1Mounts) hierarchy() ([]cgroup1.Subsystem, error) { return m.of(v1Controllers) }

// cpuset is hierarchy with cpuset, for a cgroup whose limits pin cpus or
// memory nodes (an OCI config's cpu.cpus, cpu.mems): the cgroup's Rels
// then name a cpuset path too, and containerd's cpuset controller copies
// the parent's cpus and mems into each new group.
func (m *v1Mounts) cpuset() ([]cgroup1.Subsystem, error) {
	return m.of(append([]cgroup1.Name{cgroup1.Cpuset}, v1Controllers...))
}

func (m *v1Mounts) of(names []cgroup1.Name) ([]cgroup1.Subsystem, error) {
	all, err := m.read()
	if err != nil {
		return nil, err
	}
	var out []cgroup1.Subsystem
	for _, s := range all {
		for _, n := range names {
			if s.Name() == n {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no usable v1 cgroup hierarchy mounted under /sys/fs/cgroup")
	}
	return out, nil
}

// v1Roots maps each available v1 controller to its hierarchy's root directory.
func v1Roots() (map[string]string, error) { return v1RootsOf(new(v1Mounts).hierarchy) }

func v1RootsOf(h func() ([]cgroup1.Subsystem, error)) (map[string]string, error) {
	subs, err := h()
	if err != nil {
		return nil, err
	}
	roots := map[string]string{}
	for _, s := range subs {
		if p, ok := s.(pather); ok {
			roots[string(s.Name())] = p.Path("/")
		}
	}
	return roots, nil
}

// v2Available returns the v2 controllers of v2Controllers offered by the root.
func v2Available() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(unifiedRoot, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("read v2 root controllers: %w", err)
	}
	have := strings.Fields(string(b))
	var out []string
	for _, c := range v2Controllers {
		for _, h := range have {
			if c == h {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// Controllers lists the controllers ctlab can use on this host, by their
// usual names: cpu, memory, pids, freezer, blkio (v1) or io (v2), devices.
func Controllers() ([]string, error) {
	switch Effective() {
	case V1:
		roots, err := v1Roots()
		if err != nil {
			return nil, err
		}
		var out []string
		for _, n := range []string{"cpu", "memory", "pids", "freezer", "blkio", "devices"} {
			if _, ok := roots[n]; ok {
				out = append(out, n)
			}
		}
		return out, nil
	case V2:
		out, err := v2Available()
		if err != nil {
			return nil, err
		}
		// cgroup.freeze arrived in 5.2 and device eBPF programs in 4.15.
		if kernelAtLeast(5, 2) {
			out = append(out, "freezer")
		}
		if kernelAtLeast(4, 15) {
			out = append(out, "devices")
		}
		sort.Strings(out)
		return out, nil
	default:
		return nil, fmt.Errorf("no cgroup filesystem mounted at /sys/fs/cgroup")
	}
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var ma, mi int
	rel := string(bytes.TrimRight(u.Release[:], "\x00"))
	if _, err := fmt.Sscanf(rel, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}
