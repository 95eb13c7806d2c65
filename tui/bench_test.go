package tui

import (
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// Performance goals (issue 4): first frame under 100 ms, idle CPU under 2%
// of a core on the lesson screen. Run with
//
//	go test -tags netgo,osusergo -ldflags '-linkmode external -extldflags "-static"' \
//	    -run '^$' -bench . -benchtime 20x ./tui/

// BenchmarkFirstFrame times Run from its call to the first frame that has
// the home screen's title on it (the real backend: scenario catalogue
// loaded from the embedded files; preflight arrives in a later frame).
func BenchmarkFirstFrame(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		pr, pw := io.Pipe()
		out := &signalWriter{want: "containers from the kernel up", seen: make(chan struct{})}
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			done <- Run(context.Background(), Options{Lang: "en", Input: pr, Output: out, Backend: NewBackend()})
		}()
		select {
		case <-out.seen:
		case <-time.After(10 * time.Second):
			b.Fatal("no first frame within 10 s")
		}
		total += time.Since(start)
		pw.Write([]byte("q"))
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		pw.Close()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/first-frame")
}

// signalWriter closes seen once want has been written.
type signalWriter struct {
	want string
	buf  strings.Builder
	seen chan struct{}
	done bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.buf.Write(p)
		if strings.Contains(w.buf.String(), w.want) {
			w.done = true
			close(w.seen)
		}
	}
	return len(p), nil
}

// BenchmarkFrameRender is one refresh of the lesson screen at 80×24: a
// new kernel reading reaches the state pane (its cache is invalidated, as
// at every 4 Hz tick) and the whole frame is drawn.
func BenchmarkFrameRender(b *testing.B) {
	m := newTestModel(b, Options{Lang: "en"}, 80, 24)
	openLesson(b, m, 1)
	at := time.Unix(100, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(refreshEvery)
		m.Update(snapshotMsg{id: m.tickID, gen: m.tickGen, snap: fixedSnapshot(at, int64(8+i%20)<<20, uint64(i)*20000)})
		_ = m.View()
	}
}

// BenchmarkIdleCPU measures the CPU the whole process uses (getrusage,
// user+system) while the lesson screen sits idle with a running container:
// the 4 Hz state refresh reads the kernel, the frame is redrawn. Reported
// as % of one core. One iteration is a 3 s window.
func BenchmarkIdleCPU(b *testing.B) {
	requireRoot(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, testBackend(b), Options{Lang: "en", ScenarioID: "golden-uts"})
	tm := teatest.NewTestModel(b, m, teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	defer func() {
		tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
		tm.WaitFinished(b, teatest.WithFinalTimeout(30*time.Second))
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := m.open.closeAll(cctx, false); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	}()
	teatest.WaitFor(b, tm.Output(), func(s []byte) bool { return strings.Contains(string(s), "press enter") },
		teatest.WithDuration(30*time.Second))
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	teatest.WaitFor(b, tm.Output(), func(s []byte) bool { return strings.Contains(string(s), "golden-uts-box") },
		teatest.WithDuration(30*time.Second))
	time.Sleep(time.Second) // let the step's work settle

	const window = 3 * time.Second
	var pct float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before, t0 := cpuTime(), time.Now()
		time.Sleep(window)
		pct += float64(cpuTime()-before) / float64(time.Since(t0)) * 100
	}
	b.ReportMetric(pct/float64(b.N), "%cpu-idle")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
