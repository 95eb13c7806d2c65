package tui

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
	"github.com/ctlab/ctlab/tui/components/statepane"
)

// nsOrder is the order namespaces are listed in the pane: the ones most
// lessons talk about first.
var nsOrder = []string{"uts", "pid", "mnt", "net", "ipc", "user", "cgroup", "time"}

// maxChanges bounds the overlay list (a package install changes thousands
// of files; the pane shows the first ones).
const maxChanges = 40

// findContainer returns the first running container of names. last is
// the one found at the previous tick: while it runs, its state file is not
// read again (the check is one read of /proc/<pid>/stat).
func findContainer(ctx context.Context, last *sandbox.Container, names []string) *sandbox.Container {
	if last != nil && slices.Contains(names, last.Name) && last.Running() {
		if last.Name == names[0] {
			return last
		}
	}
	for _, n := range names {
		if ctx.Err() != nil {
			return nil
		}
		if cc, err := sandbox.Load(n); err == nil && cc.Pid > 0 && cc.Running() {
			return cc
		}
	}
	return nil
}

// readSnapshot reads, for container c, only what panes asks for. It runs
// in a tea.Cmd at about 4 Hz, so each read is a handful of /proc files and
// at most one netlink dump per namespace.
//
// Preconditions: root (other processes' /proc/<pid>/ns and setns).
func readSnapshot(c *sandbox.Container, cache *readCache, panes []string) *statepane.Snapshot {
	snap := &statepane.Snapshot{Taken: timeNow()}
	if c == nil {
		return snap
	}
	snap.Container, snap.Pid = c.Name, c.Pid
	var errs []string
	note := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", what, err))
		}
	}
	host := os.Getpid()
	var err error
	want := func(p string) bool { return slices.Contains(panes, p) }

	if want("namespaces") || want("links") {
		for _, k := range nsOrder {
			h, err1 := kstate.NSInode(host, k)
			ci, err2 := kstate.NSInode(c.Pid, k)
			if err1 != nil || err2 != nil {
				continue // the kind does not exist on this kernel
			}
			snap.Namespaces = append(snap.Namespaces, statepane.NSRow{Kind: k, Host: h, Container: ci})
		}
		if !want("namespaces") {
			defer func() { snap.Namespaces = nil }()
		}
	}
	if want("hostname") {
		// Our own names need no setns (which costs a thread each time).
		hh, hd, err := ownUTSNames()
		note("host uts", err)
		ch, cd, _, err := kstate.UTSNames(c.Pid)
		note("container uts", err)
		snap.Hostname = statepane.Pair{Host: hh, Container: ch}
		snap.Domainname = statepane.Pair{Host: hd, Container: cd}
		if hd == "(none)" && cd == "(none)" {
			snap.Domainname = statepane.Pair{}
		}
	}
	if want("cgroup") {
		if cg, err := cache.cgroup(c); err != nil {
			note("cgroup", err)
		} else if st, err := cg.Stats(); err != nil {
			note("cgroup stats", err)
		} else {
			snap.Cgroup = &statepane.Cgroup{
				Path: "ctlab/" + c.Name, MemCurrent: st.MemoryCurrent, MemMax: st.MemoryMax,
				PidsCurrent: st.PidsCurrent, PidsMax: st.PidsMax, CPUUsageUsec: st.CPUUsageUsec,
				CPUQuotaUsec: st.CPUQuotaUsec, CPUPeriodUsec: st.CPUPeriodUsec, NrThrottled: st.NrThrottled,
				OOMKills: st.OOMKills, Frozen: st.Frozen,
			}
		}
	}
	if want("overlay") && c.Layout.Upper != "" {
		snap.Overlay = overlayOf(c.Layout)
	}
	if want("links") {
		hostNet, _ := kstate.NSInode(host, "net")
		ctrNet, _ := kstate.NSInode(c.Pid, "net")
		hl, err := network.ReadLinks("")
		note("host links", err)
		// On the host only the scenario's own veth ends matter (ctl…h),
		// plus lo for comparison; a host has dozens of links otherwise.
		var keep []statepane.Link
		for _, l := range hl {
			if l.Name == "lo" || strings.HasPrefix(l.Name, "ctl") {
				keep = append(keep, toLink(l))
			}
		}
		snap.Nets = append(snap.Nets, statepane.NetNS{Name: "host", Inode: hostNet, Links: keep})
		if ctrNet != hostNet {
			cl, err := network.ReadLinks(c.NSPath(sandbox.NSNet))
			note("container links", err)
			var links []statepane.Link
			for _, l := range cl {
				links = append(links, toLink(l))
			}
			snap.Nets = append(snap.Nets, statepane.NetNS{Name: c.Name, Inode: ctrNet, Links: links})
		}
	}
	if want("ids") {
		// Read directly: kstate.Of would also scan every process on the
		// host, four times a second, for a pane that shows two lines.
		snap.UIDMap, err = readIDMap(c.Pid, "uid_map")
		note("uid_map", err)
		snap.GIDMap, err = readIDMap(c.Pid, "gid_map")
		note("gid_map", err)
	}
	if want("time") {
		if off, err := kstate.ReadTimeOffsets(c.Pid); err == nil {
			snap.Time = &statepane.Time{Monotonic: off.Monotonic, Boottime: off.Boottime}
		} else {
			note("timens_offsets", err)
		}
	}
	if want("processes") || want("mounts") || want("caps") || want("ipc") {
		p, err := cache.process(c)
		if err != nil {
			note("process", err)
		} else {
			fillFromProcess(snap, p, want)
		}
	}
	if len(errs) > 0 {
		snap.Err = strings.Join(errs, "; ")
	}
	return snap
}

func toLink(l network.Link) statepane.Link {
	return statepane.Link{Name: l.Name, State: l.State, Addrs: l.Addrs}
}

func fillFromProcess(snap *statepane.Snapshot, p *kstate.Process, want func(string) bool) {
	if want("processes") {
		if p.Status.OK() {
			snap.Procs = append(snap.Procs, fmt.Sprintf("%d (%d) %s", p.Pid, p.Status.Value.InnerPid(), p.Status.Value.Name))
		}
		for _, d := range p.Descendants.Value {
			snap.Procs = append(snap.Procs, fmt.Sprintf("%d %s", d.Pid, d.Comm))
		}
	}
	if want("mounts") {
		for _, mt := range p.Mounts.Value {
			snap.Mounts = append(snap.Mounts, mt.MountPoint+" "+mt.FSType)
		}
	}
	if want("caps") && p.Status.OK() {
		snap.Caps = fmt.Sprintf("CapEff %016x  CapBnd %016x", p.Status.Value.CapEff, p.Status.Value.CapBnd)
	}
	if want("ipc") && p.IPC.OK() {
		for _, kind := range []string{"shm", "msg", "sem"} {
			for _, o := range p.IPC.Value.Of(kind) {
				snap.IPC = append(snap.IPC, fmt.Sprintf("%s key %#x id %d", kind, o.Key, o.ID))
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ownUTSNames reads this process's hostname and domain name.
func ownUTSNames() (string, string, error) {
	h, err := os.ReadFile("/proc/sys/kernel/hostname")
	if err != nil {
		return "", "", err
	}
	d, err := os.ReadFile("/proc/sys/kernel/domainname")
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(string(h)), strings.TrimSpace(string(d)), nil
}

// standaloneOverlay finds a mounted `mount_overlay` of scenario s and reads
// its upper layer (Scenario.OverlayLayouts says where the engine mounts them).
func standaloneOverlay(s *lab.Scenario) *statepane.Overlay {
	layouts := s.OverlayLayouts()
	names := slices.Sorted(maps.Keys(layouts))
	for _, name := range names {
		if ok, _ := overlay.IsMounted(layouts[name].Merged); ok {
			return overlayOf(layouts[name])
		}
	}
	return nil
}

// overlayOf lists the upper layer's changes against the lowers.
func overlayOf(l overlay.Layout) *statepane.Overlay {
	o := &statepane.Overlay{Upper: l.Upper, Lowers: len(l.Lower)}
	changes, err := overlay.Diff(l)
	if err != nil {
		o.Changes = []statepane.Change{{Path: err.Error(), Kind: "error"}}
		return o
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	for i, ch := range changes {
		if i == maxChanges {
			break
		}
		o.Changes = append(o.Changes, statepane.Change{Path: ch.Path, Kind: ch.Kind.String()})
	}
	return o
}

// readIDMap returns the lines of /proc/<pid>/{uid,gid}_map, whitespace
// normalised ("0 100000 65536").
func readIDMap(pid int, file string) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	return out, nil
}

// readCache keeps what is costly to get again at every tick, for the
// container being watched. The session owns one (no package-level state).
type readCache struct {
	// the opened cgroup: opening one parses the host's cgroup mounts,
	// reading its stats does not
	cgName string
	cgPid  int
	cg     *cgroups.Cgroup
	// the full process snapshot (processes, mounts, caps, IPC): it scans
	// every process on the host (about 2 ms here), so it is read at most
	// once a second rather than at the pane's 4 Hz
	procPid int
	procAt  time.Time
	proc    *kstate.Process
}

// processEvery bounds how often the full process snapshot is taken.
const processEvery = time.Second

func (rc *readCache) cgroup(c *sandbox.Container) (*cgroups.Cgroup, error) {
	if rc == nil {
		return c.Cgroup()
	}
	if rc.cg != nil && rc.cgName == c.Name && rc.cgPid == c.Pid {
		return rc.cg, nil
	}
	cg, err := c.Cgroup()
	if err != nil {
		return nil, err
	}
	rc.cgName, rc.cgPid, rc.cg = c.Name, c.Pid, cg
	return cg, nil
}

func (rc *readCache) process(c *sandbox.Container) (*kstate.Process, error) {
	if rc == nil {
		return kstate.Of(c.Pid)
	}
	if rc.proc != nil && rc.procPid == c.Pid && time.Since(rc.procAt) < processEvery {
		return rc.proc, nil
	}
	p, err := kstate.Of(c.Pid)
	if err != nil {
		return nil, err
	}
	rc.procPid, rc.procAt, rc.proc = c.Pid, time.Now(), p
	return p, nil
}
