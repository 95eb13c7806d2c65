package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runScenarioCLI runs the scenario/progress commands in-process and
// returns their output and exit status.
func runScenarioCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	have := map[string]bool{}
	for _, c := range root.Commands() {
		have[c.Name()] = true
	}
	if !have["scenario"] {
		root.AddCommand(newScenarioCmd())
	}
	if !have["progress"] {
		root.AddCommand(newProgressCmd())
	}
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	code := exitStatusQuiet(root.Execute(), &out)
	return out.String(), code
}

func exitStatusQuiet(err error, out *bytes.Buffer) int {
	if err != nil {
		out.WriteString(err.Error())
	}
	return exitStatus(err)
}

func isolateProgress(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("SUDO_USER", "")
	t.Setenv("XDG_CONFIG_HOME", dir)
	return filepath.Join(dir, "ctlab", "progress.json")
}

func TestScenarioListJSON(t *testing.T) {
	isolateProgress(t)
	out, code := runScenarioCLI(t, "scenario", "list", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	found := false
	for _, r := range rows {
		if r["id"] == "ns-uts" {
			found = true
		}
	}
	if !found {
		t.Fatalf("ns-uts not listed: %s", out)
	}
}

func TestScenarioValidateHostile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("id: bad\nchapter: intro\ncolour: blue\n"), 0o644)
	out, code := runScenarioCLI(t, "scenario", "validate", bad, "../../scenarios/ns-uts.yaml")
	if code != 2 || !strings.Contains(out, "bad.yaml:3: unknown key \"colour\"") || !strings.Contains(out, "ns-uts.yaml: ok") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestScenarioRunSolveRecordsProgress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("runs containers: needs root (euid %d)", os.Geteuid())
	}
	path := isolateProgress(t)
	out, code := runScenarioCLI(t, "scenario", "run", "ns-uts", "--solve", "--plain")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"== ns-uts", "hostname_equals", "read from: setns(", "=> rename passed", "scenario ns-uts: pass"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `"ns-uts": {"passed":["start","rename","domainname"]`) {
		t.Fatalf("progress file: %v\n%s", err, b)
	}
	out, code = runScenarioCLI(t, "progress", "--reset", "ns-uts")
	if code != 0 {
		t.Fatalf("reset: exit %d %s", code, out)
	}
	b, _ = os.ReadFile(path)
	if strings.Contains(string(b), "ns-uts") {
		t.Fatalf("progress still has ns-uts: %s", b)
	}
}

func TestScenarioTestNsUts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("runs containers: needs root (euid %d)", os.Geteuid())
	}
	junit := filepath.Join(t.TempDir(), "selftest.xml")
	out, code := runScenarioCLI(t, "scenario", "test", "ns-uts", "--junit", junit)
	if code != 0 || !strings.Contains(out, "ok   ns-uts") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	b, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(b), `<testsuite name="scenario/ns-uts" tests="3" failures="0"`) {
		t.Fatalf("junit: %v\n%s", err, b)
	}
}

func TestScenarioRunFileWithHostCommandNeedsTrust(t *testing.T) {
	isolateProgress(t)
	dir := t.TempDir()
	mark := filepath.Join(dir, "pwned")
	f := filepath.Join(dir, "evil.yaml")
	os.WriteFile(f, []byte(`id: evil
chapter: intro
title: {en: Harmless, zh: 无害}
summary: {en: Harmless, zh: 无害}
minutes: 1
steps:
  - id: a
    kind: demo
    text: {en: hi, zh: 你好}
    do:
      - host: {argv: [touch, "`+mark+`"]}
`), 0o644)
	out, code := runScenarioCLI(t, "scenario", "run", f, "--solve")
	if code != 2 || !strings.Contains(out, "runs commands on or reads files of the host (steps: a)") || !strings.Contains(out, "--trust") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("the host command ran without --trust")
	}
	out, code = runScenarioCLI(t, "scenario", "validate", f)
	if code != 0 || !strings.Contains(out, "needs --trust") {
		t.Fatalf("validate: exit %d:\n%s", code, out)
	}
}

// TestScenarioVocab: the vocabulary command lists every kind from the
// registry, as text and as JSON.
func TestScenarioVocab(t *testing.T) {
	out, code := runScenarioCLI(t, "scenario", "vocab", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var kinds []struct {
		Name, Role, Family, Doc string
		Fields                  []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &kinds); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	roles := map[string]int{}
	for _, k := range kinds {
		roles[k.Role]++
		if k.Family == "" || k.Doc == "" || len(k.Fields) == 0 {
			t.Errorf("%+v: want family, doc and fields", k)
		}
	}
	if roles["check"] < 30 || roles["action"] < 15 {
		t.Errorf("roles %v: want every check and action", roles)
	}
	text, code := runScenarioCLI(t, "scenario", "vocab")
	for _, want := range []string{"ACTIONS", "CHECKS", "hostname_equals", "in, value", "load", "kind (cpu|mem|fork|io|count|shm)"} {
		if code != 0 || !strings.Contains(text, want) {
			t.Errorf("exit %d, text lacks %q:\n%s", code, want, text)
		}
	}
}

// TestLoadCLIUsage: `ctlab load` is sandbox/load's command, with the CLI's
// exit statuses: 2 for a bad argument.
func TestLoadCLIUsage(t *testing.T) {
	for _, args := range [][]string{{"load", "fork", "0"}, {"load", "nope"}, {"load", "mem"}, {"load", "cpu", "--seconds", "x"}} {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if code := exitStatusQuiet(root.Execute(), &out); code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", args, code, out.String())
		}
	}
}
