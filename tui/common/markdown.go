package common

import (
	"fmt"
	"regexp"
	str "strings"
	"unicode"
	"unicode/utf8"

	"charm.land/glamour/v2"
	gansi "charm.land/glamour/v2/ansi"
	"charm.land/glamour/v2/styles"
)

// RenderMarkdown renders md with Glamour's style ("dark" or "light"),
// word-wrapped to exactly width columns: no document or code-block margin,
// so a pane's text uses the pane's whole width and an 80-column diagram
// fits an 80-column terminal. Line breaks between two CJK characters are
// joined first (see JoinCJKBreaks).
func RenderMarkdown(style, md string, width int) (string, error) {
	if width < 10 {
		width = 10
	}
	r, err := glamour.NewTermRenderer(glamour.WithStyles(styleConfig(style)), glamour.WithWordWrap(width))
	if err != nil {
		return "", fmt.Errorf("markdown renderer: %w", err)
	}
	out, err := r.Render(breakCJK(joinListLines(JoinCJKBreaks(md))))
	if err != nil {
		return "", fmt.Errorf("render lesson text: %w", err)
	}
	return str.Trim(str.ReplaceAll(out, cjkBreak, ""), "\n"), nil
}

// cjkBreak marks a place where a line may wrap between two CJK
// characters. Glamour wraps only at spaces, so a Chinese paragraph, one
// long "word", would be cut at the width wherever it reaches it, leaving
// ragged lines around every Latin word. NEL (U+0085) is white space to
// the wrapper but zero cells wide; it is removed from the rendering.
const cjkBreak = "\u0085"

var cjkPair = regexp.MustCompile(`([\p{Han}\p{Hiragana}\p{Katakana}，。、；：！？”）])([\p{Han}\p{Hiragana}\p{Katakana}“（])`)

// breakCJK puts a cjkBreak between CJK characters outside code.
func breakCJK(md string) string {
	lines := str.Split(md, "\n")
	fence := false
	for i, ln := range lines {
		t := str.TrimSpace(ln)
		if str.HasPrefix(t, "```") || str.HasPrefix(t, "~~~") {
			fence = !fence
			continue
		}
		if fence || !cjkPair.MatchString(ln) {
			continue
		}
		// Code spans are the odd fields of a split on backticks.
		parts := str.Split(ln, "`")
		for j := 0; j < len(parts); j += 2 {
			for range 2 { // pairs overlap: a second pass catches the rest
				parts[j] = cjkPair.ReplaceAllString(parts[j], "${1}"+cjkBreak+"${2}")
			}
		}
		lines[i] = str.Join(parts, "`")
	}
	return str.Join(lines, "\n")
}

// styleConfig is Glamour's standard style without margins.
func styleConfig(style string) gansi.StyleConfig {
	base := styles.DarkStyleConfig
	if style == "light" {
		base = styles.LightStyleConfig
	}
	zero := uint(0)
	base.Document.Margin = &zero
	base.CodeBlock.Margin = &zero
	return base
}

// JoinCJKBreaks removes the line break of a hard-wrapped paragraph where
// the text on both sides is Chinese (or Japanese). Markdown turns a soft
// break into a space, which is right between English words but shows as
// a stray gap in "占据主导\n地位". Code fences are left alone; a break
// before a line that starts a block (list item, heading, table, quote) is
// kept.
func JoinCJKBreaks(md string) string {
	lines := str.Split(md, "\n")
	out := make([]string, 0, len(lines))
	fence := false
	for _, ln := range lines {
		t := str.TrimSpace(ln)
		if str.HasPrefix(t, "```") || str.HasPrefix(t, "~~~") {
			fence = !fence
			out = append(out, ln)
			continue
		}
		if !fence && len(out) > 0 && !startsBlock(t) && endsCJK(out[len(out)-1]) && startsCJK(t) {
			out[len(out)-1] = str.TrimRight(out[len(out)-1], " \t") + t
			continue
		}
		out = append(out, ln)
	}
	return str.Join(out, "\n")
}

// listItem is the start of a list item.
var listItem = regexp.MustCompile(`^\s*([-*+]|\d{1,3}[.)])\s+\S`)

// joinListLines joins the hard-wrapped lines of a list item into one.
// Glamour keeps a soft break inside a list item as a line break (and
// drops the indentation), so at a narrow width each source line wraps on
// its own: "the process gets its own view of the" and then "file" alone.
func joinListLines(md string) string {
	lines := str.Split(md, "\n")
	out := make([]string, 0, len(lines))
	fence, item := false, false
	for _, ln := range lines {
		t := str.TrimSpace(ln)
		switch {
		case str.HasPrefix(t, "```") || str.HasPrefix(t, "~~~"):
			fence, item = !fence, false
		case fence:
		case listItem.MatchString(ln):
			item = true
		case item && !startsBlock(t) && !str.HasSuffix(out[len(out)-1], "  "):
			out[len(out)-1] = str.TrimRight(out[len(out)-1], " \t") + " " + t
			continue
		default:
			item = false
		}
		out = append(out, ln)
	}
	return str.Join(out, "\n")
}

// emphasis marks may sit between the text and the break ("**容器**\n的").
const marks = "*_`"

func endsCJK(s string) bool {
	if str.HasSuffix(s, "  ") || str.HasSuffix(s, "\\") {
		return false // an explicit hard break
	}
	s = str.TrimRight(s, " \t")
	s = str.TrimRight(s, marks)
	r, _ := utf8.DecodeLastRuneInString(s)
	return isCJK(r)
}

func startsCJK(s string) bool {
	s = str.TrimLeft(s, marks)
	r, _ := utf8.DecodeRuneInString(s)
	return isCJK(r)
}

func startsBlock(t string) bool {
	if t == "" {
		return true
	}
	switch t[0] {
	case '#', '|', '>':
		return true
	case '-', '+', '*': // a list item (or a rule), not emphasis
		return len(t) == 1 || t[1] == ' ' || str.Trim(t, string(t[0])+" ") == ""
	}
	if i := str.IndexAny(t, ".)"); i > 0 && i <= 3 {
		if _, err := fmt.Sscanf(t[:i], "%d", new(int)); err == nil {
			return true
		}
	}
	return false
}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r) ||
		(r >= 0x3000 && r <= 0x303f) || (r >= 0xff00 && r <= 0xffef) || r == '“' || r == '”'
}
