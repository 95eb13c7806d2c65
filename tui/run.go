// Package tui is ctlab's terminal interface: lessons beside the live kernel state, a shell into the lesson's container, progress and presenter mode.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/term"

	"github.com/ctlab/ctlab/tui/common"
)

// Options are what the command line chooses.
type Options struct {
	Lang       string // "zh" or "en"
	Present    bool   // presenter mode: large, one pane at a time
	ScenarioID string // open this scenario directly (`ctlab learn ID`)
	Page       string // open this content page in the reader (`ctlab learn PAGE`)
	Keep       bool   // leave the scenario's kernel objects behind on quit
	// NoColor drops colour (NO_COLOR is set); Run fills it from the
	// environment.
	NoColor bool

	// Input and Output default to the terminal (os.Stdin/os.Stdout); tests
	// and benchmarks set them.
	Input  io.Reader
	Output io.Writer
	// Backend defaults to the real scenario engine.
	Backend Backend
}

// ErrNoTTY is returned when ctlab is not attached to a terminal.
var ErrNoTTY = errors.New(common.T("en", "err.notty"))

// frameRate caps redraws per second. Bubble Tea's renderer wakes up at this
// rate even when nothing changed; at its default 60 that alone costs about
// 1% of a core here, at 30 half as much, and a lesson screen whose fastest
// change is the 4 Hz state refresh loses nothing.
const frameRate = 30

// programOptions are the options every program (Run, tests, benchmarks)
// is started with, so they measure what ships.
func programOptions() []tea.ProgramOption {
	return []tea.ProgramOption{tea.WithFPS(frameRate)}
}

// cleanupTimeout bounds the removal of a scenario's kernel objects at exit.
const cleanupTimeout = time.Minute

// Run shows the lessons until the learner quits, then removes the kernel
// objects of the scenario they had open (unless opts.Keep).
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Input == nil && opts.Output == nil {
		if !term.IsTerminal(os.Stdin.Fd()) || !term.IsTerminal(os.Stdout.Fd()) {
			// Bubble Tea would open /dev/tty or draw into a pipe; a learner
			// who piped ctlab somewhere wants the plain runner instead.
			if opts.Lang == "zh" {
				return errors.New(common.T("zh", "err.notty"))
			}
			return ErrNoTTY
		}
	}
	if os.Getenv("NO_COLOR") != "" { // no-color.org: present and not empty
		opts.NoColor = true
	}
	if opts.Backend == nil {
		opts.Backend = NewBackend()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	m := New(ctx, opts.Backend, opts)
	if opts.Input == nil && opts.Output == nil {
		prepaint(os.Stdout, os.Stdout.Fd(), m, opts.NoColor)
	}
	popts := append(programOptions(), tea.WithContext(ctx))
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		// Not a terminal: nothing reports a size, and the renderer draws
		// nothing at 0×0.
		popts = append(popts, tea.WithOutput(opts.Output), tea.WithWindowSize(common.MinWidth, common.MinHeight))
	}
	if opts.NoColor {
		popts = append(popts, tea.WithColorProfile(colorprofile.Ascii))
	}
	p := tea.NewProgram(m, popts...)

	// Bubble Tea turns SIGINT and SIGTERM into a clean exit; a closed
	// terminal (SIGHUP) must also end in the cleanup below rather than in
	// the default action, which would leave the scenario's objects behind.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		select {
		case <-hup:
			p.Quit()
		case <-ctx.Done():
		}
	}()

	defer func() {
		// Whatever ended the program (q, ctrl+c, SIGTERM, a panic turned
		// into an error): stop the op in flight, then remove what the
		// scenario made. Close waits for the engine's current action.
		cancel()
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer ccancel()
		n, cerr := m.open.closeAll(cctx, opts.Keep)
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the scenario's kernel objects (see `ctlab cleanup`): %w", cerr))
		}
		if opts.Keep && n > 0 {
			fmt.Fprintln(os.Stderr, common.T(opts.Lang, "keep.note"))
		}
	}()
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrInterrupted) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return m.fatal
}
