package lab

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctlab/ctlab/sandbox/host"
)

func TestProgressFileIsSortedOneLinePerScenario(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctlab", "progress.json")
	p, err := LoadProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Scenario{ID: "b-two", Steps: []*Step{{ID: "x"}, {ID: "y"}}}
	p.Record(s, &Result{Scenario: "b-two", Steps: []StepResult{{ID: "y", Status: "pass", Hints: 2}, {ID: "x", Status: "fail"}}})
	p.Record(&Scenario{ID: "a-one", Steps: []*Step{{ID: "x"}}}, &Result{Scenario: "a-one", Steps: []StepResult{{ID: "x", Status: "pass", Solved: true}}})
	// a failed re-run does not take progress back
	p.Record(s, &Result{Scenario: "b-two", Steps: []StepResult{{ID: "x", Status: "pass"}, {ID: "y", Status: "fail"}}})
	p.Record(s, &Result{Scenario: "b-two", Steps: []StepResult{{ID: "y", Status: "pass", Hints: 1}}}) // idempotent for hints
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], `"a-one": {"passed":["x"],"solved":["x"],"done":true`) ||
		!strings.HasPrefix(lines[2], `"b-two": {"passed":["x","y"],"hints":{"y":2},"done":true`) {
		t.Fatalf("file:\n%s", b)
	}
	q, err := LoadProgress(path)
	if err != nil || len(q.Scenarios) != 2 {
		t.Fatalf("reload: %v %v", q, err)
	}
	q.Reset("a-one")
	q.Save()
	b, _ = os.ReadFile(path)
	if strings.Contains(string(b), "a-one") || !strings.Contains(string(b), "b-two") {
		t.Fatalf("after reset:\n%s", b)
	}
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, err := LoadProgress(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged file: %v", err)
	}
}

func TestProgressPathUnderSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("SUDO_USER is only honoured for root: euid %d", os.Geteuid())
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody on this system to sudo from: %v", err)
	}
	t.Setenv("SUDO_USER", "nobody")
	p, uid, _, err := ProgressPath()
	if err != nil {
		t.Fatal(err)
	}
	if uid == 0 || !strings.HasSuffix(p, ".config/ctlab/progress.json") || strings.HasPrefix(p, "/root/") {
		t.Fatalf("path %s uid %d: want nobody's home and uid", p, uid)
	}
}

func TestPreflightSaysWhy(t *testing.T) {
	s := &Scenario{ID: "x", Requires: Requires{Root: true, Kernel: "5.6", Namespaces: []string{"time"}, Cgroup: "v2",
		Controllers: []string{"io", "memory"}, Overlay: true, Userns: true, Binaries: []string{"no-such-binary-ctlab"}}}
	f := host.Facts{Root: false, Kernel: "5.4.0", KernelMajor: 5, KernelMinor: 4, Namespaces: map[string]bool{"uts": true},
		CgroupMode: "hybrid", Effective: "v1", Controllers: []string{"blkio"}, Binaries: map[string]bool{}}
	why := PreflightWith(s, f)
	joined := strings.Join(why, "\n")
	for _, want := range []string{"needs root", "Linux 5.6 or newer; this kernel is 5.4.0", "time namespace", "arrived in Linux 5.6",
		"needs cgroup v2; this host uses v1 (mode hybrid)", "memory cgroup controller", "overlayfs", "user namespaces", "no-such-binary-ctlab"} {
		if !strings.Contains(joined, want) {
			t.Errorf("reasons lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "io cgroup") {
		t.Errorf("io is blkio on v1, should be accepted:\n%s", joined)
	}
	f2 := host.Facts{Root: true, KernelMajor: 6, KernelMinor: 18, Namespaces: map[string]bool{"time": true}, Effective: "v2",
		Controllers: []string{"io", "memory"}, Overlay: true, UserNS: true, Binaries: map[string]bool{"no-such-binary-ctlab": true}}
	if why := PreflightWith(s, f2); len(why) != 0 {
		t.Errorf("a capable host got reasons: %v", why)
	}
}

// TestPreflightInstallHints: a missing command names the Debian package
// that has it (ctr and the shim come with containerd), and a missing
// ctlab-oci says how to build it.
func TestPreflightInstallHints(t *testing.T) {
	s := &Scenario{ID: "x", Requires: Requires{Binaries: []string{"ctr", "containerd-shim-runc-v2", "podman", "ctlab-oci"}}}
	f := host.Facts{Root: true, Binaries: map[string]bool{"ctr": false, "containerd-shim-runc-v2": false, "podman": false, "ctlab-oci": false}}
	joined := strings.Join(PreflightWith(s, f), "\n")
	for _, want := range []string{"the ctr command on the host (e.g. apt-get install containerd)",
		"the containerd-shim-runc-v2 command on the host (e.g. apt-get install containerd)",
		"the podman command on the host (e.g. apt-get install podman)", "make build writes bin/ctlab-oci"} {
		if !strings.Contains(joined, want) {
			t.Errorf("reasons lack %q:\n%s", want, joined)
		}
	}
}
