// Package actionlog lists what a step did: each action with its duration, each check with its result and the kernel evidence behind it.
package actionlog

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

// Kind says what an Entry records.
type Kind int

// Entry kinds.
const (
	Info   Kind = iota // a note: step started, shell closed, cleanup
	Action             // an action of the step ran
	Check              // a check was evaluated
	Hint               // a hint was revealed
	Error              // something failed outside a check
)

// Entry is one line of the log.
type Entry struct {
	Kind     Kind
	Text     string        // the action or check, as the scenario says it
	Duration time.Duration // for actions
	Pass     bool          // for actions: no error; for checks: the result
	Evidence string        // for checks: "source: expected … actual …"
}

// maxEntries bounds memory for a learner who polls a task for an hour.
const maxEntries = 200

// Model is the log.
type Model struct {
	styles        common.Styles
	width, height int
	entries       []Entry
	emptyText     string
}

// New returns an empty log; empty is shown while nothing has run.
func New(styles common.Styles, empty string) Model {
	return Model{styles: styles, emptyText: empty}
}

// SetSize sets the inner size.
func (m *Model) SetSize(w, h int) { m.width, m.height = w, h }

// SetEmptyText sets the placeholder (it follows the language).
func (m *Model) SetEmptyText(s string) { m.emptyText = s }

// Add appends an entry.
func (m *Model) Add(e Entry) {
	m.entries = append(m.entries, e)
	if len(m.entries) > maxEntries {
		m.entries = m.entries[len(m.entries)-maxEntries:]
	}
}

// Clear empties the log (a new step, a reset).
func (m *Model) Clear() { m.entries = nil }

// Entries returns the entries, oldest first.
func (m Model) Entries() []Entry { return m.entries }

// View draws the newest entries that fit, oldest at the top.
func (m Model) View() string {
	if len(m.entries) == 0 {
		return m.styles.Subtle.Render(m.emptyText)
	}
	var lines []string
	for i := len(m.entries) - 1; i >= 0 && len(lines) < m.height; i-- {
		el := m.render(m.entries[i])
		// newest last: prepend this entry's lines
		lines = append(el, lines...)
	}
	if m.height > 0 && len(lines) > m.height {
		lines = lines[len(lines)-m.height:]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > m.width && m.width > 0 {
			lines[i] = ansi.Truncate(l, m.width, "…")
		}
	}
	return strings.Join(lines, "\n")
}

func (m Model) render(e Entry) []string {
	s := m.styles
	switch e.Kind {
	case Action:
		mark := s.Pass.Render("▶")
		if !e.Pass {
			mark = s.Fail.Render("✗")
		}
		return []string{fmt.Sprintf("%s %s %s", mark, e.Text, s.Subtle.Render(FormatDuration(e.Duration)))}
	case Check:
		mark := s.Pass.Render("✓")
		if !e.Pass {
			mark = s.Fail.Render("✗")
		}
		out := []string{mark + " " + e.Text}
		if e.Evidence != "" {
			out = append(out, "   "+s.Subtle.Render(e.Evidence))
		}
		return out
	case Hint:
		return []string{s.Warn.Render("💡 " + e.Text)}
	case Error:
		return []string{s.Fail.Render("✗ " + e.Text)}
	}
	return []string{s.Subtle.Render("· " + e.Text)}
}

// FormatDuration prints a step latency the way the lessons talk about it:
// microseconds for clone, milliseconds for RCU waits, seconds for unpack.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
