package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestProgressPagesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "progress.json")
	pr, err := LoadProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	pr.Scenarios["ns-uts"] = &ScenarioProgress{Passed: []string{"start"}}
	if !pr.MarkRead("images/layers.md") || !pr.MarkRead("intro/containers-vs-vms.md") || pr.MarkRead("images/layers.md") {
		t.Fatal("MarkRead: want true, true, false")
	}
	if err := pr.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"_pages": {"passed":null,"read":["images/layers.md","intro/containers-vs-vms.md"]`) {
		t.Errorf("file:\n%s", b)
	}
	back, err := LoadProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Scenarios[pagesKey]; ok || len(back.Scenarios) != 1 {
		t.Errorf("scenarios after load: %v", back.Scenarios)
	}
	if !slices.Equal(back.Pages, []string{"images/layers.md", "intro/containers-vs-vms.md"}) {
		t.Errorf("pages after load: %v", back.Pages)
	}
}
