package lab

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Actions that only pace a lesson: wait a while, or until a check passes.

// SleepAction pauses (e.g. to let a load generator run).
type SleepAction struct {
	For time.Duration `yaml:"for" json:"for"`
}

func (a *SleepAction) validate(v *validator) {
	if a.For <= 0 || a.For > 5*time.Minute {
		v.errf("for %s: want 0..5m", a.For)
	}
}

func (a *SleepAction) do(ctx context.Context, _ *Engine) (string, *int, error) {
	return "", nil, sleepCtx(ctx, a.For)
}

// WaitForAction waits until a check passes (or the timeout ends, an error).
type WaitForAction struct {
	Check   *Check        `yaml:"check" json:"check"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" vocab:"30s"`
}

func (a *WaitForAction) validate(v *validator) {
	if a.Check == nil {
		v.errf("needs check")
		return
	}
	v.check(append(slices.Clone(v.at), "check"), a.Check)
}

func (a *WaitForAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		ev := e.Evaluate(ctx, []*Check{a.Check})
		if ev[0].Pass {
			return ev[0].Actual, nil, nil
		}
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("%s still fails after %s: expected %s, actual %s %s", ev[0].Desc, timeout, ev[0].Expected, ev[0].Actual, ev[0].Err)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return "", nil, err
		}
	}
}
