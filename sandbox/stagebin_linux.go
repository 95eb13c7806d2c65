package sandbox

import (
	"errors"

	"github.com/ctlab/ctlab/sandbox/nsexec"
)

var errNoCStage = errors.New("this binary is built without cgo, so it has no C stage for a container's init or exec helper: install ctlab-init beside it (make build)")

// cStageBinary is the binary to exec for a C stage (package nsexec), given
// the one the caller would use: that one, unless it is this binary and this
// binary was built without the stage (ctlab-oci, to skip libc's start-up on
// every call), in which case InitBinary (ctlab-init), which links it.
func cStageBinary(path string) (string, error) {
	if nsexec.Linked || path != "/proc/self/exe" {
		return path, nil
	}
	if InitBinary != "/proc/self/exe" {
		return InitBinary, nil
	}
	return "", errNoCStage
}
