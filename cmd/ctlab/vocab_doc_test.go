package main

import (
	"os"
	"strings"
	"testing"

	"github.com/ctlab/ctlab/lab"
)

// docFile is the reference whose vocabulary tables are generated.
const docFile = "../../docs/scenario-format.md"

// TestVocabDocInSync fails when docs/scenario-format.md's generated tables
// and the vocabulary disagree. CTLAB_UPDATE_DOCS=1 rewrites them. It lives
// beside `ctlab scenario vocab` rather than in lab, whose tests also run in
// the v2 VM, where the source tree is not.
//
//go:generate env CTLAB_UPDATE_DOCS=1 go test -run TestVocabDocInSync .
func TestVocabDocInSync(t *testing.T) {
	b, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want := doc
	for _, role := range []string{"action", "check"} {
		begin := "<!-- BEGIN GENERATED " + role + "s: ctlab scenario vocab; go generate ./cmd/ctlab -->\n"
		end := "<!-- END GENERATED " + role + "s -->"
		i, j := strings.Index(want, begin), strings.Index(want, end)
		if i < 0 || j < i {
			t.Fatalf("%s has no %q ... %q markers", docFile, begin, end)
		}
		want = want[:i+len(begin)] + lab.VocabMarkdown(role) + want[j:]
	}
	if want == doc {
		return
	}
	if os.Getenv("CTLAB_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(docFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the vocabulary tables differ from the registry; run `go generate ./cmd/ctlab` (CTLAB_UPDATE_DOCS=1 go test -run TestVocabDocInSync ./cmd/ctlab)", docFile)
}
