package tui

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

func (m *Model) stepState() string {
	switch m.status[m.step] {
	case stepRunning:
		return m.styles.Warn.Render("◌ " + m.t("step.running"))
	case stepWaiting:
		return m.styles.Warn.Render("… " + m.t("step.waiting") + " — " + m.t("step.taskhint"))
	case stepPassed:
		s := m.styles.Pass.Render("✓ " + m.t("step.passed"))
		if m.step == len(m.scen.Steps)-1 {
			s += " · " + m.t("step.done")
		}
		return s
	case stepFailed:
		return m.styles.Fail.Render("✗ " + m.t("step.failed"))
	}
	return m.styles.Subtle.Render(m.t("step.ready"))
}

// stepNotes are the lines between the step's state and its text: the
// latest hint. This is where a step's question goes (predict, then
// observe: the choices before the action, the learner's answer beside the
// kernel's after it), so it stays in view while the text scrolls.
func (m *Model) stepNotes(innerW int) []string {
	out := m.quizLines(innerW)
	if h := m.hints[m.step]; h != "" {
		// The latest hint stays under the step, where the learner looks
		// (the log scrolls, and presenter mode hides it).
		wrapped := strings.Split(ansi.Wrap("💡 "+h, innerW, ""), "\n")
		if len(wrapped) > 3 {
			wrapped = wrapped[:3]
		}
		for _, ln := range wrapped {
			out = append(out, m.styles.Warn.Render(ln))
		}
	}
	return out
}

// viewLesson draws the lesson screen: lesson text and step on the left,
// kernel state on the right, the action log below, the status bar last.
// Presenter mode draws one of the three at a time, full size.
func (m *Model) viewLesson() string {
	l := m.layout
	st := m.scen.Steps[m.step]
	header := fmt.Sprintf("%d/%d · %s · %s", m.step+1, len(m.scen.Steps), m.t("step."+st.Kind), st.Title.In(m.lang))
	innerW := l.LeftW - 2
	zoom := m.zoom && !m.opts.Present
	switch {
	case m.opts.Present:
		innerW = l.Width - 4
	case zoom:
		innerW = l.Width - 2
	}
	left := m.styles.Title.Render(ansi.Truncate(header, innerW, "…")) + "\n" +
		ansi.Truncate(m.stepState(), innerW, "…") + "\n"
	textH := m.layout.BodyH - 4
	if zoom {
		textH = l.BodyH + l.LogH - 4
	}
	notes := m.stepNotes(innerW)
	for _, ln := range notes {
		left += ln + "\n"
	}
	left += m.narr.ViewLines(max(textH-len(notes), 1))

	var body string
	if m.opts.Present {
		// One pane at a time, with room around it (tab cycles).
		var content, title string
		switch m.pane {
		case 1:
			content, title = m.state.View(), m.t("pane.state")
		case 2:
			content, title = m.log.View(), m.t("pane.log")
		default:
			content, title = left, m.t("pane.lesson")
		}
		body = m.boxes.box("present", m.styles.PaneFocus.Padding(0, 1), l.Width, l.BodyH, content, title)
	} else if zoom {
		body = m.boxes.box("zoom", m.styles.Pane, l.Width, l.BodyH+l.LogH, left, m.t("pane.lesson"))
	} else {
		lp := m.boxes.box("lesson", m.styles.Pane, l.LeftW, l.BodyH, left, m.t("pane.lesson"))
		rp := m.boxes.box("state", m.styles.Pane, l.RightW, l.BodyH, m.state.View(), m.t("pane.state"))
		lg := m.boxes.box("log", m.styles.Pane, l.Width, l.LogH, m.log.View(), m.t("pane.log"))
		body = lipgloss.JoinHorizontal(lipgloss.Top, lp, rp) + "\n" + lg
	}
	leftStatus := fmt.Sprintf(" %s · %s", m.scen.ID, m.scen.Title.In(m.lang))
	if m.notice != "" {
		leftStatus = " " + m.notice
	}
	// One mark per step: ✓ passed, ● the current one, ○ not yet.
	var dots strings.Builder
	for i := range m.scen.Steps {
		switch {
		case m.status[i] == stepPassed:
			dots.WriteString("✓")
		case i == m.step:
			dots.WriteString("●")
		default:
			dots.WriteString("○")
		}
	}
	right := dots.String() + " " + m.lang + " "
	if m.busy != "" {
		right = m.t("step.running") + " " + right
	}
	return body + "\n" + m.bar.View(leftStatus, right, common.LessonKeys{KeyMap: m.keys})
}

// boxCache remembers the last bordered drawing of each pane: at a 4 Hz
// refresh usually only the state pane's content changed, and the others
// are reused as they are.
type boxCache map[string]*boxEntry

type boxEntry struct {
	w, h           int
	content, title string
	out            string
}

func (c boxCache) box(name string, style lipgloss.Style, w, h int, content, title string) string {
	if e := c[name]; e != nil && e.w == w && e.h == h && e.content == content && e.title == title {
		return e.out
	}
	out := box(style, w, h, content, title)
	c[name] = &boxEntry{w: w, h: h, content: content, title: title, out: out}
	return out
}

// box draws content in a bordered pane of exactly w×h cells with title in
// the top border. Content is cropped first: lipgloss would wrap it.
func box(style lipgloss.Style, w, h int, content, title string) string {
	fw, fh := style.GetHorizontalFrameSize(), style.GetVerticalFrameSize()
	iw, ih := max(w-fw, 1), max(h-fh, 1)
	lines := strings.Split(content, "\n")
	if len(lines) > ih {
		lines = lines[:ih]
	}
	for i, ln := range lines {
		if ansi.StringWidth(ln) > iw {
			lines[i] = ansi.Truncate(ln, iw, "…")
		}
	}
	out := style.Width(w).Height(h).MaxHeight(h).Render(strings.Join(lines, "\n"))
	if title == "" {
		return out
	}
	// Put the title into the top border: "╭─ title ───╮".
	first, rest, ok := strings.Cut(out, "\n")
	if !ok {
		return out
	}
	t := " " + title + " "
	if ansi.StringWidth(t)+4 > w {
		return out
	}
	plain := []rune(ansi.Strip(first))
	if len(plain) < 3 {
		return out
	}
	border := style.GetBorderStyle()
	top := border.TopLeft + border.Top + t + strings.Repeat(border.Top, max(w-2-1-ansi.StringWidth(t), 0)) + border.TopRight
	fg := style.GetBorderTopForeground()
	return lipgloss.NewStyle().Foreground(fg).Render(top) + "\n" + rest
}
