package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Checks of cgroups: limits, counters and usage read from cgroupfs, with
// v1 and v2 file names mapped onto each other by kstate.

// CgroupValue compares one cgroup file of a container (v2 or v1 name; the
// engine reads whichever this host has) with a value.
type CgroupValue struct {
	In    string `yaml:"in" json:"in"`
	File  string `yaml:"file" json:"file"`                   // memory.max, memory.limit_in_bytes, pids.current, ...
	Key   string `yaml:"key,omitempty" json:"key,omitempty"` // for flat-keyed files (memory.events oom_kill)
	Op    string `yaml:"op" json:"op" vocab:"== != <= >= < > contains"`
	Value string `yaml:"value" json:"value"`
}

func (t *CgroupValue) validate(v *validator) {
	v.target(t.In, "container")
	v.op(t.Op)
	if t.File == "" || strings.ContainsAny(t.File, "/\x00") || strings.HasPrefix(t.File, ".") {
		v.errf("file %q: want a cgroup file name such as memory.max", t.File)
	}
}

func (t *CgroupValue) eval(_ context.Context, e *Engine) Evidence {
	v, src, err := e.readCgroupFile(t.In, t.File, t.Key)
	ev := Evidence{Target: t.In, Source: src, Expected: t.Op + " " + t.Value, Actual: v}
	if err != nil {
		ev.Err, ev.Actual = err.Error(), "(unreadable)"
		return ev
	}
	ev.Pass = compareValues(v, t.Op, t.Value)
	return ev
}

// readCgroupFile reads one cgroup file of a scenario container from
// cgroupfs (v1/v2 names mapped by kstate.CgroupFile).
func (e *Engine) readCgroupFile(target, file, key string) (value, source string, err error) {
	c := e.container(target)
	if c == nil {
		return "", file, fmt.Errorf("container %s is not started", target)
	}
	return kstate.CgroupFile(c.Name, file, key)
}

// OOMKillHappened: the kernel's OOM killer killed a process of the container.
type OOMKillHappened Target

// ForkRefused: pids.max refused a fork in the container.
type ForkRefused Target

// Frozen: the container's cgroup is frozen.
type Frozen Target

func (t *OOMKillHappened) validate(v *validator) { v.target(t.In, "container") }
func (t *ForkRefused) validate(v *validator)     { v.target(t.In, "container") }
func (t *Frozen) validate(v *validator)          { v.target(t.In, "container") }

func (t *OOMKillHappened) eval(_ context.Context, e *Engine) Evidence {
	return e.cgroupCounter(t.In, []string{"memory.events", "memory.oom_control"}, "oom_kill", "an OOM kill (oom_kill > 0)")
}

func (t *ForkRefused) eval(_ context.Context, e *Engine) Evidence {
	return e.cgroupCounter(t.In, []string{"pids.events"}, "max", "a refused fork (pids.events max > 0)")
}

// eval: v2 cgroup.freeze holds 1; v1 freezer.state says FROZEN (the
// reader maps one name to the other on each host).
func (t *Frozen) eval(_ context.Context, e *Engine) Evidence {
	v, src, err := e.readCgroupFile(t.In, "cgroup.freeze", "")
	want := "frozen (v2 cgroup.freeze 1, v1 freezer.state FROZEN)"
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: v, Pass: v == "1" || v == "FROZEN"}
}

// cgroupCounter passes when key in the first existing file is > 0.
func (e *Engine) cgroupCounter(target string, files []string, key, want string) Evidence {
	var lastSrc string
	for _, f := range files {
		v, src, err := e.readCgroupFile(target, f, key)
		lastSrc = src
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Evidence{Target: target, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return Evidence{Target: target, Source: src, Expected: want, Actual: key + " " + v, Pass: n > 0}
	}
	return Evidence{Target: target, Source: lastSrc, Expected: want, Actual: "(unreadable)", Err: "no " + strings.Join(files, " or ") + " on this host"}
}

// CPUUsage compares a container's CPU use, in CPUs, averaged over Window:
// its cgroup's usage counter read twice.
type CPUUsage struct {
	In     string        `yaml:"in" json:"in"`
	Op     string        `yaml:"op" json:"op"`
	Value  float64       `yaml:"value" json:"value"` // CPUs: 0.25 = a quarter of one CPU
	Window time.Duration `yaml:"window,omitempty" json:"window,omitempty" vocab:"2s"`
}

func (t *CPUUsage) validate(v *validator) {
	v.target(t.In, "container")
	v.op(t.Op)
	if t.Op == "contains" || t.Value < 0 || t.Value > 1024 {
		v.errf("want a numeric op and value in CPUs (0.25)")
	}
	if w := t.Window; w != 0 && (w < 200*time.Millisecond || w > 30*time.Second) {
		v.errf("window %s: want 200ms..30s", w)
	}
}

func (t *CPUUsage) eval(ctx context.Context, e *Engine) Evidence {
	w := t.Window
	if w == 0 {
		w = 2 * time.Second
	}
	want := fmt.Sprintf("CPU use %s %g CPUs (averaged over %s)", t.Op, t.Value, w)
	fail := func(src string, err error) Evidence {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	c, err := e.running(t.In)
	if err != nil {
		return fail("cpu.stat usage_usec / cpuacct.usage", err)
	}
	u1, src, err := kstate.CPUUsage(c.Name)
	t1 := time.Now()
	if err != nil {
		return fail(src, err)
	}
	if err := sleepCtx(ctx, w); err != nil {
		return fail(src, err)
	}
	u2, src, err := kstate.CPUUsage(c.Name)
	el := time.Since(t1)
	if err != nil {
		return fail(src, err)
	}
	cpus := float64(u2-u1) / float64(el)
	ok, _ := compareNum(cpus, t.Op, t.Value)
	return Evidence{Target: t.In, Source: src + " (read twice)", Expected: want,
		Actual: fmt.Sprintf("%.3f CPUs (%s of CPU time in %s)", cpus, (u2 - u1).Round(time.Millisecond), el.Round(time.Millisecond)), Pass: ok}
}

// IOBytes compares the bytes a container's cgroup read or wrote on the
// disk that holds the containers.
type IOBytes struct {
	In    string `yaml:"in" json:"in"`
	Dir   string `yaml:"dir" json:"dir" vocab:"read|write"`
	Op    string `yaml:"op" json:"op"`
	Value string `yaml:"value" json:"value"` // a size: 8M
}

func (t *IOBytes) validate(v *validator) {
	v.target(t.In, "container")
	v.op(t.Op)
	if t.Dir != "read" && t.Dir != "write" {
		v.errf("dir %q: want read or write", t.Dir)
	}
	if n, err := cgroups.ParseSize(t.Value); err != nil || n < 0 {
		v.errf("value %q: want a size like 8M", t.Value)
	}
	if t.Op == "contains" {
		v.errf("op contains: want a numeric op")
	}
}

func (t *IOBytes) eval(_ context.Context, e *Engine) Evidence {
	want := fmt.Sprintf("%s bytes %s %s", t.Dir, t.Op, t.Value)
	fail := func(src string, err error) Evidence {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	c := e.container(t.In)
	if c == nil {
		return fail("io.stat / blkio.throttle.io_service_bytes", fmt.Errorf("container %s is not started", t.In))
	}
	maj, min, err := containerDisk()
	if err != nil {
		return fail("io.stat / blkio.throttle.io_service_bytes", fmt.Errorf("find the containers' disk: %w", err))
	}
	r, w, src, err := kstate.IOBytes(c.Name, maj, min)
	if err != nil {
		return fail(src, err)
	}
	got := r
	if t.Dir == "write" {
		got = w
	}
	limit, _ := cgroups.ParseSize(t.Value)
	ok, _ := compareNum(float64(got), t.Op, float64(limit))
	return Evidence{Target: t.In, Source: src, Expected: want,
		Actual: fmt.Sprintf("read %s, written %s", humanBytes(r), humanBytes(w)), Pass: ok}
}

// IORate is the rate at which a container's cgroup read (or wrote) on the
// containers' disk during its last foreground `load io`: the kernel's
// counters (as io_bytes reads them) before and after, over its wall time.
type IORate IOBytes

func (t *IORate) validate(v *validator) { (*IOBytes)(t).validate(v) }

func (t *IORate) eval(_ context.Context, e *Engine) Evidence {
	want := fmt.Sprintf("%s rate %s %s/s", t.Dir, t.Op, t.Value)
	e.mu.Lock()
	run, ok := e.ioRuns[t.In]
	e.mu.Unlock()
	if !ok || run.took <= 0 {
		return Evidence{Target: t.In, Source: "io.stat / blkio.throttle.io_service_bytes", Expected: want, Actual: "(no load io has run)",
			Err: fmt.Sprintf("no foreground load io has run in %s", t.In)}
	}
	n := run.read
	if t.Dir == "write" {
		n = run.written
	}
	rate := float64(n) / run.took.Seconds()
	limit, _ := cgroups.ParseSize(t.Value)
	ok, _ = compareNum(rate, t.Op, float64(limit))
	return Evidence{Target: t.In, Source: run.src + " before and after the load", Expected: want,
		Actual: fmt.Sprintf("%.1f MiB/s (%s in %.2fs)", rate/(1<<20), humanBytes(n), run.took.Seconds()), Pass: ok}
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%d (%.1f GiB)", n, float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d (%.1f MiB)", n, float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d (%.1f KiB)", n, float64(n)/(1<<10))
	}
	return strconv.FormatUint(n, 10)
}

// CgroupPathEquals compares a target's cgroup path as the host reads it.
type CgroupPathEquals struct {
	In         string `yaml:"in" json:"in"`
	Value      string `yaml:"value" json:"value"`
	Controller string `yaml:"controller,omitempty" json:"controller,omitempty" vocab:"v1: memory"` // v1 hierarchy; the 0:: line on v2
}

func (t *CgroupPathEquals) validate(v *validator) {
	v.target(t.In, "container", "process")
	if !path.IsAbs(t.Value) {
		v.errf("value %q: want an absolute cgroup path such as /ctlab/NAME", t.Value)
	}
	if ctl := t.Controller; ctl != "" && !slices.Contains(controllers, ctl) && ctl != "name=systemd" {
		v.errf("controller %q: want one of %s", ctl, strings.Join(controllers, ", "))
	}
}

// eval reads the target's /proc/<pid>/cgroup from the host.
func (t *CgroupPathEquals) eval(_ context.Context, e *Engine) Evidence {
	ctl := t.Controller
	switch cgroups.Effective() {
	case cgroups.V1:
		if ctl == "" {
			ctl = "memory" // the v2 0:: line of a v1 (or hybrid) host does not hold ctlab's groups
		}
	case cgroups.V2:
		ctl = "" // one tree: the 0:: line, whatever controller the scenario names for v1
	}
	want := "cgroup " + path.Clean(t.Value)
	pid, err := e.pidOf(t.In)
	if err != nil {
		return Evidence{Target: t.In, Source: "/proc/<pid>/cgroup", Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	p, src, err := kstate.CgroupPath(pid, ctl)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	return Evidence{Target: t.In, Source: src + " (read by ctlab on the host)", Expected: want, Actual: "cgroup " + p, Pass: path.Clean(p) == path.Clean(t.Value)}
}
