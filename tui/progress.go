package tui

import (
	"fmt"
	"time"

	"github.com/ctlab/ctlab/lab"
)

// progressStore keeps a learner's place through the engine's progress file
// (lab.Progress: ~/.config/ctlab/progress.json of the learner, also under
// sudo), so headless runs and the TUI share one record.
type progressStore struct {
	// path overrides the learner's file (tests); "" is lab.OpenProgress.
	path string
}

func newProgressStore() progressStore { return progressStore{} }

func (p progressStore) open() (*lab.Progress, error) {
	if p.path != "" {
		return lab.LoadProgress(p.path)
	}
	return lab.OpenProgress()
}

func (p progressStore) load(id string) (Progress, error) {
	out := Progress{Passed: map[string]bool{}}
	pr, err := p.open()
	if err != nil {
		return out, err
	}
	if sp := pr.Scenarios[id]; sp != nil {
		for _, st := range sp.Passed {
			out.Passed[st] = true
		}
	}
	return out, nil
}

// save records which steps of s have passed. Unlike a headless run's
// Record, it may go backwards: the learner reset a step on purpose.
func (p progressStore) save(s *lab.Scenario, pg Progress) error {
	pr, err := p.open()
	if err != nil {
		return err
	}
	sp := pr.Scenarios[s.ID]
	if sp == nil {
		sp = &lab.ScenarioProgress{}
	}
	sp.Passed = nil
	for _, st := range s.Steps {
		if pg.Passed[st.ID] {
			sp.Passed = append(sp.Passed, st.ID)
		}
	}
	for id, pr := range pg.Predictions {
		if sp.Predictions == nil {
			sp.Predictions = map[string]lab.Prediction{}
		}
		sp.Predictions[id] = pr
	}
	sp.Done = len(sp.Passed) == len(s.Steps)
	sp.Updated = time.Now().UTC().Truncate(time.Second)
	if len(sp.Passed) == 0 && len(sp.Predictions) == 0 {
		pr.Reset(s.ID)
	} else {
		pr.Scenarios[s.ID] = sp
	}
	if err := pr.Save(); err != nil {
		return fmt.Errorf("save progress of %s: %w", s.ID, err)
	}
	return nil
}

// resumeStep is where a re-opened scenario starts: the first step not yet
// passed (the last one when all have).
func resumeStep(s *lab.Scenario, pg Progress) int {
	for i, st := range s.Steps {
		if !pg.Passed[st.ID] {
			return i
		}
	}
	return len(s.Steps) - 1
}
