package statepane

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

func TestSparkline(t *testing.T) {
	if got := Sparkline([]float64{0, 1, 2, 3, 4, 5, 6, 7}, 8); got != "▁▂▃▄▅▆▇█" {
		t.Errorf("Sparkline ramp = %q", got)
	}
	if got := Sparkline([]float64{5, 1, 2, 3}, 2); got != "▅█" {
		t.Errorf("Sparkline keeps the last w values scaled to their max: %q", got)
	}
	if got := Sparkline([]float64{0, 0}, 4); got != "▁▁" {
		t.Errorf("Sparkline of zeros = %q", got)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{512: "512B", 64 << 10: "64K", 29 << 20: "29.0M", 3 << 30: "3.0G"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestUnchangedReadingNotRedrawn: the 4 Hz refresh of an unchanged kernel
// must not cost a redraw; a changed one must.
func TestUnchangedReadingNotRedrawn(t *testing.T) {
	m := New(common.DefaultStyles(), "en")
	m.SetSize(40, 20)
	m.SetPanes([]string{"namespaces", "hostname"})
	s := &Snapshot{Taken: time.Unix(1, 0), Container: "c", Pid: 1, Hostname: Pair{"vm", "ctlab"},
		Namespaces: []NSRow{{Kind: "uts", Host: 1, Container: 2}}}
	if !m.SetSnapshot(s) {
		t.Fatal("first reading reported as unchanged")
	}
	same := *s
	same.Taken = time.Unix(2, 0)
	if m.SetSnapshot(&same) {
		t.Error("identical reading reported as a change")
	}
	renamed := same
	renamed.Hostname = Pair{"vm", "learner"}
	if !m.SetSnapshot(&renamed) {
		t.Error("a new hostname was not reported as a change")
	}
	if v := ansi.Strip(m.View()); !strings.Contains(v, "learner") || !strings.Contains(v, "≠") {
		t.Errorf("view after rename:\n%s", v)
	}
}

// TestViewFits: whatever the reading, the pane stays inside its size.
func TestViewFits(t *testing.T) {
	m := New(common.DefaultStyles(), "zh")
	m.SetSize(30, 6)
	m.SetPanes([]string{"namespaces", "hostname", "overlay"})
	m.SetSnapshot(&Snapshot{Container: "a-very-long-container-name-indeed", Pid: 123456,
		Namespaces: []NSRow{{"uts", 4026531838, 4026532327}, {"pid", 1, 1}, {"mnt", 2, 3}},
		Hostname:   Pair{"host", "container"},
		Overlay:    &Overlay{Upper: "/var/lib/ctlab/containers/x/upper", Changes: []Change{{"/a/very/long/path/name/here", "deleted"}}}})
	lines := strings.Split(m.View(), "\n")
	if len(lines) > 6 {
		t.Errorf("%d lines in a 6-line pane", len(lines))
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > 30 {
			t.Errorf("line %q is %d cells wide, pane is 30", ansi.Strip(l), w)
		}
	}
}
