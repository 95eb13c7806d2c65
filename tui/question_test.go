package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/ctlab/ctlab/lab"
)

func quizScenario(t testing.TB) *lab.Scenario {
	t.Helper()
	s, err := lab.NewLoader().LoadFS(os.DirFS("testdata/scenarios"), "golden-quiz.yaml")
	if err != nil {
		t.Fatalf("load quiz scenario: %v", err)
	}
	s.TrustReasons = nil // the project's own fixture: trusted like the embedded scenarios
	return s
}

// TestLessonGoldenQuestion: a step with a question at 80×24, before its
// action: the picker sits under the step status, the cursor moved by a key.
func TestLessonGoldenQuestion(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	s := quizScenario(t)
	sess, err := newLabSession(s, m.lang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.events.close() })
	m.Update(sessionOpenedMsg{sess: sess, scen: s, prog: Progress{Passed: map[string]bool{}}})
	m.open.remove(sess)
	renderText(t, m)
	m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	out := view(m)
	checkSize(t, out, 80, 24)
	for _, want := range []string{"? What hostname will a process inside box", "› 2) ctlab", "1) the host's"} {
		if !strings.Contains(out, want) {
			t.Errorf("question view lacks %q:\n%s", want, out)
		}
	}
	golden.RequireEqual(t, out)
}

// TestFlowQuestionAnswered runs the whole program on the quiz scenario:
// the question is asked before the action, the learner picks, enter runs
// the step, and the kernel's answer (read by the observe check) appears
// next to the learner's; then a number question, answered wrongly.
func TestFlowQuestionAnswered(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := filepath.Join(t.TempDir(), "progress.json")
	backend := &labBackend{progress: progressStore{path: progress}, catalogue: []*lab.Scenario{quizScenario(t)}}
	_, tm := startFlow(t, New(ctx, backend, Options{Lang: "en", ScenarioID: "golden-quiz"}), "golden-quiz-box")
	waitFor(t, tm, "question asked", func(s string) bool {
		return strings.Contains(s, "What hostname will a process inside box read?") && strings.Contains(s, "enter: answer and run")
	})
	tm.Send(tea.KeyPressMsg{Code: '2', Text: "2"})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitFor(t, tm, "kernel's answer", func(s string) bool {
		return strings.Contains(s, "you: ctlab · kernel: ctlab") && strings.Contains(s, "/proc/sys/kernel/hostname")
	})
	tm.Send(tea.KeyPressMsg{Code: 'n', Text: "n"})
	waitFor(t, tm, "number question", func(s string) bool { return strings.Contains(s, "type a number") })
	tm.Send(tea.KeyPressMsg{Code: '4', Text: "4"})
	tm.Send(tea.KeyPressMsg{Code: '2', Text: "2"})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitFor(t, tm, "kernel's number", func(s string) bool { return strings.Contains(s, "not quite") && strings.Contains(s, "pid passed") })
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(30*time.Second)).(*Model)
	if r := fm.quizzes[0].result; r == nil || !r.Correct || r.Kernel != "ctlab" || r.Evidence == nil || r.Evidence.Actual != "ctlab" {
		t.Errorf("first answer: %+v", r)
	}
	if r := fm.quizzes[1].result; r == nil || r.Correct || r.Kernel != "1" || r.Answer != "42" {
		t.Errorf("second answer: %+v", r)
	}
	pr, err := lab.LoadProgress(progress)
	if err != nil {
		t.Fatal(err)
	}
	sp := pr.Scenarios["golden-quiz"]
	if sp == nil || sp.Predictions["name"].Answer != "ctlab" || !sp.Predictions["name"].Correct || sp.Predictions["pid"].Kernel != "1" {
		t.Errorf("progress predictions: %+v", sp)
	}
}
