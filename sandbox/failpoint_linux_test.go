package sandbox

import (
	"os"
	"syscall"
)

// In test builds CTLAB_FAILPOINT=after-mount makes the process SIGKILL
// itself at that failpoint.
func init() {
	failpoint = func(name string) {
		if fp := os.Getenv("CTLAB_FAILPOINT"); fp != "" && fp == name {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
