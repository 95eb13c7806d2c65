package tui

import (
	"context"
	"errors"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/ctlab/ctlab/lab"
)

// timeNow is time.Now; snapshots are stamped with it for the sparkline rates.
var timeNow = time.Now

// loadHome reads the catalogue, each scenario's preflight and progress.
func loadHome(ctx context.Context, b Backend, lang string) tea.Cmd {
	return func() tea.Msg {
		list, err := b.Scenarios()
		var errs []error
		if err != nil {
			errs = append(errs, err)
		}
		items := make([]homeItem, 0, len(list))
		for _, s := range list {
			p, err := b.Progress(s.ID)
			if err != nil {
				errs = append(errs, err)
			}
			items = append(items, homeItem{scen: s, reasons: b.Preflight(ctx, s, lang), prog: p})
		}
		return homeLoadedMsg{items: items, err: errors.Join(errs...)}
	}
}

// openScenario opens s and prepares it up to the saved step. The session
// is registered with open as soon as it exists, so a quit while it is
// being prepared still removes what it made.
func openScenario(ctx context.Context, b Backend, open *openSessions, s *lab.Scenario, lang string) tea.Cmd {
	return func() tea.Msg {
		if !open.begin() {
			return nil // the program is ending
		}
		var sess Session
		defer func() { open.end(sess) }()
		prog, err := b.Progress(s.ID)
		if err != nil {
			prog = Progress{Passed: map[string]bool{}}
		}
		prog.Step = resumeStep(s, prog)
		sess, err = b.Open(ctx, s, lang)
		if err != nil {
			return sessionOpenedMsg{sess: sess, err: err}
		}
		if prog.Step > 0 {
			if err := sess.Prepare(ctx, prog.Step); err != nil {
				// The saved place cannot be rebuilt (the host changed?):
				// start over rather than show a half-made state.
				prog.Step = 0
				if rerr := sess.Reset(ctx); rerr != nil {
					return sessionOpenedMsg{sess: sess, err: errors.Join(err, rerr)}
				}
			}
		}
		return sessionOpenedMsg{sess: sess, scen: s, prog: prog}
	}
}

// openSessions is the set of sessions the program opened and did not yet
// close; Run closes them whatever way the program ended, after waiting
// for opens still in flight.
type openSessions struct {
	mu       sync.Mutex
	list     []Session
	closed   bool
	inflight sync.WaitGroup
}

// begin marks an open in flight; false once the program is ending.
func (o *openSessions) begin() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.inflight.Add(1)
	return true
}

// end registers the session an open made (nil: none).
func (o *openSessions) end(s Session) {
	if s != nil {
		o.add(s)
	}
	o.inflight.Done()
}

func (o *openSessions) add(s Session) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, s)
}

func (o *openSessions) remove(s Session) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.list {
		if x == s {
			o.list = append(o.list[:i], o.list[i+1:]...)
			return
		}
	}
}

// closeAll waits (within ctx) for opens in flight, then closes every
// open session; it returns how many there were.
func (o *openSessions) closeAll(ctx context.Context, keep bool) (int, error) {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	waited := make(chan struct{})
	go func() { o.inflight.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
	}
	o.mu.Lock()
	list := o.list
	o.list = nil
	o.mu.Unlock()
	var errs []error
	for _, s := range list {
		if err := s.Close(ctx, keep); err != nil {
			errs = append(errs, err)
		}
	}
	return len(list), errors.Join(errs...)
}
