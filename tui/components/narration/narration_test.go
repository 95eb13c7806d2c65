package narration

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

// TestRenderOncePerWidth: a document is rendered once per width; showing
// it again (a new frame, a step revisited) asks for no rendering.
func TestRenderOncePerWidth(t *testing.T) {
	m := New(common.DefaultStyles(), "dark")
	if cmd := m.SetSize(40, 5); cmd != nil {
		t.Error("no document yet, but a rendering was asked for")
	}
	cmd := m.Set("en/s/a", "# Title\n\none two three four five six seven eight nine ten eleven twelve")
	if cmd == nil {
		t.Fatal("new document: no rendering asked for")
	}
	m.Update(cmd())
	if !m.Ready() {
		t.Fatal("rendering did not reach the cache")
	}
	if m.Set("en/s/a", "ignored") != nil || m.SetSize(40, 5) != nil {
		t.Error("a cached rendering was asked for again")
	}
	if m.SetSize(60, 5) == nil {
		t.Error("a new width did not ask for a rendering")
	}
	m.SetSize(40, 5)
	for _, l := range strings.Split(m.View(), "\n") {
		if w := ansi.StringWidth(l); w > 40 {
			t.Errorf("line %q is %d wide", ansi.Strip(l), w)
		}
	}
	if !strings.Contains(ansi.Strip(m.View()), "Title") {
		t.Errorf("view lacks the heading:\n%s", ansi.Strip(m.View()))
	}
}

func TestScrollBounds(t *testing.T) {
	m := New(common.DefaultStyles(), "dark")
	m.SetSize(40, 3)
	m.Update(Render("dark", "k", strings.Repeat("para\n\n", 20), 40)())
	m.Set("k", "")
	m.Scroll(-5)
	if m.offset != 0 {
		t.Errorf("scrolled above the top: %d", m.offset)
	}
	m.Scroll(1000)
	if m.offset != m.Lines()-3 {
		t.Errorf("scrolled past the end: offset %d of %d lines", m.offset, m.Lines())
	}
	if !strings.Contains(m.View(), "para") {
		t.Errorf("view at the end:\n%s", m.View())
	}
}
