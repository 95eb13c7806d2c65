package lab

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Evaluate runs checks against the live kernel and returns their evidence.
// It never consults what the engine intended: every value is read back
// from /proc, cgroupfs, netlink or the upperdir.
func (e *Engine) Evaluate(ctx context.Context, checks []*Check) []Evidence {
	out := make([]Evidence, 0, len(checks))
	for _, c := range checks {
		ev := c.body.eval(ctx, e)
		ev.Check, ev.Desc, ev.Guard = c.Kind(), c.String(), c.Guard
		if c.Not {
			ev.Expected = "not " + ev.Expected
			if ev.Err == "" {
				ev.Pass = !ev.Pass
			}
		}
		if ev.Err != "" {
			ev.Pass = false
		}
		out = append(out, ev)
	}
	return out
}

// pidOf resolves a check target to a host pid.
func (e *Engine) pidOf(target string) (int, error) {
	if target == "host" {
		return os.Getpid(), nil
	}
	e.mu.Lock()
	c, bp, hp := e.containers[target], e.procs[target], e.hostProcs[target]
	e.mu.Unlock()
	switch {
	case hp != nil:
		if !hp.alive() {
			return 0, fmt.Errorf("process %s (pid %d) has exited", target, hp.pid)
		}
		return hp.pid, nil
	case c != nil:
		if !c.Running() {
			return 0, fmt.Errorf("container %s is not running", c.Name)
		}
		return c.Pid, nil
	case bp != nil:
		select {
		case <-bp.done:
			return 0, fmt.Errorf("process %s has exited", target)
		default:
		}
		return bp.pid, nil
	}
	return 0, fmt.Errorf("%s is not running (not started yet?)", target)
}

// failed is the evidence of a check that could not read its state.
func failed(target, source string, err error) Evidence {
	return Evidence{Target: target, Source: source, Err: err.Error(), Actual: "(unreadable)"}
}

// compareValues compares numerically when both sides are numbers or sizes
// ("64M"), "max" being larger than any number; otherwise as strings.
func compareValues(got, op, want string) bool {
	if op == "contains" {
		return strings.Contains(got, want)
	}
	num := func(s string) (float64, bool) {
		if s == "max" {
			return 1e300, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
		if n, err := cgroups.ParseSize(s); err == nil && n >= 0 {
			return float64(n), true
		}
		return 0, false
	}
	g, ok1 := num(got)
	w, ok2 := num(want)
	if ok1 && ok2 {
		ok, _ := compareNum(g, op, w)
		return ok
	}
	switch op {
	case "==":
		return got == want
	case "!=":
		return got != want
	}
	return false
}

func compareNum(g float64, op string, w float64) (bool, error) {
	switch op {
	case "==", "":
		return g == w, nil
	case "!=":
		return g != w, nil
	case "<=":
		return g <= w, nil
	case ">=":
		return g >= w, nil
	case "<":
		return g < w, nil
	case ">":
		return g > w, nil
	}
	return false, fmt.Errorf("unknown op %q", op)
}

// hostnameOf reads the hostname of pid's uts namespace.
func hostnameOf(pid int) (string, error) {
	h, _, _, err := kstate.UTSNames(pid)
	return h, err
}
