package oci

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// cgroupPath sets the sandbox's cgroup for a config's linux.cgroupsPath.
// Without --systemd-cgroup that is Config.CgroupPath, runc's cgroupfs
// meaning (sandbox/cgroups/path_linux.go resolves and checks it). With
// --systemd-cgroup runc wants "slice:prefix:name", the scope
// prefix-name.scope in that slice: ctlab's systemd driver makes it where it
// can run (systemd owns a pure v2 tree); elsewhere (this hybrid host) ctlab
// checks the form as runc does and falls back to its cgroupfs group
// ctlab/<name>.
func cgroupPath(cfg *sandbox.Config, p string, systemd bool) error {
	if !systemd {
		cfg.CgroupPath = p
		return nil
	}
	if _, err := cgroups.ResolveDriver(cgroups.DriverSystemd); err == nil {
		cfg.CgroupPath, cfg.CgroupDriver = p, cgroups.DriverSystemd
		return nil
	}
	if p != "" {
		if _, err := cgroups.ParseScope(p); err != nil {
			return err
		}
	}
	cfg.CgroupPath, cfg.CgroupDriver = "", cgroups.DriverCgroupfs
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
