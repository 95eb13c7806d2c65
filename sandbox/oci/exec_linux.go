package oci

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// containerSpec is the config container id was created with.
func (r *Runtime) containerSpec(id string) (*specs.Spec, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.spec(rec)
}

// ExecProcess is the process `exec` runs without --process: the
// container's own process (its user, capabilities, environment, cwd,
// rlimits, no_new_privs) with other args, as runc does.
func (r *Runtime) ExecProcess(id string) (*specs.Process, error) {
	s, err := r.containerSpec(id)
	if err != nil {
		return nil, err
	}
	p := *s.Process
	if p.Capabilities != nil {
		c := *p.Capabilities
		p.Capabilities = &c
	}
	return &p, nil
}

// ExecArgs is the command the exec helper runs for p in container id:
// the process init in exec mode, which applies p's user, capabilities,
// rlimits and no_new_privs and the container's seccomp filter (compiled
// here, from the container's config) before it execs p.Args.
func (r *Runtime) ExecArgs(id string, p *specs.Process) ([]string, error) {
	s, err := r.containerSpec(id)
	if err != nil {
		return nil, err
	}
	pi := &procInit{Exec: true, Args: p.Args, Env: p.Env, User: p.User, Rlimits: p.Rlimits, Caps: p.Capabilities,
		NoNewPrivs: p.NoNewPrivileges}
	if err := pi.setSeccomp(s); err != nil {
		return nil, err
	}
	return pi.argv(), nil
}
