// Command ctlab-init is the first process of every ctlab container: ctlab
// re-executes it inside the new namespaces (runc's `runc init` idea), and
// it prepares the root filesystem, waits for its cgroup and network, and
// execs the container's command.
//
// Why a binary of its own: a container's start waits for this program's Go
// runtime and package initialisation. Linked with only the sandbox (and
// the OCI runtime's process init, which runs in it) it is half the size of
// ctlab and starts in about half the time (3.6 ms vs 6.7 ms here,
// hyperfine), which is most of what a start costs after the kernel work.
// ctlab falls back to re-executing itself when this binary is not
// installed beside it; ctlab-oci, built without cgo, cannot.
package main

import (
	"fmt"
	"os"

	"github.com/ctlab/ctlab/sandbox"
	// The OCI runtime's process init, run in the container's init (sandbox.RegisterInitStep).
	_ "github.com/ctlab/ctlab/sandbox/oci"
)

func main() {
	sandbox.MaybeInit() // never returns in a container init
	fmt.Fprintln(os.Stderr, "ctlab-init is the init of ctlab's containers and is not run by hand: use ctlab run")
	os.Exit(2)
}
