package lab

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ctlab/ctlab/sandbox/network"
)

// Actions on the scenario's containers: start one, run commands in it,
// write files into it, signal it, remove it.

// Target names a container (or a background process started by exec ... as:).
type Target struct {
	In string `yaml:"in" json:"in"`
}

// StartAction starts a container declared under `containers:`.
type StartAction struct {
	Container string `yaml:"container" json:"container"`
}

func (a *StartAction) validate(v *validator) {
	if v.targets[a.Container] != "container" {
		v.errf("%q is not declared under containers", a.Container)
	} else if v.started[a.Container] {
		v.errf("container %q is already started", a.Container)
	}
	v.started[a.Container] = true
}

func (a *StartAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	return "", nil, e.start(ctx, a.Container)
}

// ExecAction runs argv inside a running container (joining its namespaces
// and cgroup). With Background it keeps running and can be named with As,
// so checks can compare its namespaces with the container's.
type ExecAction struct {
	In         string        `yaml:"in" json:"in"`
	Argv       []string      `yaml:"argv" json:"argv"`
	Stdin      string        `yaml:"stdin,omitempty" json:"stdin,omitempty"`
	ExpectExit *int          `yaml:"expect_exit,omitempty" json:"expect_exit,omitempty" vocab:"0"`
	Timeout    time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" vocab:"30s"`
	Background bool          `yaml:"background,omitempty" json:"background,omitempty"`
	As         string        `yaml:"as,omitempty" json:"as,omitempty"`
	// HelperAs names the exec helper itself: the process that called
	// setns and forked As. Its ns/pid is still the host's, its
	// ns/pid_for_children the container's.
	HelperAs string `yaml:"helper_as,omitempty" json:"helper_as,omitempty"`
}

func (a *ExecAction) validate(v *validator) {
	v.running(a.In)
	v.argv(a.Argv)
	if a.As != "" && !a.Background {
		v.errf("as names a background process: set background: true")
	}
	if a.HelperAs != "" && !a.Background {
		v.errf("helper_as names the helper of a background process: set background: true")
	}
	if a.HelperAs != "" && a.HelperAs == a.As {
		v.errf("helper_as and as must differ")
	}
	v.newName(a.As)
	v.newName(a.HelperAs)
}

func (a *ExecAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	if a.Background {
		return "", nil, e.background(a.In, a.As, a.HelperAs, a.Argv)
	}
	want := 0
	if a.ExpectExit != nil {
		want = *a.ExpectExit
	}
	return e.execIn(ctx, a.In, a.Argv, a.Stdin, a.Timeout, &want)
}

// WriteFile writes a file inside a container (through exec, so it lands in
// the container's mount namespace and overlay upper layer).
type WriteFile struct {
	In      string `yaml:"in" json:"in"`
	Path    string `yaml:"path" json:"path"`
	Content string `yaml:"content" json:"content"`
	Append  bool   `yaml:"append,omitempty" json:"append,omitempty"`
}

func (a *WriteFile) validate(v *validator) {
	v.running(a.In)
	if !path.IsAbs(a.Path) {
		v.errf("path %q must be absolute (inside the container)", a.Path)
	}
}

// do: the file is written by a process inside, so it lands where the
// container sees it (its mount namespace, its upper layer).
func (a *WriteFile) do(ctx context.Context, e *Engine) (string, *int, error) {
	redir := ">"
	if a.Append {
		redir = ">>"
	}
	zero := 0
	return e.execIn(ctx, a.In, []string{"/bin/sh", "-c", `cat ` + redir + ` "$1"`, "write_file", a.Path}, a.Content, 0, &zero)
}

// KillAction sends a signal to a container's init or a named background process.
type KillAction struct {
	In     string `yaml:"in" json:"in"`
	Signal string `yaml:"signal,omitempty" json:"signal,omitempty" vocab:"KILL"`
}

func (a *KillAction) validate(v *validator) {
	if v.targets[a.In] == "process" {
		return
	}
	v.running(a.In)
	if !slices.Contains(signals, a.Signal) {
		v.errf("signal %q: want one of %s", a.Signal, strings.Join(signals[1:], ", "))
	}
}

func (a *KillAction) do(_ context.Context, e *Engine) (string, *int, error) {
	sig := signalNum(a.Signal)
	e.mu.Lock()
	bp, hp := e.procs[a.In], e.hostProcs[a.In]
	e.mu.Unlock()
	switch {
	case bp != nil:
		if bp.pid > 0 {
			syscall.Kill(bp.pid, sig)
		}
		return "", nil, bp.cmd.Process.Signal(sig)
	case hp != nil:
		if !hp.alive() {
			return "", nil, fmt.Errorf("process %s (pid %d) has exited", a.In, hp.pid)
		}
		return "", nil, syscall.Kill(hp.pid, sig)
	}
	c, err := e.running(a.In)
	if err != nil {
		return "", nil, err
	}
	return "", nil, c.Kill(sig)
}

func signalNum(name string) syscall.Signal {
	switch name {
	case "TERM":
		return syscall.SIGTERM
	case "INT":
		return syscall.SIGINT
	case "HUP":
		return syscall.SIGHUP
	case "STOP":
		return syscall.SIGSTOP
	case "CONT":
		return syscall.SIGCONT
	case "USR1":
		return syscall.SIGUSR1
	case "USR2":
		return syscall.SIGUSR2
	}
	return syscall.SIGKILL
}

// RemoveAction removes a container and everything it made.
type RemoveAction Target

func (a *RemoveAction) validate(v *validator) {
	v.running(a.In)
	delete(v.started, a.In)
}

func (a *RemoveAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	c := e.container(a.In)
	if c == nil {
		return "", nil, fmt.Errorf("container %s is not started", a.In)
	}
	err := c.Remove(ctx, true)
	e.mu.Lock()
	delete(e.containers, a.In)
	e.mu.Unlock()
	// A pair added by `link` is not in the container's state; delete
	// its host end now rather than when the kernel gets round to the
	// dead namespace (idempotent).
	return "", nil, errors.Join(err, network.Teardown(c.Name))
}
