// Command ctlab-oci is ctlab's OCI runtime with runc's command line: point
// containerd (runc option BinaryName) or podman (--runtime) at it. It is
// `ctlab oci` in a binary of its own, because callers exec a runtime by
// path with runc's arguments.
package main

import (
	"os"
	"path/filepath"

	"github.com/ctlab/ctlab/cmd/internal/install"
	"github.com/ctlab/ctlab/cmd/internal/ocicli"
	"github.com/ctlab/ctlab/sandbox"
)

func main() {
	// A container's init and the exec helper are this binary re-executed
	// (and the process init, sandbox/oci's package init).
	sandbox.MaybeInit()
	if p := install.Sibling("ctlab-init"); p != "" {
		sandbox.InitBinary = p
	}
	os.Exit(ocicli.Main(filepath.Base(os.Args[0]), os.Args[1:]))
}
