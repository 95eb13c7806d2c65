package tui

import (
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/ctlab/ctlab/content"
	"github.com/ctlab/ctlab/lab"
)

// drain runs cmd and the commands its messages lead to, feeding the
// course's messages (renderings, progress) back to the model, as the
// program would. Kernel work is not started by these screens.
func drain(t testing.TB, m *Model, cmd tea.Cmd) {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case pageRenderedMsg, pagesReadMsg, noticeMsg, homeLoadedMsg:
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
}

func press(t testing.TB, m *Model, keys ...string) {
	t.Helper()
	for _, k := range keys {
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		case "tab":
			msg = tea.KeyPressMsg{Code: tea.KeyTab}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "pgdown":
			msg = tea.KeyPressMsg{Code: tea.KeyPgDown}
		default:
			r := []rune(k)[0]
			msg = tea.KeyPressMsg{Code: r, Text: k}
		}
		_, cmd := m.Update(msg)
		drain(t, m, cmd)
	}
}

// courseModel is a model on the shipped course with progress kept in a
// temporary directory; the catalogue is loaded without preflight.
func courseModel(t testing.TB, lang string, w, h int) *Model {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("SUDO_USER", "")
	m := newTestModel(t, Options{Lang: lang}, w, h)
	list, err := lab.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	items := make([]homeItem, 0, len(list))
	for _, s := range list {
		items = append(items, homeItem{scen: s, prog: Progress{Passed: map[string]bool{}}})
	}
	m.Update(homeLoadedMsg{items: items})
	drain(t, m, loadPagesRead(m.progress))
	return m
}

// TestCourseEveryPageReachable: home lists every page of content/ (the
// glossary through its row), every chapter's page exists, and every
// shipped scenario sits in a chapter.
func TestCourseEveryPageReachable(t *testing.T) {
	m := courseModel(t, "en", 80, 24)
	shown := map[string]bool{}
	scens := map[string]bool{}
	for _, r := range m.rows {
		switch r.kind {
		case rowPage:
			shown[r.page] = true
		case rowGlossary:
			shown[glossaryPage] = true
		case rowScenario:
			scens[m.items[r.item].scen.ID] = true
		}
	}
	for _, lang := range content.Languages {
		pages, err := content.Pages(lang)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			if !shown[p] {
				t.Errorf("%s/%s is not reachable from home: add it to a chapter in tui/course.go", lang, p)
			}
		}
		for p := range shown {
			if !slices.Contains(pages, p) {
				t.Errorf("home lists %s, which %s/ does not have", p, lang)
			}
		}
	}
	for _, it := range m.items {
		if !scens[it.scen.ID] {
			t.Errorf("scenario %s is in no chapter", it.scen.ID)
		}
	}
	// The course's order, namespaces as the source teaches them.
	var order []string
	for _, c := range course {
		order = append(order, c.id)
	}
	want := "intro namespaces cgroups runtimes containerd images overlay dockerfile commands podman homework"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("chapters: %s\nwant:     %s", got, want)
	}
	if got := strings.Join(course[1].pages, " "); !strings.HasPrefix(got, "namespaces/overview.md namespaces/mnt.md namespaces/uts.md namespaces/pid.md namespaces/net.md namespaces/user.md namespaces/ipc.md namespaces/cgroup.md") {
		t.Errorf("namespace pages out of the course's order: %s", got)
	}
}

// TestCourseEveryLinkResolves: every Markdown link between pages names a
// page (and heading) that exists, and every link the reader offers is
// found on the rendered page, so tab can select it.
func TestCourseEveryLinkResolves(t *testing.T) {
	m := courseModel(t, "en", 80, 24)
	for _, lang := range content.Languages {
		pages, _ := content.Pages(lang)
		for _, p := range pages {
			md, _ := content.Page(lang, p)
			for _, lm := range mdLink.FindAllStringSubmatch(string(md), -1) {
				if strings.Contains(lm[2], "://") {
					continue
				}
				target, anchor, ok := resolvePage(p, lm[2])
				if !ok {
					t.Errorf("%s/%s: link %q leads to no page", lang, p, lm[0])
					continue
				}
				if anchor != "" && headingText(lang, target, anchor) == "" {
					t.Errorf("%s/%s: link %q: %s has no heading #%s", lang, p, lm[0], target, anchor)
				}
			}
			m.showPage(lang, p, 0)
			d := renderDoc("dark", lang, p, 80)
			m.docs[docKey(lang, p, m.width)] = d
			m.placeDoc()
			for _, l := range m.rd.links {
				if l.line < 0 {
					t.Errorf("%s/%s: link %q (to %s) is not on the rendered page", lang, p, l.text, l.target)
				}
				if l.kind == linkScenario && !m.knownScenario(l.target) {
					t.Errorf("%s/%s: scenario link to unknown %s", lang, p, l.target)
				}
			}
		}
	}
}

// TestCourseFlow walks home → a page → a link → search "dockershim" →
// glossary → back, as a learner would with the keys.
func TestCourseFlow(t *testing.T) {
	m := courseModel(t, "en", 80, 24)
	// home: jump to the images chapter, open its page
	press(t, m, "pgdown", "pgdown", "pgdown", "pgdown", "pgdown")
	if r := m.rows[m.cursor]; r.kind != rowPage || r.page != "images/layers.md" {
		t.Fatalf("after five pgdn the cursor is on %+v, want images/layers.md", r)
	}
	press(t, m, "enter")
	if m.screen != screenReader || !strings.Contains(view(m), "Image Layers and Union Filesystems") {
		t.Fatalf("enter on a page did not open it:\n%s", view(m))
	}
	// follow the link to the overlay page
	for i := 0; i < 40 && !(m.rd.sel >= 0 && m.rd.links[m.rd.sel].target == "images/overlay.md"); i++ {
		press(t, m, "tab")
	}
	if !strings.Contains(view(m), "link → The Overlay Filesystem") {
		t.Fatalf("no selected link to the overlay page:\n%s", view(m))
	}
	press(t, m, "enter")
	if m.rd.page != "images/overlay.md" || len(m.rd.back) != 1 {
		t.Fatalf("following the link: page %s, history %v", m.rd.page, m.rd.back)
	}
	// search
	press(t, m, "/", "d", "o", "c", "k", "e", "r", "s", "h", "i", "m")
	out := view(m)
	if m.screen != screenSearch || len(m.srch.hits) == 0 || m.srch.hits[0].lang != "en" {
		t.Fatalf("search dockershim:\n%s", out)
	}
	if !strings.Contains(out, "Docker Split Apart") || !strings.Contains(out, "dockershim") {
		t.Errorf("search results show no context:\n%s", out)
	}
	// a glossary hit opens the glossary on its term
	for i := 0; i < 60 && m.srch.hits[m.srch.cursor].kind != hitTerm; i++ {
		press(t, m, "down")
	}
	press(t, m, "enter")
	out = view(m)
	if m.screen != screenGlossary || !strings.Contains(out, "> dockershim") {
		t.Fatalf("glossary hit did not open the glossary on dockershim:\n%s", out)
	}
	// enter opens the term's page; back returns to the glossary, then to
	// the page the search started from, then through the history home
	press(t, m, "enter")
	if m.rd.page != "runtimes/oci-cri.md" || !strings.Contains(view(m), "dockershim") {
		t.Fatalf("glossary entry did not open its page at the term:\n%s", view(m))
	}
	press(t, m, "esc")
	if m.screen != screenGlossary {
		t.Fatalf("back from the term's page: screen %d, want the glossary", m.screen)
	}
	press(t, m, "esc")
	if m.screen != screenReader || m.rd.page != "images/overlay.md" {
		t.Fatalf("back from the glossary: screen %d page %s, want the overlay page", m.screen, m.rd.page)
	}
	press(t, m, "esc")
	if m.rd.page != "images/layers.md" {
		t.Fatalf("back: page %s, want images/layers.md", m.rd.page)
	}
	press(t, m, "f")
	if m.rd.page != "images/overlay.md" {
		t.Fatalf("forward: page %s, want images/overlay.md", m.rd.page)
	}
	press(t, m, "esc", "esc", "esc")
	if m.screen != screenHome {
		t.Fatalf("back through the history: screen %d, want home", m.screen)
	}
}

// TestCourseWidestDiagramGolden shows the widest diagram of the course
// at 80×24: it is drawn whole, not cut.
func TestCourseWidestDiagramGolden(t *testing.T) {
	m := courseModel(t, "en", 80, 24)
	page, line, width := widestFenced(t, "en")
	drain(t, m, m.openPage(page, "", ""))
	d := m.doc()
	n := findLine(d.plain, strings.TrimSpace(line), 0)
	if n < 0 {
		t.Fatalf("%s: line %q not in the rendering", page, line)
	}
	m.rd.offset = max(n-8, 0)
	m.clampReader()
	out := view(m)
	checkSize(t, out, 80, 24)
	if !strings.Contains(out, strings.TrimRight(line, " ")) {
		t.Errorf("the widest diagram line (%d columns, %s) is cut:\n%s", width, page, out)
	}
	golden.RequireEqual(t, out)
}

// widestFenced finds the widest line of a diagram (a code block without
// a language that draws boxes or arrows) on any page.
func widestFenced(t testing.TB, lang string) (page, line string, width int) {
	pages, _ := content.Pages(lang)
	for _, p := range pages {
		md, _ := content.Page(lang, p)
		var block []string
		state := 0 // 0 prose, 1 a plain code block, 2 one with a language
		for _, ln := range strings.Split(string(md), "\n") {
			switch {
			case state == 0 && strings.TrimSpace(ln) == "```":
				state, block = 1, nil
			case state == 0 && fenceLine.MatchString(ln):
				state = 2
			case state != 0 && fenceLine.MatchString(ln):
				if state == 1 && strings.Contains(strings.Join(block, "\n"), "+--") {
					for _, b := range block {
						if w := ansi.StringWidth(b); w > width {
							page, line, width = p, b, w
						}
					}
				}
				state = 0
			case state == 1:
				block = append(block, ln)
			}
		}
	}
	if page == "" {
		t.Fatal("no diagram found")
	}
	return page, line, width
}

// TestCourseReadProgress: reading a page to its end marks it read, on
// the home screen and in the progress file.
func TestCourseReadProgress(t *testing.T) {
	m := courseModel(t, "en", 80, 24)
	drain(t, m, m.openPage("namespaces/uts.md", "", ""))
	for i := 0; i < 20 && !m.read["namespaces/uts.md"]; i++ {
		press(t, m, "pgdown")
	}
	if !m.read["namespaces/uts.md"] {
		t.Fatal("paging to the end did not mark the page read")
	}
	press(t, m, "esc")
	if out := view(m); !strings.Contains(out, "read 1/9") {
		t.Errorf("home does not count the page read:\n%s", out)
	}
	pr, err := m.progress.open()
	if err != nil || !slices.Contains(pr.Pages, "namespaces/uts.md") {
		t.Errorf("progress file pages %v (err %v)", pr.Pages, err)
	}
}

// TestLessonZoom: z gives the lesson text the whole width and back.
func TestLessonZoom(t *testing.T) {
	m := newTestModel(t, Options{Lang: "en"}, 80, 24)
	openLesson(t, m, 0)
	press(t, m, "z")
	renderText(t, m)
	out := view(m)
	checkSize(t, out, 80, 24)
	if strings.Contains(out, "kernel state") || m.narr.Width() != 78 {
		t.Errorf("z: the text is %d wide, want 78 without the state pane:\n%s", m.narr.Width(), out)
	}
	press(t, m, "z")
	if m.narr.Width() != m.layout.LeftW-2 {
		t.Errorf("z again: text width %d, want %d", m.narr.Width(), m.layout.LeftW-2)
	}
}

// TestReaderWideOutline: on a wide terminal the outline stands beside
// the page, the section on screen marked.
func TestReaderWideOutline(t *testing.T) {
	m := courseModel(t, "en", 130, 30)
	drain(t, m, m.openPage("namespaces/pid.md", "pid-1-is-special", ""))
	out := view(m)
	checkSize(t, out, 130, 30)
	if !strings.Contains(out, "▸  PID 1 is special") || !strings.Contains(out, "│## PID 1 is special") {
		t.Errorf("no outline beside the page, or not at the section:\n%s", out)
	}
}
