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
	scope  *cgroups.Scope  // a CgroupPath's scope; nil: ctlab-<name>.scope
	cg     *cgroups.Cgroup // set by attach
}

func (*systemdScope) prepare(*exec.Cmd, stageConfig) error { return nil }
func (*systemdScope) clone(cmd *exec.Cmd) error            { return attachByPid{}.clone(cmd) }

func (p *systemdScope) attach(pid int) (bool, error) {
	create := cgroups.CreateSystemd
	if p.scope != nil {
		create = func(ctx context.Context, name string, l cgroups.Limits, pid int) (*cgroups.Cgroup, error) {
			return cgroups.CreateScope(ctx, name, *p.scope, l, pid)
		}
	}
	cg, err := create(p.ctx, p.name, p.limits, pid)
	if err != nil {
		return true, fmt.Errorf("systemd driver: %w", err)
	}
	p.cg = cg
	return true, nil
}

// scopeAt makes the placement's scope the one Config.CgroupPath names
// (runc's "slice:prefix:name", see cgroups.ParseScope), journalled first so
// that a cleanup after kill -9 stops it.
func (s *starter) scopeAt() error {
	sc, err := cgroups.ParseScope(s.cfg.CgroupPath)
	if err != nil {
		return &InputError{Problem: err.Error(), Fix: "with the systemd driver give the cgroup path as slice:prefix:name"}
	}
	if err := s.j.intend(Record{Kind: recScope, Name: sc.Unit, Path: sc.Slice}); err != nil {
		return err
	}
	s.place.(*systemdScope).scope = &sc
	s.c.CgroupPath, s.c.CgroupScope = s.cfg.CgroupPath, &sc
	return nil
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
