package main

import "testing"

func TestLearnArgument(t *testing.T) {
	for arg, want := range map[string]string{
		"images/layers":          "images/layers.md",
		"images/layers.md":       "images/layers.md",
		"zh/namespaces/uts.md":   "namespaces/uts.md",
		"content/en/glossary.md": "glossary.md",
		"glossary.md":            "glossary.md",
		"ns-uts":                 "", // a scenario
		"overlay":                "", // a scenario, although images/overlay.md exists
		"images/nothing":         "", // no such page: tried as a scenario, which fails with the list
	} {
		got, ok := contentPage(arg)
		if ok != (want != "") || got != want {
			t.Errorf("contentPage(%q) = %q, %v; want %q", arg, got, ok, want)
		}
	}
}
