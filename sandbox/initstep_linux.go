package sandbox

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// InitStep is a command of ctlab's own that a container's init runs in
// process where it would exec `/.ctlab/ctlab NAME ARGS...`: the same code
// without a second Go runtime start on the container's critical path (the
// OCI runtime's process init: about 3 ms of every create). args are ARGS.
// ready closes the status pipe, so Start returns: the step calls it once
// the container is ready for its caller (created), and everything it
// reports after that goes to the container's stderr. A step never returns
// on success (it execs).
type InitStep func(args []string, ready func() error) error

var initSteps = map[string]InitStep{}

// RegisterInitStep makes a container's init run `/.ctlab/ctlab name ...`
// (with Config.MountSelf) as fn, in process. Call it from a package init;
// an init binary that does not link the step execs the command instead.
func RegisterInitStep(name string, fn InitStep) { initSteps[name] = fn }

// initStepFor returns the registered step cfg's command names, if any. Only
// a bound /.ctlab/ctlab is ours: otherwise the path is the rootfs's own file.
func initStepFor(cfg *initConfig) (InitStep, []string) {
	if cfg.Self == "" || len(cfg.Args) < 2 || cfg.Args[0] != "/"+rootfs.CtlabPath {
		return nil, nil
	}
	return initSteps[cfg.Args[1]], cfg.Args[2:]
}

// runInitStep runs step in place of the exec and exits with 127 when it
// fails: before ready the error reaches Start over the status pipe, after
// it the container's stderr.
func runInitStep(step InitStep, args []string, status *os.File) {
	err := step(args, status.Close)
	if json.NewEncoder(status).Encode(statusMsg{Error: err.Error()}) != nil {
		fmt.Fprintln(os.Stderr, "ctlab init:", err)
	}
	os.Exit(127)
}
