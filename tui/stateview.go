package tui

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/components/statepane"
)

// nsOrder is the order namespaces are listed in the pane: the ones most
// lessons talk about first.
var nsOrder = []string{"uts", "pid", "mnt", "net", "ipc", "user", "cgroup", "time"}

// maxChanges bounds the overlay list (a package install changes thousands
// of files; the pane shows the first ones).
const maxChanges = 40

// stateView maps the lab's focused snapshot (the host and the step's
// focus, read by the engine) to the state pane's view model. It reads
// nothing itself.
func stateView(s *lab.Snapshot) *statepane.Snapshot {
	v := &statepane.Snapshot{Taken: timeNow()}
	want := func(p string) bool { return slices.Contains(s.Panes, p) }
	host, f := s.Targets["host"], s.Targets[s.Focus]
	var errs []string
	if f != nil && f.Pid > 0 && host != nil {
		v.Container, v.Pid = f.Name, f.Pid
		containerView(v, host, f, want)
		if e := f.Err(); e != "" {
			errs = append(errs, e)
		}
		if e := host.Err(); e != "" {
			errs = append(errs, "host "+e)
		}
	}
	if want("overlay") {
		v.Overlay = overlayView(s)
	}
	v.Err = strings.Join(errs, "; ")
	return v
}

// containerView fills v with container f beside the host.
func containerView(v *statepane.Snapshot, host, f *lab.TargetState, want func(string) bool) {
	if want("namespaces") {
		for _, k := range nsOrder {
			if ns, ok := f.Namespaces[k]; ok {
				v.Namespaces = append(v.Namespaces, statepane.NSRow{Kind: k, Host: ns.Host, Container: ns.Container})
			}
		}
	}
	if want("hostname") && host.Process != nil && f.Process != nil {
		v.Hostname = statepane.Pair{Host: host.Process.Hostname.Value, Container: f.Process.Hostname.Value}
		v.Domainname = statepane.Pair{Host: host.Process.Domainname.Value, Container: f.Process.Domainname.Value}
		if v.Domainname.Host == "(none)" && v.Domainname.Container == "(none)" {
			v.Domainname = statepane.Pair{}
		}
	}
	if st := f.CgroupStats; want("cgroup") && st != nil {
		v.Cgroup = &statepane.Cgroup{
			Path: f.Cgroup, MemCurrent: st.MemoryCurrent, MemMax: st.MemoryMax,
			PidsCurrent: st.PidsCurrent, PidsMax: st.PidsMax, CPUUsageUsec: st.CPUUsageUsec,
			CPUQuotaUsec: st.CPUQuotaUsec, CPUPeriodUsec: st.CPUPeriodUsec, NrThrottled: st.NrThrottled,
			OOMKills: st.OOMKills, Frozen: st.Frozen,
		}
	}
	if want("links") {
		v.Nets = netsView(host, f)
	}
	if f.Process != nil {
		processView(v, f.Process, want)
	}
}

// netsView lists the host's links and, when it has its own net namespace,
// the container's. On the host only the scenario's veth ends (ctl…) and
// lo matter: a host has dozens of links otherwise.
func netsView(host, f *lab.TargetState) []statepane.NetNS {
	var keep []statepane.Link
	for _, l := range host.Links {
		if l.Name == "lo" || strings.HasPrefix(l.Name, "ctl") {
			keep = append(keep, statepane.Link{Name: l.Name, State: l.State, Addrs: l.Addrs})
		}
	}
	nets := []statepane.NetNS{{Name: "host", Inode: host.NetNS, Links: keep}}
	if f.NetNS != host.NetNS {
		var links []statepane.Link
		for _, l := range f.Links {
			links = append(links, statepane.Link{Name: l.Name, State: l.State, Addrs: l.Addrs})
		}
		nets = append(nets, statepane.NetNS{Name: f.Name, Inode: f.NetNS, Links: links})
	}
	return nets
}

// processView fills the panes drawn from the container's init process.
func processView(v *statepane.Snapshot, p *lab.ProcessState, want func(string) bool) {
	if want("ids") {
		for _, m := range p.UIDMap.Value {
			v.UIDMap = append(v.UIDMap, m.String())
		}
		for _, m := range p.GIDMap.Value {
			v.GIDMap = append(v.GIDMap, m.String())
		}
	}
	if want("time") && p.TimeOffsets.OK() {
		v.Time = &statepane.Time{Monotonic: p.TimeOffsets.Value.Monotonic, Boottime: p.TimeOffsets.Value.Boottime}
	}
	if want("processes") {
		if p.Status.OK() {
			v.Procs = append(v.Procs, fmt.Sprintf("%d (%d) %s", p.Pid, p.Status.Value.InnerPid(), p.Status.Value.Name))
		}
		for _, d := range p.Descendants.Value {
			v.Procs = append(v.Procs, fmt.Sprintf("%d %s", d.Pid, d.Comm))
		}
	}
	if want("mounts") {
		for _, mt := range p.Mounts.Value {
			v.Mounts = append(v.Mounts, mt.MountPoint+" "+mt.FSType)
		}
	}
	if want("caps") && p.Status.OK() {
		v.Caps = fmt.Sprintf("CapEff %016x  CapBnd %016x", p.Status.Value.CapEff, p.Status.Value.CapBnd)
	}
	if want("ipc") && p.IPC.OK() {
		for _, kind := range []string{"shm", "msg", "sem"} {
			for _, o := range p.IPC.Value.Of(kind) {
				v.IPC = append(v.IPC, fmt.Sprintf("%s key %#x id %d", kind, o.Key, o.ID))
			}
		}
	}
}

// overlayView is the upper layer of the focus container or, when that has
// none (or no container runs), of the stand-alone overlay the engine read.
func overlayView(s *lab.Snapshot) *statepane.Overlay {
	o := s.Targets[s.Focus]
	if o == nil || o.Layout == nil {
		o = nil
		for _, n := range slices.Sorted(maps.Keys(s.Targets)) {
			if t := s.Targets[n]; t.Pid == 0 && t.Layout != nil {
				o = t
				break
			}
		}
	}
	if o == nil {
		return nil
	}
	v := &statepane.Overlay{Upper: o.Layout.Upper, Lowers: len(o.Layout.Lower)}
	if e := o.Errors["upper"]; e != "" {
		v.Changes = []statepane.Change{{Path: e, Kind: "error"}}
		return v
	}
	for i, ch := range o.Upper {
		if i == maxChanges {
			break
		}
		v.Changes = append(v.Changes, statepane.Change{Path: ch.Path, Kind: ch.Kind.String()})
	}
	return v
}
