package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/build"
)

const homeworkDockerfile = `FROM %s
RUN sed -i 's/Welcome to nginx/Hello World/g' /usr/share/nginx/html/index.html
`

func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildHomework: the homework done inside ctlab — build on the offline
// nginx base, then the grader passes the result by its store name; bad
// input exits 2, a failing RUN exits 1.
func TestBuildHomework(t *testing.T) {
	base := nginxBase(t)
	dir := writeContext(t, map[string]string{"Dockerfile": strings.Replace(homeworkDockerfile, "%s", base, 1)})
	const tag = "ctlab-test/hello:latest"
	out := ctlOK(t, "build", "--no-cache", "-t", tag, dir)
	defer ctl("rmi", tag).Run()
	if !strings.Contains(out, "--> container build-") || !strings.Contains(out, "~ /usr/share/nginx/html/index.html") {
		t.Fatalf("build log:\n%s", out)
	}
	if out, err := ctl("grade", "nginx-hello", tag).CombinedOutput(); err != nil {
		t.Fatalf("grade %s: %v\n%s", tag, err, out)
	}
	for label, c := range map[string]struct {
		df   string
		code int
	}{
		"malformed":   {"FROM " + base + "\nENV\n", 2},
		"missing":     {"FROM ctlab-test/none:latest\n", 2},
		"failing RUN": {"FROM " + base + "\nRUN exit 7\n", 1},
	} {
		d := writeContext(t, map[string]string{"Dockerfile": c.df})
		out, err := ctl("build", "-t", "ctlab-test/bad", d).CombinedOutput()
		if code := exitCodeOf(err); code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", label, code, c.code, out)
		}
	}
}

// TestBuildInterrupt: Ctrl-C (SIGINT) during a RUN removes its container
// before ctlab build exits; nothing is left for cleanup.
func TestBuildInterrupt(t *testing.T) {
	base := nginxBase(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN sleep 61\n"})
	cmd := ctl("build", "--no-cache", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	name := waitRunContainer(t, "sleep 61")
	if name == "" {
		cmd.Process.Kill()
		t.Fatal("no RUN container appeared")
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); exitCodeOf(err) == 0 {
		t.Error("an interrupted build exited 0")
	}
	for _, p := range []string{"/run/ctlab/containers/" + name + ".json", "/run/ctlab/journal/" + name + ".jsonl", "/var/lib/ctlab/containers/" + name} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind by Ctrl-C", p)
		}
	}
}

// waitRunContainer waits for a RUN container whose command contains cmd.
func waitRunContainer(t *testing.T, cmd string) string {
	t.Helper()
	for i := 0; i < 200; i++ {
		time.Sleep(50 * time.Millisecond)
		m, _ := filepath.Glob("/run/ctlab/containers/build-*.json")
		for _, p := range m {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), cmd) {
				return strings.TrimSuffix(filepath.Base(p), ".json")
			}
		}
	}
	return ""
}

// TestBuildKill9: kill -9 of ctlab build during a RUN leaves a container
// that ctlab cleanup removes completely (the RUN container is journalled).
func TestBuildKill9(t *testing.T) {
	base := nginxBase(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN sleep 60\n"})
	cmd := ctl("build", "--no-cache", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	name := waitRunContainer(t, "sleep 60")
	if name == "" {
		cmd.Process.Kill()
		t.Fatal("no RUN container appeared")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctlOK(t, "cleanup")
	for _, p := range []string{"/run/ctlab/containers/" + name + ".json", "/run/ctlab/journal/" + name + ".jsonl", "/var/lib/ctlab/containers/" + name} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind after cleanup", p)
		}
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/ctlab/" + name); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
}

// TestBuildLiveView: --progress auto's view finishes one line per step
// with its RUN container and result, redrawn in place (\r, erase line);
// after a failure it shows the log's tail, after success the image's names.
func TestBuildLiveView(t *testing.T) {
	var out bytes.Buffer
	v := &liveView{w: &out, width: 100, stop: make(chan struct{}), done: make(chan struct{})}
	close(v.done)
	fmt.Fprintln(&v.log, "STEP 1/2: RUN echo hi\nhi\nSuccessfully built 0123456789ab\nSuccessfully tagged x:latest")
	v.event(build.Event{Kind: build.EventStep, Step: 1, Total: 2, Text: "RUN echo hi"})
	v.event(build.Event{Kind: build.EventRun, Step: 1, Total: 2, Text: "build-abc-1"})
	v.event(build.Event{Kind: build.EventDone, Step: 1, Total: 2, Text: "layer sha256:0123 1kB, 1 changes"})
	v.event(build.Event{Kind: build.EventStep, Step: 2, Total: 2, Text: "ENV A=b"})
	v.close(false)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 2 step lines and 2 result lines, got %q", out.String())
	}
	if !strings.Contains(lines[0], "\r\033[K[1/2] RUN echo hi  build-abc-1") || !strings.HasSuffix(lines[0], "layer sha256:0123 1kB, 1 changes") {
		t.Errorf("step 1 line: %q", lines[0])
	}
	if !strings.Contains(lines[1], "[2/2] ENV A=b") || lines[3] != "Successfully tagged x:latest" {
		t.Errorf("lines: %q", lines)
	}
	out.Reset()
	v = &liveView{w: &out, width: 100, stop: make(chan struct{}), done: make(chan struct{})}
	close(v.done)
	fmt.Fprintln(&v.log, "doomed")
	v.close(true)
	if out.String() != "doomed\n" {
		t.Errorf("after a failure: %q, want the log's tail", out.String())
	}
}
