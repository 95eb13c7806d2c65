//go:build !cgo

package nsexec

// Linked reports whether this binary carries the C stage. Built without
// cgo it does not (ctlab-oci: its calls then skip libc's start-up, which
// probes the CPU's caches with cpuid, slow in a VM), and a container's init
// and the exec helper must be another binary that does: ctlab-init
// (sandbox.InitBinary).
const Linked = false

// Anchor is the cgo build's hook; here there is nothing to keep linked.
func Anchor() {}
