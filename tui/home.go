package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

func (m *Model) onHomeLoaded(msg homeLoadedMsg) tea.Cmd {
	m.homeLoaded = true
	var selected homeRow
	if m.cursor < len(m.rows) {
		selected = m.rows[m.cursor]
	}
	m.items = msg.items
	m.index = nil // the steps are searchable once the catalogue is here
	m.rows = courseRows(m.items)
	m.cursor = m.rowIndex(selected)
	if msg.err != nil {
		m.notice = msg.err.Error()
	}
	if m.opts.ScenarioID != "" && m.opening && m.sess == nil {
		// `ctlab learn ID`: open it straight away.
		if i, ok := m.scenarioByID(m.opts.ScenarioID); ok {
			return m.openItem(i)
		}
		ids := make([]string, 0, len(m.items))
		for _, it := range m.items {
			ids = append(ids, it.scen.ID)
		}
		m.fatal = fmt.Errorf("no scenario %q (have: %s)", m.opts.ScenarioID, strings.Join(ids, ", "))
		return tea.Quit
	}
	return nil
}

// rowIndex finds the row that shows the same thing as r (rows are rebuilt
// when the catalogue loads); the first selectable row when it is gone.
func (m *Model) rowIndex(r homeRow) int {
	for i, x := range m.rows {
		if x.kind == r.kind && x.kind != rowChapter && x.page == r.page &&
			(x.kind != rowScenario || m.items[x.item].scen.ID == m.selectedID) {
			return i
		}
	}
	return m.nextSelectable(-1, +1)
}

// nextSelectable is the next row from i in direction d that is not a
// chapter heading (i itself when there is none).
func (m *Model) nextSelectable(i, d int) int {
	for j := i + d; j >= 0 && j < len(m.rows); j += d {
		if m.rows[j].kind != rowChapter {
			return j
		}
	}
	return max(i, 0)
}

func (m *Model) updateHome(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	if key.Matches(k, m.keys.Quit) {
		// Also while a scenario opens: its engine may be waiting for
		// another ctlab run of the same lesson to finish.
		return m.quit()
	}
	if m.opening {
		return nil
	}
	switch {
	case key.Matches(k, m.keys.Up):
		m.cursor = m.nextSelectable(m.cursor, -1)
	case key.Matches(k, m.keys.Down):
		m.cursor = m.nextSelectable(m.cursor, +1)
	case key.Matches(k, m.keys.PageDown):
		m.cursor = m.nextChapter(+1)
	case key.Matches(k, m.keys.PageUp):
		m.cursor = m.nextChapter(-1)
	case key.Matches(k, m.keys.Search):
		return m.openSearch()
	case key.Matches(k, m.keys.Glossary):
		return m.openGlossary("")
	case key.Matches(k, m.keys.Open):
		return m.openSelected()
	}
	if m.cursor < len(m.rows) && m.rows[m.cursor].kind == rowScenario {
		m.selectedID = m.items[m.rows[m.cursor].item].scen.ID
	}
	return nil
}

// nextChapter moves to the first row of the next (d=+1) or this/previous
// chapter (d=-1).
func (m *Model) nextChapter(d int) int {
	if m.cursor >= len(m.rows) {
		return m.cursor
	}
	cur := m.rows[m.cursor].chapter
	for j := m.cursor + d; j >= 0 && j < len(m.rows); j += d {
		r := m.rows[j]
		if r.kind == rowChapter && ((d > 0 && r.chapter != cur) || (d < 0 && r.chapter < cur)) {
			return m.nextSelectable(j, +1)
		}
		if r.kind == rowGlossary {
			return j
		}
	}
	if d < 0 {
		return m.nextSelectable(-1, +1)
	}
	return m.cursor
}

func (m *Model) openSelected() tea.Cmd {
	if m.cursor >= len(m.rows) {
		return nil
	}
	switch r := m.rows[m.cursor]; r.kind {
	case rowPage:
		return m.openPage(r.page, "", "")
	case rowGlossary:
		return m.openGlossary("")
	case rowScenario:
		return m.openItem(r.item)
	}
	return nil
}

// openItem opens scenario m.items[i] (unless this host cannot run it).
func (m *Model) openItem(i int) tea.Cmd {
	it := m.items[i]
	m.selectedID = it.scen.ID
	if len(it.reasons) > 0 {
		m.notice = it.scen.ID + ": " + strings.Join(it.reasons, "; ")
		if m.opts.ScenarioID != "" && m.sess == nil && m.opening {
			m.fatal = fmt.Errorf("scenario %s cannot run on this host: %s", it.scen.ID, strings.Join(it.reasons, "; "))
			return tea.Quit
		}
		return nil
	}
	m.opening = true
	m.notice = ""
	return openScenario(m.ctx, m.backend, m.open, it.scen, m.lang)
}

// viewHome lists the course: chapters with their pages (reading) and
// scenarios (hands-on), progress for both, and, for a scenario this host
// cannot run, the reasons.
func (m *Model) viewHome() string {
	w := m.width
	lines := []string{m.styles.Title.Render(m.t("home.title")), ""}
	selLine := 0
	for i, r := range m.rows {
		sel := i == m.cursor
		if sel {
			selLine = len(lines)
		}
		switch r.kind {
		case rowChapter:
			if r.chapter > 0 {
				lines = append(lines, "")
			}
			lines = append(lines, m.chapterLine(r.chapter, w))
		case rowPage:
			state := ""
			if m.read[r.page] {
				state = m.styles.Pass.Render("✓ " + m.t("home.read"))
			}
			lines = append(lines, m.homeLine(sel, "≡ "+pageTitle(m.lang, r.page), state, w))
		case rowGlossary:
			lines = append(lines, "", m.homeLine(sel, "≡ "+m.t("home.glossary"), "", w))
			if sel {
				selLine = len(lines) - 1
			}
		case rowScenario:
			lines = append(lines, m.scenarioLines(r, sel, w)...)
		}
		if r.kind == rowChapter && r.chapter == 0 && !m.homeLoaded {
			lines = append(lines, "  "+m.styles.Subtle.Render(m.t("home.checking")))
		}
	}
	bodyH := max(m.height-2, 1)
	lines = scrollTo(lines, selLine, bodyH)
	footer := m.bar.View(ansi.Truncate(m.homeStatus(), w/2, "…"), "ctlab", common.HomeKeys{KeyMap: m.keys})
	return strings.Join(lines, "\n") + "\n" + footer
}

func (m *Model) homeStatus() string {
	switch {
	case m.closing:
		return m.t("step.cleanup")
	case m.opening:
		id := m.opts.ScenarioID
		if m.selectedID != "" {
			id = m.selectedID
		}
		return fmt.Sprintf("%s %s…", m.t("home.opening"), id)
	}
	return m.notice
}

// chapterLine is a chapter's heading with its progress on the right.
func (m *Model) chapterLine(ci, w int) string {
	read, pages, passed, steps := m.chapterProgress(ci)
	title := fmt.Sprintf("%d %s", ci+1, m.t("chapter."+course[ci].id))
	meta := fmt.Sprintf("%s %d/%d", m.t("home.pages"), read, pages)
	if steps > 0 {
		meta += fmt.Sprintf(" · %s %d/%d", m.t("home.steps"), passed, steps)
	}
	title = ansi.Truncate(title, max(w-ansi.StringWidth(meta)-2, 10), "…")
	pad := max(w-ansi.StringWidth(title)-ansi.StringWidth(meta), 1)
	return m.styles.Chapter.Render(title) + strings.Repeat(" ", pad) + m.styles.Subtle.Render(meta)
}

// homeLine is one selectable row: text on the left, meta on the right.
func (m *Model) homeLine(sel bool, text, meta string, w int) string {
	cursor := "  "
	if sel {
		cursor = "> "
	}
	title := ansi.Truncate(cursor+text, max(w-ansi.StringWidth(meta)-2, 10), "…")
	pad := max(w-ansi.StringWidth(title)-ansi.StringWidth(meta), 1)
	row := title + strings.Repeat(" ", pad) + meta
	if sel {
		return m.styles.Selected.Render(ansi.Strip(row))
	}
	return row
}

// scenarioLines is a scenario's row and, when selected, its summary and
// the reasons it cannot run here.
func (m *Model) scenarioLines(r homeRow, sel bool, w int) []string {
	it := m.items[r.item]
	done := stepsPassed(it)
	state := m.styles.Pass.Render("● " + m.t("home.ready"))
	switch {
	case len(it.reasons) > 0:
		state = m.styles.Warn.Render("✗ " + m.t("home.unmet"))
	case done == len(it.scen.Steps) && done > 0:
		state = m.styles.Pass.Render("✓ " + m.t("home.done"))
	}
	meta := fmt.Sprintf("%s %d/%d %3d %s", state, done, len(it.scen.Steps), it.scen.Minutes, m.t("home.minutes"))
	out := []string{m.homeLine(sel, fmt.Sprintf("▶ %-10s %s", it.scen.ID, it.scen.Title.In(m.lang)), meta, w)}
	if !sel {
		return out
	}
	for _, reason := range it.reasons {
		out = append(out, "    "+m.styles.Warn.Render("· "+reason))
	}
	if sum := it.scen.Summary.In(m.lang); sum != "" {
		out = append(out, "    "+m.styles.Subtle.Render(ansi.Truncate(strings.Join(strings.Fields(sum), " "), max(w-4, 10), "…")))
	}
	return out
}

// scrollTo returns exactly h lines of lines, scrolled so line sel shows
// with some context below it.
func scrollTo(lines []string, sel, h int) []string {
	start := 0
	if sel >= h-3 {
		start = sel - h + 4
	}
	start = min(max(start, 0), max(len(lines)-h, 0))
	lines = lines[start:]
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}
