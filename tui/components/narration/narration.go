// Package narration shows a step's lesson text: Markdown rendered by Glamour once per width and language, then only scrolled.
package narration

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

// RenderedMsg carries one finished rendering back to Update.
type RenderedMsg struct {
	Key   string // the document's key (language, scenario, step)
	Width int
	Text  string
	Err   error
}

// Model is the lesson text of the current step. Rendering Markdown costs
// milliseconds, so it happens in a tea.Cmd and its result is cached by
// (key, width): a frame only slices the cached lines.
type Model struct {
	styles common.Styles
	// Style is the Glamour style: "dark" or "light".
	Style string

	width, height int
	key, md       string
	offset        int
	cache         map[string][]string
}

// New returns an empty narration pane using Glamour style style.
func New(styles common.Styles, style string) Model {
	return Model{styles: styles, Style: style, cache: map[string][]string{}}
}

func cacheKey(key string, w int) string { return fmt.Sprintf("%s@%d", key, w) }

// Set shows the document md under key; it returns the command that renders
// it when this key and width were not rendered before.
func (m *Model) Set(key, md string) tea.Cmd {
	if key != m.key {
		m.offset = 0
	}
	m.key, m.md = key, md
	return m.need()
}

// SetStyle switches the Glamour style; every rendering is redone.
func (m *Model) SetStyle(style string) tea.Cmd {
	if style == m.Style {
		return nil
	}
	m.Style = style
	m.cache = map[string][]string{}
	return m.need()
}

// SetSize sets the inner size and returns a render command if needed.
func (m *Model) SetSize(w, h int) tea.Cmd {
	m.width, m.height = w, h
	return m.need()
}

// Ready reports whether the current document is rendered at this width.
func (m Model) Ready() bool {
	_, ok := m.cache[cacheKey(m.key, m.width)]
	return ok
}

func (m *Model) need() tea.Cmd {
	if m.width <= 0 || m.key == "" {
		return nil
	}
	if _, ok := m.cache[cacheKey(m.key, m.width)]; ok {
		return nil
	}
	return Render(m.Style, m.key, m.md, m.width)
}

// Render renders md at width in a command (Glamour work off the update loop).
func Render(style, key, md string, width int) tea.Cmd {
	return func() tea.Msg {
		out, err := RenderNow(style, md, width)
		return RenderedMsg{Key: key, Width: width, Text: out, Err: err}
	}
}

// RenderNow renders md with Glamour, word-wrapped to width (the pane's
// whole width: common.RenderMarkdown has no margins).
func RenderNow(style, md string, width int) (string, error) {
	return common.RenderMarkdown(style, md, width)
}

// Update stores renderings.
func (m *Model) Update(msg tea.Msg) {
	if r, ok := msg.(RenderedMsg); ok {
		text := r.Text
		if r.Err != nil {
			text = r.Err.Error()
		}
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			// Glamour pads every line to the wrap width; the padding would
			// only cost cells on every frame.
			lines[i] = strings.TrimRight(l, " ")
			if ansi.StringWidth(lines[i]) > r.Width {
				lines[i] = ansi.Truncate(lines[i], r.Width, "…")
			}
		}
		m.cache[cacheKey(r.Key, r.Width)] = lines
	}
}

// Scroll moves the view by n lines (negative: up).
func (m *Model) Scroll(n int) {
	lines := m.cache[cacheKey(m.key, m.width)]
	m.offset += n
	if maxOff := len(lines) - m.height; m.offset > maxOff {
		m.offset = maxOff
	}
	if m.offset < 0 {
		m.offset = 0
	}
}

// Key returns the key of the document shown.
func (m Model) Key() string { return m.key }

// Width returns the width renderings are made for.
func (m Model) Width() int { return m.width }

// Lines returns how many lines the rendered document has.
func (m Model) Lines() int { return len(m.cache[cacheKey(m.key, m.width)]) }

// View returns at most height lines of the rendered text.
func (m Model) View() string { return m.ViewLines(m.height) }

// ViewLines returns at most h lines (the pane lends some to a hint).
func (m Model) ViewLines(h int) string {
	lines, ok := m.cache[cacheKey(m.key, m.width)]
	if !ok {
		return m.styles.Subtle.Render("…")
	}
	end := m.offset + h
	if end > len(lines) {
		end = len(lines)
	}
	start := m.offset
	if start > end {
		start = end
	}
	out := lines[start:end]
	if end < len(lines) && len(out) > 0 {
		// Say there is more instead of silently cutting the lesson.
		out = append(append([]string(nil), out[:len(out)-1]...), m.styles.Subtle.Render(fmt.Sprintf("↓ %d more (pgdn)", len(lines)-end+1)))
	}
	return strings.Join(out, "\n")
}
