package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// `ctlab version` and `ctlab --version` print the same three facts: the
// version, the commit and the Go toolchain.
func TestVersion(t *testing.T) {
	out := func(args ...string) string {
		root := newRootCmd()
		var b bytes.Buffer
		root.SetOut(&b)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("ctlab %v: %v", args, err)
		}
		return b.String()
	}
	v, flag := out("version"), out("--version")
	if v != flag {
		t.Errorf("ctlab version printed %q, ctlab --version %q", v, flag)
	}
	lines := strings.Split(strings.TrimSpace(v), "\n")
	if len(lines) != 3 || lines[0] != "ctlab "+version || !strings.HasPrefix(lines[1], "commit: ") ||
		!strings.HasPrefix(lines[2], "go: "+runtime.Version()+" ") {
		t.Errorf("ctlab version printed %q; want ctlab %s, commit: ..., go: %s ...", v, version, runtime.Version())
	}
}
