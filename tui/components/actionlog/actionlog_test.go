package actionlog

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Microsecond: "300µs", 2345 * time.Microsecond: "2.3ms", 1500 * time.Millisecond: "1.50s", 0: "",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestNewestFit: the log shows the newest entries that fit, oldest on
// top, a check's evidence under it.
func TestNewestFit(t *testing.T) {
	m := New(common.DefaultStyles(), "empty")
	m.SetSize(40, 3)
	if got := ansi.Strip(m.View()); got != "empty" {
		t.Errorf("empty log = %q", got)
	}
	m.Add(Entry{Kind: Action, Text: "start box", Duration: 2 * time.Millisecond, Pass: true})
	m.Add(Entry{Kind: Info, Text: "old news"})
	m.Add(Entry{Kind: Check, Text: "uts differs", Pass: false, Evidence: "/proc/1/ns/uts: want a, got b"})
	m.Add(Entry{Kind: Hint, Text: "try hostname"})
	got := strings.Split(ansi.Strip(m.View()), "\n")
	want := []string{"✗ uts differs", "   /proc/1/ns/uts: want a, got b", "💡 try hostname"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("log view = %q, want %q", got, want)
	}
	for i := 0; i < maxEntries+10; i++ {
		m.Add(Entry{Text: "x"})
	}
	if n := len(m.Entries()); n != maxEntries {
		t.Errorf("log keeps %d entries, want the bound %d", n, maxEntries)
	}
}
