package lab

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// CgroupView is a container's cgroup as the kernel reports it now: the
// live statistics and each limit file under its v1 and v2 names.
type CgroupView struct {
	Name   string         `json:"name"`
	Stats  *cgroups.Stats `json:"stats,omitempty"`
	Files  []cgroups.File `json:"files,omitempty"`
	Source string         `json:"source"`
	Err    string         `json:"error,omitempty"`
}

// LinksView is the links of one net namespace, read over netlink inside it.
type LinksView struct {
	NetNS  uint64         `json:"netns"` // inode: equal inodes = the same namespace
	Links  []network.Link `json:"links"`
	Source string         `json:"source"`
	Err    string         `json:"error,omitempty"`
}

// UpperView is what the kernel wrote into an overlay's upperdir.
type UpperView struct {
	Layout  overlay.Layout   `json:"layout"`
	Changes []overlay.Change `json:"changes"`
	Source  string           `json:"source"`
	Err     string           `json:"error,omitempty"`
}

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

// Snapshot reads the live state of the host, every running container and
// background process, and every container's cgroup. It does not wait for
// a running action, so the TUI can refresh its panes at a steady rate.
func (e *Engine) Snapshot(ctx context.Context) *Snapshot {
	st := e.Step()
	snap := &Snapshot{Time: time.Now(), Step: st.ID, Panes: st.Show,
		Processes: map[string]*kstate.Process{}, Cgroups: map[string]*CgroupView{}, Errors: map[string]string{},
		Links: map[string]*LinksView{}, Upper: map[string]*UpperView{}}
	for _, t := range e.Targets() {
		if ctx.Err() != nil {
			break
		}
		pid := os.Getpid()
		if t != "host" {
			var err error
			if pid, err = e.pidOf(t); err != nil {
				snap.Errors[t] = err.Error()
				continue
			}
		}
		p, err := kstate.Of(pid)
		if err != nil {
			snap.Errors[t] = err.Error()
			continue
		}
		snap.Processes[t] = p
		if t == "host" || e.container(t) != nil {
			ns := ""
			if t != "host" {
				ns = fmt.Sprintf("/proc/%d/ns/net", pid)
			}
			links, src, err := kstate.Links(ns)
			lv := &LinksView{NetNS: p.Namespaces["net"].Value, Links: links, Source: src}
			if err != nil {
				lv.Err = err.Error()
			}
			snap.Links[t] = lv
		}
		if c := e.container(t); c != nil {
			v := &CgroupView{Name: c.Name, Source: "cgroupfs ctlab/" + c.Name}
			stats, files, err := kstate.Cgroup(c.Name)
			v.Stats, v.Files = stats, files
			if err != nil {
				v.Err = err.Error()
			}
			snap.Cgroups[t] = v
		}
	}
	e.mu.Lock()
	layouts := map[string]overlay.Layout{}
	for n, c := range e.containers {
		layouts[n] = c.Layout
	}
	for n, o := range e.overlays {
		layouts[n] = o.layout
	}
	e.mu.Unlock()
	for n, l := range layouts {
		ch, src, err := kstate.Upper(l)
		uv := &UpperView{Layout: l, Changes: ch, Source: src}
		if err != nil {
			uv.Err = err.Error()
		}
		snap.Upper[n] = uv
	}
	return snap
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
	e.emit(*e.Snapshot(ctx))
}
