// Package nsexec joins a running container's namespaces before the Go
// runtime starts, the way runc's nsenter package does.
//
// Why C: setns(2) into a user namespace needs a single-threaded process and
// setns into a mount namespace needs a thread that does not share its
// filesystem attributes. A Go program already runs several threads before
// main, so the joining must happen in a constructor that runs when the
// binary is loaded. The constructor does nothing unless the environment
// variable _CTLAB_NSEXEC is set, so importing this package is free for every
// other use of the binary.
//
// Protocol (set up by sandbox.Container.Command):
//
//	argv:                /proc/self/exe __nsexec -- CMD ARG...
//	_CTLAB_NSEXEC        "user:3,ipc:4,uts:5,...": namespace kind and the fd
//	                     of its /proc/<pid>/ns file, in joining order
//	_CTLAB_CGROUP_PROCS  cgroup.procs files to join first, ':'-separated
//	_CTLAB_CWD           working directory inside (default "/")
//
// The constructor joins the cgroups, then each namespace in order (user
// first: it grants the capabilities the others need), becomes uid/gid 0 of
// the joined user namespace, forks (a pid namespace only applies to
// children), and the child execs CMD. The parent waits and exits with the
// child's status, so the caller sees the command's exit code.
package nsexec

/*
#cgo CFLAGS: -Wall -O2
extern void ctlab_nsexec_anchor(void);
*/
import "C"

// Anchor keeps the C file linked even with aggressive dead-code removal.
func Anchor() { C.ctlab_nsexec_anchor() }
