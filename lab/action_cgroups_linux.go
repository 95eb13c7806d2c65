package lab

import (
	"context"
)

// Actions on a running container's cgroup: change its limits, freeze and
// thaw it. (load, which makes the work a limit acts on, is in
// action_load_linux.go.)

// SetLimit changes cgroup limits of a running container.
type SetLimit struct {
	In     string `yaml:"in" json:"in"`
	Limits `yaml:",inline"`
}

func (a *SetLimit) validate(v *validator) {
	v.running(a.In)
	v.limits(v.at, a.Limits)
	if a.Limits.IsZero() {
		v.errf("no limit given")
	}
}

func (a *SetLimit) imply(r *implied) { r.limits(a.Limits) }

func (a *SetLimit) do(_ context.Context, e *Engine) (string, *int, error) {
	c, err := e.running(a.In)
	if err != nil {
		return "", nil, err
	}
	l, err := e.sandboxLimits(c.Limits, a.Limits)
	if err != nil {
		return "", nil, err
	}
	cg, err := c.Cgroup()
	if err != nil {
		return "", nil, err
	}
	if err := cg.Update(l); err != nil {
		return "", nil, err
	}
	c.Limits = l // the base for the next set_limit
	return "", nil, nil
}

// FreezeAction freezes every process of a container (cgroup freezer).
type FreezeAction Target

// ThawAction lets them run again.
type ThawAction Target

func (a *FreezeAction) validate(v *validator) { v.running(a.In) }
func (a *ThawAction) validate(v *validator)   { v.running(a.In) }
func (a *FreezeAction) imply(r *implied)      { r.controller("freezer") }
func (a *ThawAction) imply(r *implied)        { r.controller("freezer") }

func (a *FreezeAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	c, err := e.running(a.In)
	if err != nil {
		return "", nil, err
	}
	return "", nil, c.Pause(ctx)
}

func (a *ThawAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	c, err := e.running(a.In)
	if err != nil {
		return "", nil, err
	}
	return "", nil, c.Unpause(ctx)
}
