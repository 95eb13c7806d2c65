package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// ValidName reports whether name can name a container (it becomes a
// cgroup directory and part of file names).
func ValidName(name string) error {
	if !cgroups.NameOK(name) {
		return &InputError{Problem: fmt.Sprintf("invalid container name %q", name), Fix: "use 1-63 characters a-z 0-9 _ . - starting with a letter or digit"}
	}
	return nil
}

// InputError is a problem with what the user asked for, found before any
// kernel object was made. The CLI prints it on one line and exits 2.
type InputError struct {
	Problem string
	Fix     string
}

func (e *InputError) Error() string {
	if e.Fix == "" {
		return e.Problem
	}
	return e.Problem + " (fix: " + e.Fix + ")"
}

// Owner identifies the process that started a foreground container. When it
// is gone and the container was not detached, the container was left behind
// by a killed run and `ctlab cleanup` removes it.
type Owner struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// State is what ctlab remembers about a container: enough to find its
// kernel objects again. It is never used as evidence of what the kernel
// did; inspect and the lab's checks read the kernel.
type State struct {
	Name       string              `json:"name"`
	Pid        int                 `json:"pid"`
	Start      uint64              `json:"start"`
	Created    time.Time           `json:"created"`
	Namespaces []Namespace         `json:"namespaces"`
	Hostname   string              `json:"hostname,omitempty"`
	Rootfs     string              `json:"rootfs"`
	Args       []string            `json:"args"`
	Env        []string            `json:"env"`
	UIDBase    int                 `json:"uid_base,omitempty"`
	Limits     cgroups.Limits      `json:"limits"`
	Dir        string              `json:"dir"`
	Layout     overlay.Layout      `json:"layout"`
	Net        *network.Attachment `json:"net,omitempty"`
	Detached   bool                `json:"detached"`
	Owner      *Owner              `json:"owner,omitempty"`
	// Harden is the container's hardening, which every exec into it gets
	// too.
	Harden Hardening `json:"harden"`
	// User is the command's credentials (nil: root), which execs get too.
	User *IDs `json:"user,omitempty"`

	// CgroupPath is Config.CgroupPath; CgroupDirs the cgroup's directories
	// as /proc/<init>/cgroup said once the init had exec'd.
	CgroupPath string            `json:"cgroup_path,omitempty"`
	CgroupDirs map[string]string `json:"cgroup_dirs,omitempty"`
	// CgroupScope is the systemd scope of a CgroupPath "slice:prefix:name".
	CgroupScope *cgroups.Scope `json:"cgroup_scope,omitempty"`
}

// Container is a container ctlab started: its remembered State plus, when
// this process started it, the handle to wait on it.
type Container struct {
	State
	cmd    *exec.Cmd
	probe  *os.File // the private network namespace of NetPrivate
	waited chan struct{}
	exit   int
	werr   error
	cg     *cgroups.Cgroup // the cgroup this process made (nil when loaded)
}

// Freezer names the files holding the freezer state of the cgroup that
// this process made for the container, for a caller that reads the state
// later without loading the container (an OCI runtime's state); nil for a
// container loaded from state, in a systemd scope, or without a freezer.
func (c *Container) Freezer() *cgroups.Freezer {
	if c.cg == nil {
		return nil
	}
	f, err := c.cg.Freezer()
	if err != nil {
		return nil
	}
	return &f
}

// Running reports whether the container's init is alive, asking the kernel
// (pid plus start time, so a recycled pid does not count).
func (c *Container) Running() bool { return Alive(c.Pid, c.Start) }

// Status is "running", "exited", or "created" (no process yet).
func (c *Container) Status() string {
	switch {
	case c.Pid == 0:
		return "created"
	case c.Running():
		return "running"
	default:
		return "exited"
	}
}

// NSPath is the namespace file of the container's init, e.g. for netlink.
func (c *Container) NSPath(kind Namespace) string {
	return fmt.Sprintf("/proc/%d/ns/%s", c.Pid, kind)
}

// Cgroup opens the container's cgroup. One at a CgroupPath is where the
// kernel says the init is now (/proc/<pid>/cgroup), or, once the init is
// gone, where it was placed.
func (c *Container) Cgroup() (*cgroups.Cgroup, error) {
	if c.CgroupPath == "" {
		return cgroups.Open(c.Name)
	}
	if c.CgroupScope != nil {
		return cgroups.OpenScope(c.Name, *c.CgroupScope)
	}
	if c.Running() {
		if cg, err := cgroups.OpenPid(c.Name, c.Pid, c.CgroupDirs); err == nil {
			return cg, nil
		}
	}
	return cgroups.OpenDirs(c.Name, c.CgroupDirs)
}

func statePath(name string) string { return filepath.Join(stateDir(), name+".json") }

func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp, statePath(s.Name))
}

// ErrNotFound is returned by Load for a name ctlab has no container for.
var ErrNotFound = errors.New("no such container")

// Load finds a container by name.
func Load(name string) (*Container, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(statePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %q (see `ctlab ps`)", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", name, err)
	}
	c := &Container{}
	if err := json.Unmarshal(b, &c.State); err != nil {
		return nil, fmt.Errorf("parse state of %s: %w", name, err)
	}
	return c, nil
}

// List returns every container ctlab has state for, sorted by name.
func List() ([]*Container, error) {
	ents, err := os.ReadDir(stateDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if c, err := Load(n); err == nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
