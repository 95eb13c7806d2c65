package load

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecArgsRoundTrip: the command line Args builds is read back by
// Command's own grammar (Parse) as the same run, for every kind.
func TestSpecArgsRoundTrip(t *testing.T) {
	for _, s := range []Spec{
		{Kind: "cpu"},
		{Kind: "cpu", Seconds: 2.5, Threads: 3},
		{Kind: "mem", Size: "40M", Seconds: 2},
		{Kind: "mem", Size: "1.5G"},
		{Kind: "fork", Count: 30},
		{Kind: "io", File: "/var/tmp/f", Size: "6M"},
		{Kind: "count", File: "/tmp/count", Seconds: 60},
		{Kind: "shm", Key: "0x1234"},
		{Kind: "sleep", Seconds: 1},
		{Kind: "serve", Port: 8080, Body: "hello world", Seconds: 60},
	} {
		argv := s.Args()
		if argv[0] != "load" {
			t.Fatalf("%+v: argv %q does not start with load", s, argv)
		}
		got, err := Parse(argv[1:])
		if err != nil || got != s {
			t.Errorf("%+v -> %q -> %+v, %v", s, argv, got, err)
		}
	}
}

// TestParseRefuses: bad arguments are usage errors (exit status 2).
func TestParseRefuses(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nope"}, {"mem"}, {"mem", "12X"}, {"mem", "max"}, {"fork", "0"}, {"shm", "0"},
		{"cpu", "extra"}, {"cpu", "--seconds", "x"}, {"serve", "0", "b"},
	} {
		if s, err := Parse(args); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", args, s)
		}
		if code := Main(args); code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
	}
}

// TestMainRunsTheCommand: Main is the real command (a short count run).
func TestMainRunsTheCommand(t *testing.T) {
	f := filepath.Join(t.TempDir(), "count")
	if code := Main([]string{"count", f, "--seconds", "0.1"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(b)) == "" {
		t.Fatal("count wrote nothing")
	}
}
