package tui

import (
	"context"
	"os/exec"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/lab/grade"
	"github.com/ctlab/ctlab/tui/components/statepane"
)

// Backend is everything the TUI asks of ctlab's lesson machinery: the
// scenario catalogue, the host's preflight, saved progress, and opening a
// scenario. The shipped program and every flow test use labBackend (the
// real scenario engine and sandbox); the interface exists so the screens
// can be written, and model-tested, without caring how the engine is built.
//
// Every method may touch the disk or the kernel, so the model calls them
// only from tea.Cmds.
type Backend interface {
	// Scenarios lists the shipped scenarios in chapter order.
	Scenarios() ([]*lab.Scenario, error)
	// Preflight returns one readable reason per requirement this host does
	// not meet (nil: the scenario can run here).
	Preflight(ctx context.Context, s *lab.Scenario, lang string) []string
	// Progress returns where the learner left a scenario.
	Progress(id string) (Progress, error)
	// SaveProgress records it.
	SaveProgress(s *lab.Scenario, p Progress) error
	// Grade grades image ref (a name in ctlab's image store, or any
	// reference `ctlab grade` takes) against the homework, running it in
	// the sandbox.
	Grade(ctx context.Context, ref, lang string) (*grade.Result, error)
	// Open prepares a scenario for stepping. It creates no kernel object
	// until a step runs.
	Open(ctx context.Context, s *lab.Scenario, lang string) (Session, error)
}

// Progress is where a learner is in a scenario.
type Progress struct {
	Step   int             // index of the step to resume at (see resumeStep)
	Passed map[string]bool // step id -> passed
	// Predictions are the answered questions of this visit, by step id.
	Predictions map[string]lab.Prediction
}

// Session is one open scenario. Its methods block while the kernel work
// happens; they report what happened as lab.Events on Events() (the same
// stream the plain and JSON printers consume) and return an error only
// when the step could not be carried out at all.
type Session interface {
	// Events is the run's event stream; it is never closed while the
	// session is open.
	Events() <-chan lab.Event
	// Prepare brings the kernel to the state step i starts from, replaying
	// the actions (and solutions) of the steps before it: a re-opened
	// scenario resumes where the learner left it.
	Prepare(ctx context.Context, i int) error
	// Run performs step i's actions and grades it once; passed says
	// whether every check held (a task usually does not yet).
	Run(ctx context.Context, i int) (passed bool, err error)
	// Check grades step i against the live kernel now.
	Check(ctx context.Context, i int) (bool, error)
	// Predict records the learner's answer to step i's question, before
	// its action runs ("" = skipped).
	Predict(i int, answer string)
	// Hint reveals the next hint of step i (false when none is left).
	Hint(i int) (lab.HintShown, bool)
	// ResetStep undoes step i: the kernel goes back to the state before it.
	ResetStep(ctx context.Context, i int) error
	// Reset removes everything the scenario made; step 0 starts afresh.
	Reset(ctx context.Context) error
	// Shell returns an unstarted shell inside the container of step i,
	// attached to nothing (tea.ExecProcess connects the terminal), and the
	// function to call once it has exited.
	Shell(ctx context.Context, i int) (*exec.Cmd, func(), error)
	// Snapshot is the live kernel state for the panes of step i, as the
	// lab engine reads it (the TUI never reads the kernel itself).
	Snapshot(ctx context.Context, i int) *statepane.Snapshot
	// SetLang switches the language of later events (hints, titles).
	SetLang(lang string)
	// Close removes the scenario's kernel objects (unless keep).
	Close(ctx context.Context, keep bool) error
}
