// Package statusbar draws the line under the lesson: where the learner is, what the step is doing, and the keys.
package statusbar

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

// Model is the two-line footer: a status line and the short help.
type Model struct {
	styles common.Styles
	help   help.Model
	width  int
}

// New returns a status bar.
func New(styles common.Styles) Model {
	h := help.New()
	h.Styles.ShortKey = styles.Key
	h.Styles.ShortDesc = styles.Subtle
	h.Styles.ShortSeparator = styles.Subtle
	h.Styles.FullKey = styles.Key
	h.Styles.FullDesc = styles.Subtle
	h.Styles.FullSeparator = styles.Subtle
	return Model{styles: styles, help: h}
}

// SetSize sets the width.
func (m *Model) SetSize(w int) {
	m.width = w
	m.help.SetWidth(w)
}

// View draws left and right on the status line and the keys below.
func (m Model) View(left, right string, keys help.KeyMap) string {
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		left = ansi.Truncate(left, max(m.width-lipgloss.Width(right)-1, 0), "…")
		gap = m.width - lipgloss.Width(left) - lipgloss.Width(right)
		if gap < 1 {
			gap = 1
		}
	}
	line := m.styles.Status.Render(left + strings.Repeat(" ", gap) + right)
	return line + "\n" + m.help.ShortHelpView(keys.ShortHelp())
}

// FullHelp draws the "?" screen's key table.
func (m Model) FullHelp(keys help.KeyMap) string {
	return m.help.FullHelpView(keys.FullHelp())
}
