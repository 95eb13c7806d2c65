package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/sandbox"
)

// These flows run the whole program (Bubble Tea, the real scenario engine,
// the real sandbox) on the golden-uts scenario, whose container name
// (golden-uts-box) no other package's tests use.

// testBackend is the real backend with the test scenario as catalogue and
// progress kept in a temporary directory.
func testBackend(t testing.TB) *labBackend {
	t.Helper()
	return &labBackend{progress: progressStore{path: filepath.Join(t.TempDir(), "progress.json")}, catalogue: []*lab.Scenario{goldenScenario(t)}}
}

// assertGone fails when anything of the golden-uts container is left:
// its state file, its cgroup in any hierarchy, its overlay mount.
func assertGone(t testing.TB, name string) {
	t.Helper()
	if _, err := sandbox.Load(name); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("container %s still known to ctlab after quit (err %v)", name, err)
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/ctlab/" + name)
	dirs2, _ := filepath.Glob("/sys/fs/cgroup/ctlab/" + name)
	if d := append(dirs, dirs2...); len(d) > 0 {
		t.Errorf("cgroup directories left: %v", d)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), "/containers/"+name+"/") {
		t.Errorf("mount of %s left in /proc/self/mountinfo", name)
	}
}

// startFlow runs m as a program at 100×30; at the end of the test every
// open session is closed and the container left must be gone.
func startFlow(t *testing.T, m *Model, container string) (*Model, *teatest.TestModel) {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(append(programOptions(), tea.WithColorProfile(colorprofile.Ascii))...))
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if _, err := m.open.closeAll(cctx, false); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		assertGone(t, container)
	})
	return m, tm
}

func waitFor(t *testing.T, tm *teatest.TestModel, what string, cond func(s string) bool) {
	t.Helper()
	var seen bytes.Buffer
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		seen.Write(b)
		return cond(seen.String())
	}, teatest.WithDuration(30*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	_ = what
}

// TestFlowRunDemoStep opens the scenario directly, runs its demo step with
// enter and waits for the state pane to show the container's own uts
// namespace; quitting removes every kernel object.
func TestFlowRunDemoStep(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, tm := startFlow(t, New(ctx, testBackend(t), Options{Lang: "en", ScenarioID: "golden-uts"}), "golden-uts-box")

	waitFor(t, tm, "lesson screen", func(s string) bool {
		return strings.Contains(s, "A new UTS namespace") && strings.Contains(s, "press enter to run")
	})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitFor(t, tm, "state pane with the container", func(s string) bool {
		return strings.Contains(s, "golden-uts-box") && strings.Contains(s, "passed")
	})
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(30*time.Second)).(*Model)

	snap := fm.state.Snapshot()
	if snap == nil || snap.Container != "golden-uts-box" {
		t.Fatalf("state pane: want golden-uts-box, got %+v", snap)
	}
	var uts *struct{ h, c uint64 }
	for _, r := range snap.Namespaces {
		if r.Kind == "uts" {
			uts = &struct{ h, c uint64 }{r.Host, r.Container}
		}
	}
	if uts == nil || uts.h == uts.c || uts.c == 0 {
		t.Errorf("uts row: want different host and container inodes, got %+v", uts)
	}
	if snap.Hostname.Container != "ctlab" {
		t.Errorf("container hostname in the pane: %q, want ctlab", snap.Hostname.Container)
	}
	if fm.status[0] != stepPassed {
		t.Errorf("step 1 status %v, want passed", fm.status[0])
	}
}

// TestRunCtrlCDuringAction starts the demo step through Run and presses
// ctrl+c straight away, while the container is being made: Run must
// return and leave no kernel object behind.
func TestRunCtrlCDuringAction(t *testing.T) {
	requireRoot(t)
	pr, pw := io.Pipe()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Options{Lang: "en", ScenarioID: "golden-uts", Input: pr, Output: &out, Backend: testBackend(t)})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "press enter to run") {
		if time.Now().After(deadline) {
			t.Fatalf("lesson screen did not appear; output so far:\n%q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.Write([]byte("\r"))
	// Wait until the action is under way (the container's state file
	// exists), then interrupt.
	for {
		if _, err := os.Stat("/run/ctlab/containers/golden-uts-box.json"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	pw.Write([]byte{0x03})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Run did not return after ctrl+c")
	}
	assertGone(t, "golden-uts-box")
}

// lockedBuffer is a bytes.Buffer safe for the renderer's writes and the
// test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFlowTaskPassesAndResumes: the learner reaches the task (its setup
// runs by itself), asks for a hint, does the task in the container (here
// through the sandbox's exec, as the shell would), and the step passes
// without a key. Re-opening the scenario returns to the task's step, now
// passed, with the first step's state rebuilt.
func TestFlowTaskPassesAndResumes(t *testing.T) {
	requireRoot(t)
	backend := testBackend(t)
	open := func() (*Model, *teatest.TestModel) {
		return startFlow(t, New(context.Background(), backend, Options{Lang: "en", ScenarioID: "golden-uts"}), "golden-uts-box")
	}

	_, tm := open()
	waitFor(t, tm, "lesson", func(s string) bool { return strings.Contains(s, "press enter to run") })
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitFor(t, tm, "demo passed", func(s string) bool { return strings.Contains(s, "start passed") })
	tm.Send(tea.KeyPressMsg{Code: 'n', Text: "n"})
	waitFor(t, tm, "task waiting", func(s string) bool { return strings.Contains(s, "waiting for you") })
	tm.Send(tea.KeyPressMsg{Code: 'h', Text: "h"})
	waitFor(t, tm, "hint", func(s string) bool { return strings.Contains(s, "hint 1/1") })

	// The learner's command, run inside the container's namespaces.
	c, err := sandbox.Load("golden-uts-box")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code, err := c.Exec(ctx, sandbox.ExecConfig{Args: []string{"hostname", "learner"}}); err != nil || code != 0 {
		t.Fatalf("hostname learner in the container: exit %d, %v", code, err)
	}
	waitFor(t, tm, "task passes on its own", func(s string) bool { return strings.Contains(s, "rename passed") })
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(30*time.Second)).(*Model)
	if fm.status[1] != stepPassed {
		t.Fatalf("task status %v, want passed", fm.status[1])
	}
	if _, err := fm.open.closeAll(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	assertGone(t, "golden-uts-box")

	// Re-open: both steps passed, so it resumes at the last one, with the
	// container of step 1 running again.
	m2, tm2 := open()
	waitFor(t, tm2, "resumed", func(s string) bool {
		return strings.Contains(s, "2/2") && strings.Contains(s, "golden-uts-box")
	})
	// p goes back to the demo: the kernel returns to the state before it
	// (no container), and enter runs it again.
	tm2.Send(tea.KeyPressMsg{Code: 'p', Text: "p"})
	waitFor(t, tm2, "back at step 1", func(s string) bool { return strings.Contains(s, "1/2") })
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := sandbox.Load("golden-uts-box"); errors.Is(err, sandbox.ErrNotFound) {
			break
		}
	}
	assertGone(t, "golden-uts-box")
	tm2.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	fm2 := tm2.FinalModel(t, teatest.WithFinalTimeout(30*time.Second)).(*Model)
	if fm2.step != 0 || !fm2.passed["start"] || !fm2.passed["rename"] {
		t.Errorf("after p: step %d with passed %v, want step 1 and both still passed (progress is the learner's record)", fm2.step+1, fm2.passed)
	}
	_ = m2
}

// TestFlowBackToHome: esc leaves the lesson for the home screen and
// removes the scenario's kernel objects on the way.
func TestFlowBackToHome(t *testing.T) {
	requireRoot(t)
	m := New(context.Background(), testBackend(t), Options{Lang: "en", ScenarioID: "golden-uts"})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(append(programOptions(), tea.WithColorProfile(colorprofile.Ascii))...))
	t.Cleanup(func() {
		if _, err := m.open.closeAll(context.Background(), false); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	waitFor(t, tm, "lesson", func(s string) bool { return strings.Contains(s, "press enter to run") })
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitFor(t, tm, "demo passed", func(s string) bool { return strings.Contains(s, "start passed") })
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEscape})
	waitFor(t, tm, "home screen", func(s string) bool { return strings.Contains(s, "containers from the kernel up") })
	// The cleanup runs in a command behind the home screen: wait for it.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := sandbox.Load("golden-uts-box"); errors.Is(err, sandbox.ErrNotFound) {
			break
		}
	}
	assertGone(t, "golden-uts-box")
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	tm.WaitFinished(t, teatest.WithFinalTimeout(30*time.Second))
}
