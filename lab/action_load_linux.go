package lab

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
	ctload "github.com/ctlab/ctlab/sandbox/load"
)

// LoadAction runs one of ctlab's built-in load generators inside a
// container: /.ctlab/ctlab load KIND ... (the container needs
// mount_self: true), the command line built by ctload.Spec.Args, which
// the real `ctlab load` command parses.
type LoadAction struct {
	In      string `yaml:"in" json:"in"`
	Kind    string `yaml:"kind" json:"kind" vocab:"cpu|mem|fork|io|count|shm"`
	Seconds int    `yaml:"seconds,omitempty" json:"seconds,omitempty"`
	Threads int    `yaml:"threads,omitempty" json:"threads,omitempty"` // cpu
	Size    string `yaml:"size,omitempty" json:"size,omitempty"`       // mem, io
	Count   int    `yaml:"count,omitempty" json:"count,omitempty"`     // fork
	File    string `yaml:"file,omitempty" json:"file,omitempty"`       // io, count (inside the container)
	Key     string `yaml:"key,omitempty" json:"key,omitempty"`         // shm: 0x1234 or decimal, not 0
	// ExpectRate ("<= 5.5M", bytes per second) fails an io load whose
	// printed rate does not satisfy it: the throttle really held.
	ExpectRate string        `yaml:"expect_rate,omitempty" json:"expect_rate,omitempty"`
	Background bool          `yaml:"background,omitempty" json:"background,omitempty"`
	As         string        `yaml:"as,omitempty" json:"as,omitempty"`
	ExpectExit *int          `yaml:"expect_exit,omitempty" json:"expect_exit,omitempty" vocab:"any"`
	Timeout    time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" vocab:"seconds+60s"`
}

func (l *LoadAction) validate(v *validator) {
	before := len(v.problems)
	v.running(l.In)
	if !slices.Contains(loadKinds, l.Kind) {
		v.errf("kind %q: want cpu, mem, fork, io, count or shm", l.Kind)
	}
	l.validateKind(v)
	if l.Key != "" && l.Kind != "shm" {
		v.errf("key is for kind shm")
	}
	if l.ExpectRate != "" {
		if l.Kind != "io" {
			v.errf("expect_rate is for kind io (it reads the rate load io prints)")
		}
		if l.Background {
			v.errf("expect_rate needs the load in the foreground (background: false)")
		}
		if _, _, err := parseRate(l.ExpectRate); err != nil {
			v.errf("expect_rate: %v", err)
		}
	}
	if l.File != "" && !path.IsAbs(l.File) {
		v.errf("file %q must be an absolute path inside the container", l.File)
	}
	if c := v.s.Containers[l.In]; c != nil && !c.MountSelf {
		v.errf("container %q needs mount_self: true (the generator is /.ctlab/ctlab)", l.In)
	}
	if l.Size != "" {
		v.size("size", l.Size)
	}
	if l.As != "" && !l.Background {
		v.errf("as names a background process: set background: true")
	}
	v.newName(l.As)
	if len(v.problems) == before {
		// the command line must parse as `ctlab load` parses it
		if _, err := ctload.Parse(l.spec().Args()[1:]); err != nil {
			v.errf("%v", err)
		}
	}
}

// validateKind checks the arguments each kind needs.
func (l *LoadAction) validateKind(v *validator) {
	switch l.Kind {
	case "mem", "io":
		if l.Size == "" {
			v.errf("kind %s needs size", l.Kind)
		}
	case "fork":
		if l.Count < 1 {
			v.errf("kind fork needs count >= 1")
		}
	case "count":
		if l.File == "" {
			v.errf("kind count needs file")
		}
	case "shm":
		if k, err := strconv.ParseInt(l.Key, 0, 32); err != nil || k == 0 {
			v.errf("kind shm needs key: a non-zero 32-bit number (0x1234; 0 is IPC_PRIVATE, which has no key)")
		}
	}
}

// spec is the generator run this action asks for.
func (l *LoadAction) spec() ctload.Spec {
	file := l.File
	if l.Kind == "io" && file == "" {
		file = "/var/tmp/ctlab-io"
	}
	return ctload.Spec{Kind: l.Kind, Seconds: float64(l.Seconds), Threads: l.Threads, Size: l.Size, Count: l.Count, File: file, Key: l.Key}
}

// do runs the generator inside the container. A load that gets
// OOM-killed or refused a fork is the lesson, not an error: the exit code
// is reported and checks judge the effect.
func (l *LoadAction) do(ctx context.Context, e *Engine) (string, *int, error) {
	argv := append([]string{"/.ctlab/ctlab"}, l.spec().Args()...)
	if l.Background {
		return "", nil, e.background(l.In, l.As, "", argv)
	}
	timeout := l.Timeout
	if timeout == 0 {
		timeout = time.Duration(l.Seconds)*time.Second + 60*time.Second
	}
	var before ioRun
	counted := l.Kind == "io" && e.ioCount(l.In, &before) == nil
	t0 := time.Now()
	out, code, err := e.execIn(ctx, l.In, argv, "", timeout, l.ExpectExit)
	var after ioRun
	if counted && e.ioCount(l.In, &after) == nil {
		// The kernel's own count over the run, for io_rate: what the
		// throttle let through, whatever the program believes it read.
		after.read, after.written, after.took = after.read-before.read, after.written-before.written, time.Since(t0)
		e.mu.Lock()
		e.ioRuns[l.In] = after
		e.mu.Unlock()
	}
	if err == nil && l.ExpectRate != "" {
		err = checkRate(out, l.ExpectRate)
	}
	return out, code, err
}

// ioRun is what the kernel counted for a container's cgroup on the
// containers' disk: bytes read and written, and (for a finished `load io`)
// over how long.
type ioRun struct {
	read, written uint64
	took          time.Duration
	src           string
}

// ioCount reads the container's io counters now into r.
func (e *Engine) ioCount(in string, r *ioRun) error {
	c := e.container(in)
	if c == nil {
		return fmt.Errorf("container %s is not started", in)
	}
	maj, min, err := containerDisk()
	if err != nil {
		return fmt.Errorf("find the containers' disk: %w", err)
	}
	r.read, r.written, r.src, err = kstate.IOBytes(c.Name, maj, min)
	return err
}
