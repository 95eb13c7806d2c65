package tui

import (
	"bufio"
	"bytes"
	"path"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/ctlab/ctlab/content"
)

// chapter is one stop of the course: the pages to read and the scenarios
// to do, in the order the source course teaches them.
type chapter struct {
	id        string   // key of the title ("chapter."+id)
	pages     []string // content pages, e.g. "namespaces/mnt.md"
	scenarios []string // scenario ids, in order
	labChap   string   // scenarios of this lab chapter not listed anywhere land here
}

// glossaryPage is the page the glossary view is made from.
const glossaryPage = "glossary.md"

// course is the course's order: intro → namespaces → cgroups → runtimes →
// containerd → images → overlay → Dockerfile → commands → Podman →
// homework. Namespaces come in the order the source teaches them (mount,
// UTS, PID, network, user, IPC, cgroup), then the time namespace it
// predates.
var course = []chapter{
	{id: "intro", labChap: "intro", pages: []string{"intro/containers-vs-vms.md"}, scenarios: []string{"intro-container"}},
	{id: "namespaces", labChap: "namespaces",
		pages: []string{"namespaces/overview.md", "namespaces/mnt.md", "namespaces/uts.md", "namespaces/pid.md",
			"namespaces/net.md", "namespaces/user.md", "namespaces/ipc.md", "namespaces/cgroup.md", "namespaces/time.md"},
		scenarios: []string{"ns-mnt", "ns-uts", "ns-pid", "ns-net", "ns-user", "ns-ipc", "ns-cgroup", "ns-time"}},
	{id: "cgroups", labChap: "cgroups",
		pages: []string{"cgroups/overview.md", "cgroups/drivers.md", "cgroups/cpu.md", "cgroups/memory.md",
			"cgroups/devices.md", "cgroups/freezer.md", "cgroups/blkio.md", "cgroups/pids.md"},
		scenarios: []string{"cg-drivers", "cg-cpu", "cg-memory", "cg-devices", "cg-freezer", "cg-io", "cg-pids"}},
	{id: "runtimes", labChap: "runtimes", pages: []string{"runtimes/beyond-docker.md", "runtimes/oci-cri.md"},
		scenarios: []string{"runtimes", "runc-bundle", "oci-runtime-swap"}},
	{id: "containerd", pages: []string{"runtimes/containerd.md"}, scenarios: []string{"start-vs-exec"}},
	{id: "images", pages: []string{"images/layers.md"}, scenarios: []string{"image-layers"}},
	{id: "overlay", labChap: "overlay", pages: []string{"images/overlay.md"}, scenarios: []string{"overlay"}},
	{id: "dockerfile", pages: []string{"images/dockerfile.md", "images/instructions.md"}, scenarios: []string{"dockerfile-multistage"}},
	{id: "commands", pages: []string{"tools/docker-commands.md"}, scenarios: []string{"docker-commands"}},
	{id: "podman", pages: []string{"tools/podman.md"}},
	{id: "homework", labChap: "homework", pages: []string{"homework/nginx-hello.md"}, scenarios: []string{"homework-nginx"}},
}

// rowKind is what a line of the home screen is.
type rowKind int

const (
	rowChapter rowKind = iota
	rowPage
	rowScenario
	rowGlossary
)

// homeRow is one line of the course list.
type homeRow struct {
	kind    rowKind
	chapter int    // index into course
	page    string // rowPage
	item    int    // rowScenario: index into Model.items
}

// courseRows lays the course out: each chapter, its pages, then its
// scenarios (those the catalogue has), and the glossary last. A scenario
// the course does not name is shown in the chapter of its lab chapter.
func courseRows(items []homeItem) []homeRow {
	byID := map[string]int{}
	for i, it := range items {
		byID[it.scen.ID] = i
	}
	placed := map[string]bool{}
	for _, c := range course {
		for _, id := range c.scenarios {
			placed[id] = true
		}
	}
	var rows []homeRow
	for ci, c := range course {
		rows = append(rows, homeRow{kind: rowChapter, chapter: ci})
		for _, p := range c.pages {
			rows = append(rows, homeRow{kind: rowPage, chapter: ci, page: p})
		}
		for _, id := range c.scenarios {
			if i, ok := byID[id]; ok {
				rows = append(rows, homeRow{kind: rowScenario, chapter: ci, item: i})
			}
		}
		for i, it := range items {
			if !placed[it.scen.ID] && it.scen.Chapter == c.labChap && c.labChap != "" {
				rows = append(rows, homeRow{kind: rowScenario, chapter: ci, item: i})
			}
		}
	}
	return append(rows, homeRow{kind: rowGlossary, chapter: -1})
}

// coursePages lists every page the course shows, glossary included.
func coursePages() []string {
	var out []string
	for _, c := range course {
		out = append(out, c.pages...)
	}
	return append(out, glossaryPage)
}

// pageTitle is the page's "# " heading in lang (the path when it has none).
func pageTitle(lang, page string) string {
	md, err := content.Page(lang, page)
	if err != nil {
		return page
	}
	sc := bufio.NewScanner(bytes.NewReader(md))
	for sc.Scan() {
		if t, ok := strings.CutPrefix(sc.Text(), "# "); ok {
			return strings.TrimSpace(t)
		}
	}
	return page
}

// resolvePage turns a link target, relative to the page it is on, into a
// content page path and an anchor; ok is false for anything else (a web
// address, a missing page).
func resolvePage(from, target string) (page, anchor string, ok bool) {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return "", "", false
	}
	target, anchor, _ = strings.Cut(target, "#")
	if target == "" {
		return from, anchor, true
	}
	p := path.Clean(path.Join(path.Dir(from), target))
	if !strings.HasSuffix(p, ".md") || strings.HasPrefix(p, "..") {
		return "", "", false
	}
	if _, err := content.Page("en", p); err != nil {
		return "", "", false
	}
	return p, anchor, true
}

// pagesReadMsg carries the pages read from the progress file.
type pagesReadMsg struct {
	pages []string
	err   error
}

// loadPagesRead reads which pages the learner has read.
func loadPagesRead(p progressStore) tea.Cmd {
	return func() tea.Msg {
		pr, err := p.open()
		if err != nil {
			return pagesReadMsg{err: err}
		}
		return pagesReadMsg{pages: pr.Pages}
	}
}

// saveRead records one page as read (a command: it writes the file).
func saveRead(p progressStore, page string) tea.Cmd {
	return func() tea.Msg {
		pr, err := p.open()
		if err == nil && pr.MarkRead(page) {
			err = pr.Save()
		}
		return noticeMsg{err: err}
	}
}

// chapterProgress counts pages read and steps passed in chapter ci.
func (m *Model) chapterProgress(ci int) (read, pages, passed, steps int) {
	c := course[ci]
	pages = len(c.pages)
	for _, p := range c.pages {
		if m.read[p] {
			read++
		}
	}
	for _, r := range m.rows {
		if r.kind != rowScenario || r.chapter != ci {
			continue
		}
		it := m.items[r.item]
		steps += len(it.scen.Steps)
		passed += stepsPassed(it)
	}
	return read, pages, passed, steps
}

func stepsPassed(it homeItem) int {
	n := 0
	for _, st := range it.scen.Steps {
		if it.prog.Passed[st.ID] {
			n++
		}
	}
	return n
}

// scenarioByID finds a loaded scenario.
func (m *Model) scenarioByID(id string) (int, bool) {
	i := slices.IndexFunc(m.items, func(it homeItem) bool { return it.scen.ID == id })
	return i, i >= 0
}

// knownScenario says whether id names a scenario of the catalogue (or,
// before it is loaded, of the shipped course).
func (m *Model) knownScenario(id string) bool {
	if _, ok := m.scenarioByID(id); ok {
		return true
	}
	for _, c := range course {
		if slices.Contains(c.scenarios, id) {
			return true
		}
	}
	return false
}
