package common

import (
	"regexp"
	str "strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/ctlab/ctlab/content"
)

// A space between two Han characters in the rendering that the page does
// not have: a hard-wrapped line joined by Glamour with a space.
var strayHan = regexp.MustCompile(`\p{Han}[ ]+\p{Han}`)

func TestZhRenderingHasNoStraySpaces(t *testing.T) {
	pages, err := content.Pages("zh")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		md, err := content.Page("zh", p)
		if err != nil {
			t.Fatal(err)
		}
		// Spaces between Han characters the author typed (in code or
		// tables) are allowed; anything else is a stray.
		allowed := map[string]bool{}
		for _, m := range strayHan.FindAllString(string(md), -1) {
			allowed[m] = true
		}
		for _, w := range []int{40, 80} {
			out, err := RenderMarkdown("dark", string(md), w)
			if err != nil {
				t.Fatal(err)
			}
			// Lines are joined (a wrap is not a stray), then compared.
			plain := ansi.Strip(out)
			for _, ln := range str.Split(plain, "\n") {
				for _, m := range strayHan.FindAllString(ln, -1) {
					if !allowed[m] {
						t.Errorf("zh/%s at %d columns: stray space in %q (line %q)", p, w, m, str.TrimSpace(ln))
					}
				}
			}
		}
	}
}

func TestJoinListLines(t *testing.T) {
	for in, want := range map[string]string{
		"- the process gets its own view of the\n  file system\n- next": "- the process gets its own view of the file system\n- next",
		"1. one\n   two\n\npara\nline":                                  "1. one two\n\npara\nline",
		"- item\n  ```\n  code\n  ```":                                  "- item\n  ```\n  code\n  ```",
		"para\n- item\n  more\n  - sub\n    subm":                       "para\n- item more\n  - sub subm",
	} {
		if got := joinListLines(in); got != want {
			t.Errorf("joinListLines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJoinCJKBreaks(t *testing.T) {
	for in, want := range map[string]string{
		"占据主导\n地位":        "占据主导地位",
		"一个**容器**\n的进程":   "一个**容器**的进程",
		"中文\nEnglish":     "中文\nEnglish",
		"列表：\n- 第一项":      "列表：\n- 第一项",
		"```\n代码\n块\n```": "```\n代码\n块\n```",
		"- 第一项的\n  续行":    "- 第一项的续行",
		"硬换行  \n下一行":      "硬换行  \n下一行",
		"段落一\n\n段落二":      "段落一\n\n段落二",
		"English\nwords":  "English\nwords",
		"句子。\n1. 编号":      "句子。\n1. 编号",
		"句子（括号）\n“引号”":    "句子（括号）“引号”",
	} {
		if got := JoinCJKBreaks(in); got != want {
			t.Errorf("JoinCJKBreaks(%q) = %q, want %q", in, got, want)
		}
	}
}
