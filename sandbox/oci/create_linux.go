package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
)

// CreateOptions are runc create's flags.
type CreateOptions struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	// Stdio the container inherits when it has no terminal (the caller's
	// own: the shim's fifos, conmon's pipes).
	Stdin, Stdout, Stderr *os.File
}

// Create sets the container up to the point of exec: namespaces, cgroup,
// rootfs and mounts by the sandbox, the rest by the process init, which
// then waits for Start. The createRuntime, createContainer and prestart
// hooks run before it returns (on the host: ctlab's deviation for
// createContainer, which runc runs in the container's mount namespace
// before pivot_root, a point ctlab's sandbox does not stop at). The
// startContainer hooks go to the process init, which runs them inside
// the container before the exec. The container returned can be waited on
// by this process (runc run).
func (r *Runtime) Create(ctx context.Context, id string, o CreateOptions) (_ *sandbox.Container, err error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if o.Bundle, err = filepath.Abs(o.Bundle); err != nil {
		return nil, err
	}
	s, raw, err := readSpec(o.Bundle)
	if err != nil {
		return nil, err
	}
	cfg, pi, err := sandboxConfig(s, o.Bundle, r.sandboxName(id))
	if err == nil {
		err = cgroupPath(&cfg, cfg.CgroupPath, r.SystemdCgroup)
	}
	if err != nil {
		return nil, err
	}
	created := time.Now().UTC()
	hookState := &State{State: specs.State{Version: specs.Version, ID: id, Bundle: o.Bundle, Annotations: s.Annotations}, Rootfs: cfg.Rootfs, Created: created}
	if err := pi.prepare(s, hookState); err != nil {
		return nil, err
	}
	cfg.Args = pi.argv()
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(r.dir(id), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q already exists", id)
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(r.dir(id))
		}
	}()
	if err := selfMountpoint(cfg.Rootfs); err != nil {
		return nil, err
	}
	cfg.Stdin, cfg.Stdout, cfg.Stderr = o.Stdin, o.Stdout, o.Stderr
	if pi.Terminal {
		sock, err := consoleSocketFile(o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer sock.Close()
		cfg.Stdin, cfg.Stdout, cfg.Stderr = sock, sock, sock
	}
	// runc's process model: no waiter; the caller (a subreaper: the shim,
	// conmon, ctlab-oci run) is the parent and reaper of the container's
	// pid 1, the pid in the pid file.
	cfg.Reparent = true
	c, err := sandbox.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	rec := &record{ID: id, Name: cfg.Name, Bundle: o.Bundle, Rootfs: cfg.Rootfs, Created: created,
		Annotations: s.Annotations, Pid: c.Pid, Start: c.Start, Freezer: c.Freezer(), NoHooks: s.Hooks == nil}
	if err = r.finishCreate(ctx, c, rec, s, raw, o.PidFile); err != nil {
		c.Remove(context.WithoutCancel(ctx), true)
		return nil, err
	}
	return c, nil
}

// finishCreate waits for the process init to be ready, saves the record
// and the config (raw, as read: encoding a Spec would cost a fresh
// process encoding/json's type setup), writes the pid file and runs the
// create-time hooks.
func (r *Runtime) finishCreate(ctx context.Context, c *sandbox.Container, rec *record, s *specs.Spec, raw []byte, pidFile string) error {
	if err := waitComm(ctx, rec.Pid, rec.Start, func(comm string) bool { return comm == createdComm }); err != nil {
		return fmt.Errorf("create %s: %w (its error is on the container's stderr)", rec.ID, err)
	}
	if err := r.save(rec); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.dir(rec.ID), "config.json"), raw, 0o600); err != nil {
		return fmt.Errorf("keep the config: %w", err)
	}
	if pidFile != "" {
		// The pid the caller reaps once this process exits: the
		// container's init (Reparent: no waiter between them).
		if err := writeFileAtomic(pidFile, []byte(strconv.Itoa(rec.Pid))); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
	}
	if s.Hooks == nil {
		return nil
	}
	st := r.state(rec)
	for _, h := range []struct {
		name  string
		hooks []specs.Hook
	}{{"prestart", s.Hooks.Prestart}, {"createRuntime", s.Hooks.CreateRuntime}, {"createContainer", s.Hooks.CreateContainer}} {
		if err := runHooks(ctx, h.name, h.hooks, st); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup. The "container not running" wording is what go-runc's callers
// match.
func (r *Runtime) Kill(id string, sig syscall.Signal, all bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if r.status(rec) == string(specs.StateStopped) {
		return fmt.Errorf("container %s: container not running", id)
	}
	if !all {
		return syscall.Kill(rec.Pid, sig)
	}
	c, err := sandbox.Load(rec.Name)
	if err != nil {
		return err
	}
	cg, err := c.Cgroup()
	if err != nil {
		return err
	}
	pids, err := cg.Procs()
	if err != nil {
		return err
	}
	for _, p := range pids {
		syscall.Kill(p, sig)
	}
	return nil
}

// Delete removes a stopped (or created) container, with force a running
// one, then runs the poststop hooks.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	rec, err := r.load(id)
	if err != nil {
		if force && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	// With force any state goes: reading it (the cgroup's freezer too)
	// would only cost time.
	if !force {
		if st := r.status(rec); st == string(specs.StateRunning) || st == "paused" {
			return fmt.Errorf("container %s is %s: stop it first or use --force", id, st)
		}
	}
	if c, err := sandbox.Load(rec.Name); err == nil {
		if err := c.Remove(ctx, true); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
	}
	if hooks, err := r.hooks(rec); err == nil && hooks != nil {
		if err := runHooks(ctx, "poststop", hooks.Poststop, r.state(rec)); err != nil {
			fmt.Fprintln(os.Stderr, "ctlab-oci: warning:", err)
		}
	}
	return os.RemoveAll(r.dir(id))
}

// Container returns the sandbox container behind id (for exec, ps, pause,
// update).
func (r *Runtime) Container(id string) (*sandbox.Container, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return sandbox.Load(rec.Name)
}

// runHooks runs hooks in order, each with the state JSON on stdin.
func runHooks(ctx context.Context, kind string, hooks []specs.Hook, st *State) error {
	b, err := jsonState(st)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		hctx, cancel := ctx, context.CancelFunc(func() {})
		if h.Timeout != nil && *h.Timeout > 0 {
			hctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		}
		cmd := exec.CommandContext(hctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		cmd.Stdin = bytesReader(b)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("%s hook %s: %w: %s", kind, h.Path, err, out)
		}
	}
	return nil
}

// selfMountpoint makes /.ctlab/ctlab in the rootfs as host root, where the
// sandbox binds ctlab's binary (the process init): the init itself may be
// an unprivileged uid on the host (a user namespace) and unable to.
func selfMountpoint(rootfs string) error {
	dir := filepath.Join(rootfs, ".ctlab")
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s in the rootfs is not a directory", dir)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("mount point for the process init: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "ctlab"), os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o755)
	if err != nil {
		return fmt.Errorf("mount point for the process init: %w", err)
	}
	return f.Close()
}
