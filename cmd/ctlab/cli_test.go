package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// listCtlabObjects names ctlab's cgroup and container directories, to show
// that bad input created nothing.
func listCtlabObjects(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, glob := range []string{"/sys/fs/cgroup/*/ctlab/*", "/sys/fs/cgroup/ctlab/*", "/var/lib/ctlab/containers/*", "/run/ctlab/journal/*"} {
		m, _ := filepath.Glob(glob)
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && (fi.IsDir() || strings.HasPrefix(p, "/run")) {
				out = append(out, p)
			}
		}
	}
	return out
}

// Bad input: a one-line error naming the problem and the fix, exit status
// 2, and nothing created.
func TestRunBadInput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("needs root (euid %d)", os.Geteuid())
	}
	name := "cli-dup-" + strings.TrimPrefix(filepath.Base(t.TempDir()), "TestRunBadInput")
	name = strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	if out, err := ctl("run", "-d", "--name", name, "--", "sleep", "60").CombinedOutput(); err != nil {
		t.Fatalf("start: %v %s", err, out)
	}
	defer ctl("rm", "-f", name).Run()
	before := listCtlabObjects(t)
	// Other test binaries may create objects meanwhile: only objects named
	// like these cases count.
	const bad = "cli-bad-input"
	cases := map[string][]string{
		"unknown namespace": {"run", "--name", bad, "--ns", "mnt,bogus", "--", "true"},
		"malformed size":    {"run", "--name", bad, "--memory", "12Q", "--", "true"},
		"malformed rate":    {"run", "--name", bad, "--io-read-bps", "/var/lib/ctlab", "--", "true"},
		"malformed device":  {"run", "--name", bad, "--device-allow", "x 1:3", "--", "true"},
		"missing rootfs":    {"run", "--name", bad, "--rootfs", "/nonexistent/rootfs", "--", "true"},
		"malformed join":    {"run", "--name", bad, "--ns", "mnt", "--join", "net", "--", "true"},
		"join a file":       {"run", "--name", bad, "--ns", "mnt", "--join", "net=/etc/hostname", "--", "true"},
		"name in use":       {"run", "--name", name, "--", "true"},
		"no command":        {"run"},
		"unknown flag":      {"run", "--bogus", "--", "true"},
		"exec unknown":      {"exec", "no-such-container", "--", "true"},
	}
	for label, args := range cases {
		t.Run(label, func(t *testing.T) {
			cmd := ctl(args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			cmd.Stdout = io.Discard
			err := cmd.Run()
			var ee *exec.ExitError
			if err == nil || !asExit(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("exit: %v, want status 2 (stderr %q)", err, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "ctlab:") {
				t.Errorf("want one line starting with ctlab:, got %q", msg)
			}
		})
	}
	count := func(objs []string, sub string) (n int) {
		for _, o := range objs {
			if strings.Contains(o, sub) {
				n++
			}
		}
		return n
	}
	after := listCtlabObjects(t)
	if n := count(after, bad); n != 0 {
		t.Errorf("bad input created %d objects named %s", n, bad)
	}
	if a, b := count(after, name), count(before, name); a != b {
		t.Errorf("a refused duplicate changed the objects of %s: %d -> %d", name, b, a)
	}
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

// Not root: the same one-line error with the fix, exit 2.
func TestRunNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("needs root to switch to an unprivileged user (euid %d)", os.Geteuid())
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is 0700
	bin := filepath.Join(dir, "ctlab")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "ctlab", "run", "--", "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "sudo") {
		t.Errorf("as nobody: %v %q, want exit 2 naming sudo", err, out)
	}
}

// run --join KIND=PATH joins another container's namespace instead of
// creating one: a joined uts namespace shows that container's hostname.
func TestRunJoin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("needs root (euid %d)", os.Geteuid())
	}
	name := fmt.Sprintf("cli-join%d", os.Getpid())
	ctlOK(t, "run", "-d", "--name", name, "--ns", "mnt,uts", "--hostname", "joined-box", "--", "sleep", "60")
	defer ctl("rm", "-f", name).Run()
	var in struct{ Pid int }
	if err := json.Unmarshal([]byte(ctlOK(t, "inspect", "--json", name)), &in); err != nil || in.Pid == 0 {
		t.Fatalf("inspect: %v", err)
	}
	out := ctlOK(t, "run", "--rm", "--ns", "mnt", "--join", fmt.Sprintf("uts=/proc/%d/ns/uts", in.Pid), "--", "hostname")
	if strings.TrimSpace(out) != "joined-box" {
		t.Errorf("hostname in the joined uts namespace: %q, want joined-box", out)
	}
}
