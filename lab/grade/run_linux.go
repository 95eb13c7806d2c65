package grade

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// SandboxRunner runs image commands in the ctlab sandbox, hardened for
// untrusted code: every namespace, the user namespace too (the image's root
// is an unprivileged host uid; the layers are idmapped so their files show
// their owners inside), the image's USER, memory and pids limits, the small
// capability set, no_new_privs, seccomp and masked /proc paths. Processes that call sandbox.Start must have called
// sandbox.MaybeInit first thing (the ctlab binary and this package's tests do).
type SandboxRunner struct{}

type sandboxProcess struct{ c *sandbox.Container }

// Start implements Runner.
func (SandboxRunner) Start(ctx context.Context, s RunSpec) (Process, error) {
	mem := int64(s.MemoryMB) << 20
	if mem == 0 {
		mem = 256 << 20
	}
	pids := int64(s.Pids)
	if pids == 0 {
		pids = 128
	}
	c, err := sandbox.Start(ctx, sandbox.Config{
		Name:       s.Name,
		Namespaces: []sandbox.Namespace{sandbox.NSUser, sandbox.NSMount, sandbox.NSUTS, sandbox.NSIPC, sandbox.NSPID, sandbox.NSNet, sandbox.NSCgroup},
		Layers:     s.Layers,
		Args:       s.Args,
		Env:        s.Env,
		Cwd:        s.Cwd,
		User:       s.User,
		Net:        true,
		NetPrivate: true,      // the image reaches nothing of the host's network
		UpperLimit: 256 << 20, // what the image writes lands on a bounded tmpfs, never the host's disk
		Limits:     cgroups.Limits{MemoryMax: mem, PidsMax: pids, CPUs: 1},
		Harden:     sandbox.Hardening{DropCaps: true, NoNewPrivs: true, MaskPaths: true, Seccomp: true},
		Stdout:     s.Output,
		Stderr:     s.Output,
	})
	if err != nil {
		return nil, err
	}
	if c.Net == nil {
		_ = c.Remove(context.Background(), true)
		return nil, fmt.Errorf("sandbox started without a network attachment")
	}
	return &sandboxProcess{c: c}, nil
}

func (p *sandboxProcess) Addr() netip.Addr { return p.c.Net.ContainerAddr.Addr() }
func (p *sandboxProcess) Running() bool    { return p.c.Running() }

// DialContext implements Dialer: from the container's private peer
// namespace.
func (p *sandboxProcess) DialContext(ctx context.Context, netw, addr string) (net.Conn, error) {
	return p.c.DialContext(ctx, netw, addr)
}
func (p *sandboxProcess) Stop(ctx context.Context) error {
	if err := p.c.Remove(ctx, true); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", p.c.Name, err)
	}
	return nil
}
