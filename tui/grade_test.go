package tui

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ctlab/ctlab/sandbox/image"
)

// helloImage builds, offline, a small image whose index.html says Hello
// World on no nginx base: the grader must give the page its points and
// refuse the rest, with evidence.
func helloImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	page := "<h1>Hello World</h1>\n"
	for _, d := range []string{"usr/", "usr/share/", "usr/share/nginx/", "usr/share/nginx/html/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	tw.WriteHeader(&tar.Header{Name: "usr/share/nginx/html/index.html", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(page))})
	tw.Write([]byte(page))
	tw.Close()
	layer := filepath.Join(dir, "l.tar")
	if err := os.WriteFile(layer, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &image.Build{Config: v1.Config{Cmd: []string{"/no-such-nginx"}}, Layers: []image.BuildLayer{{TarPath: layer, CreatedBy: "COPY index.html /usr/share/nginx/html/"}}}
	out := filepath.Join(dir, "hello.tar")
	if err := b.WriteDockerArchive(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGradeFromHomework: g on the homework page opens the grader with the
// default image offered; an image built by the test is graded for real
// (loaded, unpacked, run in the sandbox) and the criteria are shown with
// their points and evidence. g elsewhere is still the glossary.
func TestGradeFromHomework(t *testing.T) {
	requireRoot(t)
	m := courseModel(t, "en", 100, 40)
	m.backend = NewBackend()
	press(t, m, "g")
	if m.gv != nil || m.screen != screenGlossary {
		t.Fatalf("g on the intro chapter: grader %v, screen %v; want the glossary", m.gv != nil, m.screen)
	}
	press(t, m, "esc")
	drain(t, m, m.openPage("homework/nginx-hello.md", "", ""))
	press(t, m, "g")
	if m.gv == nil {
		t.Fatal("g on the homework page did not open the grader")
	}
	if v := view(m); !strings.Contains(v, "empty: hello") {
		t.Errorf("prompt lacks the default image:\n%s", v)
	}
	img := helloImage(t)
	for _, r := range img {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	if !m.gv.running || !strings.Contains(view(m), "grading") {
		t.Fatalf("not grading after enter:\n%s", view(m))
	}
	batch, ok := cmd().(tea.BatchMsg)
	if !ok || len(batch) != 2 {
		t.Fatalf("want a tick and the grading command, got %T", batch)
	}
	done, ok := batch[1]().(gradeDoneMsg)
	if !ok {
		t.Fatal("the grading command did not report")
	}
	m.Update(done)
	if done.err != nil || done.res == nil {
		t.Fatalf("grade: %v", done.err)
	}
	v := view(m)
	for _, want := range []string{"index.html says Hello World", "It is an nginx image", "✗ 1.", "✓ 2."} {
		if !strings.Contains(v, want) {
			t.Errorf("result view lacks %q:\n%s", want, v)
		}
	}
	var page bool
	for _, c := range done.res.Criteria {
		if c.ID == "hello-page" {
			page = c.Points == c.MaxPoints && c.MaxPoints > 0 && len(c.Evidence) > 0
		}
	}
	if !page {
		t.Errorf("hello-page criterion: %+v", done.res.Criteria)
	}
	press(t, m, "esc")
	if m.gv != nil || m.screen != screenReader {
		t.Errorf("esc: grader %v, screen %v", m.gv != nil, m.screen)
	}
}

// TestGradeContext: g grades on the homework chapter's rows of the home
// screen and inside any scenario whose chapter is homework; elsewhere it
// stays the glossary.
func TestGradeContext(t *testing.T) {
	m := courseModel(t, "en", 80, 24)
	for i, r := range m.rows {
		m.cursor = i
		want := r.kind != rowGlossary && course[r.chapter].id == "homework"
		if got := m.homeworkContext(); got != want {
			t.Errorf("home row %d (%v, chapter %s): grades %v, want %v", i, r.kind, course[r.chapter].id, got, want)
		}
	}
	hw := *quizScenario(t)
	hw.Chapter = "homework"
	m.screen, m.scen = screenLesson, &hw
	if !m.homeworkContext() {
		t.Error("g does not grade inside a homework scenario")
	}
	m.scen = quizScenario(t)
	if m.homeworkContext() {
		t.Error("g grades inside a namespaces scenario")
	}
}
