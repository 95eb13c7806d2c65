package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctlab/ctlab/sandbox"
)

// Options configure an Engine.
type Options struct {
	Lang  string      // "en" (default) or "zh"
	Trust bool        // allow `host` actions (run commands on the host as root)
	Emit  func(Event) // receives every event, in order; nil discards them
	// Loader renders step text from content pages (default NewLoader()).
	Loader *Loader
	// Poll is how often a task's checks are re-evaluated (default 1s).
	Poll time.Duration
}

// TrustError: the scenario wants to run host commands and --trust was not given.
type TrustError struct {
	Scenario string
	Steps    []string
	Reasons  []string // Scenario.TrustReasons, for a file
}

func (e *TrustError) Error() string {
	if len(e.Steps) == 0 {
		return fmt.Sprintf("scenario %s would get host access (%s); read it, then run it with --trust if you trust its author",
			e.Scenario, strings.Join(e.Reasons, "; "))
	}
	return fmt.Sprintf("scenario %s runs commands on or reads files of the host (steps: %s); read it, then run it with --trust if you trust its author",
		e.Scenario, strings.Join(e.Steps, ", "))
}

// NeedsTrustWhy reports whether running s needs --trust, and why: the steps
// that touch the host, and for a scenario file, every route to the host
// (TrustReasons).
func (s *Scenario) NeedsTrustWhy() (steps, reasons []string) {
	steps = s.TrustSteps()
	if !s.Builtin {
		reasons = s.TrustReasons
	}
	return steps, reasons
}

// TrustSteps lists the steps that touch the host directly and so need
// --trust: host actions always, host file reads unless the scenario is
// built in.
func (s *Scenario) TrustSteps() []string {
	out := append([]string(nil), s.NeedsTrust...)
	if !s.Builtin {
		for _, st := range s.ReadsHost {
			if !slices.Contains(out, st) {
				out = append(out, st)
			}
		}
	}
	return out
}

// Engine runs one scenario. It is driven step by step (the TUI) or all at
// once (Run, for the headless printers). Methods are safe to call from
// several goroutines: mutating operations are serialised, Snapshot is not
// blocked by a long-running action.
type Engine struct {
	s   *Scenario
	opt Options

	op sync.Mutex // serialises RunStep, Check, Solve, Reset...

	mu         sync.Mutex // guards the fields below
	cur        int
	containers map[string]*sandbox.Container // by spec name
	procs      map[string]*bgProc            // background exec'd processes by `as` name
	overlays   map[string]*standaloneOverlay
	layers     map[string]string         // commit_layer results: name -> dir
	bundles    map[string]string         // write_bundle results: name -> dir
	hostProcs  map[string]*hostProc      // host_process names
	hostname0  map[string]string         // hostname of each target when first seen (hostname_unchanged)
	configs    map[string]sandbox.Config // what each container was last started with (container_start)
	ioRuns     map[string]ioRun          // the kernel's io counters over each container's last `load io` (io_rate)
	steps      []stepState
	started    time.Time
	begun      bool
	lock       *os.File // per-scenario lock, held from Begin to Close
	quiet      bool     // replaying earlier steps (ResetStep): no events
}

type stepState struct {
	started  time.Time
	didDo    bool
	hints    int
	passed   bool
	solved   bool
	failed   string
	duration time.Duration
	checks   []Evidence

	predicted  bool       // the learner answered the question (Predict)
	revealed   bool       // the kernel's answer was shown
	prediction Prediction // learner's answer next to the kernel's
	answer     *Evidence  // the question's observe check, after the action
}

// New prepares an engine; nothing touches the kernel until Begin. It
// refuses a scenario with host actions unless opt.Trust.
func New(s *Scenario, opt Options) (*Engine, error) {
	if s == nil {
		return nil, errors.New("lab: nil scenario")
	}
	if steps, why := s.NeedsTrustWhy(); (len(steps) > 0 || len(why) > 0) && !opt.Trust {
		return nil, &TrustError{Scenario: s.ID, Steps: steps, Reasons: why}
	}
	if opt.Lang != "zh" {
		opt.Lang = "en"
	}
	if opt.Loader == nil {
		opt.Loader = NewLoader()
	}
	if opt.Poll <= 0 {
		opt.Poll = time.Second
	}
	return &Engine{
		s: s, opt: opt,
		containers: map[string]*sandbox.Container{},
		procs:      map[string]*bgProc{},
		overlays:   map[string]*standaloneOverlay{},
		layers:     map[string]string{},
		bundles:    map[string]string{},
		hostProcs:  map[string]*hostProc{},
		hostname0:  map[string]string{},
		configs:    map[string]sandbox.Config{},
		ioRuns:     map[string]ioRun{},
		steps:      make([]stepState, len(s.Steps)),
	}, nil
}

// Scenario returns the scenario being run.
func (e *Engine) Scenario() *Scenario { return e.s }

// Lang returns the language events are rendered in.
func (e *Engine) Lang() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opt.Lang
}

// SetLang switches the language of later events (the TUI's toggle).
func (e *Engine) SetLang(lang string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if lang == "zh" || lang == "en" {
		e.opt.Lang = lang
	}
}

// Current returns the index of the current step.
func (e *Engine) Current() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cur
}

// Step returns the current step.
func (e *Engine) Step() *Step { return e.s.Steps[e.Current()] }

// StepText renders the lesson prose of step i in the engine's language.
func (e *Engine) StepText(i int) string { return e.opt.Loader.StepText(e.s.Steps[i], e.Lang()) }

// Passed reports whether step i has passed.
func (e *Engine) Passed(i int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.steps[i].passed
}

// ContainerName is the kernel-visible name of a scenario container.
func (e *Engine) ContainerName(spec string) string { return e.s.ID + "-" + spec }

func (e *Engine) emit(ev Event) {
	e.mu.Lock()
	f, quiet := e.opt.Emit, e.quiet
	e.mu.Unlock()
	if f != nil && !quiet {
		f(ev)
	}
}

// Begin removes whatever an earlier run of this scenario left behind,
// records the host's state and makes step 0 current.
func (e *Engine) Begin(ctx context.Context) error {
	e.op.Lock()
	defer e.op.Unlock()
	if e.lock == nil {
		lk, err := lockScenario(ctx, e.s.ID)
		if err != nil {
			return err
		}
		e.lock = lk
	}
	if err := e.removeAll(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	e.started = time.Now()
	e.begun = true
	e.cur = 0
	e.steps = make([]stepState, len(e.s.Steps))
	e.mu.Unlock()
	if h, err := hostnameOf(os.Getpid()); err == nil {
		e.mu.Lock()
		e.hostname0["host"] = h
		e.mu.Unlock()
	}
	lang := e.Lang()
	e.emit(ScenarioStarted{Time: time.Now(), Scenario: e.s.ID, Title: e.s.Title.In(lang), Steps: len(e.s.Steps), Lang: lang})
	e.startStep(0)
	return nil
}

func (e *Engine) startStep(i int) {
	st := e.s.Steps[i]
	e.mu.Lock()
	e.cur = i
	e.steps[i].started = time.Now()
	lang := e.opt.Lang
	e.mu.Unlock()
	shellName := ""
	if st.Shell != "" {
		shellName = e.ContainerName(st.Shell)
	}
	e.emit(StepStarted{Time: time.Now(), Step: st.ID, Index: i, Kind: st.Kind, Title: st.Title.In(lang),
		Text: e.opt.Loader.StepText(st, lang), Shell: st.Shell, ShellName: shellName, Hints: len(st.Hints)})
	e.askQuestion(i, lang)
}

// Next makes the next step current; false at the end. It does not perform
// the current step: a learner who skips a task should Solve it first, or
// later steps may miss the state it makes.
func (e *Engine) Next() bool {
	e.op.Lock()
	defer e.op.Unlock()
	i := e.Current()
	if i+1 >= len(e.s.Steps) {
		return false
	}
	e.startStep(i + 1)
	return true
}

// RunStep performs the current step's `do` actions (once), snapshots the
// state and evaluates the checks. A demo passes or fails here; a task is
// only evaluated (the learner still has to act) and the returned bool says
// whether it already passes.
func (e *Engine) RunStep(ctx context.Context) (bool, error) {
	e.op.Lock()
	defer e.op.Unlock()
	return e.runStep(ctx)
}

func (e *Engine) runStep(ctx context.Context) (bool, error) {
	i := e.Current()
	st := e.s.Steps[i]
	e.mu.Lock()
	did := e.steps[i].didDo
	e.steps[i].didDo = true
	e.mu.Unlock()
	if !did {
		if err := e.doActions(ctx, st, st.Do, false); err != nil {
			e.fail(i, err.Error())
			return false, err
		}
	}
	e.emitSnapshot(st)
	ok := e.check(ctx, i)
	if st.Kind == KindDemo {
		e.reveal(ctx, i) // the action ran: pass or fail, the kernel can answer
	}
	if !ok && st.Kind == KindDemo {
		e.fail(i, "checks failed")
	}
	return ok, nil
}

func (e *Engine) fail(i int, reason string) {
	e.mu.Lock()
	e.steps[i].failed = reason
	e.mu.Unlock()
	e.emit(StepFailed{Time: time.Now(), Step: e.s.Steps[i].ID, Reason: reason})
}

// Check evaluates the current step's checks now (the TUI's "check" key and
// the task poll). When all pass the step is marked passed.
func (e *Engine) Check(ctx context.Context) bool {
	e.op.Lock()
	defer e.op.Unlock()
	return e.check(ctx, e.Current())
}

func (e *Engine) check(ctx context.Context, i int) bool {
	st := e.s.Steps[i]
	ev := e.Evaluate(ctx, st.Expect)
	all := true
	for _, x := range ev {
		e.emit(CheckResult{Time: time.Now(), Step: st.ID, Evidence: x})
		all = all && x.Pass
	}
	e.mu.Lock()
	s := &e.steps[i]
	s.checks = ev
	newly := all && !s.passed
	if all {
		s.passed = true
		s.failed = ""
		s.duration = time.Since(s.started)
	}
	solved, hints, d := s.solved, s.hints, s.duration
	e.mu.Unlock()
	if newly {
		e.reveal(ctx, i)
		e.emit(StepPassed{Time: time.Now(), Step: st.ID, Duration: d, Solved: solved, Hints: hints})
	}
	return all
}

// WaitTask re-evaluates the current step every Poll interval until its
// checks pass (true), ctx ends (false, ctx.Err()) or another step becomes
// current (false, nil). Progress is emitted
// as check results only when the outcome changes, so a printer is not
// flooded while the learner thinks.
func (e *Engine) WaitTask(ctx context.Context) (bool, error) {
	last := ""
	i := e.Current()
	for {
		e.op.Lock()
		if e.Current() != i {
			// the TUI moved on (Next, Goto, Reset): stop waiting for this step
			e.op.Unlock()
			return false, nil
		}
		ev := e.Evaluate(ctx, e.s.Steps[i].Expect)
		sig := signature(ev)
		all := true
		for _, x := range ev {
			all = all && x.Pass
		}
		if all {
			e.check(ctx, i) // emits the evidence and StepPassed
			e.op.Unlock()
			return true, nil
		}
		if sig != last {
			for _, x := range ev {
				e.emit(CheckResult{Time: time.Now(), Step: e.s.Steps[i].ID, Evidence: x})
			}
			last = sig
		}
		e.op.Unlock()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(e.opt.Poll):
		}
	}
}

func signature(ev []Evidence) string {
	var b strings.Builder
	for _, x := range ev {
		fmt.Fprintf(&b, "%v|%s|%s;", x.Pass, x.Actual, x.Err)
	}
	return b.String()
}

// NextHint reveals the next hint of the current step; false when there are
// no more.
func (e *Engine) NextHint() (string, bool) {
	e.mu.Lock()
	i := e.cur
	st := e.s.Steps[i]
	n := e.steps[i].hints
	if n >= len(st.Hints) {
		e.mu.Unlock()
		return "", false
	}
	e.steps[i].hints++
	lang := e.opt.Lang
	e.mu.Unlock()
	text := st.Hints[n].In(lang)
	e.emit(HintShown{Time: time.Now(), Step: st.ID, Index: n, Of: len(st.Hints), Text: text})
	return text, true
}

// Solve fast-forwards the current step: its `do` (if not yet run), then
// its `solve` actions, then the checks.
func (e *Engine) Solve(ctx context.Context) (bool, error) {
	e.op.Lock()
	defer e.op.Unlock()
	i := e.Current()
	st := e.s.Steps[i]
	e.mu.Lock()
	did := e.steps[i].didDo
	e.steps[i].didDo = true
	e.steps[i].solved = len(st.Solve) > 0
	e.mu.Unlock()
	if !did {
		if err := e.doActions(ctx, st, st.Do, false); err != nil {
			e.fail(i, err.Error())
			return false, err
		}
	}
	if err := e.doActions(ctx, st, st.Solve, true); err != nil {
		e.fail(i, err.Error())
		return false, err
	}
	e.emitSnapshot(st)
	e.settle(ctx, i)
	ok := e.check(ctx, i)
	if !ok {
		e.fail(i, "checks failed after the solution")
	}
	return ok, nil
}

// solveSettle bounds how long a solved task may take to show in the
// kernel. A solution's effects land asynchronously, as the learner's do:
// a SIGSTOP stops its target only when the target is next scheduled, and a
// background writer needs a moment to write. A task is polled until it
// passes (WaitTask), so Solve waits for its checks the same way, briefly,
// instead of judging the first instant after the last action.
const solveSettle = 3 * time.Second

// settle re-evaluates step i's checks, quietly, until they all pass or
// solveSettle ends; the caller then checks once more and reports.
func (e *Engine) settle(ctx context.Context, i int) {
	deadline := time.Now().Add(solveSettle)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, x := range e.Evaluate(ctx, e.s.Steps[i].Expect) {
			all = all && x.Pass
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ResetStep rebuilds the state as it was when the current step began:
// the scenario is reset and every earlier step is fast-forwarded (do +
// solve), quietly.
func (e *Engine) ResetStep(ctx context.Context) error { return e.Goto(ctx, e.Current()) }

// Goto makes step i current with the state it expects: everything is
// removed, steps 0..i-1 are replayed quietly (do + solve), and step i
// starts fresh. It is how the TUI goes back, or jumps ahead.
func (e *Engine) Goto(ctx context.Context, target int) error {
	if target < 0 || target >= len(e.s.Steps) {
		return fmt.Errorf("no step %d (the scenario has %d)", target+1, len(e.s.Steps))
	}
	e.op.Lock()
	defer e.op.Unlock()
	if err := e.removeAll(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	e.quiet = true // the replay is not news
	e.mu.Unlock()
	var err error
	for i := 0; i < target && err == nil; i++ {
		st := e.s.Steps[i]
		e.mu.Lock()
		e.cur = i
		e.mu.Unlock()
		if err = e.doActions(ctx, st, st.Do, false); err == nil {
			err = e.doActions(ctx, st, st.Solve, true)
		}
	}
	e.mu.Lock()
	e.quiet = false
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("replay steps before %s: %w", e.s.Steps[target].ID, err)
	}
	e.mu.Lock()
	e.steps[target] = stepState{}
	e.mu.Unlock()
	e.startStep(target)
	return nil
}

// Reset removes every kernel object the scenario made and goes back to
// step 0.
func (e *Engine) Reset(ctx context.Context) error {
	e.op.Lock()
	defer e.op.Unlock()
	if err := e.removeAll(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	e.steps = make([]stepState, len(e.s.Steps))
	e.mu.Unlock()
	e.startStep(0)
	return nil
}

// Close removes every kernel object the scenario made. Call it when the
// learner leaves the scenario.
func (e *Engine) Close(ctx context.Context) error {
	e.op.Lock()
	defer e.op.Unlock()
	err := e.removeAll(ctx)
	if e.lock != nil {
		e.lock.Close() // releases the flock
		e.lock = nil
	}
	return err
}

// ShellCommand returns an unstarted shell inside the current step's shell
// container (for the TUI, which suspends itself while it runs). release
// must be called once the command has started.
func (e *Engine) ShellCommand() (cmd *exec.Cmd, release func(), err error) {
	st := e.Step()
	name := st.Shell
	if name == "" {
		for n := range e.s.Containers {
			if e.container(n) != nil {
				name = n
				break
			}
		}
	}
	c := e.container(name)
	if c == nil {
		return nil, nil, fmt.Errorf("no running container for a shell in step %s", st.ID)
	}
	cmd, release, err = c.Command(sandbox.ExecConfig{Args: []string{"/bin/sh"},
		Env: append(append([]string(nil), c.Env...), "PS1="+name+"# ")})
	if err != nil {
		return nil, nil, fmt.Errorf("shell in %s: %w", name, err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd, release, nil
}

// Result summarises the run so far.
func (e *Engine) Result() *Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &Result{Scenario: e.s.ID, Started: e.started, Duration: time.Since(e.started), Status: "pass"}
	for i, st := range e.s.Steps {
		s := e.steps[i]
		sr := StepResult{ID: st.ID, Kind: st.Kind, Solved: s.solved, Hints: s.hints, Duration: s.duration, Checks: s.checks, Message: s.failed}
		switch {
		case s.passed:
			sr.Status = "pass"
		case s.failed != "":
			sr.Status = "fail"
		default:
			sr.Status = "skipped"
		}
		if sr.Status != "pass" && r.Status == "pass" {
			r.Status = "fail"
			r.Message = fmt.Sprintf("step %s: %s", st.ID, sr.Status)
			if s.failed != "" {
				r.Message += ": " + s.failed
			}
		}
		if st.Question != nil && s.revealed {
			p := s.prediction
			sr.Prediction = &p
		}
		if sr.Checks == nil {
			sr.Checks = []Evidence{}
		}
		r.Steps = append(r.Steps, sr)
	}
	return r
}

// RunOptions select how Run handles tasks.
type RunOptions struct {
	// Solve performs each task's solution instead of waiting for the learner.
	Solve bool
}

// Run plays the whole scenario: Begin, then each step (demo: do + checks;
// task: solve or wait for the learner, bounded by the step's timeout),
// stopping at the first failed step, and always removes what it made.
func (e *Engine) Run(ctx context.Context, ro RunOptions) (*Result, error) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		e.Close(cctx)
	}()
	if err := e.Begin(ctx); err != nil {
		return nil, err
	}
	for {
		i := e.Current()
		st := e.s.Steps[i]
		var ok bool
		var err error
		switch {
		case st.Kind == KindTask && ro.Solve:
			if ok, err = e.RunStep(ctx); err == nil && !ok {
				ok, err = e.Solve(ctx)
			}
		case st.Kind == KindTask:
			if ok, err = e.RunStep(ctx); err == nil && !ok {
				timeout := st.Timeout
				if timeout == 0 {
					timeout = 10 * time.Minute
				}
				tctx, cancel := context.WithTimeout(ctx, timeout)
				ok, err = e.WaitTask(tctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					e.fail(i, fmt.Sprintf("not done within %s", timeout))
					err = nil
				}
			}
		default:
			ok, err = e.RunStep(ctx)
		}
		if err != nil || !ok || !e.Next() {
			break
		}
	}
	r := e.Result()
	e.emit(ScenarioDone{Time: time.Now(), Result: r})
	return r, nil
}
