package lab

import (
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Event is one thing that happened during a run. The plain printer, the
// JSON-lines printer and the TUI all consume the same stream; Name is the
// "event" field of the JSON form.
type Event interface {
	Name() string
}

// Evidence is the result of one check: what was read where, what was
// expected, what the kernel said.
type Evidence struct {
	Check    string `json:"check"`            // kind, e.g. "hostname_equals"
	Desc     string `json:"desc"`             // the check with its arguments
	Target   string `json:"target,omitempty"` // host, a container, a process
	Source   string `json:"source"`           // kernel file or netlink call read
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	Pass     bool   `json:"pass"`
	Guard    bool   `json:"guard,omitempty"`
	Err      string `json:"error,omitempty"` // the state could not be read (counts as fail)
}

// ScenarioStarted opens a run.
type ScenarioStarted struct {
	Time     time.Time `json:"time"`
	Scenario string    `json:"scenario"`
	Title    string    `json:"title"`
	Steps    int       `json:"steps"`
	Lang     string    `json:"lang"`
}

// StepStarted: a step became current. Text is the lesson prose in Lang.
type StepStarted struct {
	Time  time.Time `json:"time"`
	Step  string    `json:"step"`
	Index int       `json:"index"` // 0-based
	Kind  string    `json:"kind"`
	Title string    `json:"title,omitempty"`
	Text  string    `json:"text"`
	Shell string    `json:"shell,omitempty"` // container (spec name) for the learner's shell (tasks)
	// ShellName is the kernel-visible name of that container, for
	// `ctlab exec NAME -- /bin/sh` from another terminal.
	ShellName string `json:"shell_name,omitempty"`
	Hints     int    `json:"hints_available"`
}

// ActionDone: one do/solve action finished.
type ActionDone struct {
	Time     time.Time     `json:"time"`
	Step     string        `json:"step"`
	Action   string        `json:"action"` // kind
	Desc     string        `json:"desc"`
	Solve    bool          `json:"solve,omitempty"` // part of the step's solution
	Duration time.Duration `json:"duration_ns"`
	Output   string        `json:"output,omitempty"`
	ExitCode *int          `json:"exit_code,omitempty"`
	Err      string        `json:"error,omitempty"`
}

// Snapshot is the live kernel state of the host and the scenario's
// containers, processes and stand-alone overlays after a step's actions:
// the parts the panes the step shows need (see Engine.Snapshot). The
// plain and JSON printers print it; the TUI draws its Focus.
type Snapshot struct {
	Time  time.Time `json:"time"`
	Step  string    `json:"step"`
	Panes []string  `json:"panes"`
	// Focus is the target the step is about: its shell container, else the
	// first declared container that runs, else a stand-alone overlay; ""
	// when none exists. Set only by a focused read (SnapshotOptions.Focus).
	Focus string `json:"focus,omitempty"`
	// Targets is keyed by target name: "host", containers and background
	// processes by their names in the scenario, overlays by their `as`.
	Targets map[string]*TargetState `json:"targets"`
	Errors  map[string]string       `json:"errors,omitempty"` // target -> why it was not read in full
}

// TargetState is the kernel state of one target of a Snapshot, and
// ProcessState that of its process: named here so that the TUI, which
// never reads the kernel itself, draws them through package lab alone.
type (
	TargetState  = kstate.Snapshot
	ProcessState = kstate.Process
)

// CheckResult carries one check's evidence.
type CheckResult struct {
	Time     time.Time `json:"time"`
	Step     string    `json:"step"`
	Evidence Evidence  `json:"evidence"`
}

// HintShown: the learner asked for the next hint.
type HintShown struct {
	Time  time.Time `json:"time"`
	Step  string    `json:"step"`
	Index int       `json:"index"` // 0-based
	Of    int       `json:"of"`
	Text  string    `json:"text"`
}

// StepPassed: every check of the step passed.
type StepPassed struct {
	Time     time.Time     `json:"time"`
	Step     string        `json:"step"`
	Duration time.Duration `json:"duration_ns"`
	Solved   bool          `json:"solved,omitempty"` // by solve, not by the learner
	Hints    int           `json:"hints_used"`
}

// StepFailed: a demo's checks failed, an action failed, or a task timed out.
type StepFailed struct {
	Time   time.Time `json:"time"`
	Step   string    `json:"step"`
	Reason string    `json:"reason"`
}

// ScenarioDone closes a run with its result.
type ScenarioDone struct {
	Time   time.Time `json:"time"`
	Result *Result   `json:"result"`
}

// Name implementations: the JSON "event" field.
func (ScenarioStarted) Name() string { return "scenario_started" }
func (StepStarted) Name() string     { return "step_started" }
func (ActionDone) Name() string      { return "action_done" }
func (Snapshot) Name() string        { return "snapshot" }
func (CheckResult) Name() string     { return "check_result" }
func (HintShown) Name() string       { return "hint_shown" }
func (StepPassed) Name() string      { return "step_passed" }
func (StepFailed) Name() string      { return "step_failed" }
func (ScenarioDone) Name() string    { return "scenario_done" }

// Result is the outcome of a run, printed as JSON by --json and stored for
// reports.
type Result struct {
	Scenario string        `json:"scenario"`
	Status   string        `json:"status"` // pass | fail | error | skipped
	Message  string        `json:"message,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []StepResult  `json:"steps"`
}

// StepResult is one step of a Result.
type StepResult struct {
	ID       string        `json:"id"`
	Kind     string        `json:"kind"`
	Status   string        `json:"status"` // pass | fail | skipped
	Solved   bool          `json:"solved,omitempty"`
	Hints    int           `json:"hints_used"`
	Duration time.Duration `json:"duration_ns"`
	Checks   []Evidence    `json:"checks"`
	Message  string        `json:"message,omitempty"`
	// Prediction is the answer to the step's question, once revealed.
	Prediction *Prediction `json:"prediction,omitempty"`
}

// Passed reports whether every step passed.
func (r *Result) Passed() bool { return r != nil && r.Status == "pass" }
