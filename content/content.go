// Package content embeds ctlab's lesson pages (Chinese and English Markdown) and the coverage map.
package content

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// FS holds every lesson page under zh/ and en/ (same file tree in both
// languages) plus COVERAGE.md, the map from the source course to the pages.
//
//go:embed zh en COVERAGE.md
var FS embed.FS

// Languages lists the page trees that exist; every page must be in each one.
var Languages = []string{"zh", "en"}

// Page returns the Markdown of one page, e.g. Page("en", "images/overlay.md").
// The ".md" suffix may be left off, so scenario files can say "images/overlay".
func Page(lang, name string) ([]byte, error) {
	if !validLang(lang) {
		return nil, fmt.Errorf("content page %q: unknown language %q (want one of %v)", name, lang, Languages)
	}
	clean := path.Clean(strings.TrimPrefix(name, "/"))
	if clean == "." || strings.HasPrefix(clean, "..") {
		return nil, fmt.Errorf("content page %q: not a page path", name)
	}
	if !strings.HasSuffix(clean, ".md") {
		clean += ".md"
	}
	b, err := FS.ReadFile(path.Join(lang, clean))
	if err != nil {
		return nil, fmt.Errorf("content page %s/%s: %w", lang, clean, err)
	}
	return b, nil
}

// Pages lists the pages of one language, as paths relative to its tree
// (e.g. "images/overlay.md"), sorted.
func Pages(lang string) ([]string, error) {
	if !validLang(lang) {
		return nil, fmt.Errorf("content pages: unknown language %q (want one of %v)", lang, Languages)
	}
	var out []string
	err := fs.WalkDir(FS, lang, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			out = append(out, strings.TrimPrefix(p, lang+"/"))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("content pages %s: %w", lang, err)
	}
	sort.Strings(out)
	return out, nil
}

func validLang(lang string) bool {
	for _, l := range Languages {
		if l == lang {
			return true
		}
	}
	return false
}
