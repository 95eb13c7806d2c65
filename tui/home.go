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
	m.items = msg.items
	if msg.err != nil {
		m.notice = msg.err.Error()
	}
	if m.cursor >= len(m.items) {
		m.cursor = max(len(m.items)-1, 0)
	}
	if m.opts.ScenarioID != "" && m.opening && m.sess == nil {
		// `ctlab learn ID`: open it straight away.
		for i, it := range m.items {
			if it.scen.ID == m.opts.ScenarioID {
				m.cursor = i
				return m.openSelected()
			}
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
		if m.cursor > 0 {
			m.cursor--
		}
	case key.Matches(k, m.keys.Down):
		if m.cursor < len(m.items)-1 {
			m.cursor++
		}
	case key.Matches(k, m.keys.Open):
		return m.openSelected()
	}
	return nil
}

func (m *Model) openSelected() tea.Cmd {
	if m.cursor >= len(m.items) {
		return nil
	}
	it := m.items[m.cursor]
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

// viewHome lists the scenarios by chapter with their progress and, for a
// scenario this host cannot run, the reasons.
func (m *Model) viewHome() string {
	w := m.width
	var lines []string
	lines = append(lines, m.styles.Title.Render(m.t("home.title")), "")
	selLine := 0
	switch {
	case !m.homeLoaded:
		lines = append(lines, m.styles.Subtle.Render(m.t("home.checking")))
	case len(m.items) == 0:
		lines = append(lines, m.styles.Subtle.Render(m.t("home.empty")))
	}
	chapter := ""
	for i, it := range m.items {
		if it.scen.Chapter != chapter {
			chapter = it.scen.Chapter
			if len(lines) > 2 {
				lines = append(lines, "")
			}
			lines = append(lines, m.styles.Chapter.Render(m.t("chapter."+chapter)))
		}
		done := 0
		for _, st := range it.scen.Steps {
			if it.prog.Passed[st.ID] {
				done++
			}
		}
		state := m.styles.Pass.Render("● " + m.t("home.ready"))
		switch {
		case len(it.reasons) > 0:
			state = m.styles.Warn.Render("✗ " + m.t("home.unmet"))
		case done == len(it.scen.Steps) && done > 0:
			state = m.styles.Pass.Render("✓ " + m.t("home.done"))
		}
		cursor := "  "
		if i == m.cursor {
			cursor = "> "
			selLine = len(lines)
		}
		title := fmt.Sprintf("%s%-10s %s", cursor, it.scen.ID, it.scen.Title.In(m.lang))
		meta := fmt.Sprintf("%s %d/%d %3d %s", state, done, len(it.scen.Steps), it.scen.Minutes, m.t("home.minutes"))
		title = ansi.Truncate(title, max(w-ansi.StringWidth(meta)-2, 10), "…")
		pad := max(w-ansi.StringWidth(title)-ansi.StringWidth(meta), 1)
		row := title + strings.Repeat(" ", pad) + meta
		if i == m.cursor {
			row = m.styles.Selected.Render(ansi.Strip(row))
		}
		lines = append(lines, row)
		if len(it.reasons) > 0 && i == m.cursor {
			for _, r := range it.reasons {
				lines = append(lines, "    "+m.styles.Warn.Render("· "+r))
			}
		}
		if i == m.cursor {
			if sum := it.scen.Summary.In(m.lang); sum != "" {
				lines = append(lines, "    "+m.styles.Subtle.Render(ansi.Truncate(strings.Join(strings.Fields(sum), " "), max(w-4, 10), "…")))
			}
		}
	}
	// Scroll so the selected row stays on screen above the footer.
	bodyH := max(m.height-2, 1)
	start := 0
	if selLine >= bodyH {
		start = selLine - bodyH + 3
	}
	if start > len(lines) {
		start = len(lines)
	}
	lines = lines[start:]
	if len(lines) > bodyH {
		lines = lines[:bodyH]
	}
	for len(lines) < bodyH {
		lines = append(lines, "")
	}
	status := m.notice
	if m.closing {
		status = m.t("step.cleanup")
	} else if m.opening {
		id := m.opts.ScenarioID
		if m.cursor < len(m.items) {
			id = m.items[m.cursor].scen.ID
		}
		status = fmt.Sprintf("%s %s…", m.t("home.opening"), id)
	}
	footer := m.bar.View(ansi.Truncate(status, w/2, "…"), "ctlab", common.HomeKeys{KeyMap: m.keys})
	return strings.Join(lines, "\n") + "\n" + footer
}
