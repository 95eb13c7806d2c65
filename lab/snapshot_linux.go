package lab

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Targets lists the names checks and panes can refer to right now: host,
// the running containers and background processes, sorted (host first).
func (e *Engine) Targets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for n := range e.containers {
		out = append(out, n)
	}
	for n := range e.procs {
		out = append(out, n)
	}
	for n := range e.hostProcs {
		out = append(out, n)
	}
	sort.Strings(out)
	return append([]string{"host"}, out...)
}

// paneParts is what each state pane shows, as the kernel state read for it.
var paneParts = map[string]kstate.Parts{
	"namespaces": kstate.PartNamespaces,
	"hostname":   kstate.PartUTS,
	"processes":  kstate.PartStatus | kstate.PartChildren,
	"mounts":     kstate.PartMounts,
	"cgroup":     kstate.PartCgroup,
	"overlay":    kstate.PartUpper,
	"links":      kstate.PartLinks,
	"ipc":        kstate.PartIPC,
	"ids":        kstate.PartStatus | kstate.PartIDMaps,
	"time":       kstate.PartTime,
	"caps":       kstate.PartStatus,
}

// PanesParts returns the kernel state the panes show.
func PanesParts(panes []string) kstate.Parts {
	var p kstate.Parts
	for _, n := range panes {
		p |= paneParts[n]
	}
	return p
}

// SnapshotCache keeps costly reads between snapshots of one engine, for a
// refresh at a steady rate (the TUI's 4 Hz): opened cgroups, and the
// slow parts of a process (mounts, IPC, descendants) at most
// kstate.SlowEvery old. The zero value is ready to use.
type SnapshotCache struct{ kc kstate.Cache }

// SnapshotOptions select what Engine.Snapshot reads.
type SnapshotOptions struct {
	// Step is the index of the step whose `show` panes select the parts
	// read; out of range means the current step.
	Step int
	// Focus reads only the step's focus (see Snapshot.Focus) and, beside
	// a focus container, the host: what the TUI's one state pane shows.
	Focus bool
	// Cache, when not nil, keeps costly reads between calls.
	Cache *SnapshotCache
}

// subject is one target of a snapshot and what to read of it.
type subject struct {
	name  string // the key in Snapshot.Targets
	sub   kstate.Subject
	parts kstate.Parts
	err   error // why its process is not read (not running)
}

// Snapshot reads the live kernel state for the panes of a step: of the
// host, the scenario's containers, background processes and stand-alone
// overlays (or, with opt.Focus, of the host and the step's focus only).
// Only the parts the panes show are read. It does not wait for a running
// action, so the TUI can refresh its panes at a steady rate.
func (e *Engine) Snapshot(ctx context.Context, opt SnapshotOptions) *Snapshot {
	i := opt.Step
	if i < 0 || i >= len(e.s.Steps) {
		i = e.Current()
	}
	st := e.s.Steps[i]
	snap := &Snapshot{Time: time.Now(), Step: st.ID, Panes: st.Show,
		Targets: map[string]*kstate.Snapshot{}, Errors: map[string]string{}}
	var subs []subject
	if opt.Focus {
		subs, snap.Focus = e.focusSubjects(st)
	} else {
		subs = e.subjects()
	}
	var cache *kstate.Cache
	if opt.Cache != nil {
		cache = &opt.Cache.kc
	}
	parts := PanesParts(st.Show)
	for _, s := range subs {
		if err := ctx.Err(); err != nil {
			snap.Errors["snapshot"] = err.Error()
			break
		}
		if s.err != nil {
			snap.Errors[s.name] = s.err.Error()
		}
		snap.Targets[s.name] = kstate.ReadSnapshot(s.sub, parts&s.parts, cache)
	}
	return snap
}

// What is read of targets other than containers. A background process's
// links are its container's, shown there. The host's descendants are
// ctlab's own children: no pane shows them. Beside a focus container the
// host is the other column of its names and links only (the focus's
// namespace rows carry the host's inodes already).
const (
	processParts   = kstate.PartsProcess
	hostParts      = kstate.PartsAll &^ kstate.PartChildren
	hostFocusParts = kstate.PartUTS | kstate.PartLinks
)

// hostSubject is ctlab itself, whose namespaces are the host's.
func hostSubject(parts kstate.Parts) subject {
	return subject{name: "host", sub: kstate.Subject{Name: "host", Pid: os.Getpid()}, parts: parts}
}

// subjects lists every target: host, containers, background and host
// processes, stand-alone overlays.
func (e *Engine) subjects() []subject {
	subs := []subject{hostSubject(hostParts)}
	e.mu.Lock()
	specs := slices.Sorted(maps.Keys(e.containers))
	procs := slices.Sorted(maps.Keys(e.procs))
	procs = append(procs, slices.Sorted(maps.Keys(e.hostProcs))...)
	overlays := slices.Sorted(maps.Keys(e.overlays))
	e.mu.Unlock()
	for _, n := range specs {
		if s, ok := e.containerSubject(n); ok {
			subs = append(subs, s)
		}
	}
	for _, n := range procs {
		pid, err := e.pidOf(n)
		subs = append(subs, subject{name: n, sub: kstate.Subject{Name: n, Pid: pid}, parts: processParts, err: err})
	}
	for _, n := range overlays {
		if s, ok := e.overlaySubject(n); ok {
			subs = append(subs, s)
		}
	}
	return subs
}

// focusSubjects is the step's focus: its shell container, else the first
// declared container that runs, with the host beside it (and, when the
// step shows the overlay pane and the container has no overlay of its
// own, the first stand-alone overlay); without a running container, the
// first stand-alone overlay alone.
func (e *Engine) focusSubjects(st *Step) ([]subject, string) {
	specs := slices.Sorted(maps.Keys(e.s.Containers))
	if st.Shell != "" {
		specs = append([]string{st.Shell}, specs...)
	}
	for _, n := range specs {
		if s, ok := e.containerSubject(n); ok && s.err == nil {
			s.sub.OwnNetOnly = true // the host's links are read for the host
			subs := []subject{hostSubject(hostFocusParts), s}
			if o, ok := e.firstOverlay(); ok && s.sub.Layout.Upper == "" && slices.Contains(st.Show, "overlay") {
				subs = append(subs, o)
			}
			return subs, n
		}
	}
	if o, ok := e.firstOverlay(); ok {
		return []subject{o}, o.name
	}
	return nil, ""
}

// firstOverlay is the stand-alone overlay first in name order (false:
// the scenario has mounted none).
func (e *Engine) firstOverlay() (subject, bool) {
	e.mu.Lock()
	names := slices.Sorted(maps.Keys(e.overlays))
	e.mu.Unlock()
	for _, n := range names {
		if s, ok := e.overlaySubject(n); ok {
			return s, true
		}
	}
	return subject{}, false
}

// containerSubject says where the kernel objects of container spec n are
// (false: it was not started). Its process is read only while it runs;
// its cgroup and upper layer in any case.
func (e *Engine) containerSubject(n string) (subject, bool) {
	c := e.container(n)
	if c == nil {
		return subject{}, false
	}
	s := subject{name: n, parts: kstate.PartsAll, sub: kstate.Subject{Name: c.Name, Cgroup: c.Name, Layout: c.Layout}}
	if c.Running() {
		s.sub.Pid = c.Pid
	} else {
		s.err = fmt.Errorf("container %s is not running", c.Name)
	}
	return s, true
}

// overlaySubject is a stand-alone overlay the scenario mounted (false:
// there is no such overlay).
func (e *Engine) overlaySubject(n string) (subject, bool) {
	e.mu.Lock()
	o := e.overlays[n]
	e.mu.Unlock()
	if o == nil {
		return subject{}, false
	}
	return subject{name: n, sub: kstate.Subject{Name: n, Layout: o.layout}, parts: kstate.PartUpper}, true
}

func (e *Engine) emitSnapshot(st *Step) {
	e.mu.Lock()
	none := e.opt.Emit == nil || e.quiet
	e.mu.Unlock()
	if none {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.emit(*e.Snapshot(ctx, SnapshotOptions{Step: slices.Index(e.s.Steps, st)}))
}
