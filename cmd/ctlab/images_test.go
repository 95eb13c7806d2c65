package main

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (euid %d)", os.Geteuid())
	}
}

// ctlOK runs ctlab and fails the test unless it exits 0.
func ctlOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ctl(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctlab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// nginxBase makes sure the store has the offline nginx base (what
// `ctlab image import-packages --tag nginx:latest nginx` makes).
func nginxBase(t *testing.T) string {
	t.Helper()
	needRoot(t)
	if _, err := os.Stat("/var/lib/dpkg/info/nginx.list"); err != nil {
		t.Skip("nginx is not installed on this host (apt-get install nginx)")
	}
	const base = "ctlab-test/nginx:latest"
	if _, err := ctl("image", "inspect", base).Output(); err != nil {
		ctlOK(t, "image", "import-packages", "--tag", base, "nginx")
	}
	return base
}

// TestImageCommands walks docker's image commands over the store: import,
// images, tag, history, inspect --json, save in three formats, load -i back,
// push to and pull from a registry on loopback, rmi; and the errors.
func TestImageCommands(t *testing.T) {
	base := nginxBase(t)
	const name = "ctlab-test/cli:v1"
	ctlOK(t, "tag", base, name)
	defer ctl("rmi", name).Run()
	if out := ctlOK(t, "images"); !strings.Contains(out, "ctlab-test/cli") || !strings.Contains(out, "IMAGE ID") {
		t.Fatalf("images:\n%s", out)
	}
	if out := ctlOK(t, "history", name); !strings.Contains(out, "STOPSIGNAL SIGQUIT") {
		t.Fatalf("history:\n%s", out)
	}
	var insp []inspectJSON
	if err := json.Unmarshal([]byte(ctlOK(t, "image", "inspect", "--json", name)), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect --json: %v", err)
	}
	if c := insp[0].Config; c.StopSignal != "SIGQUIT" || strings.Join(c.Cmd, " ") != "nginx -g daemon off;" {
		t.Fatalf("inspect config: %+v", c)
	}
	dir := t.TempDir()
	for _, f := range []string{"docker-archive", "oci-archive", "oci-dir"} {
		p := filepath.Join(dir, "cli."+f)
		ctlOK(t, "save", "-o", p, "--format", f, name)
		ctlOK(t, "rmi", name)
		if out := ctlOK(t, "load", "-i", p); !strings.Contains(out, "Loaded image: ctlab-test/cli:v1") {
			t.Fatalf("load -i %s: %s", f, out)
		}
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	remote := strings.TrimPrefix(srv.URL, "http://") + "/class/cli:v1"
	ctlOK(t, "push", name, remote)
	if out := ctlOK(t, "pull", remote); !strings.Contains(out, "Digest: sha256:") {
		t.Fatalf("pull: %s", out)
	}
	defer ctl("rmi", remote).Run()
	for label, args := range map[string][]string{
		"unknown image":  {"history", "ctlab-test/none:x"},
		"bad name":       {"tag", name, "Bad Name"},
		"no output":      {"save", name},
		"bad format":     {"save", "-o", filepath.Join(dir, "x"), "--format", "zip", name},
		"load not a tar": {"load", "-i", "/etc/hostname"},
	} {
		err := ctl(args...).Run()
		if code := exitCodeOf(err); code != 2 {
			t.Errorf("%s: exit status %d, want 2", label, code)
		}
	}
	// The load generators are still subcommands of load.
	ctlOK(t, "load", "sleep", "--seconds", "0.01")
}

// TestGradeStoreName grades the imported base by its store name.
func TestGradeStoreName(t *testing.T) {
	base := nginxBase(t)
	out, err := ctl("grade", "nginx-hello", base).CombinedOutput()
	if code := exitCodeOf(err); code != 1 || !strings.Contains(string(out), "GET http://") {
		t.Fatalf("grade %s: exit %d\n%s", base, code, out)
	}
}
