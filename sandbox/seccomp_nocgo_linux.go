//go:build !cgo

package sandbox

// A binary built without cgo (ctlab-oci) is never a container's init or
// exec helper (cStageBinary sends both to ctlab-init), so it never installs
// the hardened containers' filter, and does without the filter library's
// package initialisation (~0.15 ms of each of its calls).

// InstallSeccomp refuses: only a binary with the C stage hardens processes.
func InstallSeccomp() error { return installSeccomp() }

func installSeccomp() error { return errNoCStage }
