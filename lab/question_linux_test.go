package lab

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/host"
)

// TestShippedQuestionsAnswered runs every shipped scenario that asks
// questions headless with --solve, as `scenario run --json --solve` does:
// each question is asked, recorded as skipped, and answered from the
// kernel by its observe check (readable, and answering one of the choices).
func TestShippedQuestionsAnswered(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("-short: runs the shipped scenarios with questions")
	}
	list, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range list {
		asks := 0
		for _, st := range s.Steps {
			if st.Question != nil {
				asks++
			}
		}
		if asks == 0 {
			continue
		}
		total += asks
		t.Run(s.ID, func(t *testing.T) {
			if why := Preflight(s); len(why) > 0 {
				t.Skipf("this host cannot run %s: %v", s.ID, why)
			}
			var mu sync.Mutex
			var answered []QuestionAnswered
			var js bytes.Buffer
			jp := JSONPrinter(&js)
			e, err := New(s, Options{Trust: true, Emit: func(ev Event) {
				jp(ev)
				if a, ok := ev.(QuestionAnswered); ok {
					mu.Lock()
					answered = append(answered, a)
					mu.Unlock()
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			r, err := e.Run(ctx, RunOptions{Solve: true})
			if err != nil || !r.Passed() {
				t.Fatalf("run: %v %+v", err, r)
			}
			if len(answered) != asks {
				t.Fatalf("%d questions answered, want %d", len(answered), asks)
			}
			for _, a := range answered {
				if !a.Skipped || a.Kernel == "" || a.KernelText == "" {
					t.Errorf("%s: %+v", a.Step, a.Prediction)
				}
				if x := a.Evidence; x != nil && x.Err != "" {
					t.Errorf("%s: observe could not be read: %s", a.Step, x.Err)
				}
			}
			for _, want := range []string{`"event":"question_asked"`, `"event":"question_answered"`, `"prediction":{"skipped":true`} {
				if !strings.Contains(js.String(), want) {
					t.Errorf("JSON events lack %s", want)
				}
			}
		})
	}
	if total < 8 {
		t.Errorf("only %d shipped questions; the lessons promise more", total)
	}
}

func TestPreflightLocalised(t *testing.T) {
	s := &Scenario{Requires: Requires{Root: true, Overlay: true, Binaries: []string{"no-such-binary-ctlab"}}}
	f := host.Facts{}
	en, zh := PreflightLang(s, f, "en"), PreflightLang(s, f, "zh")
	if len(en) != 3 || len(zh) != 3 || en[0] != "needs root: run it with sudo" || !strings.Contains(zh[0], "需要 root") ||
		!strings.Contains(zh[2], "no-such-binary-ctlab") || strings.Contains(zh[1], "needs") {
		t.Errorf("en %q zh %q", en, zh)
	}
}
