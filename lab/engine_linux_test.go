package lab

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("the engine starts containers and needs root: euid %d", os.Geteuid())
	}
}

func shipped(t *testing.T, id string) *Scenario {
	t.Helper()
	list, err := Shipped()
	if err != nil {
		t.Logf("some shipped scenarios do not load: %v", err)
	}
	s, err := Find(list, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunNsUtsSolvedJSON(t *testing.T) {
	needRoot(t)
	s := shipped(t, "ns-uts")
	var out bytes.Buffer
	e, err := New(s, Options{Emit: JSONPrinter(&out)})
	if err != nil {
		t.Fatal(err)
	}
	before := kernelObjects(s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := e.Run(ctx, RunOptions{Solve: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed() {
		t.Fatalf("result %s: %s\n%s", r.Status, r.Message, out.String())
	}
	// Every line is JSON with an event name; the stream has the shape the
	// TUI relies on.
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		seen[m["event"].(string)]++
	}
	for _, k := range []string{"scenario_started", "step_started", "action_done", "snapshot", "check_result", "step_passed", "scenario_done"} {
		if seen[k] == 0 {
			t.Errorf("no %s event: %v", k, seen)
		}
	}
	if seen["step_passed"] != len(s.Steps) {
		t.Errorf("%d step_passed for %d steps", seen["step_passed"], len(s.Steps))
	}
	if !strings.Contains(out.String(), `"source":"setns(/proc/`) {
		t.Errorf("hostname evidence does not name its setns source")
	}
	if after := kernelObjects(s); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("kernel objects before %v, after %v", before, after)
	}
	if host, _ := os.Hostname(); host == "learner" || host == "ctlab" {
		t.Errorf("the host was renamed to %q", host)
	}
}

func TestSelfTestNsUts(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := SelfTest(ctx, shipped(t, "ns-uts"), Options{})
	if !rep.Pass {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Fatalf("defects %v\n%s", rep.Defects(), b)
	}
	if len(rep.Steps) != 3 || len(rep.Steps[0].Before) == 0 || rep.Steps[0].Before[0].Pass {
		t.Errorf("steps %+v", rep.Steps)
	}
}

func TestSelfTestFindsCheckThatCannotFail(t *testing.T) {
	needRoot(t)
	host, _ := os.Hostname()
	src := strings.Replace(good, "      - hostname_equals: {in: box, value: ctlab}\n",
		"      - hostname_equals: {in: box, value: ctlab}\n      - hostname_equals: {in: host, value: "+host+"}\n", 1)
	s, err := (&Loader{Content: testContent}).Load("t1.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	s.TrustReasons = nil // the project's own fixture: trusted like the embedded scenarios
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := SelfTest(ctx, s, Options{Loader: &Loader{Content: testContent}})
	if rep.Pass || len(rep.Defects()) != 1 || !strings.Contains(rep.Defects()[0], "cannot fail") {
		t.Fatalf("defects %q, want exactly the host hostname check", rep.Defects())
	}
}

func TestHostActionOnlyWithTrust(t *testing.T) {
	needRoot(t)
	mark := filepath.Join(t.TempDir(), "ran")
	src := `id: t1
chapter: intro
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 1
steps:
  - id: a
    kind: demo
    text: {en: x, zh: x}
    do:
      - host: {argv: [touch, "` + mark + `"]}
    expect:
      - file_contains: {in: host, path: "` + mark + `", value: ""}
`
	s, err := (&Loader{Content: testContent}).Load("t1.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(s, Options{}); err == nil {
		t.Fatal("New without trust accepted a host action")
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("the host command ran without trust")
	}
	e, err := New(s, Options{Trust: true, Loader: &Loader{Content: testContent}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Run(context.Background(), RunOptions{})
	if err != nil || !r.Passed() {
		t.Fatalf("trusted run: %v %+v", err, r)
	}
}

// TestShippedScenariosSelfTest is the acceptance test of every lesson: its
// checks fail before each step and pass after, and a reset leaves nothing.
func TestShippedScenariosSelfTest(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("-short: runs every shipped scenario (tens of seconds)")
	}
	selfTestShipped(t, nil)
}

// selfTestShipped runs SelfTest on every shipped scenario, one subtest
// each; skip, when it returns a reason, skips that scenario.
func selfTestShipped(t *testing.T, skip func(*Scenario) string) {
	list, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		t.Run(s.ID, func(t *testing.T) {
			if skip != nil {
				if why := skip(s); why != "" {
					t.Skip(why)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			// Shipped scenarios are part of the binary: their host steps
			// (e.g. runc) are ours, so they are trusted here.
			rep := SelfTest(ctx, s, Options{Trust: true})
			if len(rep.Skipped) > 0 {
				t.Skipf("this host cannot run %s: %v", s.ID, rep.Skipped)
			}
			for _, d := range rep.Defects() {
				t.Error(d)
			}
			if !rep.Pass && usesSelf(s) && dynamicTestBinary() {
				t.Log("note: this test binary is dynamically linked, so /.ctlab/ctlab cannot run in the libc-less rootfs: run it as the Makefile does (-ldflags '-linkmode external -extldflags \"-static\"')")
			}
		})
	}
}

// TestEngineStepByStep drives the engine the way the TUI does: run a demo,
// then a task that the "learner" solves from outside (a plain exec into the
// container, as their shell would), hints one at a time, reset step.
func TestEngineStepByStep(t *testing.T) {
	needRoot(t)
	s := shipped(t, "ns-uts")
	var mu sync.Mutex
	var events []Event
	e, err := New(s, Options{Poll: 50 * time.Millisecond, Emit: func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer e.Close(ctx)
	if err := e.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.RunStep(ctx); !ok || err != nil {
		t.Fatalf("demo step: %v %v", ok, err)
	}
	if !e.Next() || e.Step().ID != "rename" {
		t.Fatalf("next: %s", e.Step().ID)
	}
	if ok, err := e.RunStep(ctx); ok || err != nil {
		t.Fatalf("task passed before the learner acted: %v %v", ok, err)
	}
	for i := 0; i < len(e.Step().Hints); i++ {
		if _, ok := e.NextHint(); !ok {
			t.Fatalf("hint %d missing", i)
		}
	}
	if _, ok := e.NextHint(); ok {
		t.Fatal("more hints than the ladder has")
	}
	// The learner, in their shell:
	c, err := sandbox.Load(e.ContainerName("box"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		c.Exec(ctx, sandbox.ExecConfig{Args: []string{"hostname", "learner"}})
	}()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if ok, err := e.WaitTask(wctx); !ok || err != nil {
		t.Fatalf("WaitTask: %v %v", ok, err)
	}
	r := e.Result()
	if r.Steps[1].Status != "pass" || r.Steps[1].Hints != 3 || r.Steps[1].Solved {
		t.Fatalf("step result %+v", r.Steps[1])
	}
	// Reset the step: the container is rebuilt as step 0 left it.
	if err := e.ResetStep(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Check(ctx) {
		t.Fatal("the task passes right after a reset")
	}
	h, err := hostnameOf(e.container("box").Pid)
	if err != nil || h != "ctlab" {
		t.Fatalf("after reset the hostname is %q (%v), want ctlab", h, err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := kernelObjects(s); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	mu.Lock()
	defer mu.Unlock()
	kinds := map[string]int{}
	for _, ev := range events {
		kinds[ev.Name()]++
	}
	if kinds["hint_shown"] != 3 || kinds["step_passed"] < 2 {
		t.Fatalf("events %v", kinds)
	}
}

func usesSelf(s *Scenario) bool {
	for _, c := range s.Containers {
		if c.MountSelf {
			return true
		}
	}
	return false
}

// dynamicTestBinary reports whether this binary needs an ELF interpreter.
func dynamicTestBinary() bool {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
