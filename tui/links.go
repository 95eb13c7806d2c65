package tui

import (
	"regexp"
	"strings"

	"github.com/ctlab/ctlab/content"
)

// linkKind is where a link in a page leads.
type linkKind int

const (
	linkPage     linkKind = iota // another page (or a heading of one)
	linkScenario                 // the scenario that answers the page's question
	linkTerm                     // a glossary entry
)

// link is one followable place in a page, in reading order.
type link struct {
	kind   linkKind
	text   string // the words on the page that carry it
	target string // page path, scenario id, or glossary term
	anchor string // heading slug within the target page
	line   int    // rendered line it is on (-1 until the page is rendered)
}

var (
	mdLink = regexp.MustCompile(`\[([^\]\n]+)\]\(([^)\s]+)\)`)
	// "ctlab learn ns-uts", "scenario `ns-uts`", "场景 `overlay`"
	scenarioRef = regexp.MustCompile("(?:ctlab learn |[Ss]cenarios? `|场景 ?`|场景：`ctlab learn )([a-z0-9][a-z0-9-]*)")
	boldTerm    = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
	fenceLine   = regexp.MustCompile("^\\s*(```|~~~)")
)

// pageMD is a page's Markdown ("" when there is no such page).
func pageMD(lang, page string) string {
	md, err := content.Page(lang, page)
	if err != nil {
		return ""
	}
	return string(md)
}

// eachLine calls fn with every line of md outside code fences (fenced is
// false) and inside them (true); the fence lines themselves are skipped.
func eachLine(md string, fn func(ln string, fenced bool)) {
	fence := false
	for _, ln := range strings.Split(md, "\n") {
		if fenceLine.MatchString(ln) {
			fence = !fence
			continue
		}
		fn(ln, fence)
	}
}

// pageLinks finds the links of page md (on page): Markdown links to other
// pages, mentions of a scenario, glossary terms in bold, and, in the
// glossary itself, each row's page. Code blocks are skipped.
func pageLinks(page, md string, terms map[string]string, isScenario func(string) bool) []link {
	var out []link
	seen := map[string]bool{}
	add := func(l link) {
		k := l.text + "\x00" + l.target + "\x00" + l.anchor
		if seen[k] {
			return
		}
		seen[k] = true
		l.line = -1
		out = append(out, l)
	}
	eachLine(md, func(ln string, fenced bool) {
		if fenced {
			return
		}
		for _, m := range mdLink.FindAllStringSubmatch(ln, -1) {
			if p, a, ok := resolvePage(page, m[2]); ok {
				add(link{kind: linkPage, text: m[1], target: p, anchor: a})
			}
		}
		for _, m := range scenarioRef.FindAllStringSubmatch(ln, -1) {
			if isScenario(m[1]) {
				add(link{kind: linkScenario, text: m[1], target: m[1]})
			}
		}
		if page == glossaryPage {
			if e, ok := glossaryRow(ln); ok {
				add(link{kind: linkPage, text: e.en, target: e.page})
			}
			return
		}
		for _, m := range boldTerm.FindAllStringSubmatch(ln, -1) {
			if t, ok := terms[strings.ToLower(m[1])]; ok {
				add(link{kind: linkTerm, text: m[1], target: t})
			}
		}
	})
	return out
}

// glossaryEntry is one row of the glossary's table.
type glossaryEntry struct {
	en, zh, page string
}

// glossaryRow parses "| English | 中文 | `page.md` |".
func glossaryRow(ln string) (glossaryEntry, bool) {
	if !strings.HasPrefix(ln, "| ") {
		return glossaryEntry{}, false
	}
	cells := strings.Split(strings.Trim(ln, "| "), "|")
	if len(cells) != 3 {
		return glossaryEntry{}, false
	}
	page := strings.Trim(strings.TrimSpace(cells[2]), "`")
	if !strings.HasSuffix(page, ".md") {
		return glossaryEntry{}, false
	}
	return glossaryEntry{en: strings.TrimSpace(cells[0]), zh: strings.TrimSpace(cells[1]), page: page}, true
}

// glossary returns the glossary's entries in lang's file order.
func glossary(lang string) []glossaryEntry {
	var out []glossaryEntry
	for _, ln := range strings.Split(pageMD(lang, glossaryPage), "\n") {
		if e, ok := glossaryRow(ln); ok {
			out = append(out, e)
		}
	}
	return out
}

// glossaryTerms maps each term, lower-cased, in both its English and its
// Chinese form (and the English without its parenthesised expansion), to
// the English term that names the entry.
func glossaryTerms(lang string) map[string]string {
	out := map[string]string{}
	for _, e := range glossary(lang) {
		for _, t := range []string{e.en, e.zh, strings.TrimSpace(strings.Split(e.en, " (")[0]), strings.TrimSpace(strings.Split(e.zh, "（")[0])} {
			if t != "" {
				out[strings.ToLower(t)] = e.en
			}
		}
	}
	return out
}
