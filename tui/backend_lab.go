package tui

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/lab/grade"
	"github.com/ctlab/ctlab/tui/components/statepane"
)

// labBackend is the real Backend: ctlab's scenario engine (package lab),
// which drives the sandbox and reads the kernel.
type labBackend struct {
	progress progressStore
	// catalogue replaces the shipped scenarios (tests load their own
	// files, which then run on the same real engine).
	catalogue []*lab.Scenario
}

// NewBackend returns the Backend the shipped program uses.
func NewBackend() Backend { return &labBackend{progress: newProgressStore()} }

func (b *labBackend) Scenarios() ([]*lab.Scenario, error) {
	if b.catalogue != nil {
		return b.catalogue, nil
	}
	list, err := lab.Shipped()
	if err != nil && len(list) == 0 {
		return nil, fmt.Errorf("load scenarios: %w", err)
	}
	// Scenarios that load are usable even when another file is broken;
	// the broken one is reported by `ctlab scenario validate`.
	return list, nil
}

func (b *labBackend) Preflight(ctx context.Context, s *lab.Scenario, lang string) []string {
	return lab.PreflightIn(s, lang)
}

func (b *labBackend) Progress(id string) (Progress, error) { return b.progress.load(id) }

func (b *labBackend) SaveProgress(s *lab.Scenario, p Progress) error { return b.progress.save(s, p) }

func (b *labBackend) Grade(ctx context.Context, ref, lang string) (*grade.Result, error) {
	return lab.GradeHomework(ctx, lab.DefaultHomework, ref, lang)
}

func (b *labBackend) Open(ctx context.Context, s *lab.Scenario, lang string) (Session, error) {
	ls, err := newLabSession(s, lang)
	if err != nil {
		return nil, err
	}
	if err := ls.eng.Begin(ctx); err != nil {
		return ls, fmt.Errorf("begin scenario %s: %w", s.ID, err)
	}
	return ls, nil
}

// newLabSession wraps a new engine for s; nothing touches the kernel yet.
func newLabSession(s *lab.Scenario, lang string) (*labSession, error) {
	ls := &labSession{scen: s, events: newEventQueue()}
	eng, err := lab.New(s, lab.Options{Lang: lang, Emit: ls.emit})
	if err != nil {
		return nil, fmt.Errorf("open scenario %s: %w", s.ID, err)
	}
	ls.eng = eng
	return ls, nil
}

// labSession adapts *lab.Engine, whose steps advance one way (a current
// step plus Next), to the TUI's random access: going to step i replays the
// steps before it quietly (their actions and solutions).
type labSession struct {
	scen   *lab.Scenario
	eng    *lab.Engine
	events *eventQueue
	quiet  atomic.Bool // while replaying: events are not news
	mu     sync.Mutex  // serialises goto against itself

	cache lab.SnapshotCache // what is costly to read again at every tick
}

func (s *labSession) emit(ev lab.Event) {
	if s.quiet.Load() {
		return
	}
	s.events.push(ev)
}

func (s *labSession) Events() <-chan lab.Event { return s.events.out }

// gotoStep makes step i current with the kernel in the state it starts
// from.
func (s *labSession) gotoStep(ctx context.Context, i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.eng.Current()
	if i == cur {
		return nil
	}
	if i < cur {
		// Back: the engine removes everything and replays steps 0..i-1.
		return s.eng.Goto(ctx, i)
	}
	// Forward: the kernel state of the steps done so far is kept (the
	// learner's own work included); a skipped step is solved.
	s.quiet.Store(true)
	defer s.quiet.Store(false)
	for ; cur < i; cur++ {
		if !s.eng.Passed(cur) {
			if _, err := s.eng.Solve(ctx); err != nil {
				return fmt.Errorf("fast-forward step %s: %w", s.scen.Steps[cur].ID, err)
			}
		}
		if !s.eng.Next() {
			break
		}
	}
	return nil
}

func (s *labSession) Prepare(ctx context.Context, i int) error { return s.gotoStep(ctx, i) }

func (s *labSession) Run(ctx context.Context, i int) (bool, error) {
	if err := s.gotoStep(ctx, i); err != nil {
		return false, err
	}
	return s.eng.RunStep(ctx)
}

func (s *labSession) Check(ctx context.Context, i int) (bool, error) {
	if s.eng.Current() != i {
		return false, nil // the learner moved on; nothing to grade here
	}
	return s.eng.Check(ctx), nil
}

func (s *labSession) Predict(i int, answer string) {
	if s.eng.Current() == i {
		s.eng.Predict(answer)
	}
}

func (s *labSession) Hint(i int) (lab.HintShown, bool) {
	if s.eng.Current() != i {
		return lab.HintShown{}, false
	}
	text, ok := s.eng.NextHint()
	return lab.HintShown{Text: text}, ok
}

func (s *labSession) ResetStep(ctx context.Context, i int) error {
	if err := s.gotoStep(ctx, i); err != nil {
		return err
	}
	return s.eng.ResetStep(ctx)
}

func (s *labSession) SetLang(lang string) { s.eng.SetLang(lang) }

func (s *labSession) Reset(ctx context.Context) error { return s.eng.Reset(ctx) }

func (s *labSession) Shell(ctx context.Context, i int) (*exec.Cmd, func(), error) {
	if err := s.gotoStep(ctx, i); err != nil {
		return nil, nil, err
	}
	return s.eng.ShellCommand()
}

// Snapshot asks the engine for the host and the step's focus, only the
// parts its panes show, and maps that to the pane's view.
func (s *labSession) Snapshot(ctx context.Context, i int) *statepane.Snapshot {
	return stateView(s.eng.Snapshot(ctx, lab.SnapshotOptions{Step: i, Focus: true, Cache: &s.cache}))
}

func (s *labSession) Close(ctx context.Context, keep bool) error {
	defer s.events.close()
	if keep {
		return nil
	}
	return s.eng.Close(ctx)
}

// eventQueue forwards events without ever blocking the engine: Emit is
// called from inside the engine's actions, and the TUI reads one event per
// command, so a bounded channel could stall an action behind the screen.
type eventQueue struct {
	mu     sync.Mutex
	buf    []lab.Event
	wake   chan struct{}
	out    chan lab.Event
	done   chan struct{}
	closed bool
}

func newEventQueue() *eventQueue {
	q := &eventQueue{wake: make(chan struct{}, 1), out: make(chan lab.Event), done: make(chan struct{})}
	go q.forward()
	return q
}

func (q *eventQueue) push(ev lab.Event) {
	q.mu.Lock()
	if !q.closed {
		q.buf = append(q.buf, ev)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) forward() {
	defer close(q.out)
	for {
		q.mu.Lock()
		batch := q.buf
		q.buf = nil
		q.mu.Unlock()
		for _, ev := range batch {
			select {
			case q.out <- ev:
			case <-q.done:
				return
			}
		}
		select {
		case <-q.wake:
		case <-q.done:
			return
		}
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}
