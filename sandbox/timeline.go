package sandbox

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Timeline records how long each phase of a start took. A nil *Timeline is
// valid and records nothing, so callers never need to check (gVisor's
// pkg/timing idea): the hot path pays one nil test per phase.
type Timeline struct {
	mu     sync.Mutex
	phases []Phase
}

// Phase is one named, timed step of a start (clone, cgroup attach, mounts,
// pivot_root, exec).
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// Add records a phase that took d.
func (t *Timeline) Add(name string, d time.Duration) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.phases = append(t.phases, Phase{Name: name, Duration: d})
	t.mu.Unlock()
}

// Since records a phase that started at start and ends now; it returns now
// so phases can be chained.
func (t *Timeline) Since(name string, start time.Time) time.Time {
	now := time.Now()
	t.Add(name, now.Sub(start))
	return now
}

// Phases returns a copy of the recorded phases in order.
func (t *Timeline) Phases() []Phase {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Phase(nil), t.phases...)
}

// String renders the phases as an aligned table for `ctlab run --timings`.
func (t *Timeline) String() string {
	var b strings.Builder
	for _, p := range t.Phases() {
		fmt.Fprintf(&b, "%-22s %9.3f ms\n", p.Name, float64(p.Duration)/1e6)
	}
	return b.String()
}
