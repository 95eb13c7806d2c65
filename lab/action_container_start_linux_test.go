package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox"
)

// TestContainerStartKeepsFiles: container_start of a killed container
// gives a new init (another pid) over the same files: what the container
// wrote before it died is read back through the new init's /proc/<pid>/root,
// and a reset removes the saved layer.
func TestContainerStartKeepsFiles(t *testing.T) {
	needRoot(t)
	src := `id: t1
chapter: overlay
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 1
containers:
  box: {namespaces: [mnt, pid]}
steps:
  - id: a
    kind: demo
    text: {en: x, zh: x}
    do:
      - start: {container: box}
      - exec: {in: box, argv: [sh, -c, "echo kept > /note"]}
      - kill: {in: box, signal: KILL}
      - wait: {check: {process_running: {in: box}, not: true}, timeout: 10s}
      - container_start: {in: box}
    expect:
      - process_running: {in: box}
      - file_contains: {in: box, path: /note, value: kept}
`
	s, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	e, err := New(s, Options{Trust: true, Emit: JSONPrinter(&out), Loader: &Loader{Content: testContent}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e.Run(ctx, RunOptions{})
	if err != nil || !r.Passed() {
		t.Fatalf("run: %v %+v\n%s", err, r, out.String())
	}
	m := regexp.MustCompile(`old pid (\d+) \(exited\), new pid (\d+)`).FindStringSubmatch(out.String())
	if m == nil || m[1] == m[2] {
		t.Errorf("container_start output has no old and new pid, or they are equal: %v\n%s", m, out.String())
	}
	if _, err := os.Stat(filepath.Join(sandbox.LabDir("t1"), "saved-box")); err == nil {
		t.Errorf("the saved layer outlived the run")
	}
}
