package tui

import (
	"io"
	"strings"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/term"
)

// prepaint draws the first frame straight to the terminal, before Bubble
// Tea starts. Bubble Tea writes frames only on its renderer's ticker
// (every 1/frameRate s), so its first frame comes one tick, 33 ms, after
// start-up; the learner would wait that long for a screen that is ready.
// Bubble Tea's own first frame clears the screen and redraws the same
// content over this one.
func prepaint(w io.Writer, fd uintptr, m *Model, noColor bool) {
	width, height, err := term.GetSize(fd)
	if err != nil || width <= 0 || height <= 0 {
		return
	}
	m.resize(width, height)
	frame := m.View().Content
	if noColor {
		frame = ansi.Strip(frame)
	}
	// alternate screen, cursor hidden, home, clear; the terminal is still
	// cooked, so a line ends in CR LF explicitly.
	io.WriteString(w, ansi.SetAltScreenSaveCursorMode+ansi.HideCursor+ansi.CursorHomePosition+ansi.EraseEntireScreen+
		strings.ReplaceAll(frame, "\n", "\r\n"))
	m.frame = "" // Bubble Tea draws its own first frame
}
