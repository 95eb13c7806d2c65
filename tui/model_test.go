package tui

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/components/narration"
	"github.com/ctlab/ctlab/tui/components/statepane"
)

// These tests drive Update with messages and compare View with golden
// files (go test ./tui/ -update rewrites them). Colour is stripped, so the
// goldens pin the layout and the words; the markers (= ≠ ✓ ✗) carry every
// meaning colour does. No command is executed: the kernel is not touched.

func goldenScenario(t testing.TB) *lab.Scenario {
	t.Helper()
	s, err := lab.NewLoader().LoadFS(os.DirFS("testdata/scenarios"), "golden-uts.yaml")
	if err != nil {
		t.Fatalf("load golden scenario: %v", err)
	}
	s.TrustReasons = nil // the project's own fixture: trusted like the embedded scenarios
	return s
}

func newTestModel(t testing.TB, opts Options, w, h int) *Model {
	t.Helper()
	opts.NoColor = true
	m := New(context.Background(), NewBackend(), opts)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func homeItems(t testing.TB) []homeItem {
	s := goldenScenario(t)
	blocked := *s
	blocked.ID, blocked.Chapter = "cg-blocked", "cgroups"
	blocked.Title = lab.Text{EN: "A scenario this host cannot run", ZH: "本机无法运行的场景"}
	return []homeItem{
		{scen: s, prog: Progress{Passed: map[string]bool{"start": true}}},
		{scen: &blocked, reasons: []string{"needs the memory cgroup controller (cgroup v2: not enabled)"}},
	}
}

func view(m *Model) string {
	return ansi.Strip(m.View().Content)
}

// renderText performs the narration rendering the model asked for
// synchronously, as the command would.
func renderText(t testing.TB, m *Model) {
	t.Helper()
	st := m.scen.Steps[m.step]
	md := m.loader.StepText(st, m.lang)
	out, err := narration.RenderNow(m.narr.Style, md, m.narr.Width())
	if err != nil {
		t.Fatal(err)
	}
	m.Update(narration.RenderedMsg{Key: m.narr.Key(), Width: m.narr.Width(), Text: out})
}

func openLesson(t testing.TB, m *Model, step int) {
	t.Helper()
	s := goldenScenario(t)
	sess, err := newLabSession(s, m.lang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.events.close() })
	m.Update(sessionOpenedMsg{sess: sess, scen: s, prog: Progress{Step: step, Passed: map[string]bool{}}})
	m.open.remove(sess)
	if m.busy == "run" {
		// a task's setup was started; say it finished
		m.Update(opDoneMsg{gen: m.sessGen, op: "run", step: step})
	}
	renderText(t, m)
}

func checkSize(t *testing.T, out string, w, h int) {
	t.Helper()
	lines := strings.Split(out, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("line %d is %d cells wide, terminal is %d: %q", i, lw, w, l)
		}
	}
}

func TestHomeGolden(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	m.Update(homeLoadedMsg{items: homeItems(t)})
	out := view(m)
	checkSize(t, out, 80, 24)
	golden.RequireEqual(t, out)
}

func TestHomeGoldenZH(t *testing.T) {
	m := newTestModel(t, Options{Lang: "zh"}, 80, 24)
	m.Update(homeLoadedMsg{items: homeItems(t)})
	m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	out := view(m)
	checkSize(t, out, 80, 24)
	golden.RequireEqual(t, out)
}

// fixedSnapshot is a reading with every section filled, as the kernel
// would report it for a container with its own uts, mnt and pid
// namespaces (inodes and pids fixed so the golden file is stable).
func fixedSnapshot(at time.Time, mem int64, cpu uint64) *statepane.Snapshot {
	return &statepane.Snapshot{
		Taken: at, Container: "golden-uts-box", Pid: 4242,
		Namespaces: []statepane.NSRow{
			{Kind: "uts", Host: 4026531838, Container: 4026532327},
			{Kind: "pid", Host: 4026531836, Container: 4026532328},
			{Kind: "net", Host: 4026531833, Container: 4026531833},
		},
		Hostname: statepane.Pair{Host: "vm", Container: "ctlab"},
		Cgroup: &statepane.Cgroup{Path: "ctlab/golden-uts-box", MemCurrent: mem, MemMax: 64 << 20,
			PidsCurrent: 3, PidsMax: 64, CPUUsageUsec: cpu, CPUQuotaUsec: 50000, CPUPeriodUsec: 100000},
		Overlay: &statepane.Overlay{Upper: "/var/lib/ctlab/containers/golden-uts-box/upper", Lowers: 1, Changes: []statepane.Change{
			{Path: "/etc", Kind: "modified"}, {Path: "/etc/hosts", Kind: "modified"},
			{Path: "/tmp/new", Kind: "added"}, {Path: "/bin/vi", Kind: "deleted"}, {Path: "/opt", Kind: "opaque"}}},
		Nets:   []statepane.NetNS{{Name: "host", Inode: 4026531833, Links: []statepane.Link{{Name: "lo", State: "unknown", Addrs: []string{"127.0.0.1/8"}}}}},
		UIDMap: []string{"0 100000 65536"},
		Time:   &statepane.Time{Monotonic: 0, Boottime: 0},
	}
}

func TestLessonGolden(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	openLesson(t, m, 0)
	gen := m.tickGen
	m.Update(snapshotMsg{id: m.tickID, gen: gen, snap: fixedSnapshot(time.Unix(100, 0), 10<<20, 0)})
	m.Update(eventMsg{gen: m.sessGen, ev: lab.ActionDone{Step: "start", Action: "start", Desc: "start box", Duration: 2345 * time.Microsecond}})
	m.Update(eventMsg{gen: m.sessGen, ev: lab.CheckResult{Step: "start", Evidence: lab.Evidence{Check: "namespace_differs", Desc: "uts namespace of box differs from host",
		Source: "/proc/4242/ns/uts", Expected: "≠ uts:[4026531838]", Actual: "uts:[4026532327]", Pass: true}}})
	m.Update(eventMsg{gen: m.sessGen, ev: lab.StepPassed{Step: "start"}})
	out := view(m)
	checkSize(t, out, 80, 24)
	golden.RequireEqual(t, out)
}

// TestLessonGoldenStatePane shows the task step's panes (cgroup bar and
// sparkline, overlay changes, links, id map, clocks) at a wider terminal,
// after several readings.
func TestLessonGoldenStatePane(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 120, 40)
	openLesson(t, m, 1)
	for i := 0; i < 8; i++ {
		at := time.Unix(100, 0).Add(time.Duration(i) * refreshEvery)
		m.Update(snapshotMsg{id: m.tickID, gen: m.tickGen, snap: fixedSnapshot(at, int64(8+i*3)<<20, uint64(i*i)*20000)})
	}
	out := view(m)
	checkSize(t, out, 120, 40)
	golden.RequireEqual(t, out)
}

func TestLessonGoldenPresenter(t *testing.T) {
	m := newTestModel(t, Options{Lang: "zh", Present: true}, 80, 24)
	openLesson(t, m, 0)
	out := view(m)
	checkSize(t, out, 80, 24)
	golden.RequireEqual(t, out)
	// tab brings the state pane to the front, alone
	m.Update(snapshotMsg{id: m.tickID, gen: m.tickGen, snap: fixedSnapshot(time.Unix(100, 0), 10<<20, 0)})
	m.Update(tea.KeyPressMsg{Code: tea.KeyTab})
	if out := view(m); !strings.Contains(out, "4026532327") || strings.Contains(out, "CLONE_NEWUTS") {
		t.Errorf("presenter state pane: want the inodes and not the lesson text, got\n%s", out)
	}
}

func TestHelpGolden(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	openLesson(t, m, 0)
	m.Update(tea.KeyPressMsg{Code: '?', Text: "?"})
	out := view(m)
	checkSize(t, out, 80, 24)
	golden.RequireEqual(t, out)
	m.Update(tea.KeyPressMsg{Code: tea.KeyEscape})
	if m.showHelp {
		t.Error("esc did not close the help")
	}
}

// TestStaleTickDropped: a tick or reading of an older refresh loop is
// ignored and schedules nothing, so only one loop ever runs.
func TestStaleTickDropped(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	openLesson(t, m, 0)
	old := m.tickGen
	m.restartTick()
	if _, cmd := m.Update(snapshotMsg{id: m.tickID, gen: old, snap: fixedSnapshot(time.Now(), 1, 1)}); cmd != nil {
		t.Error("a stale reading scheduled a command")
	}
	if m.state.Snapshot() != nil {
		t.Error("a stale reading reached the pane")
	}
	if _, cmd := m.Update(snapshotMsg{id: m.tickID, gen: m.tickGen, snap: fixedSnapshot(time.Now(), 1, 1)}); cmd == nil {
		t.Error("the current loop did not schedule its next tick")
	}
}

// TestResize: every size from tiny to large keeps the frame inside the
// terminal.
func TestResize(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	openLesson(t, m, 0)
	m.Update(snapshotMsg{id: m.tickID, gen: m.tickGen, snap: fixedSnapshot(time.Unix(100, 0), 10<<20, 0)})
	for _, sz := range [][2]int{{80, 24}, {100, 30}, {200, 60}, {81, 25}, {60, 20}, {40, 12}, {80, 24}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		renderText(t, m)
		checkSize(t, view(m), sz[0], sz[1])
	}
}

// TestLessonGoldenAscii pins the colour profile to Ascii (what NO_COLOR
// selects): the frame keeps bold, underline and reverse but no colour, and
// the golden file records the escape sequences.
func TestLessonGoldenAscii(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	openLesson(t, m, 0)
	m.Update(snapshotMsg{id: m.tickID, gen: m.tickGen, snap: fixedSnapshot(time.Unix(100, 0), 10<<20, 0)})
	var buf bytes.Buffer
	w := &colorprofile.Writer{Forward: &buf, Profile: colorprofile.Ascii}
	if _, err := w.WriteString(m.View().Content); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m`).Match(buf.Bytes()) {
		t.Error("colour codes left under the Ascii profile")
	}
	if !bytes.Contains(buf.Bytes(), []byte("\x1b[1m")) {
		t.Error("bold (allowed without colour) was dropped too")
	}
	golden.RequireEqual(t, buf.Bytes())
}

// TestResizeHomeAndPresenter: the home screen and presenter mode fit too.
func TestResizeHomeAndPresenter(t *testing.T) {
	home := newTestModel(t, Options{Lang: "zh"}, 80, 24)
	home.Update(homeLoadedMsg{items: homeItems(t)})
	pres := newTestModel(t, Options{Lang: "en", Present: true}, 80, 24)
	openLesson(t, pres, 0)
	for _, sz := range [][2]int{{80, 24}, {120, 40}, {60, 20}, {40, 12}} {
		for _, m := range []*Model{home, pres} {
			m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			if m.scen != nil {
				renderText(t, m)
			}
			checkSize(t, view(m), sz[0], sz[1])
			m.showHelp = true
			checkSize(t, view(m), sz[0], sz[1])
			m.showHelp = false
		}
	}
}
