package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ScenarioProgress is what a learner has done in one scenario.
type ScenarioProgress struct {
	Passed []string       `json:"passed"`           // step ids, in scenario order
	Solved []string       `json:"solved,omitempty"` // steps fast-forwarded with solve
	Hints  map[string]int `json:"hints,omitempty"`  // most hints revealed per step
	Read   []string       `json:"read,omitempty"`   // only in the pagesKey entry: lesson pages read
	// Predictions are the learner's latest answers to step questions, next
	// to the kernel's (older files have none; older ctlab ignores them).
	Predictions map[string]Prediction `json:"predictions,omitempty"`
	Done        bool                  `json:"done"` // every step passed
	Updated     time.Time             `json:"updated"`
}

// Progress is the learner's progress file: a JSON object with one line per
// scenario, keys sorted, so it diffs well and can be read by eye.
type Progress struct {
	Path      string `json:"-"`
	uid, gid  int
	Scenarios map[string]*ScenarioProgress
	// Pages are the lesson pages the learner has read in the TUI's reader
	// ("images/layers.md"), sorted. The file keeps them under the entry
	// pagesKey, which no scenario id can be, so older ctlab versions read
	// the file unchanged (they see one more, empty, scenario entry).
	Pages      []string
	chownOwner bool
}

// pagesKey is the progress file's entry for the pages read.
const pagesKey = "_pages"

// MarkRead records that page was read; false when it already was.
func (p *Progress) MarkRead(page string) bool {
	i, found := slices.BinarySearch(p.Pages, page)
	if found {
		return false
	}
	p.Pages = slices.Insert(p.Pages, i, page)
	return true
}

// ProgressPath returns where the invoking user's progress lives:
// $XDG_CONFIG_HOME or ~/.config, then ctlab/progress.json. Under sudo it
// is SUDO_USER's home (the learner's, not root's), and the uid/gid to
// chown the file to.
func ProgressPath() (path string, uid, gid int, err error) {
	uid, gid = os.Getuid(), os.Getgid()
	if su := os.Getenv("SUDO_USER"); su != "" && os.Geteuid() == 0 && su != "root" {
		u, err := user.Lookup(su)
		if err == nil {
			uid, _ = strconv.Atoi(u.Uid)
			gid, _ = strconv.Atoi(u.Gid)
			return filepath.Join(u.HomeDir, ".config", "ctlab", "progress.json"), uid, gid, nil
		}
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", 0, 0, fmt.Errorf("find the progress file: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "ctlab", "progress.json"), uid, gid, nil
}

// OpenProgress reads the invoking user's progress file (empty if absent).
func OpenProgress() (*Progress, error) {
	p, uid, gid, err := ProgressPath()
	if err != nil {
		return nil, err
	}
	pr, err := LoadProgress(p)
	if err != nil {
		return nil, err
	}
	pr.uid, pr.gid, pr.chownOwner = uid, gid, true
	return pr, nil
}

// LoadProgress reads a progress file; a missing file is empty progress.
func LoadProgress(path string) (*Progress, error) {
	pr := &Progress{Path: path, Scenarios: map[string]*ScenarioProgress{}, uid: -1, gid: -1}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pr, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read progress: %w", err)
	}
	if err := json.Unmarshal(b, &pr.Scenarios); err != nil {
		return nil, fmt.Errorf("progress file %s is damaged (%v): fix or delete it", path, err)
	}
	if pr.Scenarios == nil {
		pr.Scenarios = map[string]*ScenarioProgress{}
	}
	if sp := pr.Scenarios[pagesKey]; sp != nil {
		pr.Pages = slices.Sorted(slices.Values(sp.Read))
		delete(pr.Scenarios, pagesKey)
	}
	return pr, nil
}

// Record merges a run's result: passed steps are added (progress never
// goes backwards on a failed re-run), per step the most hints used is
// kept. Recording the same result twice changes nothing, so the TUI can
// record after every passed step.
func (p *Progress) Record(s *Scenario, r *Result) {
	sp := p.Scenarios[r.Scenario]
	if sp == nil {
		sp = &ScenarioProgress{}
		p.Scenarios[r.Scenario] = sp
	}
	for _, st := range r.Steps {
		if st.Status == "pass" && !slices.Contains(sp.Passed, st.ID) {
			sp.Passed = append(sp.Passed, st.ID)
		}
		if st.Solved && !slices.Contains(sp.Solved, st.ID) {
			sp.Solved = append(sp.Solved, st.ID)
		}
		if st.Prediction != nil && !(st.Prediction.Skipped && sp.Predictions[st.ID].Answer != "") {
			if sp.Predictions == nil {
				sp.Predictions = map[string]Prediction{}
			}
			sp.Predictions[st.ID] = *st.Prediction
		}
		if st.Hints > 0 {
			if sp.Hints == nil {
				sp.Hints = map[string]int{}
			}
			sp.Hints[st.ID] = max(sp.Hints[st.ID], st.Hints)
		}
	}
	if s != nil { // keep scenario order
		order := map[string]int{}
		for i, st := range s.Steps {
			order[st.ID] = i
		}
		sort.SliceStable(sp.Passed, func(i, j int) bool { return order[sp.Passed[i]] < order[sp.Passed[j]] })
		sp.Done = len(sp.Passed) >= len(s.Steps)
	}
	sp.Updated = time.Now().UTC().Truncate(time.Second)
}

// Reset forgets one scenario, or everything (pages read too) when id is "".
func (p *Progress) Reset(id string) {
	if id == "" {
		p.Scenarios = map[string]*ScenarioProgress{}
		p.Pages = nil
		return
	}
	delete(p.Scenarios, id)
}

// Marshal renders the file: keys sorted, one line per scenario.
func (p *Progress) Marshal() ([]byte, error) {
	ids := make([]string, 0, len(p.Scenarios)+1)
	for id := range p.Scenarios {
		ids = append(ids, id)
	}
	entries := p.Scenarios
	if len(p.Pages) > 0 {
		entries = maps.Clone(p.Scenarios)
		entries[pagesKey] = &ScenarioProgress{Read: p.Pages}
		ids = append(ids, pagesKey)
	}
	sort.Strings(ids)
	var b strings.Builder
	b.WriteString("{")
	for i, id := range ids {
		v, err := json.Marshal(entries[id])
		if err != nil {
			return nil, err
		}
		k, _ := json.Marshal(id)
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n%s: %s", k, v)
	}
	b.WriteString("\n}\n")
	return []byte(b.String()), nil
}

// Save writes the file atomically (temp file + rename) and, under sudo,
// gives it and its directory to the learner.
func (p *Progress) Save() error {
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(p.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".progress-*.json")
	if err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save progress: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	os.Chmod(tmp.Name(), 0o644)
	if p.chownOwner && p.uid >= 0 && os.Geteuid() == 0 {
		// ~/.config and ~/.config/ctlab may have just been made by root
		for d := dir; d != filepath.Dir(filepath.Dir(dir)); d = filepath.Dir(d) {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				os.Chown(d, p.uid, p.gid)
			}
		}
		if err := os.Chown(tmp.Name(), p.uid, p.gid); err != nil {
			return fmt.Errorf("save progress: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), p.Path); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	return nil
}

// HintsUsed is the total of hints revealed in a scenario.
func (sp *ScenarioProgress) HintsUsed() int {
	n := 0
	for _, h := range sp.Hints {
		n += h
	}
	return n
}
