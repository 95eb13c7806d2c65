package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/components/actionlog"
)

func (m *Model) sessionOpened(msg sessionOpenedMsg) tea.Cmd {
	m.opening = false
	if msg.err != nil {
		if m.opts.ScenarioID != "" && m.sess == nil && m.screen == screenHome {
			m.fatal = msg.err
			return tea.Quit
		}
		m.notice = msg.err.Error()
		if sess := msg.sess; sess != nil {
			// Half-open (e.g. preparing failed): remove what it made.
			m.open.remove(sess)
			ctx, keep := m.ctx, m.opts.Keep
			return func() tea.Msg { return noticeMsg{err: sess.Close(ctx, keep)} }
		}
		return nil
	}
	if len(msg.scen.Steps) == 0 { // the loader refuses this; be safe anyway
		m.notice = msg.scen.ID + ": no steps"
		m.open.remove(msg.sess)
		sess, ctx, keep := msg.sess, m.ctx, m.opts.Keep
		return func() tea.Msg { return noticeMsg{err: sess.Close(ctx, keep)} }
	}
	m.sess, m.scen = msg.sess, msg.scen
	m.pane = 0
	m.sessGen++
	m.screen = screenLesson
	m.status = make([]stepStatus, len(m.scen.Steps))
	m.hints = map[int]string{}
	m.quizzes = map[int]*quiz{}
	m.passed = map[string]bool{}
	for id, ok := range msg.prog.Passed {
		m.passed[id] = ok
	}
	for i, st := range m.scen.Steps {
		if m.passed[st.ID] {
			m.status[i] = stepPassed
		}
	}
	m.step = min(max(msg.prog.Step, 0), len(m.scen.Steps)-1)
	m.log.Clear()
	if m.step > 0 {
		m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: fmt.Sprintf("%s %d/%d", m.t("resumed"), m.step+1, len(m.scen.Steps))})
	}
	cmds := []tea.Cmd{m.showStep(), m.listen(), m.restartTick()}
	if st := m.scen.Steps[m.step]; st.Kind == lab.KindTask && m.status[m.step] != stepPassed {
		// Resuming at a task: its setup runs now, so the shell is ready.
		cmds = append(cmds, m.runStep())
	}
	return tea.Batch(cmds...)
}

// listen re-arms the read of the session's event stream (glow's
// findNextLocalFile pattern): one event per command, tagged with the
// session generation so a closed session's stragglers are dropped.
func (m *Model) listen() tea.Cmd {
	ch, gen := m.sess.Events(), m.sessGen
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return nil
		}
		return eventMsg{gen: gen, ev: ev}
	}
}

// restartTick starts a new refresh loop and, by bumping the generation,
// ends any older one.
func (m *Model) restartTick() tea.Cmd {
	m.tickGen++
	return m.readState(m.tickGen)
}

// readState reads the kernel now (a new loop's first tick).
func (m *Model) readState(gen int) tea.Cmd {
	sess, step, id, ctx := m.sess, m.step, m.tickID, m.ctx
	return func() tea.Msg {
		return snapshotMsg{id: id, gen: gen, snap: sess.Snapshot(ctx, step)}
	}
}

// nextTick reads the kernel again after refreshEvery. One message per
// tick: the timer's command does the reading itself.
func (m *Model) nextTick(gen int) tea.Cmd {
	sess, step, id, ctx := m.sess, m.step, m.tickID, m.ctx
	return tea.Tick(refreshEvery, func(time.Time) tea.Msg {
		return snapshotMsg{id: id, gen: gen, snap: sess.Snapshot(ctx, step)}
	})
}

// showStep points the panes at the current step (text, panes to show).
func (m *Model) showStep() tea.Cmd {
	st := m.scen.Steps[m.step]
	m.state.SetPanes(st.Show)
	m.seen = map[string]string{}
	md := m.loader.StepText(st, m.lang)
	return m.narr.Set(fmt.Sprintf("%s/%s/%s", m.lang, m.scen.ID, st.ID), md)
}

func (m *Model) updateLesson(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case snapshotMsg:
		if msg.id != m.tickID || msg.gen != m.tickGen {
			m.clean = true
			return nil // an older loop: let it die
		}
		if !m.state.SetSnapshot(msg.snap) {
			m.clean = true // same kernel state: keep the last frame
		}
		return tea.Batch(m.nextTick(msg.gen), m.maybePoll())
	case eventMsg:
		if msg.gen != m.sessGen {
			return nil
		}
		return tea.Batch(m.event(msg.ev), m.listen())
	case opDoneMsg:
		if msg.gen != m.sessGen {
			return nil
		}
		return m.opDone(msg)
	case checkDoneMsg:
		if msg.gen != m.sessGen {
			return nil
		}
		m.checking = false
		m.clean = msg.err == nil && !msg.passed // a poll that changed nothing
		if msg.err != nil && m.ctx.Err() == nil {
			m.log.Add(actionlog.Entry{Kind: actionlog.Error, Text: msg.err.Error()})
		}
		if msg.passed && msg.step < len(m.status) {
			m.status[msg.step] = stepPassed
		}
		return nil
	case hintMsg:
		if msg.gen != m.sessGen {
			return nil
		}
		if !msg.ok {
			m.notice = m.t("step.nohint")
		}
		return nil
	case shellReadyMsg:
		if msg.gen != m.sessGen {
			return nil
		}
		if msg.err != nil {
			m.notice = msg.err.Error()
			return nil
		}
		release, gen := msg.release, msg.gen
		return execShell(msg.cmd, m.t("shell.banner"), func(err error) tea.Msg {
			release()
			return shellDoneMsg{gen: gen, err: err}
		})
	case shellDoneMsg:
		if msg.gen != m.sessGen {
			return nil
		}
		text := m.t("shell.closed")
		if msg.err != nil {
			text += ": " + msg.err.Error()
		}
		m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: text})
		// Re-check at once: the learner probably just did the task.
		return m.check(true)
	case tea.KeyPressMsg:
		return m.lessonKey(msg)
	}
	return nil
}

func (m *Model) lessonKey(k tea.KeyPressMsg) tea.Cmd {
	if cmd, ok := m.quizKey(k); ok {
		return cmd
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.Back):
		return m.closeSession()
	case key.Matches(k, m.keys.Run):
		if m.quizPending() && m.busy == "" {
			// predict first: the answer is recorded before the action runs
			return tea.Sequence(m.submitQuiz(), m.runStep())
		}
		return m.runStep()
	case key.Matches(k, m.keys.Next):
		return m.move(+1)
	case key.Matches(k, m.keys.Prev):
		return m.move(-1)
	case key.Matches(k, m.keys.Shell):
		return m.shell()
	case key.Matches(k, m.keys.Hint):
		return m.hint()
	case key.Matches(k, m.keys.Check):
		return m.check(true)
	case key.Matches(k, m.keys.ResetStep):
		return m.op("reset", func(ctx context.Context, s Session, i int) (bool, error) { return false, s.ResetStep(ctx, i) })
	case key.Matches(k, m.keys.ResetAll):
		return m.op("resetall", func(ctx context.Context, s Session, _ int) (bool, error) { return false, s.Reset(ctx) })
	case key.Matches(k, m.keys.PageDown):
		m.narr.Scroll(max(m.layout.BodyH-6, 1))
	case key.Matches(k, m.keys.PageUp):
		m.narr.Scroll(-max(m.layout.BodyH-6, 1))
	case key.Matches(k, m.keys.Down):
		m.narr.Scroll(1)
	case key.Matches(k, m.keys.Up):
		m.narr.Scroll(-1)
	case key.Matches(k, m.keys.Pane):
		m.pane = (m.pane + 1) % 3
	case key.Matches(k, m.keys.Zoom):
		m.zoom = !m.zoom // the text alone, full width (presenter mode has its own)
		return m.resize(m.width, m.height)
	}
	return nil
}

// op runs one engine operation of the current step in a command. Only one
// runs at a time; its context is cancelled by quit (ctrl+c mid-action).
func (m *Model) op(name string, fn func(context.Context, Session, int) (bool, error)) tea.Cmd {
	if m.busy != "" {
		m.notice = m.t("step.running")
		return nil
	}
	m.busy = name
	m.notice = ""
	ctx, cancel := context.WithCancel(m.ctx)
	m.cancelOp = cancel
	sess, step, gen := m.sess, m.step, m.sessGen
	if name == "run" {
		m.status[step] = stepRunning
	}
	if name == "resetall" {
		m.log.Clear()
	}
	return func() tea.Msg {
		defer cancel()
		start := time.Now()
		passed, err := fn(ctx, sess, step)
		return opDoneMsg{gen: gen, op: name, step: step, passed: passed, took: time.Since(start), err: err}
	}
}

func (m *Model) runStep() tea.Cmd {
	st := m.scen.Steps[m.step]
	if m.status[m.step] == stepWaiting && st.Kind == lab.KindTask {
		// enter on a waiting task: the learner's turn, open the shell.
		return m.shell()
	}
	return m.op("run", func(ctx context.Context, s Session, i int) (bool, error) { return s.Run(ctx, i) })
}

func (m *Model) opDone(msg opDoneMsg) tea.Cmd {
	m.busy, m.cancelOp = "", nil
	if msg.err != nil && m.ctx.Err() == nil {
		m.log.Add(actionlog.Entry{Kind: actionlog.Error, Text: msg.err.Error()})
	}
	i := msg.step
	switch msg.op {
	case "run", "goto":
		if i < len(m.status) && m.status[i] == stepRunning {
			switch {
			case msg.passed:
				m.status[i] = stepPassed
				m.passed[m.scen.Steps[i].ID] = true
			case msg.err == nil && m.scen.Steps[i].Kind == lab.KindTask:
				m.status[i] = stepWaiting
			default:
				m.status[i] = stepFailed
			}
		}
	case "reset":
		if i < len(m.status) {
			m.status[i] = stepIdle
			delete(m.passed, m.scen.Steps[i].ID)
			delete(m.quizzes, i) // the step is asked again
		}
		m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: m.t("key.reset") + " " + actionlog.FormatDuration(msg.took)})
		return tea.Batch(m.saveProgress(), m.restartTick())
	case "resetall":
		m.hints = map[int]string{}
		m.quizzes = map[int]*quiz{}
		for j := range m.status {
			m.status[j] = stepIdle
		}
		m.passed = map[string]bool{}
		m.step = 0
		m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: m.t("key.resetall") + " " + actionlog.FormatDuration(msg.took)})
		return tea.Batch(m.saveProgress(), m.showStep(), m.restartTick())
	}
	return m.restartTick()
}

// move goes to the next or previous step and brings the kernel along:
// the engine's current step is always the one on screen, so check, hint
// and shell act on what the learner reads. Going forward past a step the
// learner skipped performs its solution; going back rebuilds the state
// that step starts from. A task's setup runs as soon as it is reached, so
// the shell (s) is ready and the task can pass on its own. A demo waits
// for enter: the learner reads first.
func (m *Model) move(d int) tea.Cmd {
	n := m.step + d
	if n < 0 || n >= len(m.scen.Steps) || m.busy != "" {
		return nil
	}
	m.step = n
	m.notice = ""
	m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: fmt.Sprintf("%d/%d %s", n+1, len(m.scen.Steps), m.scen.Steps[n].Title.In(m.lang))})
	task := m.scen.Steps[n].Kind == lab.KindTask && m.status[n] != stepPassed
	if m.status[n] != stepPassed {
		m.status[n] = stepIdle
	}
	op := m.op("goto", func(ctx context.Context, s Session, i int) (bool, error) {
		if err := s.Prepare(ctx, i); err != nil {
			return false, err
		}
		if task {
			return s.Run(ctx, i)
		}
		return false, nil
	})
	if task {
		m.status[n] = stepRunning
	}
	return tea.Batch(m.showStep(), m.restartTick(), op)
}

func (m *Model) shell() tea.Cmd {
	sess, step, gen, ctx := m.sess, m.step, m.sessGen, m.ctx
	return func() tea.Msg {
		cmd, release, err := sess.Shell(ctx, step)
		return shellReadyMsg{gen: gen, cmd: cmd, release: release, err: err}
	}
}

func (m *Model) hint() tea.Cmd {
	sess, step, gen := m.sess, m.step, m.sessGen
	return func() tea.Msg {
		h, ok := sess.Hint(step)
		return hintMsg{gen: gen, hint: h, ok: ok}
	}
}

// check grades the current step. explicit (the c key, back from the
// shell) logs every result again; polling logs only changes.
func (m *Model) check(explicit bool) tea.Cmd {
	if m.checking || m.busy != "" {
		return nil
	}
	if explicit {
		m.seen = map[string]string{}
	}
	m.checking = true
	m.lastCheck = time.Now()
	sess, step, gen, ctx := m.sess, m.step, m.sessGen, m.ctx
	return func() tea.Msg {
		ok, err := sess.Check(ctx, step)
		return checkDoneMsg{gen: gen, step: step, passed: ok, err: err}
	}
}

// maybePoll re-grades a waiting task about once a second: a task passes on
// its own as soon as the kernel state matches.
func (m *Model) maybePoll() tea.Cmd {
	if m.scen == nil || m.status[m.step] != stepWaiting || time.Since(m.lastCheck) < checkEvery {
		return nil
	}
	return m.check(false)
}

// event turns one engine event into log lines and step state.
func (m *Model) event(ev lab.Event) tea.Cmd {
	switch e := ev.(type) {
	case lab.ActionDone:
		text := e.Desc
		if text == "" {
			text = e.Action
		}
		m.log.Add(actionlog.Entry{Kind: actionlog.Action, Text: text, Duration: e.Duration, Pass: e.Err == ""})
		// What the command printed, briefly: the full output is in
		// `ctlab scenario run --json`.
		n := 0
		for _, line := range strings.Split(e.Output, "\n") {
			if line = strings.TrimRight(line, " \r"); line != "" && n < 3 {
				m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: "│ " + line})
				n++
			}
		}
		if e.Err != "" {
			m.log.Add(actionlog.Entry{Kind: actionlog.Error, Text: e.Err})
		}
	case lab.CheckResult:
		ev := e.Evidence
		result := fmt.Sprintf("%v|%s|%s", ev.Pass, ev.Actual, ev.Err)
		if m.seen[ev.Desc] == result {
			m.clean = true // polling: nothing new to say, nothing to draw
			return nil
		}
		m.seen[ev.Desc] = result
		evidence := fmt.Sprintf("%s: %s %s, %s %s", ev.Source, m.t("log.want"), lab.LocalizeEvidence(m.lang, ev.Expected),
			m.t("log.got"), lab.LocalizeEvidence(m.lang, ev.Actual))
		if ev.Err != "" {
			evidence = ev.Source + ": " + ev.Err
		}
		desc := ev.Desc
		if desc == "" {
			desc = ev.Check
		}
		m.log.Add(actionlog.Entry{Kind: actionlog.Check, Text: desc, Pass: ev.Pass, Evidence: evidence})
	case lab.HintShown:
		if i := m.stepIndex(e.Step); i >= 0 {
			m.hints[i] = fmt.Sprintf("%s %d/%d: %s", m.t("step.hint"), e.Index+1, e.Of, e.Text)
		}
		m.log.Add(actionlog.Entry{Kind: actionlog.Hint, Text: fmt.Sprintf("%s %d/%d: %s", m.t("step.hint"), e.Index+1, e.Of, e.Text)})
	case lab.StepPassed:
		if i := m.stepIndex(e.Step); i >= 0 {
			m.status[i] = stepPassed
			m.passed[e.Step] = true
		}
		m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: m.styles.Pass.Render("✓ " + e.Step + " " + m.t("step.passed"))})
		return m.saveProgress()
	case lab.QuestionAnswered:
		m.quizAnswered(e)
	case lab.StepFailed:
		if i := m.stepIndex(e.Step); i >= 0 && m.status[i] != stepWaiting {
			m.status[i] = stepFailed
		}
		m.log.Add(actionlog.Entry{Kind: actionlog.Error, Text: e.Step + ": " + e.Reason})
	}
	return nil
}

func (m *Model) stepIndex(id string) int {
	for i, st := range m.scen.Steps {
		if st.ID == id {
			return i
		}
	}
	return -1
}

func (m *Model) saveProgress() tea.Cmd {
	p := Progress{Step: m.step, Passed: map[string]bool{}}
	for k, v := range m.passed {
		p.Passed[k] = v
	}
	for i, q := range m.quizzes {
		if q.result != nil && i < len(m.scen.Steps) {
			if p.Predictions == nil {
				p.Predictions = map[string]lab.Prediction{}
			}
			p.Predictions[m.scen.Steps[i].ID] = q.result.Prediction
		}
	}
	b, s := m.backend, m.scen
	return func() tea.Msg { return noticeMsg{err: b.SaveProgress(s, p)} }
}

// closeSession goes back to the home screen, removing the scenario's
// kernel objects first (unless --keep).
func (m *Model) closeSession() tea.Cmd {
	if m.busy != "" {
		return nil
	}
	sess, keep, ctx := m.sess, m.opts.Keep, m.ctx
	save := m.saveProgress()
	m.sess = nil
	m.sessGen++
	m.tickGen++
	m.opening, m.closing = true, true
	m.screen = screenHome // lesson keys are off while the cleanup runs
	open := m.open
	return tea.Sequence(save, func() tea.Msg {
		err := sess.Close(ctx, keep)
		// Only now: a quit meanwhile still finds it and waits for it.
		open.remove(sess)
		return sessionClosedMsg{err: err}
	})
}
