package tui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/content"
	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/common"
)

// hitKind is what a search result points into.
type hitKind int

const (
	hitPage hitKind = iota
	hitStep
	hitTerm
)

// entry is one searchable line: a line of a page, a step's text, a
// glossary row.
type entry struct {
	kind  hitKind
	lang  string
	page  string // hitPage: the page; hitTerm: the term's page
	where string // the page's heading, the scenario and step, the term
	text  string
	lower string
	line  int    // hitPage: index among the page's entries
	scen  string // hitStep: scenario id
	term  string // hitTerm: the English term
}

// search is the search screen's state.
type search struct {
	query   string
	hits    []entry
	cursor  int
	from    screen // where esc goes back to
	limited bool   // more hits than shown
}

const maxHits = 200

// searchIndex builds (once) the index of every page, step and glossary
// entry in both languages.
func (m *Model) searchIndex() []entry {
	if m.index != nil {
		return m.index
	}
	var out []entry
	for _, lang := range content.Languages {
		pages, _ := content.Pages(lang)
		for _, p := range pages {
			if p == glossaryPage {
				continue // its rows are indexed as terms
			}
			out = append(out, pageEntries(lang, p)...)
		}
		for _, e := range glossary(lang) {
			text := e.en + " — " + e.zh
			out = append(out, entry{kind: hitTerm, lang: lang, page: e.page, where: e.en, text: text, lower: strings.ToLower(text), term: e.en})
		}
		for _, it := range m.items {
			out = append(out, stepEntries(it.scen, lang)...)
		}
	}
	m.index = out
	return out
}

func pageEntries(lang, page string) []entry {
	var out []entry
	where := pageTitle(lang, page)
	eachLine(pageMD(lang, page), func(ln string, fenced bool) {
		t := strings.TrimSpace(ln)
		if t == "" {
			return
		}
		if h := strings.TrimLeft(t, "#"); !fenced && h != t && strings.HasPrefix(h, " ") {
			where = strings.TrimSpace(h)
		}
		out = append(out, entry{kind: hitPage, lang: lang, page: page, where: where, text: t, lower: strings.ToLower(t), line: len(out)})
	})
	return out
}

func stepEntries(s *lab.Scenario, lang string) []entry {
	var out []entry
	for i, st := range s.Steps {
		where := fmt.Sprintf("%s %d/%d · %s", s.ID, i+1, len(s.Steps), st.Title.In(lang))
		text := strings.TrimSpace((lab.Text{EN: st.Text.EN, ZH: st.Text.ZH}).In(lang))
		for _, ln := range strings.Split(st.Title.In(lang)+"\n"+text, "\n") {
			if t := strings.TrimSpace(ln); t != "" {
				out = append(out, entry{kind: hitStep, lang: lang, where: where, text: t, lower: strings.ToLower(t), scen: s.ID})
			}
		}
	}
	return out
}

// openSearch shows the search screen; it remembers where it came from.
func (m *Model) openSearch() tea.Cmd {
	if m.screen != screenSearch {
		m.srch.from = m.screen
	}
	m.screen = screenSearch
	m.runSearch()
	return nil
}

// runSearch finds the query in the current language first, then the other.
func (m *Model) runSearch() {
	m.srch.hits, m.srch.cursor, m.srch.limited = nil, 0, false
	q := strings.ToLower(strings.TrimSpace(m.srch.query))
	if q == "" {
		return
	}
	idx := m.searchIndex()
	for _, own := range []bool{true, false} {
		for _, e := range idx {
			if (e.lang == m.lang) != own || !strings.Contains(e.lower, q) {
				continue
			}
			if len(m.srch.hits) == maxHits {
				m.srch.limited = true
				return
			}
			m.srch.hits = append(m.srch.hits, e)
		}
	}
}

func (m *Model) updateSearch(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	switch {
	case key.Matches(k, m.keys.Back):
		m.screen = m.srch.from
		return nil
	case key.Matches(k, m.keys.Open):
		return m.openHit()
	case k.String() == "up" || k.String() == "ctrl+p":
		m.srch.cursor = max(m.srch.cursor-1, 0)
	case k.String() == "down" || k.String() == "ctrl+n" || k.String() == "tab":
		m.srch.cursor = min(m.srch.cursor+1, max(len(m.srch.hits)-1, 0))
	case k.String() == "backspace":
		if n := len(m.srch.query); n > 0 {
			_, size := utf8.DecodeLastRuneInString(m.srch.query)
			m.srch.query = m.srch.query[:n-size]
			m.runSearch()
		}
	case k.String() == "ctrl+u":
		m.srch.query = ""
		m.runSearch()
	case k.Text != "":
		m.srch.query += k.Text
		m.runSearch()
	}
	return nil
}

// openHit jumps to the selected result.
func (m *Model) openHit() tea.Cmd {
	if m.srch.cursor >= len(m.srch.hits) {
		return nil
	}
	h := m.srch.hits[m.srch.cursor]
	switch h.kind {
	case hitStep:
		i, ok := m.scenarioByID(h.scen)
		if !ok {
			return nil
		}
		m.lessonFrom = screenSearch
		return m.openItem(i)
	case hitTerm:
		if h.lang != m.lang {
			m.toggleLang()
		}
		return m.openGlossary(h.term)
	}
	if m.srch.from == screenReader && m.rd.page != "" {
		m.screen = screenReader // so openPage keeps the page left in the history
	}
	cmd := m.openPage(h.page, "", "")
	if h.lang != m.rd.lang {
		m.showPage(h.lang, h.page, 0)
		cmd = m.needDoc()
	}
	// The hit is the nth line of the page with the query: go to the nth
	// rendered line with it.
	q := strings.ToLower(strings.TrimSpace(m.srch.query))
	m.rd.find, m.rd.findNth = q, 0
	for _, e := range pageEntries(h.lang, h.page) {
		if e.line < h.line && strings.Contains(e.lower, q) {
			m.rd.findNth++
		}
	}
	if m.doc() != nil {
		return m.placeDoc()
	}
	return cmd
}

// viewSearch draws the query and the results with their context.
func (m *Model) viewSearch() string {
	w, h := m.width, max(m.height-2, 1)
	lines := []string{
		m.styles.Title.Render(m.t("search.title")),
		"/ " + m.srch.query + "█",
		m.styles.Subtle.Render(ansi.Truncate(m.t("search.prompt"), w, "…")),
	}
	sel := 0
	if m.srch.query != "" && len(m.srch.hits) == 0 {
		lines = append(lines, "", m.styles.Warn.Render(m.t("search.none")))
	}
	q := strings.ToLower(strings.TrimSpace(m.srch.query))
	for i, e := range m.srch.hits {
		loc := m.hitLocation(e)
		ctx := "    " + contextAround(e.text, q, max(w-6, 10))
		if i == m.srch.cursor {
			sel = len(lines) + 1
			lines = append(lines, m.styles.Selected.Render(ansi.Truncate("> "+loc, w, "…")), ctx)
			continue
		}
		lines = append(lines, ansi.Truncate("  "+loc, w, "…"), m.styles.Subtle.Render(ctx))
	}
	body := scrollTo(lines, sel, h)
	right := fmt.Sprintf("%d ", len(m.srch.hits))
	if m.srch.limited {
		right = fmt.Sprintf("%d+ ", maxHits)
	}
	return strings.Join(body, "\n") + "\n" + m.bar.View(" "+m.t("key.search"), right, common.SearchKeys{KeyMap: m.keys})
}

func (m *Model) hitLocation(e entry) string {
	switch e.kind {
	case hitStep:
		return fmt.Sprintf("[%s] ▶ %s", e.lang, e.where)
	case hitTerm:
		return fmt.Sprintf("[%s] %s: %s", e.lang, m.t("glossary.title"), e.where)
	}
	return fmt.Sprintf("[%s] ≡ %s › %s", e.lang, pageTitle(e.lang, e.page), e.where)
}

// contextAround cuts text to about w columns around the first match of q.
func contextAround(text, q string, w int) string {
	i := strings.Index(strings.ToLower(text), q)
	if i < 0 || ansi.StringWidth(text) <= w {
		return ansi.Truncate(text, w, "…")
	}
	start := i
	for n := 0; start > 0 && n < w/3; n++ {
		_, size := utf8.DecodeLastRuneInString(text[:start])
		start -= size
	}
	out := text[start:]
	if start > 0 {
		out = "…" + out
	}
	return ansi.Truncate(out, w, "…")
}
