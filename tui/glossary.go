package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/tui/common"
)

// glossaryView is the glossary screen's state: every term, each leading
// to the page that explains it.
type glossaryView struct {
	cursor int
	from   screen // where esc goes back to
	ret    place  // the page it was opened from (from == screenReader)
}

// openGlossary shows the glossary, on term when it is given.
func (m *Model) openGlossary(term string) tea.Cmd {
	switch m.screen {
	case screenGlossary:
	case screenSearch:
		m.gl.from = m.srch.from
	default:
		m.gl.from = m.screen
	}
	if m.gl.from == screenReader {
		m.gl.ret = place{lang: m.rd.lang, page: m.rd.page, offset: m.rd.offset}
	}
	m.screen = screenGlossary
	if term == "" {
		return nil
	}
	for i, e := range glossary(m.lang) {
		if strings.EqualFold(e.en, term) {
			m.gl.cursor = i
		}
	}
	return nil
}

func (m *Model) updateGlossary(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	entries := glossary(m.lang)
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.Back):
		if m.gl.from == screenReader && m.gl.ret.page != "" {
			return m.goPlace(m.gl.ret) // the page the glossary was opened from
		}
		m.screen = screenHome
	case key.Matches(k, m.keys.Up):
		m.gl.cursor = max(m.gl.cursor-1, 0)
	case key.Matches(k, m.keys.Down):
		m.gl.cursor = min(m.gl.cursor+1, max(len(entries)-1, 0))
	case key.Matches(k, m.keys.PageDown):
		m.gl.cursor = min(m.gl.cursor+m.height/2-2, max(len(entries)-1, 0))
	case key.Matches(k, m.keys.PageUp):
		m.gl.cursor = max(m.gl.cursor-m.height/2+2, 0)
	case key.Matches(k, m.keys.Search):
		return m.openSearch()
	case key.Matches(k, m.keys.Open):
		if m.gl.cursor < len(entries) {
			e := entries[m.gl.cursor]
			find := e.en
			if m.lang == "zh" {
				find = strings.Split(e.zh, "（")[0]
			}
			return m.openPage(e.page, "", find)
		}
	}
	return nil
}

// viewGlossary lists the terms: English, Chinese, and the page.
func (m *Model) viewGlossary() string {
	w, h := m.width, max(m.height-2, 1)
	entries := glossary(m.lang)
	m.gl.cursor = min(m.gl.cursor, max(len(entries)-1, 0))
	lines := []string{m.styles.Title.Render(m.t("glossary.title")), ""}
	sel := 0
	for i, e := range entries {
		left := e.en + " · " + e.zh
		right := pageTitle(m.lang, e.page)
		rw := min(ansi.StringWidth(right), w/2)
		right = ansi.Truncate(right, rw, "…")
		left = ansi.Truncate(left, max(w-rw-4, 10), "…")
		pad := max(w-2-ansi.StringWidth(left)-ansi.StringWidth(right), 1)
		if i == m.gl.cursor {
			sel = len(lines)
			lines = append(lines, m.styles.Selected.Render("> "+left+strings.Repeat(" ", pad)+right))
			continue
		}
		lines = append(lines, "  "+left+strings.Repeat(" ", pad)+m.styles.Subtle.Render(right))
	}
	body := scrollTo(lines, sel, h)
	return strings.Join(body, "\n") + "\n" + m.bar.View(" "+m.t("glossary.title"), "", common.ListKeys{KeyMap: m.keys})
}
