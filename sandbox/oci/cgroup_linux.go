package oci

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// cgroupPath sets the sandbox's cgroup for a config's linux.cgroupsPath.
// Without --systemd-cgroup that is Config.CgroupPath, runc's cgroupfs
// meaning (sandbox/cgroups/path_linux.go resolves and checks it). With
// --systemd-cgroup runc wants "slice:prefix:name" and asks systemd for the
// scope prefix-name.scope in that slice; ctlab checks the form as runc
// does, then falls back to its own names: the "auto" driver, which is
// ctlab's systemd driver (the scope ctlab-<name>.scope in ctlab.slice,
// sandbox/placement_systemd_linux.go) where systemd owns a pure v2 tree,
// and its cgroupfs group ctlab/<name> elsewhere (this hybrid host).
func cgroupPath(cfg *sandbox.Config, p string, systemd bool) error {
	if !systemd {
		cfg.CgroupPath = p
		return nil
	}
	if p != "" && len(strings.Split(p, ":")) != 3 {
		return fmt.Errorf("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got %q instead", p)
	}
	cfg.CgroupPath, cfg.CgroupDriver = "", cgroups.DriverAuto
	return nil
}

// ociResources keeps the resources that Limits has no lesson field for, as
// given: runc writes them verbatim, and the validation suite reads them
// back (cpu.shares 1024 is not weight 39 mapped back).
func ociResources(r *specs.LinuxResources) cgroups.OCIResources {
	var o cgroups.OCIResources
	if c := r.CPU; c != nil {
		if c.Shares != nil {
			o.CPUShares = *c.Shares
		}
		if c.Period != nil {
			o.CPUPeriod = *c.Period
		}
		o.CpusetCPUs, o.CpusetMems = c.Cpus, c.Mems
	}
	if m := r.Memory; m != nil {
		if m.Reservation != nil {
			o.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			o.MemorySwap = *m.Swap
		}
		o.Swappiness = m.Swappiness
		o.DisableOOMKiller = m.DisableOOMKiller != nil && *m.DisableOOMKiller
	}
	return o
}
