package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Actions on the host itself, for trusted scenarios only (--trust): run a
// command, and name a process such a command started.

// HostAction runs argv on the host. Only with --trust.
type HostAction struct {
	Argv    []string      `yaml:"argv" json:"argv"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" vocab:"30s"`
}

func (a *HostAction) validate(v *validator) {
	v.argv(a.Argv)
	v.needsTrust()
}

// do runs the command. A command that leaves a detached child holding our
// output pipe (runc run -d without redirections) must not hang the
// lesson: stop waiting for the pipe shortly after the command exits.
func (a *HostAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	if !e.opt.Trust {
		return "", nil, &TrustError{Scenario: e.s.ID, Steps: e.s.TrustSteps()}
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &limitedBuffer{max: maxOutput}
	cmd := exec.CommandContext(ctx, a.Argv[0], a.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil {
		return out.String(), &code, fmt.Errorf("host %v: %w", a.Argv, err)
	}
	return out.String(), &code, nil
}

// HostProcess names a process a trusted host command started (e.g. `runc
// run --pid-file FILE`): its pid is read from Pidfile, waiting up to
// Timeout for the file. Trusted scenarios only.
type HostProcess struct {
	As      string        `yaml:"as" json:"as"`
	Pidfile string        `yaml:"pidfile" json:"pidfile"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" vocab:"10s"`
}

func (a *HostProcess) validate(v *validator) {
	v.needsTrust()
	if !path.IsAbs(a.Pidfile) {
		v.errf("pidfile %q must be an absolute host path", a.Pidfile)
	}
	if a.Timeout < 0 || a.Timeout > 5*time.Minute {
		v.errf("timeout %s: want 0..5m", a.Timeout)
	}
	if a.As == "" {
		v.errf("needs as (the name checks use)")
	}
	v.newName(a.As)
}

// do reads a pid from the file and names it as a check target.
func (a *HostProcess) do(ctx context.Context, e *Engine) (string, *int, error) {
	if !e.opt.Trust {
		return "", nil, &TrustError{Scenario: e.s.ID, Steps: e.s.TrustSteps()}
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(a.Pidfile)
		if err == nil {
			return a.name(e, strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("host_process: no pid file after %s: %w", timeout, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return "", nil, err
		}
	}
}

// name records the pid read from the pid file, with its start time.
func (a *HostProcess) name(e *Engine, s string) (string, *int, error) {
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 1 {
		return "", nil, fmt.Errorf("host_process: %s holds %q, not a pid", a.Pidfile, s)
	}
	st, err := kstate.ReadStat(pid)
	start := st.Start
	if err != nil {
		return "", nil, fmt.Errorf("host_process: pid %d from %s: %w", pid, a.Pidfile, err)
	}
	e.mu.Lock()
	e.hostProcs[a.As] = &hostProc{pid: pid, start: start}
	e.mu.Unlock()
	return fmt.Sprintf("%s = pid %d (from %s)", a.As, pid, a.Pidfile), nil, nil
}
