// Package nsexec joins a running container's namespaces before the Go
// runtime starts, the way runc's nsenter package does.
//
// Why C: setns(2) into a user namespace needs a single-threaded process and
// setns into a mount namespace needs a thread that does not share its
// filesystem attributes. A Go program already runs several threads before
// main, so the joining must happen in a constructor that runs when the
// binary is loaded. The constructor does nothing unless argv[1] is one of
// ctlab's own markers ("__ctlab_init stage", "__nsexec"), so importing this
// package is free for every other use of the binary.
//
// The constructor serves two callers: the container init's C stage (set
// up by sandbox.Start) and the exec helper (sandbox.Container.Command).
// Its configuration arrives on an inherited pipe, never in the environment
// (an exec's environment is the image's). Their fds and keys are described
// in one place: docs/start-path.md, "The init protocol".
package nsexec

/*
#cgo CFLAGS: -Wall -O2
extern void ctlab_nsexec_anchor(void);
*/
import "C"

// Anchor keeps the C file linked even with aggressive dead-code removal.
func Anchor() { C.ctlab_nsexec_anchor() }
