package tui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/components/actionlog"
)

// quiz is the learner's side of one step's question (predict, then
// observe): the choice or number being entered, what was submitted, and
// the kernel's answer once the action ran.
type quiz struct {
	cursor    int    // choice under the cursor
	input     string // number typed so far
	submitted bool
	answer    string // the submitted choice value or number ("" skipped)
	shown     string // the submitted answer as shown (a choice's text)
	result    *lab.QuestionAnswered
}

// quizOf returns the quiz of step i, made on first use.
func (m *Model) quizOf(i int) *quiz {
	if m.quizzes == nil {
		m.quizzes = map[int]*quiz{}
	}
	q := m.quizzes[i]
	if q == nil {
		q = &quiz{}
		m.quizzes[i] = q
	}
	return q
}

// quizPending reports whether the current step's question still waits for
// the learner's prediction: it is asked before the action runs.
func (m *Model) quizPending() bool {
	if m.scen == nil || m.scen.Steps[m.step].Question == nil || m.status[m.step] == stepPassed {
		return false
	}
	q := m.quizOf(m.step)
	return !q.submitted && q.result == nil
}

// quizKey handles the picker's and the number input's keys while a
// question is pending; false lets the lesson keys have the key.
func (m *Model) quizKey(k tea.KeyPressMsg) (tea.Cmd, bool) {
	if !m.quizPending() {
		return nil, false
	}
	qs := m.scen.Steps[m.step].Question
	q := m.quizOf(m.step)
	s := k.String()
	if qs.Number != nil {
		switch {
		case len(s) == 1 && (s[0] >= '0' && s[0] <= '9' || s == "." || s == "-") && len(q.input) < 12:
			q.input += s
		case s == "backspace" && q.input != "":
			q.input = q.input[:len(q.input)-1]
		default:
			return nil, false
		}
		return nil, true
	}
	n := len(qs.Choices)
	switch {
	case key.Matches(k, m.keys.Up), s == "left":
		q.cursor = (q.cursor + n - 1) % n
	case key.Matches(k, m.keys.Down), s == "right":
		q.cursor = (q.cursor + 1) % n
	case len(s) == 1 && s[0] >= '1' && int(s[0]-'0') <= n:
		q.cursor = int(s[0] - '1')
	default:
		return nil, false
	}
	return nil, true
}

// submitQuiz records the pending prediction (enter: before the step's
// action runs) and returns the command that hands it to the engine.
func (m *Model) submitQuiz() tea.Cmd {
	if !m.quizPending() {
		return nil
	}
	qs := m.scen.Steps[m.step].Question
	q := m.quizOf(m.step)
	q.submitted = true
	if qs.Number != nil {
		if _, err := strconv.ParseFloat(q.input, 64); err == nil {
			q.answer, q.shown = q.input, q.input
			if u := qs.Number.Unit.In(m.lang); u != "" {
				q.shown += " " + u
			}
		}
	} else {
		c := qs.Choices[q.cursor]
		q.answer, q.shown = c.Value, c.In(m.lang)
		if q.answer == "" {
			q.answer = strconv.Itoa(q.cursor + 1)
		}
	}
	m.log.Add(actionlog.Entry{Kind: actionlog.Info, Text: m.t("quiz.you") + ": " + m.orSkipped(q.shown)})
	sess, i, answer := m.sess, m.step, q.answer
	return func() tea.Msg {
		sess.Predict(i, answer)
		return nil
	}
}

func (m *Model) orSkipped(s string) string {
	if s == "" {
		return m.t("quiz.skipped")
	}
	return s
}

// quizAnswered shows the kernel's answer next to the learner's.
func (m *Model) quizAnswered(e lab.QuestionAnswered) {
	i := m.stepIndex(e.Step)
	if i < 0 {
		return
	}
	q := m.quizOf(i)
	q.result = &e
	verdict := m.t("quiz.wrong")
	if e.Correct {
		verdict = m.t("quiz.right")
	}
	text := fmt.Sprintf("%s: %s · %s: %s", m.t("quiz.you"), m.orSkipped(q.shown), m.t("quiz.kernel"), e.KernelText)
	if !e.Skipped {
		text += " · " + verdict
	}
	entry := actionlog.Entry{Kind: actionlog.Check, Text: text, Pass: e.Correct}
	if x := e.Evidence; x != nil {
		entry.Evidence = x.Source + ": " + lab.LocalizeEvidence(m.lang, x.Actual)
	}
	m.log.Add(entry)
}

// quizLines draws the question under the step's status: the picker or
// the number input before the action, the two answers after it.
func (m *Model) quizLines(innerW int) []string {
	qs := m.scen.Steps[m.step].Question
	if qs == nil {
		return nil
	}
	q := m.quizOf(m.step)
	wrap := func(s string, n int) []string {
		ls := strings.Split(ansi.Wrap(s, innerW, ""), "\n")
		return ls[:min(len(ls), n)]
	}
	out := wrap("? "+qs.In(m.lang), 3)
	switch {
	case q.result != nil:
		e := q.result
		mark, style := "✗", m.styles.Fail
		if e.Correct {
			mark, style = "✓", m.styles.Pass
		}
		if e.Skipped {
			mark, style = "·", m.styles.Subtle
		}
		out = append(out, style.Render(ansi.Truncate(fmt.Sprintf("%s %s: %s · %s: %s", mark, m.t("quiz.you"), m.orSkipped(q.shown), m.t("quiz.kernel"), e.KernelText), innerW, "…")))
		if x := e.Evidence; x != nil {
			out = append(out, m.styles.Subtle.Render(ansi.Truncate("  "+m.t("quiz.read")+" "+x.Source, innerW, "…")))
		}
		if e.Explain != "" {
			for _, ln := range wrap("  "+e.Explain, 3) {
				out = append(out, m.styles.Subtle.Render(ln))
			}
		}
	case q.submitted:
		out = append(out, m.styles.Subtle.Render(ansi.Truncate(m.t("quiz.you")+": "+m.orSkipped(q.shown)+" · "+m.t("quiz.wait"), innerW, "…")))
	case qs.Number != nil:
		in := "> " + q.input + "▏"
		if u := qs.Number.Unit.In(m.lang); u != "" {
			in += " " + u
		}
		out = append(out, m.styles.Warn.Render(in), m.styles.Subtle.Render(ansi.Truncate(m.t("quiz.number"), innerW, "…")))
	default:
		for j, c := range qs.Choices {
			ln := fmt.Sprintf("  %d) %s", j+1, c.In(m.lang))
			if j == q.cursor {
				ln = m.styles.Warn.Render(ansi.Truncate("› "+ln[2:], innerW, "…"))
			} else {
				ln = ansi.Truncate(ln, innerW, "…")
			}
			out = append(out, ln)
		}
		out = append(out, m.styles.Subtle.Render(ansi.Truncate(m.t("quiz.choose"), innerW, "…")))
	}
	return out
}
