package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox/image"
)

// gradeCLI runs `ctlab grade args...` in-process and returns the exit
// status the binary would have, and stdout.
func gradeCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := newGradeCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	return exitStatus(cmd.Execute()), out.String()
}

func TestGradeCLIUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"no-such-homework", "x.tar"},
		{"nginx-hello"},
		{"nginx-hello", "x.tar", "--json", "--tap"},
		{"nginx-hello", "x.tar", "--lang", "fr"},
		{"--spec", "/nonexistent.yaml", "x.tar"},
		{"nginx-hello", "x.tar", "--jobs", "0"},
	} {
		if code, out := gradeCLI(t, args...); code != 2 {
			t.Errorf("ctlab grade %q: exit %d, want 2 (%s)", args, code, out)
		}
	}
}

// TestGradeCLIImage grades a tiny non-nginx image without running it:
// exit 1, JSON output parses, roster and JUnit files are written.
func TestGradeCLIImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("grading needs root for the layer cache (euid %d)", os.Geteuid())
	}
	dir := t.TempDir()
	layer := filepath.Join(dir, "l.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("hello"))
	tw.Close()
	os.WriteFile(layer, buf.Bytes(), 0o644)
	b := &image.Build{Config: v1.Config{Cmd: []string{"/hello"}}, Layers: []image.BuildLayer{{TarPath: layer, CreatedBy: "COPY hello.txt /"}}}
	img := filepath.Join(dir, "student.tar")
	if err := b.WriteDockerArchive(img); err != nil {
		t.Fatal(err)
	}
	roster, junit := filepath.Join(dir, "r.csv"), filepath.Join(dir, "j.xml")
	code, out := gradeCLI(t, "nginx-hello", img, "--json", "--no-run", "--cache", filepath.Join(dir, "cache"), "--roster", roster, "--junit", junit)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, out)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["status"] != "fail" {
		t.Fatalf("json: %v %s", err, out)
	}
	r, _ := os.ReadFile(roster)
	j, _ := os.ReadFile(junit)
	if !strings.Contains(string(r), "student.tar,fail,0,10") || !strings.Contains(string(j), "<testsuites>") {
		t.Fatalf("roster %q junit %q", r, j)
	}
}
