package content

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/mattn/go-runewidth"
)

// seedRel is where the source course lives, relative to some ancestor of the
// package directory (the repo sits next to shared/ on the build machine).
const seedRel = "shared/seed/container-technology.zh.md"

// maxColumns is the terminal width every fenced block must fit.
const maxColumns = 80

type heading struct {
	level int
	text  string
	line  int
}

var atxHeading = regexp.MustCompile(`^(#{1,6})[ \t]+(.*?)[ \t#]*$`)

// stripQuote removes blockquote markers, so fences inside "> ```sh" blocks
// are recognised (the source course has such a block).
func stripQuote(line string) string {
	s := strings.TrimLeft(line, " ")
	for strings.HasPrefix(s, ">") {
		s = strings.TrimLeft(strings.TrimPrefix(s, ">"), " ")
	}
	return s
}

func isFence(line string) bool {
	s := stripQuote(line)
	return strings.HasPrefix(s, "```") || strings.HasPrefix(s, "~~~")
}

// scan walks Markdown line by line, telling the callback whether the line is
// inside a fenced block. Fence lines themselves are reported as fenced.
func scan(md []byte, fn func(n int, line string, fenced bool)) {
	in := false
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if isFence(line) {
			in = !in
			fn(n, line, true)
			continue
		}
		fn(n, line, in)
	}
}

func headings(md []byte) []heading {
	var hs []heading
	scan(md, func(n int, line string, fenced bool) {
		if fenced {
			return
		}
		if m := atxHeading.FindStringSubmatch(line); m != nil {
			hs = append(hs, heading{level: len(m[1]), text: m[2], line: n})
		}
	})
	return hs
}

// slug is GitHub's anchor rule: lower case, drop punctuation, spaces to '-'.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func mustPages(t *testing.T, lang string) []string {
	t.Helper()
	ps, err := Pages(lang)
	if err != nil {
		t.Fatalf("listing %s pages: %v", lang, err)
	}
	if len(ps) == 0 {
		t.Fatalf("no %s pages embedded", lang)
	}
	return ps
}

func mustPage(t *testing.T, lang, p string) []byte {
	t.Helper()
	b, err := Page(lang, p)
	if err != nil {
		t.Fatalf("reading page: %v", err)
	}
	return b
}

func TestEveryPageInBothLanguagesWithSameHeadings(t *testing.T) {
	zh, en := mustPages(t, "zh"), mustPages(t, "en")
	for _, p := range zh {
		if !slices.Contains(en, p) {
			t.Errorf("%s exists in zh but not in en", p)
		}
	}
	for _, p := range en {
		if !slices.Contains(zh, p) {
			t.Errorf("%s exists in en but not in zh", p)
		}
	}
	for _, p := range zh {
		if !slices.Contains(en, p) {
			continue
		}
		hz, he := headings(mustPage(t, "zh", p)), headings(mustPage(t, "en", p))
		if len(hz) != len(he) {
			t.Errorf("%s: zh has %d headings, en has %d", p, len(hz), len(he))
		}
		for i := 0; i < len(hz) && i < len(he); i++ {
			if hz[i].level != he[i].level {
				t.Errorf("%s: heading %d is level %d in zh (%q, line %d) but %d in en (%q, line %d)",
					p, i+1, hz[i].level, hz[i].text, hz[i].line, he[i].level, he[i].text, he[i].line)
				break
			}
		}
	}
}

func TestEveryPageStartsWithOneTitle(t *testing.T) {
	for _, lang := range Languages {
		for _, p := range mustPages(t, lang) {
			md := mustPage(t, lang, p)
			first := strings.TrimSpace(strings.SplitN(strings.TrimLeft(string(md), "\n"), "\n", 2)[0])
			if !strings.HasPrefix(first, "# ") {
				t.Errorf("%s/%s: first line %q is not a '# Title'", lang, p, first)
			}
			n := 0
			for _, h := range headings(md) {
				if h.level == 1 {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s/%s: %d level-1 headings, want exactly 1", lang, p, n)
			}
		}
	}
}

func TestFencedBlocksFit80Columns(t *testing.T) {
	// Ambiguous-width runes are counted narrow, as in a UTF-8 Western terminal;
	// CJK is always two columns.
	cond := runewidth.NewCondition()
	cond.EastAsianWidth = false
	for _, lang := range Languages {
		for _, p := range mustPages(t, lang) {
			scan(mustPage(t, lang, p), func(n int, line string, fenced bool) {
				if !fenced {
					return
				}
				if w := cond.StringWidth(strings.ReplaceAll(line, "\t", "        ")); w > maxColumns {
					t.Errorf("%s/%s:%d: fenced line is %d columns wide (max %d): %q", lang, p, n, w, maxColumns, line)
				}
			})
		}
	}
}

// findSeed walks up from the package directory looking for shared/seed.
func findSeed() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, seedRel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New(seedRel + " not found in any parent directory")
		}
		dir = parent
	}
}

func readSeed(t *testing.T) []byte {
	t.Helper()
	p, err := findSeed()
	if err != nil {
		t.Skipf("source course absent, cannot compare against it: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading source course: %v", err)
	}
	return b
}

var pageRef = regexp.MustCompile("content/(zh|en)/([A-Za-z0-9_./-]+\\.md)(#[A-Za-z0-9_-]+)?")

// coverageRows returns the table rows of COVERAGE.md as trimmed cells.
func coverageRows(t *testing.T) [][]string {
	t.Helper()
	b, err := fs.ReadFile(FS, "COVERAGE.md")
	if err != nil {
		t.Fatalf("reading COVERAGE.md: %v", err)
	}
	var rows [][]string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| ---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

func TestEverySourceHeadingIsCovered(t *testing.T) {
	src := readSeed(t)
	rows := coverageRows(t)
	covered := map[string][]string{} // source heading line -> page cells
	for _, r := range rows {
		if len(r) < 3 {
			continue
		}
		h := strings.Trim(r[0], "`")
		covered[h] = append(covered[h], r[2])
	}
	var srcHeadings []string
	scan(src, func(_ int, line string, fenced bool) {
		if !fenced && atxHeading.MatchString(line) {
			srcHeadings = append(srcHeadings, strings.TrimSpace(line))
		}
	})
	if len(srcHeadings) < 10 {
		t.Fatalf("found only %d headings in the source course; parser broken?", len(srcHeadings))
	}
	for _, h := range srcHeadings {
		pages, ok := covered[h]
		if !ok {
			t.Errorf("source heading %q has no row in COVERAGE.md", h)
			continue
		}
		for _, cell := range pages {
			refs := pageRef.FindAllStringSubmatch(cell, -1)
			if len(refs) == 0 {
				t.Errorf("source heading %q: page cell %q names no content/<lang>/...md page", h, cell)
			}
			for _, ref := range refs {
				checkRef(t, h, ref[1], ref[2], strings.TrimPrefix(ref[3], "#"))
			}
		}
	}
}

func checkRef(t *testing.T, h, lang, page, anchor string) {
	t.Helper()
	md, err := Page(lang, page)
	if err != nil {
		t.Errorf("source heading %q points to a missing page: %v", h, err)
		return
	}
	if anchor == "" {
		return
	}
	for _, ph := range headings(md) {
		if slug(ph.text) == anchor {
			return
		}
	}
	t.Errorf("source heading %q points to %s/%s#%s, but no heading there has that anchor", h, lang, page, anchor)
}

// normalize drops whitespace and Markdown markup so that re-wrapping or
// re-emphasising a copied sentence does not hide it.
func normalize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsSpace(r) || strings.ContainsRune("*_`>#[]", r) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// sentenceEnd splits prose into sentences; clauseEnd further splits them at
// commas and colons, so a long copied clause is caught even when the rest of
// its sentence was rewritten.
var (
	sentenceEnd = regexp.MustCompile(`[。！？；!?;\n]`)
	clauseEnd   = regexp.MustCompile(`[，,：:]`)
)

// TestNoSentenceCopiedFromSource checks the zh pages against the prose of the
// source course. Code blocks are left out on purpose: a command or a path is a
// fact that must be reproduced exactly to work. Sentences without any Han
// character are references (URLs, product names), not prose.
func TestNoSentenceCopiedFromSource(t *testing.T) {
	src := readSeed(t)
	var prose strings.Builder
	scan(src, func(_ int, line string, fenced bool) {
		if !fenced {
			prose.WriteString(line)
			prose.WriteByte('\n')
		}
	})
	var sentences []string
	for _, s := range sentenceEnd.Split(prose.String(), -1) {
		for _, part := range append([]string{s}, clauseEnd.Split(s, -1)...) {
			n := normalize(part)
			if len([]rune(n)) >= 20 && hasHan(n) && !slices.Contains(sentences, n) {
				sentences = append(sentences, n)
			}
		}
	}
	if len(sentences) < 50 {
		t.Fatalf("found only %d long sentences in the source course; splitter broken?", len(sentences))
	}
	for _, p := range mustPages(t, "zh") {
		page := normalize(string(mustPage(t, "zh", p)))
		for _, s := range sentences {
			if strings.Contains(page, s) {
				t.Errorf("zh/%s copies a source sentence verbatim: %q", p, s)
			}
		}
	}
}

func TestPageRejectsBadInput(t *testing.T) {
	if _, err := Page("fr", "glossary"); err == nil {
		t.Error("Page accepted an unknown language")
	}
	if _, err := Page("en", "../COVERAGE.md"); err == nil {
		t.Error("Page accepted a path outside the language tree")
	}
	if _, err := Page("en", "glossary"); err != nil {
		t.Errorf("Page without .md suffix: %v", err)
	}
}

// knownScenarios are the scenario ids the course is planned around; a typo in
// COVERAGE.md's scenario column would otherwise point learners nowhere.
var knownScenarios = []string{
	"intro-container", "ns-mnt", "ns-uts", "ns-ipc", "ns-pid", "ns-net", "ns-user",
	"ns-cgroup", "ns-time", "cg-cpu", "cg-memory", "cg-pids", "cg-freezer", "cg-io",
	"cg-devices", "cg-drivers", "overlay", "start-vs-exec", "runtimes", "homework nginx-hello",
	"image-layers", "dockerfile-multistage", "docker-commands", "homework-nginx",
}

func TestCoverageNamesKnownScenarios(t *testing.T) {
	for _, r := range coverageRows(t) {
		if len(r) != 4 {
			t.Errorf("COVERAGE.md row has %d cells, want 4: %q", len(r), r)
			continue
		}
		if r[0] == "source heading" || r[3] == "—" || r[3] == "" {
			continue
		}
		for _, id := range strings.Split(r[3], ",") {
			id = strings.TrimSpace(id)
			if !slices.Contains(knownScenarios, id) {
				t.Errorf("COVERAGE.md row for %s names unknown scenario %q", r[0], id)
			}
		}
	}
}
