package main

import (
	"os"
	"testing"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/build"
)

// TestMain lets the test binary act as the ctlab binary: tests and
// benchmarks run it as a subprocess ("ctlab run ...") and Start re-executes
// it as a container init.
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == build.AsUserArg { // /.ctlab/ctlab as-user (RUN after USER)
		os.Args = append([]string{os.Args[0], "ctlab"}, os.Args[1:]...)
	}
	if len(os.Args) > 1 && os.Args[1] == "ctlab" {
		os.Args = append(os.Args[:1], os.Args[2:]...)
		os.Exit(exitStatus(newRootCmd().Execute()))
	}
	os.Exit(m.Run())
}
