package tui

import (
	"os/exec"
	"time"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/components/statepane"
)

// Messages. Every kernel read and engine call happens in a tea.Cmd and
// comes back as one of these; Update only moves data.
type (
	// homeLoadedMsg: the catalogue with preflight and progress.
	homeLoadedMsg struct {
		items []homeItem
		err   error
	}
	// sessionOpenedMsg: a scenario is open and prepared up to its saved step.
	sessionOpenedMsg struct {
		sess Session
		scen *lab.Scenario
		prog Progress
		err  error
	}
	// eventMsg: one event of the open session's stream.
	eventMsg struct {
		gen int
		ev  lab.Event
	}
	// opDoneMsg: a Run/ResetStep/Reset/Prepare finished.
	opDoneMsg struct {
		gen    int
		op     string
		step   int
		passed bool // run, goto: the step's checks all held
		took   time.Duration
		err    error
	}
	// checkDoneMsg: a grading of the current step finished.
	checkDoneMsg struct {
		gen    int
		step   int
		passed bool
		err    error
	}
	// snapshotMsg is the refresh tick: it carries one reading of the
	// kernel for the state pane, taken in the timer's command. id and gen
	// make sure only one refresh loop runs, as bubbles' spinner.TickMsg
	// does: a tick whose generation is not the model's current one ends
	// its loop (a new step or a reset starts a new generation).
	snapshotMsg struct {
		id, gen int
		snap    *statepane.Snapshot
	}
	// shellReadyMsg: the shell command is built; Update hands it to
	// tea.ExecProcess.
	shellReadyMsg struct {
		gen     int
		cmd     *exec.Cmd
		release func()
		err     error
	}
	// shellDoneMsg: the learner left the shell; the TUI is back.
	shellDoneMsg struct {
		gen int
		err error
	}
	// hintMsg: the next hint, or none left.
	hintMsg struct {
		gen  int
		hint lab.HintShown
		ok   bool
	}
	// sessionClosedMsg: back on the home screen after the cleanup.
	sessionClosedMsg struct{ err error }
	// noticeMsg reports the error of a background chore (saving progress,
	// closing a half-open session) in the status bar; nil: all went well.
	noticeMsg struct{ err error }
)

// homeItem is one scenario on the home screen.
type homeItem struct {
	scen    *lab.Scenario
	reasons []string // unmet requirements, nil when the host is fine
	prog    Progress
}
