package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/mountinfo"
	"github.com/ctlab/ctlab/sandbox/network"
)

// StepTest is what `scenario test` found for one step.
type StepTest struct {
	ID      string     `json:"id"`
	Before  []Evidence `json:"before"` // checks before do/solve: each non-guard one must fail
	After   []Evidence `json:"after"`  // after: each must pass
	Defects []string   `json:"defects,omitempty"`
}

// TestReport is the result of SelfTest for one scenario.
type TestReport struct {
	Scenario string        `json:"scenario"`
	Pass     bool          `json:"pass"`
	Skipped  []string      `json:"skipped,omitempty"` // preflight reasons: the host cannot run it
	Steps    []StepTest    `json:"steps"`
	Leaks    []string      `json:"leaks,omitempty"` // kernel objects left behind
	Err      string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Defects lists every defect of the report, one line each.
func (r *TestReport) Defects() []string {
	var out []string
	for _, st := range r.Steps {
		for _, d := range st.Defects {
			out = append(out, st.ID+": "+d)
		}
	}
	for _, l := range r.Leaks {
		out = append(out, "left behind: "+l)
	}
	if r.Err != "" {
		out = append(out, r.Err)
	}
	return out
}

// SelfTest proves a scenario's checks: for every step, each check that is
// not a guard must FAIL before the step's do/solve (a check that cannot
// fail proves nothing) and every check must PASS after. Afterwards the
// scenario is reset and nothing it made may be left in the kernel.
func SelfTest(ctx context.Context, s *Scenario, opt Options) *TestReport {
	start := time.Now()
	rep := &TestReport{Scenario: s.ID}
	defer func() { rep.Duration = time.Since(start) }()
	if why := Preflight(s); len(why) > 0 {
		rep.Skipped, rep.Pass = why, true
		return rep
	}
	e, err := New(s, opt)
	if err != nil {
		rep.Err = err.Error()
		return rep
	}
	if err := e.Begin(ctx); err != nil {
		rep.Err = err.Error()
		e.Close(context.WithoutCancel(ctx))
		return rep
	}
	for i, st := range s.Steps {
		t := StepTest{ID: st.ID}
		t.Before = e.Evaluate(ctx, st.Expect)
		for _, x := range t.Before {
			if x.Pass && !x.Guard {
				t.Defects = append(t.Defects, fmt.Sprintf("%s already passes before the step (actual %s): it cannot fail; fix it or mark it guard: true", x.Desc, x.Actual))
			}
		}
		var ok bool
		if st.Kind == KindTask {
			ok, err = e.Solve(ctx)
		} else {
			ok, err = e.RunStep(ctx)
		}
		if err != nil {
			t.Defects = append(t.Defects, "actions failed: "+err.Error())
		}
		e.mu.Lock()
		t.After = e.steps[i].checks
		answer, pred := e.steps[i].answer, e.steps[i].prediction
		e.mu.Unlock()
		if d := questionDefect(st, answer, pred); d != "" && err == nil && ok {
			t.Defects = append(t.Defects, d)
		}
		if err == nil && !ok {
			for _, x := range t.After {
				if !x.Pass {
					t.Defects = append(t.Defects, fmt.Sprintf("%s fails after the step: expected %s, actual %s %s", x.Desc, x.Expected, x.Actual, x.Err))
				}
			}
		}
		rep.Steps = append(rep.Steps, t)
		if err != nil || !ok {
			break
		}
		e.Next()
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	// Audit while still holding the scenario lock: after the reset no
	// object named for this scenario may exist (Begin removed any an
	// earlier run had left, so everything here would be ours).
	e.op.Lock()
	if err := e.removeAll(cctx); err != nil {
		rep.Err = err.Error()
	}
	rep.Leaks = kernelObjects(s)
	e.op.Unlock()
	if err := e.Close(cctx); err != nil && rep.Err == "" {
		rep.Err = err.Error()
	}
	rep.Pass = len(rep.Defects()) == 0
	return rep
}

// kernelObjects lists what a scenario can leave in the kernel: ctlab's
// cgroups, links, and mounts under its directories. With prefix, only the
// objects named for that scenario's containers ("<id>-") are listed, so
// other ctlab users on the machine do not count (links are named by a
// hash of the container name: they are matched through the hash).
func kernelObjects(s *Scenario) []string {
	o := allKernelObjects()
	if s == nil {
		return o
	}
	links := map[string]bool{}
	for name := range s.Containers {
		h, c := network.LinkNames(s.ID + "-" + name)
		links["link "+h], links["link "+c] = true, true
	}
	var out []string
	for _, x := range o {
		if strings.Contains(x, "/"+s.ID+"-") || links[x] {
			out = append(out, x)
		}
	}
	return out
}

func allKernelObjects() []string {
	var out []string
	if cgs, err := cgroups.List(); err == nil {
		for _, c := range cgs {
			out = append(out, "cgroup ctlab/"+c)
		}
	}
	if links, err := network.Owned(); err == nil {
		for _, l := range links {
			out = append(out, "link "+l)
		}
	}
	if ms, err := mountinfo.Read(0); err == nil {
		for _, m := range ms {
			if strings.HasPrefix(m.MountPoint, sandbox.DataDir+"/") || strings.HasPrefix(m.MountPoint, sandbox.RunDir+"/") {
				out = append(out, "mount "+m.MountPoint)
			}
		}
	}
	return out
}
