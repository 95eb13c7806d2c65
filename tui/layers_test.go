package tui

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/ctlab/ctlab/"

// TestLayering enforces the design's one-way dependencies (cmd → tui →
// lab → sandbox): the TUI never reaches the kernel except through the lab
// engine, so no file of tui/ imports a sandbox package (tests included
// only for sandbox, whose tests must not need the layers above it; the
// TUI's tests act as a learner and may use the sandbox to do so); lab
// imports neither tui nor cmd; sandbox imports nothing of ours above it.
func TestLayering(t *testing.T) {
	root := ".." // go test runs in the package directory
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from the tui package: %v", err)
	}
	for _, rule := range []struct {
		dir       string
		forbidden []string
		tests     bool // check _test.go files too
	}{
		{"tui", []string{"sandbox", "cmd"}, false},
		{"lab", []string{"tui", "cmd"}, true},
		{"sandbox", []string{"lab", "tui", "cmd"}, true},
	} {
		n := 0
		err := filepath.WalkDir(filepath.Join(root, rule.dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			if !rule.tests && strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			n++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range rule.forbidden {
					if p == module+bad || strings.HasPrefix(p, module+bad+"/") {
						t.Errorf("%s imports %s: %s must not depend on %s/", path, p, rule.dir, bad)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("no Go files under %s: the rule checked nothing", rule.dir)
		}
	}
}
