package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/ctlab/ctlab/content"
	"github.com/ctlab/ctlab/scenarios"
)

// NewLoader returns a loader that resolves content references against
// ctlab's embedded lesson pages.
func NewLoader() *Loader { return &Loader{Content: content.FS} }

// Shipped loads every scenario embedded in the binary, in chapter order.
func Shipped() ([]*Scenario, error) {
	list, err := NewLoader().All(scenarios.FS)
	for _, s := range list {
		s.Builtin = true
	}
	return list, err
}

// All loads every top-level *.yaml of fsys (homework specs in sub-directories
// are another format). Scenarios that load are returned even when others
// fail; the error joins every failure.
func (l *Loader) All(fsys fs.FS) ([]*Scenario, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("list scenarios: %w", err)
	}
	var out []*Scenario
	var errs []error
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".yaml" {
			continue
		}
		s, err := l.LoadFS(fsys, e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ci, cj := slices.Index(Chapters, out[i].Chapter), slices.Index(Chapters, out[j].Chapter)
		if ci != cj {
			return ci < cj
		}
		return out[i].ID < out[j].ID
	})
	return out, errors.Join(errs...)
}

// Find returns the scenario with this id from list.
func Find(list []*Scenario, id string) (*Scenario, error) {
	for _, s := range list {
		if s.ID == id {
			return s, nil
		}
	}
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return nil, fmt.Errorf("no scenario %q (have: %s)", id, strings.Join(ids, ", "))
}

// StepText returns the lesson prose of a step in lang: the referenced
// content page (or the section under its anchor) followed by inline text.
func (l *Loader) StepText(st *Step, lang string) string {
	var parts []string
	if st.Text.Content != "" && l.Content != nil {
		page, anchor := contentRef(st.Text.Content)
		if b, err := fs.ReadFile(l.Content, lang+"/"+page); err == nil {
			md := string(b)
			if anchor != "" {
				if en, err := fs.ReadFile(l.Content, "en/"+page); err == nil {
					md = Section(md, HeadingIndex(string(en), anchor))
				}
			}
			parts = append(parts, strings.TrimSpace(md))
		}
	}
	if t := (Text{EN: st.Text.EN, ZH: st.Text.ZH}).In(lang); t != "" {
		parts = append(parts, strings.TrimSpace(t))
	}
	return strings.Join(parts, "\n\n")
}

// Section returns the idx-th heading of md and the text up to the next
// heading of the same or a higher level (the whole page when idx < 0).
func Section(md string, idx int) string {
	if idx < 0 {
		return md
	}
	lines := strings.Split(md, "\n")
	n, start, level := -1, -1, 0
	fence := false
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(t, "#") {
			continue
		}
		h := strings.TrimLeft(t, "#")
		if h == "" || h[0] != ' ' {
			continue
		}
		lv := len(t) - len(h)
		n++
		if start >= 0 && lv <= level {
			return strings.Join(lines[start:i], "\n")
		}
		if n == idx {
			start, level = i, lv
		}
	}
	if start < 0 {
		return md
	}
	return strings.Join(lines[start:], "\n")
}
