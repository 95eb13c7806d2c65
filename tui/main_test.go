package tui

import (
	"flag"
	"os"
	"testing"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/load"
)

// TestMain lets the test binary play the roles of the ctlab binary that
// the real engine needs: container init (sandbox.Start re-executes
// /proc/self/exe), the exec helper (the nsexec constructor, linked via
// package sandbox) and the load generators inside containers.
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(load.Main(os.Args[2:]))
	}
	flag.Parse()
	os.Exit(m.Run())
}

// requireRoot skips a test that creates kernel objects when not root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to create namespaces, cgroups and mounts (euid %d)", os.Geteuid())
	}
}
