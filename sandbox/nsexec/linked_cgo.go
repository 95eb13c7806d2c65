//go:build cgo

package nsexec

// Linked reports whether this binary carries the C stage: it is built with
// cgo (nsexec.c's constructor runs before the Go runtime).
const Linked = true
