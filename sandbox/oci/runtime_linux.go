package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/internal/backoff"
)

// DefaultRoot is runc's default --root for root.
const DefaultRoot = "/run/ctlab-oci"

// Runtime is one --root: a directory per container id holding its record.
// The kernel objects belong to a sandbox container (journalled under
// /run/ctlab like every ctlab container, so `ctlab cleanup` removes them
// after a kill -9); the record maps the OCI id to it.
type Runtime struct {
	Root string
	// SystemdCgroup is runc's --systemd-cgroup: cgroupsPath is then
	// "slice:prefix:name" (see cgroupPath).
	SystemdCgroup bool
}

// record is what the runtime keeps per container id.
type record struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"` // the sandbox container
	Bundle      string            `json:"bundle"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid"`   // the init (process.args after start)
	Start       uint64            `json:"start"` // its start time, so a recycled pid is not it
	// Freezer names the cgroup's freezer files, so state and start read
	// "paused" from the kernel without loading the sandbox container.
	Freezer *cgroups.Freezer `json:"freezer,omitempty"`
	// NoHooks says the config has no hooks: start and delete then skip
	// reading it. (Absent in older records: they read it.)
	NoHooks bool `json:"no_hooks,omitempty"`
}

// sandboxName is the sandbox container behind id under this root: ids may
// be 64 hex digits and any characters, sandbox names are short.
func (r *Runtime) sandboxName(id string) string {
	h := sha256.Sum256([]byte(r.Root + "\x00" + id))
	return "oci-" + hex.EncodeToString(h[:])[:16]
}

// SandboxName is the name of the sandbox container that a create of id
// under this root makes, so a caller can journal it before it exists.
func (r *Runtime) SandboxName(id string) string { return r.sandboxName(id) }

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

func validID(id string) error {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q", id)
	}
	return nil
}

func (r *Runtime) load(id string) (*record, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q does not exist: %w", id, os.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("container %s: bad record: %w", id, err)
	}
	return &rec, nil
}

func (r *Runtime) save(rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.dir(rec.ID), ".state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(r.dir(rec.ID), "state.json"))
}

// spec is the config as it was at create: the copy in the record's
// directory (a later edit of the bundle must not affect the container).
func (r *Runtime) spec(rec *record) (*specs.Spec, error) { return LoadSpec(r.dir(rec.ID)) }

// hooks reads only the hooks of the kept config: start and delete need
// nothing else, and decoding a whole Spec in a fresh process costs about
// 0.5 ms of encoding/json's type setup (a fifth of a start).
func (r *Runtime) hooks(rec *record) (*specs.Hooks, error) {
	if rec.NoHooks {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(r.dir(rec.ID), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read the kept config: %w", err)
	}
	var s struct {
		Hooks *specs.Hooks `json:"hooks"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("container %s: bad kept config: %w", rec.ID, err)
	}
	return s.Hooks, nil
}

// Status reads the container's state back from the kernel: no live init
// (pid + start time) is "stopped"; a frozen cgroup "paused"; an init still
// named createdComm (the process init waiting for start) "created".
func (r *Runtime) status(rec *record) string {
	comm, alive := sandbox.Comm(rec.Pid, rec.Start)
	if !alive {
		return string(specs.StateStopped)
	}
	if st, err := r.freezerState(rec); err == nil && strings.EqualFold(st, "frozen") {
		return "paused"
	}
	if comm == createdComm {
		return string(specs.StateCreated)
	}
	return string(specs.StateRunning)
}

// freezerState reads the container's freezer state from the files the
// record names (under the cgroup filesystem only), else from the loaded
// sandbox container's cgroup.
func (r *Runtime) freezerState(rec *record) (string, error) {
	if f := rec.Freezer; f != nil && underCgroupfs(f.File) && (f.Events == "" || underCgroupfs(f.Events)) {
		return f.State()
	}
	c, err := sandbox.Load(rec.Name)
	if err != nil {
		return "", err
	}
	cg, err := c.Cgroup()
	if err != nil {
		return "", err
	}
	return cg.FreezerState()
}

func underCgroupfs(p string) bool {
	return strings.HasPrefix(p, "/sys/fs/cgroup/") && !strings.Contains(p, "..")
}

// State is the runtime-spec state of id, plus runc's "created" and
// "rootfs" (go-runc reads them).
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
}

// State returns the state of id.
func (r *Runtime) State(id string) (*State, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.state(rec), nil
}

func (r *Runtime) state(rec *record) *State {
	st := &State{State: specs.State{Version: specs.Version, ID: rec.ID, Status: specs.ContainerState(r.status(rec)),
		Bundle: rec.Bundle, Annotations: rec.Annotations}, Created: rec.Created}
	if st.Status != specs.StateStopped {
		st.Pid = rec.Pid
	}
	st.Rootfs = rec.Rootfs
	return st
}

// List returns the state of every container under the root.
func (r *Runtime) List() ([]*State, error) {
	ents, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range ents {
		if rec, err := r.load(e.Name()); err == nil {
			out = append(out, r.state(rec))
		}
	}
	return out, nil
}

// Start releases the process init of a created container: it execs
// process.args. The process init runs the startContainer hooks inside
// the container first; poststart runs here after.
func (r *Runtime) Start(ctx context.Context, id string) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	if st := r.status(rec); st != string(specs.StateCreated) {
		return fmt.Errorf("container %s is %s, not created", id, st)
	}
	hooks, err := r.hooks(rec)
	if err != nil {
		return err
	}
	if err := syscall.Kill(rec.Pid, startSignal); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	// Started means the init took the signal: it renames itself
	// startedComm before its startContainer hooks and the exec (or it has
	// exec'd already). An init that is gone already ran (a short
	// command): its exit is its reaper's to report.
	if err := waitComm(ctx, rec.Pid, rec.Start, func(c string) bool { return c != createdComm }); err != nil && sandbox.Alive(rec.Pid, rec.Start) {
		return fmt.Errorf("start %s: %w", id, err)
	}
	if hooks != nil {
		// A failing poststart hook is only a warning (runtime-spec).
		if err := runHooks(ctx, "poststart", hooks.Poststart, r.state(rec)); err != nil {
			fmt.Fprintln(os.Stderr, "ctlab-oci: warning:", err)
		}
	}
	return nil
}

// waitComm polls the init's name (in /proc/PID/stat) until ok says so;
// the process dying is an error.
func waitComm(ctx context.Context, pid int, start uint64, ok func(string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return backoff.Until(ctx, func() (bool, error) {
		comm, alive := sandbox.Comm(pid, start)
		if !alive {
			return false, fmt.Errorf("the container's init (pid %d) exited", pid)
		}
		return ok(comm), nil
	})
}
