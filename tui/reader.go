package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/content"
	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/common"
)

// renderedDoc is a page rendered at one width. Lines are kept whole: a
// diagram wider than the screen scrolls sideways instead of being cut.
type renderedDoc struct {
	lines []string // as rendered, with colours
	plain []string // the same without escape codes, to find things in
	wide  int      // the widest line's width
}

// place is a spot in the reader's history.
type place struct {
	lang, page string
	offset     int
}

// reader is the page reader's state.
type reader struct {
	lang, page string
	offset     int // first line shown
	xoff       int // first column shown (sideways scroll)
	links      []link
	sel        int // selected link, -1 for none
	back, fwd  []place
	outline    bool
	outCur     int
	find       string // text to scroll to once the page is rendered
	findNth    int    // ... its findNth occurrence (0: the first)
	heading    string // or this heading
}

// pageRenderedMsg carries one rendering back to Update.
type pageRenderedMsg struct {
	key string
	doc *renderedDoc
}

func docKey(lang, page string, w int) string { return fmt.Sprintf("%s/%s@%d", lang, page, w) }

// renderPage renders a page in a command (Glamour work off the loop).
func renderPage(style, lang, page string, w int) tea.Cmd {
	return func() tea.Msg {
		return pageRenderedMsg{key: docKey(lang, page, w), doc: renderDoc(style, lang, page, w)}
	}
}

// renderDoc renders a page for the reader: links show as their words
// (tab selects them, the status bar says where they lead).
func renderDoc(style, lang, page string, w int) *renderedDoc {
	md, err := content.Page(lang, page)
	text := ""
	if err == nil {
		src := mdLink.ReplaceAllStringFunc(string(md), func(s string) string {
			m := mdLink.FindStringSubmatch(s)
			if _, _, ok := resolvePage(page, m[2]); ok {
				return "_" + m[1] + "_"
			}
			return s
		})
		text, err = common.RenderMarkdown(style, src, w)
	}
	if err != nil {
		text = err.Error()
	}
	d := &renderedDoc{lines: strings.Split(text, "\n")}
	for i, l := range d.lines {
		d.lines[i] = strings.TrimRight(l, " ")
		p := ansi.Strip(d.lines[i])
		d.plain = append(d.plain, p)
		d.wide = max(d.wide, ansi.StringWidth(p))
	}
	return d
}

// doc is the current page's rendering, nil until it is ready.
func (m *Model) doc() *renderedDoc {
	return m.docs[docKey(m.rd.lang, m.rd.page, m.textW())]
}

// needDoc asks for the current page's rendering when it is not cached.
func (m *Model) needDoc() tea.Cmd {
	if d := m.doc(); d != nil {
		return m.placeDoc()
	}
	return renderPage(m.narr.Style, m.rd.lang, m.rd.page, m.textW())
}

// openPage shows page in the reader, at the heading anchor (an English
// slug) or at the first line containing find. The page left is kept in
// the history.
func (m *Model) openPage(page, anchor, find string) tea.Cmd {
	switch {
	case m.screen == screenReader && m.rd.page != "":
		m.rd.back = append(m.rd.back, place{lang: m.rd.lang, page: m.rd.page, offset: m.rd.offset})
		m.rd.fwd = nil
	case m.screen == screenGlossary:
		m.rd.back = append(m.rd.back, place{}) // back to the glossary
		m.rd.fwd = nil
	}
	m.showPage(m.lang, page, 0)
	if anchor != "" {
		m.rd.heading = headingText(m.rd.lang, page, anchor)
	}
	if find != "" {
		m.rd.find = find
	}
	return m.needDoc()
}

// showPage points the reader at a page without touching the history.
func (m *Model) showPage(lang, page string, offset int) {
	m.screen = screenReader
	m.rd.lang, m.rd.page, m.rd.offset, m.rd.xoff = lang, page, offset, 0
	m.rd.sel, m.rd.outline, m.rd.outCur, m.rd.find, m.rd.findNth, m.rd.heading = -1, false, 0, "", 0, ""
	md, _ := content.Page(lang, page)
	m.rd.links = pageLinks(page, string(md), glossaryTerms(lang), m.knownScenario)
}

// headingText is the text of the heading of page (in lang) whose English
// slug is anchor: the two trees have the same headings in the same order.
func headingText(lang, page, anchor string) string {
	en, err := content.Page("en", page)
	if err != nil {
		return ""
	}
	idx := lab.HeadingIndex(string(en), anchor)
	hs := pageHeadings(lang, page)
	if idx < 0 || idx >= len(hs) {
		return ""
	}
	return hs[idx].text
}

// heading is one heading of a page's Markdown.
type heading struct {
	level int
	text  string
}

func pageHeadings(lang, page string) []heading {
	var out []heading
	eachLine(pageMD(lang, page), func(ln string, fenced bool) {
		t := strings.TrimLeft(ln, "#")
		if !fenced && t != ln && strings.HasPrefix(t, " ") {
			out = append(out, heading{level: len(ln) - len(t), text: strings.TrimSpace(t)})
		}
	})
	return out
}

// placeDoc runs once the page is rendered: where each link is, where to
// scroll to, and whether the page is now read.
func (m *Model) placeDoc() tea.Cmd {
	d := m.doc()
	if d == nil {
		return nil
	}
	cur := 0
	for i := range m.rd.links {
		l := &m.rd.links[i]
		if n := findLine(d.plain, linkNeedle(*l), cur); n >= 0 {
			l.line, cur = n, n
		}
	}
	if n := findHeadingLine(d.plain, m.rd.heading); m.rd.heading != "" && n >= 0 {
		m.rd.offset = n
	}
	if m.rd.find != "" {
		n := -1
		for i := 0; i <= m.rd.findNth; i++ {
			next := findLine(d.plain, m.rd.find, n+1)
			if next < 0 {
				break
			}
			n = next
		}
		if n >= 0 {
			m.rd.offset = max(n-2, 0)
		}
	}
	m.rd.find, m.rd.findNth, m.rd.heading = "", 0, ""
	m.clampReader()
	return m.markRead()
}

// linkNeedle is the text a link shows on screen.
func linkNeedle(l link) string { return strings.Trim(l.text, "`*_ ") }

// findLine returns the first line from start that contains s (case
// folded), or -1.
func findLine(plain []string, s string, start int) int {
	s = strings.ToLower(s)
	if s == "" {
		return -1
	}
	for i := max(start, 0); i < len(plain); i++ {
		if strings.Contains(strings.ToLower(plain[i]), s) {
			return i
		}
	}
	// A link that wraps: look for its start (its first word, or the
	// first two characters of a Chinese one).
	if w := strings.Fields(s); len(w) > 1 {
		return findLine(plain, w[0], start)
	}
	if r := []rune(s); len(r) > 2 && r[0] > 0x2e80 {
		return findLine(plain, string(r[:2]), start)
	}
	return -1
}

// findHeadingLine finds a rendered heading: "## text", or the title line.
func findHeadingLine(plain []string, text string) int {
	for i, p := range plain {
		t := strings.TrimSpace(p)
		if strings.HasPrefix(t, "#") && strings.HasSuffix(t, text) || t == text {
			return i
		}
	}
	return -1
}

func (m *Model) readerBodyH() int { return max(m.height-2, 1) }

// sideW is the width of the outline beside the page on a wide terminal
// (0: no room, the outline is o's full-screen list).
const sideW, sideMinWidth = 30, 120

// textW is the width pages are rendered at.
func (m *Model) textW() int {
	if m.width >= sideMinWidth {
		return m.width - sideW - 1
	}
	return m.width
}

// clampReader keeps the offsets inside the page.
func (m *Model) clampReader() {
	d := m.doc()
	if d == nil {
		return
	}
	m.rd.offset = min(max(m.rd.offset, 0), max(len(d.lines)-m.readerBodyH(), 0))
	m.rd.xoff = min(max(m.rd.xoff, 0), max(d.wide-m.textW(), 0))
}

// markRead records the page as read once its end has been on screen.
func (m *Model) markRead() tea.Cmd {
	d := m.doc()
	if d == nil || m.read[m.rd.page] || m.rd.offset+m.readerBodyH() < len(d.lines) {
		return nil
	}
	m.read[m.rd.page] = true
	return saveRead(m.progress, m.rd.page)
}

func (m *Model) updateReader(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	if m.rd.outline {
		return m.outlineKey(k)
	}
	page := m.readerBodyH()
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.HistBack):
		return m.historyBack()
	case key.Matches(k, m.keys.HistForward):
		return m.historyForward()
	case key.Matches(k, m.keys.Down):
		m.rd.offset++
	case key.Matches(k, m.keys.Up):
		m.rd.offset--
	case key.Matches(k, m.keys.PageDown):
		m.rd.offset += max(page-2, 1)
	case key.Matches(k, m.keys.PageUp):
		m.rd.offset -= max(page-2, 1)
	case key.Matches(k, m.keys.Right):
		m.rd.xoff += 10
	case key.Matches(k, m.keys.Left):
		m.rd.xoff -= 10
	case key.Matches(k, m.keys.NextLink):
		m.selectLink(+1)
	case key.Matches(k, m.keys.PrevLink):
		m.selectLink(-1)
	case key.Matches(k, m.keys.Open):
		return m.followLink()
	case key.Matches(k, m.keys.Outline):
		m.rd.outline = true
	case key.Matches(k, m.keys.Search):
		return m.openSearch()
	case key.Matches(k, m.keys.Glossary):
		return m.openGlossary("")
	}
	m.clampReader()
	return m.markRead()
}

// selectLink moves the selection to the next link (d=+1) or the previous
// one, and scrolls it into view.
func (m *Model) selectLink(d int) {
	n := len(m.rd.links)
	if n == 0 {
		m.notice = m.t("reader.nolinks")
		return
	}
	if m.rd.sel < 0 {
		// Start from the screen: the first link at or below its top.
		m.rd.sel = n - 1
		if d < 0 {
			m.rd.sel = 0
		}
		for i, l := range m.rd.links {
			if l.line >= m.rd.offset {
				m.rd.sel = (i - d + n) % n
				break
			}
		}
	}
	m.rd.sel = (m.rd.sel + d + n) % n
	if l := m.rd.links[m.rd.sel]; l.line >= 0 && (l.line < m.rd.offset || l.line >= m.rd.offset+m.readerBodyH()) {
		m.rd.offset = max(l.line-m.readerBodyH()/3, 0)
	}
}

// followLink opens the selected link: a page, a scenario, a glossary term.
func (m *Model) followLink() tea.Cmd {
	if m.rd.sel < 0 || m.rd.sel >= len(m.rd.links) {
		m.selectLink(+1)
		return nil
	}
	l := m.rd.links[m.rd.sel]
	switch l.kind {
	case linkScenario:
		i, ok := m.scenarioByID(l.target)
		if !ok {
			m.notice = m.t("home.checking")
			return nil
		}
		m.lessonFrom = screenReader
		return m.openItem(i)
	case linkTerm:
		return m.openGlossary(l.target)
	}
	return m.openPage(l.target, l.anchor, "")
}

func (m *Model) historyBack() tea.Cmd {
	n := len(m.rd.back)
	if n == 0 {
		m.screen = screenHome
		return nil
	}
	p := m.rd.back[n-1]
	m.rd.back = m.rd.back[:n-1]
	m.rd.fwd = append(m.rd.fwd, place{lang: m.rd.lang, page: m.rd.page, offset: m.rd.offset})
	return m.goPlace(p)
}

func (m *Model) historyForward() tea.Cmd {
	n := len(m.rd.fwd)
	if n == 0 {
		return nil
	}
	p := m.rd.fwd[n-1]
	m.rd.fwd = m.rd.fwd[:n-1]
	m.rd.back = append(m.rd.back, place{lang: m.rd.lang, page: m.rd.page, offset: m.rd.offset})
	return m.goPlace(p)
}

// goPlace shows a place of the history (the glossary view is one too).
func (m *Model) goPlace(p place) tea.Cmd {
	if p.page == "" {
		m.screen = screenGlossary
		return nil
	}
	m.showPage(p.lang, p.page, p.offset)
	return m.needDoc()
}

// outlineKey handles the outline: a list of the page's headings.
func (m *Model) outlineKey(k tea.KeyPressMsg) tea.Cmd {
	hs := pageHeadings(m.rd.lang, m.rd.page)
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.Back), key.Matches(k, m.keys.Outline):
		m.rd.outline = false
	case key.Matches(k, m.keys.Up):
		m.rd.outCur = max(m.rd.outCur-1, 0)
	case key.Matches(k, m.keys.Down):
		m.rd.outCur = min(m.rd.outCur+1, max(len(hs)-1, 0))
	case key.Matches(k, m.keys.Open):
		m.rd.outline = false
		if d := m.doc(); d != nil && m.rd.outCur < len(hs) {
			if n := findHeadingLine(d.plain, hs[m.rd.outCur].text); n >= 0 {
				m.rd.offset = n
			}
		}
		m.clampReader()
		return m.markRead()
	}
	return nil
}

// viewReader draws the page over the whole screen (or its outline).
func (m *Model) viewReader() string {
	h := m.readerBodyH()
	var body []string
	switch d := m.doc(); {
	case m.rd.outline:
		body = m.viewOutline(h)
	case d == nil:
		body = scrollTo([]string{m.styles.Subtle.Render("…")}, 0, h)
	default:
		body = m.viewPageLines(d, h)
		if m.textW() < m.width {
			body = m.withSide(d, body)
		}
	}
	return strings.Join(body, "\n") + "\n" + m.bar.View(m.readerStatus(), m.readerPos(), common.ReaderKeys{KeyMap: m.keys})
}

func (m *Model) viewPageLines(d *renderedDoc, h int) []string {
	end := min(m.rd.offset+h, len(d.lines))
	sel := -1
	var needle string
	if m.rd.sel >= 0 && m.rd.sel < len(m.rd.links) {
		sel, needle = m.rd.links[m.rd.sel].line, linkNeedle(m.rd.links[m.rd.sel])
	}
	out := make([]string, 0, h)
	for i := m.rd.offset; i < end; i++ {
		ln := d.lines[i]
		if i == sel {
			ln = m.highlight(d.plain[i], needle)
		}
		if m.rd.xoff > 0 || ansi.StringWidth(d.plain[i]) > m.textW() {
			ln = ansi.Cut(ln, m.rd.xoff, m.rd.xoff+m.textW())
		}
		out = append(out, ln)
	}
	return scrollTo(out, 0, h)
}

// withSide puts the page's outline to the left of its lines, the
// section on screen marked.
func (m *Model) withSide(d *renderedDoc, body []string) []string {
	cur, line := -1, 0
	hs := pageHeadings(m.rd.lang, m.rd.page)
	for i, hd := range hs {
		n := findLine(d.plain, hd.text, line)
		if n < 0 {
			continue
		}
		line = n
		if n <= m.rd.offset+2 {
			cur = i
		}
	}
	side := make([]string, 0, len(body))
	for i, hd := range hs {
		row := ansi.Truncate(strings.Repeat(" ", max(hd.level-1, 0))+hd.text, sideW-2, "…")
		if i == cur {
			row = m.styles.Accent.Render("▸ " + row)
		} else {
			row = m.styles.Subtle.Render("  " + row)
		}
		side = append(side, row)
	}
	side = scrollTo(side, max(cur, 0), len(body))
	out := make([]string, len(body))
	for i := range body {
		pad := max(sideW-ansi.StringWidth(side[i]), 0)
		out[i] = side[i] + strings.Repeat(" ", pad) + m.styles.Subtle.Render("│") + body[i]
	}
	return out
}

// highlight shows the selected link's words reversed on its line.
func (m *Model) highlight(plain, needle string) string {
	i := strings.Index(strings.ToLower(plain), strings.ToLower(needle))
	if i < 0 {
		if w := strings.Fields(needle); len(w) > 0 {
			needle = w[0]
			i = strings.Index(strings.ToLower(plain), strings.ToLower(needle))
		}
	}
	if i < 0 {
		return m.styles.Selected.Render(plain)
	}
	return plain[:i] + m.styles.Selected.Render(plain[i:i+len(needle)]) + plain[i+len(needle):]
}

func (m *Model) viewOutline(h int) []string {
	lines := []string{m.styles.Title.Render(m.t("reader.outline") + " · " + pageTitle(m.rd.lang, m.rd.page)), ""}
	sel := 0
	for i, hd := range pageHeadings(m.rd.lang, m.rd.page) {
		row := strings.Repeat("  ", max(hd.level-1, 0)) + hd.text
		if i == m.rd.outCur {
			sel = len(lines)
			row = m.styles.Selected.Render("> " + row)
		} else {
			row = "  " + row
		}
		lines = append(lines, ansi.Truncate(row, m.width, "…"))
	}
	return scrollTo(lines, sel, h)
}

// readerStatus names the page, or where the selected link leads.
func (m *Model) readerStatus() string {
	if m.notice != "" {
		return " " + m.notice
	}
	if m.rd.sel >= 0 && m.rd.sel < len(m.rd.links) {
		l := m.rd.links[m.rd.sel]
		switch l.kind {
		case linkScenario:
			if i, ok := m.scenarioByID(l.target); ok {
				return fmt.Sprintf(" %s → %s · %s", m.t("reader.scenario"), l.target, m.items[i].scen.Title.In(m.lang))
			}
			return fmt.Sprintf(" %s → %s", m.t("reader.scenario"), l.target)
		case linkTerm:
			return fmt.Sprintf(" %s → %s", m.t("reader.term"), l.target)
		}
		return fmt.Sprintf(" %s → %s", m.t("reader.link"), pageTitle(m.rd.lang, l.target))
	}
	return " " + pageTitle(m.rd.lang, m.rd.page)
}

func (m *Model) readerPos() string {
	d := m.doc()
	if d == nil {
		return m.rd.lang + " "
	}
	pos := fmt.Sprintf("%d/%d", min(m.rd.offset+m.readerBodyH(), len(d.lines)), len(d.lines))
	if d.wide > m.textW() {
		pos = m.t("reader.wide") + " · " + pos
	}
	if n := len(m.rd.links); n > 0 {
		pos = fmt.Sprintf("%s %d/%d · %s", m.t("reader.link"), m.rd.sel+1, n, pos)
	}
	return pos + " " + m.rd.lang + " "
}
