package lab

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Checks of files and mounts as a target sees them: through
// /proc/<pid>/root and /proc/<pid>/mountinfo, or under a directory the
// scenario made (an overlay's merged view, a layer, a bundle).

// MountCheck looks for a mount point (and optionally its fs type) in the
// target's mountinfo.
type MountCheck struct {
	In     string `yaml:"in" json:"in"`
	Path   string `yaml:"path" json:"path"`
	FSType string `yaml:"fstype,omitempty" json:"fstype,omitempty"`
}

// MountVisible: the target's mount namespace has a mount at Path.
type MountVisible MountCheck

// MountAbsent: it has none.
type MountAbsent MountCheck

func (t *MountVisible) validate(v *validator) { (*MountCheck)(t).validate(v) }
func (t *MountAbsent) validate(v *validator)  { (*MountCheck)(t).validate(v) }

func (t *MountVisible) eval(_ context.Context, e *Engine) Evidence {
	return (*MountCheck)(t).eval(e, true)
}

func (t *MountAbsent) eval(_ context.Context, e *Engine) Evidence {
	return (*MountCheck)(t).eval(e, false)
}

func (m *MountCheck) validate(v *validator) {
	v.target(m.In, "host", "container", "process")
	v.absPath("path", m.Path)
}

func (m *MountCheck) eval(e *Engine, visible bool) Evidence {
	pid, err := e.pidOf(m.In)
	if err != nil {
		return failed(m.In, "/proc/<pid>/mountinfo", err)
	}
	src := fmt.Sprintf("/proc/%d/mountinfo", pid)
	ms, err := kstate.ReadMountinfo(pid)
	if err != nil {
		return failed(m.In, src, err)
	}
	found := kstate.FindMount(ms, m.Path)
	actual := "no mount at " + m.Path
	ok := found != nil
	if found != nil {
		actual = fmt.Sprintf("%s on %s (%s)", found.FSType, found.MountPoint, found.Source)
		if m.FSType != "" && found.FSType != m.FSType {
			ok = false
		}
	}
	want := "a mount at " + m.Path
	if m.FSType != "" {
		want = m.FSType + " mounted at " + m.Path
	}
	if !visible {
		want = "no mount at " + m.Path
		ok = !ok
	}
	return Evidence{Target: m.In, Source: src, Expected: want, Actual: actual, Pass: ok}
}

// FileContains reads a file inside the target's root and looks for Value.
type FileContains struct {
	In    string `yaml:"in" json:"in"`
	Path  string `yaml:"path" json:"path"`
	Value string `yaml:"value" json:"value"`
}

func (t *FileContains) validate(v *validator) {
	v.target(t.In, "host", "container", "process", "overlay", "layer", "bundle")
	if t.In == "host" && !slices.Contains(v.s.ReadsHost, v.step) {
		// reading (and showing) a host file is host access too
		v.s.ReadsHost = append(v.s.ReadsHost, v.step)
	}
	v.absPath("path", t.Path)
}

// eval reads an overlay, layer or bundle the scenario made under its own
// directory (os.Root: no lookup leaves it); anything else through the
// root of a running process.
func (t *FileContains) eval(_ context.Context, e *Engine) Evidence {
	want := "a file containing " + strconv.Quote(t.Value)
	var b []byte
	var src string
	var err error
	if dir := e.dirOf(t.In); dir != "" {
		b, src, err = kstate.ReadFileUnder(dir, t.Path, 1<<20)
	} else {
		pid, perr := e.pidOf(t.In)
		if perr != nil {
			return failed(t.In, "/proc/<pid>/root"+t.Path, perr)
		}
		b, src, err = kstate.ReadFileIn(pid, t.Path, 1<<20)
	}
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: err.Error()}
	}
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: strings.TrimSpace(truncate(string(b), 400)), Pass: strings.Contains(string(b), t.Value)}
}

// FileUnchanged passes when a file inside a target reads the same twice,
// For apart.
type FileUnchanged struct {
	In   string        `yaml:"in" json:"in"`
	Path string        `yaml:"path" json:"path"`
	For  time.Duration `yaml:"for,omitempty" json:"for,omitempty" vocab:"1s"`
}

func (t *FileUnchanged) validate(v *validator) {
	v.target(t.In, "container", "process")
	v.absPath("path", t.Path)
	if f := t.For; f != 0 && (f < 100*time.Millisecond || f > 30*time.Second) {
		v.errf("for %s: want 100ms..30s", f)
	}
}

func (t *FileUnchanged) eval(ctx context.Context, e *Engine) Evidence {
	d := t.For
	if d == 0 {
		d = time.Second
	}
	want := fmt.Sprintf("the same content %s later", d)
	pid, err := e.pidOf(t.In)
	if err != nil {
		return Evidence{Target: t.In, Source: "/proc/<pid>/root" + t.Path, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	a, src, err := kstate.ReadFileIn(pid, t.Path, 1<<20)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: err.Error()}
	}
	if err := sleepCtx(ctx, d); err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	b, src, err := kstate.ReadFileIn(pid, t.Path, 1<<20)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: err.Error()}
	}
	q := func(x []byte) string { return strconv.Quote(strings.TrimSpace(truncate(string(x), 100))) }
	if string(a) == string(b) {
		return Evidence{Target: t.In, Source: src + " (read twice)", Expected: want, Actual: "unchanged: " + q(a), Pass: true}
	}
	return Evidence{Target: t.In, Source: src + " (read twice)", Expected: want, Actual: q(a) + " then " + q(b)}
}

// FileOwnerEquals compares the owner of a file inside a target as the
// host sees it (lstat from the host).
type FileOwnerEquals struct {
	In   string `yaml:"in" json:"in"`
	Path string `yaml:"path" json:"path"`
	UID  int    `yaml:"uid" json:"uid"`
	GID  *int   `yaml:"gid,omitempty" json:"gid,omitempty"`
}

func (t *FileOwnerEquals) validate(v *validator) {
	v.target(t.In, "container", "process")
	v.absPath("path", t.Path)
	if t.UID < 0 || t.GID != nil && *t.GID < 0 {
		v.errf("uid and gid are numbers >= 0")
	}
}

func (t *FileOwnerEquals) eval(_ context.Context, e *Engine) Evidence {
	want := fmt.Sprintf("owned by uid %d", t.UID)
	if t.GID != nil {
		want += fmt.Sprintf(", gid %d", *t.GID)
	}
	want += " (as the host sees it)"
	pid, err := e.pidOf(t.In)
	if err != nil {
		return Evidence{Target: t.In, Source: "lstat /proc/<pid>/root" + t.Path, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	o, src, err := kstate.FileOwner(pid, t.Path)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: err.Error()}
	}
	ok := int(o.UID) == t.UID && (t.GID == nil || int(o.GID) == *t.GID)
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: fmt.Sprintf("uid %d, gid %d (%s)", o.UID, o.GID, o.Mode), Pass: ok}
}
