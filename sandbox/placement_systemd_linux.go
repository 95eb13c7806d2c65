package sandbox

import (
	"context"
	"fmt"
	"os/exec"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// systemdScope is the placement of the systemd cgroup driver: the init is
// cloned in ctlab's own cgroup, and attach asks systemd over D-Bus for the
// transient unit ctlab-<name>.scope in ctlab.slice with the init's pid in
// it (a scope cannot be created empty; runc's systemd driver does the same).
// The init execs nothing before the go-ahead, so it never runs outside its
// limits. The journal's cgroup record, written before, lets cleanup stop
// the unit after a kill -9 (cgroups.Remove finds the scope by name).
type systemdScope struct {
	ctx    context.Context
	name   string
	limits cgroups.Limits
	cg     *cgroups.Cgroup // set by attach
}

func (*systemdScope) prepare(*exec.Cmd, stageConfig) error { return nil }
func (*systemdScope) clone(cmd *exec.Cmd) error            { return attachByPid{}.clone(cmd) }

func (p *systemdScope) attach(pid int) (bool, error) {
	cg, err := cgroups.CreateSystemd(p.ctx, p.name, p.limits, pid)
	if err != nil {
		return true, fmt.Errorf("systemd driver: %w", err)
	}
	p.cg = cg
	return true, nil
}

// cgroupDriver resolves the configured driver ("" = cgroupfs, the default:
// see README "cgroup drivers").
func cgroupDriver(cfg Config) (string, error) {
	if cfg.CgroupDriver == "" {
		return cgroups.DriverCgroupfs, nil
	}
	d, err := cgroups.ResolveDriver(cfg.CgroupDriver)
	if err != nil {
		return "", &InputError{Problem: err.Error(), Fix: "use --cgroup-driver cgroupfs (see ctlab doctor)"}
	}
	return d, nil
}
