package lab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ctlab/ctlab/sandbox"
	ctload "github.com/ctlab/ctlab/sandbox/load"
)

// TestMain lets the test binary play the roles of the ctlab binary that
// the sandbox re-executes: container init, and the load generators at
// /.ctlab/ctlab inside containers (the exec helper is the C constructor).
// The load generators run the real `ctlab load` command with the argv the
// scenario's load action built, so the tests exercise that grammar.
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(ctload.Main(os.Args[2:]))
	}
	// The OCI-runtime lesson runs containerd and podman on bin/ctlab-oci,
	// which `make build` writes (make test-root builds first); without it
	// the lesson skips (requires.binaries: ctlab-oci) and says why.
	if bin, err := filepath.Abs("../bin"); err == nil {
		if _, err := os.Stat(filepath.Join(bin, "ctlab-oci")); err == nil {
			os.Setenv("PATH", os.Getenv("PATH")+string(filepath.ListSeparator)+bin)
		}
	}
	os.Exit(m.Run())
}
