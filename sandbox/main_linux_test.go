package sandbox

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/load"
)

// TestMain lets this test binary play every role the ctlab binary plays:
// container init (Start re-executes /proc/self/exe), the exec helper (the C
// constructor, linked via nsexec), the load generators at /.ctlab/ctlab (the
// real `ctlab load` command, load.Command, with the argv as given)
// inside containers, and a "ctlab run" that the crash tests kill.
func TestMain(m *testing.M) {
	MaybeInit()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "load":
			os.Exit(load.Main(os.Args[2:]))
		case "crashy-run":
			os.Exit(crashyRun(os.Args[2:]))
		case "crashy-lab":
			os.Exit(crashyLab(os.Args[2:]))
		case "dial":
			os.Exit(dialMain(os.Args[2:]))
		case "serve":
			os.Exit(serveMain(os.Args[2:]))
		}
	}
	flag.Parse()
	os.Exit(m.Run())
}

// requireRoot skips when not root: every test here creates kernel objects.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to create namespaces, cgroups and mounts (euid %d)", os.Geteuid())
	}
}

var seq atomic.Int64

func testName(t testing.TB) string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), seq.Add(1))
}

// startT starts a container for a test and removes it at the end.
func startT(t testing.TB, cfg Config) (*Container, *bytes.Buffer) {
	t.Helper()
	requireRoot(t)
	if cfg.Name == "" {
		cfg.Name = testName(t)
	}
	out := &bytes.Buffer{}
	if cfg.Stdout == nil {
		cfg.Stdout, cfg.Stderr = out, out
	}
	cfg.MountSelf = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := c.Remove(context.Background(), true); err != nil {
			t.Errorf("remove %s: %v", c.Name, err)
		}
	})
	return c, out
}

// execOut runs args in c and returns combined output, failing on error.
func execOut(t testing.TB, c *Container, args ...string) (string, int) {
	t.Helper()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, err := c.Exec(ctx, ExecConfig{Args: args, Stdout: &buf, Stderr: &buf})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", args, c.Name, err)
	}
	return strings.TrimSpace(buf.String()), code
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}
