package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/lab/grade"
)

// defaultGradeImage is the image name the prompt offers: the homework
// builds `hello` (ctlab build -t hello .).
const defaultGradeImage = "hello"

// gradeView is the homework grader (g on the homework chapter or in a
// homework lesson): a prompt for the image, the grading in progress, then
// the criteria with their evidence and points.
type gradeView struct {
	input   string
	running bool
	started time.Time
	image   string
	res     *grade.Result
	err     error
	offset  int
	cancel  context.CancelFunc
}

type gradeDoneMsg struct {
	res *grade.Result
	err error
}

type gradeTickMsg struct{}

// homeworkContext reports whether g grades here: on the homework chapter
// of the home screen, on a homework page, in a homework scenario.
func (m *Model) homeworkContext() bool {
	switch m.screen {
	case screenLesson:
		return m.scen != nil && m.scen.Chapter == "homework"
	case screenReader:
		return strings.HasPrefix(m.rd.page, "homework/")
	case screenHome:
		if m.cursor < len(m.rows) {
			c := m.rows[m.cursor].chapter
			return m.rows[m.cursor].kind != rowGlossary && c >= 0 && c < len(course) && course[c].id == "homework"
		}
	}
	return false
}

func (m *Model) openGrade() {
	m.gv = &gradeView{}
}

// updateGrade handles the grader's keys and messages while it is open.
func (m *Model) updateGrade(msg tea.Msg) tea.Cmd {
	g := m.gv
	switch msg := msg.(type) {
	case gradeTickMsg:
		if g.running {
			return gradeTick()
		}
		m.clean = true
		return nil
	case gradeDoneMsg:
		g.running, g.res, g.err, g.cancel = false, msg.res, msg.err, nil
		return nil
	case tea.KeyPressMsg:
		return m.gradeKey(msg)
	}
	return nil
}

func gradeTick() tea.Cmd {
	return tea.Tick(250*time.Millisecond, func(time.Time) tea.Msg { return gradeTickMsg{} })
}

func (m *Model) gradeKey(k tea.KeyPressMsg) tea.Cmd {
	g := m.gv
	s := k.String()
	switch {
	case s == "esc":
		if g.cancel != nil {
			g.cancel() // the grader removes its sandbox on the way out
		}
		m.gv = nil
	case g.running:
	case g.res != nil || g.err != nil:
		switch s {
		case "up", "k":
			g.offset = max(g.offset-1, 0)
		case "down", "j":
			g.offset++
		case "pgdown", "space":
			g.offset += 10
		case "pgup", "b":
			g.offset = max(g.offset-10, 0)
		case "g", "enter":
			m.gv = &gradeView{input: g.image}
		case "q":
			m.gv = nil
		}
	case s == "enter":
		return m.startGrade()
	case s == "backspace":
		if r := []rune(g.input); len(r) > 0 {
			g.input = string(r[:len(r)-1])
		}
	case len(k.Text) > 0 && len(g.input) < 200:
		g.input += k.Text
	}
	return nil
}

// startGrade runs the grader in a command: loading, unpacking and running
// an image takes seconds, and the ticks show that it is working.
func (m *Model) startGrade() tea.Cmd {
	g := m.gv
	g.image = strings.TrimSpace(g.input)
	if g.image == "" {
		g.image = defaultGradeImage
	}
	g.running, g.started = true, time.Now()
	ctx, cancel := context.WithCancel(m.ctx)
	g.cancel = cancel
	b, ref, lang := m.backend, g.image, m.lang
	return tea.Batch(gradeTick(), func() tea.Msg {
		defer cancel()
		res, err := b.Grade(ctx, ref, lang)
		return gradeDoneMsg{res: res, err: err}
	})
}

// viewGrade draws the grader full screen.
func (m *Model) viewGrade() string {
	g := m.gv
	w := max(m.width-4, 20)
	lines := []string{m.styles.Title.Render(m.t("grade.title")), ""}
	switch {
	case g.running:
		lines = append(lines, fmt.Sprintf("%s %s … %ds", m.t("grade.running"), g.image, int(time.Since(g.started).Seconds())),
			m.styles.Subtle.Render(m.t("grade.steps")))
	case g.err != nil:
		lines = append(lines, m.styles.Fail.Render(ansi.Wrap(g.err.Error(), w, "")))
	case g.res != nil:
		lines = append(lines, m.gradeLines(g.res, w)...)
	default:
		lines = append(lines, m.t("grade.prompt"), m.styles.Warn.Render("> "+g.input+"▏"),
			m.styles.Subtle.Render(fmt.Sprintf(m.t("grade.default"), defaultGradeImage)))
	}
	h := max(m.height-3, 1)
	if g.res != nil || g.err != nil {
		g.offset = min(g.offset, max(len(lines)-h, 0))
		lines = lines[g.offset:]
	}
	body := strings.Join(lines, "\n")
	foot := m.styles.Subtle.Render(m.t("grade.keys"))
	return box(m.styles.PaneFocus.Padding(0, 1), m.width, m.height-1, body, "homework") + "\n" + ansi.Truncate(foot, m.width, "…")
}

// gradeLines are the result: the score, then each criterion with its
// points, message and evidence.
func (m *Model) gradeLines(r *grade.Result, w int) []string {
	head := fmt.Sprintf("%s: %s · %d/%d", r.Image, r.Status, r.Points, r.MaxPoints)
	style := m.styles.Pass
	if r.Status != grade.Pass {
		style = m.styles.Fail
	}
	out := []string{style.Render(head)}
	if r.Message != "" {
		out = append(out, r.Message)
	}
	for _, c := range r.Criteria {
		mark, st := "✓", m.styles.Pass
		switch {
		case c.Informative:
			mark, st = "i", m.styles.Subtle
		case c.Status == grade.Fail:
			mark, st = "✗", m.styles.Fail
		case c.Status == grade.Error:
			mark, st = "!", m.styles.Fail
		}
		pts := fmt.Sprintf("%d/%d", c.Points, c.MaxPoints)
		if c.Informative {
			pts = m.t("grade.info")
		}
		out = append(out, "", st.Render(ansi.Truncate(fmt.Sprintf("%s %d. %s  %s", mark, c.TaskID, c.Title, pts), w, "…")))
		if c.Message != "" {
			out = append(out, strings.Split(ansi.Wrap("  "+c.Message, w, ""), "\n")...)
		}
		for _, e := range c.Evidence {
			out = append(out, m.styles.Subtle.Render(ansi.Truncate("    "+e, w, "…")))
		}
	}
	return out
}
