package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	_ "github.com/ctlab/ctlab/sandbox/nsexec" // the C constructor that joins namespaces before the Go runtime starts
)

// JoinedNamespaces returns the kinds exec joins by default: every namespace
// of the container's init that differs from ours. Joining one we already
// share would be a no-op (and for a user namespace, an error).
func (c *Container) JoinedNamespaces() ([]Namespace, error) {
	var out []Namespace
	for _, ns := range AllNamespaces {
		mine, err := NSInode(0, ns)
		if err != nil {
			continue // kind absent on this kernel
		}
		theirs, err := NSInode(c.Pid, ns)
		if err != nil {
			return nil, fmt.Errorf("read namespace of container %s: %w", c.Name, err)
		}
		if mine != theirs {
			out = append(out, ns)
		}
	}
	return out, nil
}

// Command returns an unstarted command that, once run, joins the
// container's namespaces (user first) and cgroup and execs ec.Args inside.
// The returned release function closes the namespace files held for the
// child; call it after the command has started (or if it never will).
//
// The joining is done by the C constructor in package nsexec, in the
// re-executed ctlab binary, before any Go thread exists.
func (c *Container) Command(ec ExecConfig) (*exec.Cmd, func(), error) {
	if len(ec.Args) == 0 {
		return nil, nil, &InputError{Problem: "no command given", Fix: "put the command after --, e.g. ctlab exec NAME -- /bin/sh"}
	}
	if !c.Running() {
		return nil, nil, &InputError{Problem: fmt.Sprintf("container %q is not running", c.Name), Fix: "start it with ctlab run -d --name " + c.Name}
	}
	kinds := ec.Namespaces
	if kinds == nil {
		var err error
		if kinds, err = c.JoinedNamespaces(); err != nil {
			return nil, nil, err
		}
	}
	// Canonical joining order, whatever order the caller gave.
	order := map[Namespace]int{}
	for i, ns := range AllNamespaces {
		order[ns] = i
	}
	kinds = append([]Namespace(nil), kinds...)
	sort.Slice(kinds, func(i, j int) bool { return order[kinds[i]] < order[kinds[j]] })

	var files []*os.File
	release := func() {
		for _, f := range files {
			f.Close()
		}
	}
	var spec []string
	for i, ns := range kinds {
		f, err := os.Open(c.NSPath(ns))
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("open %s namespace of %s: %w", ns, c.Name, err)
		}
		files = append(files, f)
		spec = append(spec, string(ns)+":"+strconv.Itoa(5+i)) // after the two config pipes
	}
	rootFD := 0
	if !Has(c.Namespaces, NSMount) {
		// No mount namespace of its own: the init is chrooted in a shared
		// one; the exec enters the same root (execChild).
		f, err := os.Open(fmt.Sprintf("/proc/%d/root", c.Pid))
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("open the root of %s: %w", c.Name, err)
		}
		files = append(files, f)
		rootFD = 5 + len(files) - 1 // after the two config pipes
	}
	// The files are open; if the pid was recycled in the meantime they
	// belong to a stranger, so check the start time again.
	if !c.Running() {
		release()
		return nil, nil, fmt.Errorf("container %s exited", c.Name)
	}
	procs := c.cgroupJoinFiles()
	env := ec.Env
	if env == nil {
		env = c.Env
	}
	// The exec helper protocol: docs/start-path.md, "The init protocol".
	// Its configuration goes on pipes (fd 3 for the C stage, fd 4 for the
	// Go stage), never in the environment, which is the image's.
	stage, err := stageConfig{"ns": strings.Join(spec, ","), "cgroup_procs": strings.Join(procs, ":")}.pipe()
	if err != nil {
		release()
		return nil, nil, err
	}
	child, err := jsonPipe(execChildConfig{
		Env: env, Cwd: ec.Cwd, Harden: c.Harden, User: c.User,
		// A process of its own session: a `kill 0` inside reaches only
		// the container's processes. A learner's interactive shell in an
		// unhardened container keeps the terminal.
		Setsid: c.Harden != (Hardening{}) || !isTerminal(ec.Stdin),
		RootFD: rootFD,
	})
	if err != nil {
		stage.Close()
		release()
		return nil, nil, err
	}
	files = append([]*os.File{stage, child}, files...)
	cmd := exec.Command("/proc/self/exe", append([]string{execArg, "--"}, ec.Args...)...)
	cmd.Env = append([]string(nil), env...)
	cmd.ExtraFiles = files
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ec.Stdin, ec.Stdout, ec.Stderr
	return cmd, release, nil
}

// cgroupJoinFiles are the files the exec helper writes itself into: it
// joins the cgroup itself, before it joins the user namespace (while it may
// still write cgroupfs). On v1 it writes "0" to "tasks": a thread moving
// itself skips the global rwsem and its RCU grace period (the helper is
// single-threaded, so it moves whole).
func (c *Container) cgroupJoinFiles() []string {
	file := "cgroup.procs"
	if cgroups.Effective() == cgroups.V1 {
		file = "tasks"
	}
	var procs []string
	if cg, err := c.Cgroup(); err == nil {
		seen := map[string]bool{}
		for _, dir := range cg.Paths() {
			if real, err := filepath.EvalSymlinks(dir); err == nil && !seen[real] {
				seen[real] = true
				procs = append(procs, filepath.Join(real, file))
			}
		}
		sort.Strings(procs)
	}
	return procs
}

// Exec runs ec.Args inside the container and returns its exit status.
func (c *Container) Exec(ctx context.Context, ec ExecConfig) (int, error) {
	cmd, release, err := c.Command(ec)
	if err != nil {
		return -1, err
	}
	if err := cmd.Start(); err != nil {
		release()
		return -1, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	release()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// The waiting helper ignores SIGINT (the terminal's) and
			// forwards SIGTERM to the command.
			cmd.Process.Signal(sigTERM)
		case <-done:
		}
	}()
	werr := cmd.Wait()
	close(done)
	code, err := exitCode(cmd, werr)
	if ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, err
}

// DialContext connects to addr the way the host reaches the container: from
// the private network namespace of a NetPrivate container, else from
// ctlab's own.
func (c *Container) DialContext(ctx context.Context, netw, addr string) (net.Conn, error) {
	if c.probe != nil {
		return network.DialIn(ctx, c.probe, netw, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, netw, addr)
}
