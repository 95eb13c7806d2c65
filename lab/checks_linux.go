package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Evaluate runs checks against the live kernel and returns their evidence.
// It never consults what the engine intended: every value is read back
// from /proc, cgroupfs, netlink or the upperdir.
func (e *Engine) Evaluate(ctx context.Context, checks []*Check) []Evidence {
	out := make([]Evidence, 0, len(checks))
	for _, c := range checks {
		ev := e.evaluate(ctx, c)
		ev.Check, ev.Desc, ev.Guard = c.Kind(), c.String(), c.Guard
		if c.Not {
			ev.Expected = "not " + ev.Expected
			if ev.Err == "" {
				ev.Pass = !ev.Pass
			}
		}
		if ev.Err != "" {
			ev.Pass = false
		}
		out = append(out, ev)
	}
	return out
}

// pidOf resolves a check target to a host pid.
func (e *Engine) pidOf(target string) (int, error) {
	if target == "host" {
		return os.Getpid(), nil
	}
	e.mu.Lock()
	c, bp, hp := e.containers[target], e.procs[target], e.hostProcs[target]
	e.mu.Unlock()
	switch {
	case hp != nil:
		if !hp.alive() {
			return 0, fmt.Errorf("process %s (pid %d) has exited", target, hp.pid)
		}
		return hp.pid, nil
	case c != nil:
		if !c.Running() {
			return 0, fmt.Errorf("container %s is not running", c.Name)
		}
		return c.Pid, nil
	case bp != nil:
		select {
		case <-bp.done:
			return 0, fmt.Errorf("process %s has exited", target)
		default:
		}
		return bp.pid, nil
	}
	return 0, fmt.Errorf("%s is not running (not started yet?)", target)
}

func (e *Engine) evaluate(ctx context.Context, c *Check) (ev Evidence) {
	fail := func(target, source string, err error) Evidence {
		return Evidence{Target: target, Source: source, Err: err.Error(), Actual: "(unreadable)"}
	}
	switch {
	case c.NamespaceDiffers != nil || c.NamespaceSame != nil:
		n, same := c.NamespaceDiffers, false
		if n == nil {
			n, same = c.NamespaceSame, true
		}
		b := n.B
		if b == "" {
			b = "host"
		}
		pa, err := e.pidOf(n.A)
		if err != nil {
			return fail(n.A, "/proc/<pid>/ns/"+n.Kind, err)
		}
		pb, err := e.pidOf(b)
		if err != nil {
			return fail(b, "/proc/<pid>/ns/"+n.Kind, err)
		}
		src := fmt.Sprintf("/proc/%d/ns/%s vs /proc/%d/ns/%s", pa, n.Kind, pb, n.Kind)
		ia, err := kstate.NSInode(pa, n.Kind)
		if err != nil {
			return fail(n.A, src, err)
		}
		ib, err := kstate.NSInode(pb, n.Kind)
		if err != nil {
			return fail(b, src, err)
		}
		ev = Evidence{Target: n.A + " vs " + b, Source: src, Actual: fmt.Sprintf("%s:[%d] vs %s:[%d]", n.Kind, ia, n.Kind, ib)}
		if same {
			ev.Expected, ev.Pass = "the same inode", ia == ib
		} else {
			ev.Expected, ev.Pass = "different inodes", ia != ib
		}
		return ev
	case c.HostnameEquals != nil, c.DomainnameEquals != nil, c.HostnameUnchanged != nil:
		var target, want string
		domain := c.DomainnameEquals != nil
		switch {
		case c.HostnameEquals != nil:
			target, want = c.HostnameEquals.In, c.HostnameEquals.Value
		case domain:
			target, want = c.DomainnameEquals.In, c.DomainnameEquals.Value
		default:
			target = c.HostnameUnchanged.In
			e.mu.Lock()
			h, ok := e.hostname0[target]
			e.mu.Unlock()
			if !ok {
				return fail(target, "", errors.New("no hostname was recorded at start for "+target))
			}
			want = h
		}
		pid, err := e.pidOf(target)
		if err != nil {
			return fail(target, "/proc/sys/kernel/hostname", err)
		}
		h, d, src, err := kstate.UTSNames(pid)
		file := "hostname"
		got := h
		if domain {
			file, got = "domainname", d
		}
		if err != nil {
			return fail(target, src+file, err)
		}
		return Evidence{Target: target, Source: src + file, Expected: want, Actual: got, Pass: got == want}
	case c.PidInNSEquals != nil:
		t := c.PidInNSEquals
		pid, err := e.pidOf(t.In)
		src := "/proc/<pid>/status NSpid"
		if err != nil {
			return fail(t.In, src, err)
		}
		src = fmt.Sprintf("/proc/%d/status NSpid", pid)
		st, err := kstate.ReadStatus(pid)
		if err != nil {
			return fail(t.In, src, err)
		}
		got := strconv.Itoa(st.InnerPid())
		return Evidence{Target: t.In, Source: src, Expected: t.Value, Actual: fmt.Sprintf("%s (NSpid %v)", got, st.NSpid), Pass: got == t.Value}
	case c.MountVisible != nil || c.MountAbsent != nil:
		m, visible := c.MountVisible, true
		if m == nil {
			m, visible = c.MountAbsent, false
		}
		pid, err := e.pidOf(m.In)
		if err != nil {
			return fail(m.In, "/proc/<pid>/mountinfo", err)
		}
		src := fmt.Sprintf("/proc/%d/mountinfo", pid)
		ms, err := kstate.ReadMountinfo(pid)
		if err != nil {
			return fail(m.In, src, err)
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
	case c.CgroupValue != nil:
		return e.cgroupValue(c.CgroupValue)
	case c.OOMKillHappened != nil:
		return e.cgroupCounter(c.OOMKillHappened.In, []string{"memory.events", "memory.oom_control"}, "oom_kill", "an OOM kill (oom_kill > 0)")
	case c.ForkRefused != nil:
		return e.cgroupCounter(c.ForkRefused.In, []string{"pids.events"}, "max", "a refused fork (pids.events max > 0)")
	case c.Frozen != nil:
		// v2 cgroup.freeze holds 1; v1 freezer.state says FROZEN (the
		// reader maps one name to the other on each host).
		t := c.Frozen.In
		v, src, err := e.readCgroupFile(t, "cgroup.freeze", "")
		want := "frozen (v2 cgroup.freeze 1, v1 freezer.state FROZEN)"
		if err != nil {
			return Evidence{Target: t, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
		}
		return Evidence{Target: t, Source: src, Expected: want, Actual: v, Pass: v == "1" || v == "FROZEN"}
	case c.ProcessRunning != nil:
		t := c.ProcessRunning.In
		pid, err := e.pidOf(t)
		if err != nil {
			return Evidence{Target: t, Source: "/proc/<pid>", Expected: "running", Actual: err.Error()}
		}
		st, err := kstate.ReadStatus(pid)
		if err != nil {
			return Evidence{Target: t, Source: fmt.Sprintf("/proc/%d/status", pid), Expected: "running", Actual: err.Error()}
		}
		return Evidence{Target: t, Source: fmt.Sprintf("/proc/%d/status", pid), Expected: "running", Actual: fmt.Sprintf("pid %d (%s)", pid, st.Name), Pass: true}
	case c.FileInUpper != nil || c.WhiteoutExists != nil || c.OpaqueDir != nil:
		return e.upperCheck(c)
	case c.LinkHasAddress != nil || c.LinkCount != nil:
		return e.linkCheck(c)
	case c.UIDMapEquals != nil:
		t := c.UIDMapEquals
		pid, err := e.pidOf(t.In)
		if err != nil {
			return fail(t.In, "/proc/<pid>/uid_map", err)
		}
		m, src, err := kstate.ReadIDMap(pid, "uid")
		if err != nil {
			return fail(t.In, src, err)
		}
		var lines []string
		for _, x := range m {
			lines = append(lines, x.String())
		}
		got, want := strings.Join(lines, "; "), normMap(t.Value)
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: got, Pass: got == want}
	case c.TimeOffset != nil:
		t := c.TimeOffset
		pid, err := e.pidOf(t.In)
		if err != nil {
			return fail(t.In, "/proc/<pid>/timens_offsets", err)
		}
		src := fmt.Sprintf("/proc/%d/timens_offsets", pid)
		off, err := kstate.ReadTimeOffsets(pid)
		if err != nil {
			return fail(t.In, src, err)
		}
		got := off.Monotonic
		if t.Clock == "boottime" {
			got = off.Boottime
		}
		ok, _ := compareNum(float64(got), t.Op, float64(t.Value))
		return Evidence{Target: t.In, Source: src, Expected: fmt.Sprintf("%s %s %s", t.Clock, t.Op, t.Value), Actual: got.String(), Pass: ok}
	case c.IPCObjectVisible != nil:
		t := c.IPCObjectVisible
		pid, err := e.pidOf(t.In)
		if err != nil {
			return fail(t.In, "/proc/sysvipc/"+t.Kind, err)
		}
		ipc, src, err := kstate.IPCObjects(pid)
		if err != nil {
			return fail(t.In, src, err)
		}
		objs := ipc.Of(t.Kind)
		var keys []string
		ok := false
		var want int64
		if t.Key != "" {
			want, _ = strconv.ParseInt(t.Key, 0, 64)
		}
		for _, o := range objs {
			keys = append(keys, fmt.Sprintf("%#x", o.Key))
			if t.Key == "" || o.Key == want {
				ok = true
			}
		}
		expected := "a " + t.Kind + " object"
		if t.Key != "" {
			expected += " with key " + t.Key
		}
		actual := fmt.Sprintf("%d %s objects %v", len(objs), t.Kind, keys)
		return Evidence{Target: t.In, Source: src, Expected: expected, Actual: actual, Pass: ok}
	case c.ProcessParent != nil:
		t := c.ProcessParent
		pid, err := e.pidOf(t.Of)
		if err != nil {
			return fail(t.Of, "/proc/<pid>/status PPid", err)
		}
		src := fmt.Sprintf("/proc/%d/status PPid", pid)
		// The chain of parents, nearest first (up to 8 levels, for evidence).
		var chain []kstate.Proc
		for cur := pid; len(chain) < 8 && cur > 1; {
			par, err := kstate.Parent(cur)
			if err != nil {
				if len(chain) == 0 {
					return fail(t.Of, src, err)
				}
				break
			}
			chain = append(chain, par)
			cur = par.Pid
		}
		var desc []string
		for _, p := range chain {
			desc = append(desc, fmt.Sprintf("%d (%s)", p.Pid, p.Comm))
		}
		actual := "parent " + strings.Join(desc, " <- ")
		if !t.Ancestor && len(chain) > 0 {
			chain = chain[:1]
		}
		rel := "parent"
		if t.Ancestor {
			rel = "ancestor"
		}
		match := func(f func(kstate.Proc) bool) bool {
			for _, p := range chain {
				if f(p) {
					return true
				}
			}
			return false
		}
		if t.Comm != "" {
			return Evidence{Target: t.Of, Source: src, Expected: rel + " named " + t.Comm, Actual: actual,
				Pass: match(func(p kstate.Proc) bool { return p.Comm == t.Comm })}
		}
		ppid, err := e.pidOf(t.Parent)
		if err != nil {
			return fail(t.Parent, src, err)
		}
		return Evidence{Target: t.Of, Source: src, Expected: fmt.Sprintf("%s %s (pid %d)", rel, t.Parent, ppid), Actual: actual,
			Pass: match(func(p kstate.Proc) bool { return p.Pid == ppid })}
	case c.HTTPBodyContains != nil:
		return e.httpCheck(ctx, c.HTTPBodyContains)
	case c.ExecOutputContains != nil:
		t := c.ExecOutputContains
		src := "exec " + strings.Join(t.Argv, " ") + " in " + t.In
		out, code, err := e.execIn(ctx, t.In, t.Argv, "", t.Timeout, nil)
		if err != nil {
			return fail(t.In, src, err)
		}
		actual := strings.TrimSpace(truncate(out, 400))
		if code != nil && *code != 0 {
			actual += fmt.Sprintf(" (exit %d)", *code)
		}
		return Evidence{Target: t.In, Source: src, Expected: "output containing " + strconv.Quote(t.Value), Actual: actual, Pass: strings.Contains(out, t.Value)}
	case c.CPUUsage != nil:
		return e.cpuUsage(ctx, c.CPUUsage)
	case c.IOBytes != nil:
		return e.ioBytes(c.IOBytes)
	case c.FileUnchanged != nil:
		return e.fileUnchanged(ctx, c.FileUnchanged)
	case c.InitSystem != nil:
		return initSystem(c.InitSystem)
	case c.KernelReleaseSame != nil:
		return e.kernelRelease(c.KernelReleaseSame)
	case c.ProcessUIDEquals != nil:
		return e.processUID(ctx, c.ProcessUIDEquals)
	case c.FileOwnerEquals != nil:
		return e.fileOwner(c.FileOwnerEquals)
	case c.CgroupPathEquals != nil:
		return e.cgroupPath(c.CgroupPathEquals)
	case c.UptimeOffset != nil:
		return e.uptimeOffset(ctx, c.UptimeOffset)
	case c.FileContains != nil:
		t := c.FileContains
		want := "a file containing " + strconv.Quote(t.Value)
		var b []byte
		var src string
		// An overlay, layer or bundle the scenario made is read under its
		// own directory (os.Root: no lookup leaves it); anything else
		// through the root of a running process.
		if dir := e.dirOf(t.In); dir != "" {
			b, src, err := kstate.ReadFileUnder(dir, t.Path, 1<<20)
			if err != nil {
				return Evidence{Target: t.In, Source: src, Expected: want, Actual: err.Error()}
			}
			return Evidence{Target: t.In, Source: src, Expected: want, Actual: strings.TrimSpace(truncate(string(b), 400)), Pass: strings.Contains(string(b), t.Value)}
		}
		pid, err := e.pidOf(t.In)
		if err != nil {
			return fail(t.In, "/proc/<pid>/root"+t.Path, err)
		}
		b, src, err = kstate.ReadFileIn(pid, t.Path, 1<<20)
		if err != nil {
			return Evidence{Target: t.In, Source: src, Expected: want, Actual: err.Error()}
		}
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: strings.TrimSpace(truncate(string(b), 400)), Pass: strings.Contains(string(b), t.Value)}
	}
	return Evidence{Err: "unknown check " + c.Kind()}
}

func normMap(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines = append(lines, strings.Join(f, " "))
		}
	}
	return strings.Join(lines, "; ")
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

func (e *Engine) cgroupValue(t *CgroupCheck) Evidence {
	v, src, err := e.readCgroupFile(t.In, t.File, t.Key)
	ev := Evidence{Target: t.In, Source: src, Expected: t.Op + " " + t.Value, Actual: v}
	if err != nil {
		ev.Err, ev.Actual = err.Error(), "(unreadable)"
		return ev
	}
	ev.Pass = compareValues(v, t.Op, t.Value)
	return ev
}

// compareValues compares numerically when both sides are numbers or sizes
// ("64M"), "max" being larger than any number; otherwise as strings.
func compareValues(got, op, want string) bool {
	if op == "contains" {
		return strings.Contains(got, want)
	}
	num := func(s string) (float64, bool) {
		if s == "max" {
			return 1e300, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
		if n, err := ParseBytes(s); err == nil {
			return float64(n), true
		}
		return 0, false
	}
	g, ok1 := num(got)
	w, ok2 := num(want)
	if ok1 && ok2 {
		ok, _ := compareNum(g, op, w)
		return ok
	}
	switch op {
	case "==":
		return got == want
	case "!=":
		return got != want
	}
	return false
}

func compareNum(g float64, op string, w float64) (bool, error) {
	switch op {
	case "==", "":
		return g == w, nil
	case "!=":
		return g != w, nil
	case "<=":
		return g <= w, nil
	case ">=":
		return g >= w, nil
	case "<":
		return g < w, nil
	case ">":
		return g > w, nil
	}
	return false, fmt.Errorf("unknown op %q", op)
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

func (e *Engine) upperCheck(c *Check) Evidence {
	kind, pc := "file", c.FileInUpper
	if c.WhiteoutExists != nil {
		kind, pc = "whiteout", c.WhiteoutExists
	}
	if c.OpaqueDir != nil {
		kind, pc = "opaque", c.OpaqueDir
	}
	l, err := e.layoutOf(pc.In)
	if err != nil {
		return Evidence{Target: pc.In, Source: "upperdir", Actual: "(unreadable)", Err: err.Error()}
	}
	want := map[string]string{"file": "a file in the upperdir (copied up or new)", "whiteout": "a whiteout (character device 0/0)", "opaque": "an opaque directory (trusted.overlay.opaque=y)"}[kind]
	u, src, err := kstate.UpperEntry(l, pc.Path)
	if err != nil {
		return Evidence{Target: pc.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	actual := "absent from the upperdir"
	switch {
	case u.Whiteout:
		actual = "whiteout (char 0/0)"
	case u.Opaque:
		actual = "directory, opaque"
	case u.Exists && u.Mode.IsDir():
		actual = "directory, not opaque"
	case u.Exists:
		actual = u.Mode.String()
	}
	ok := map[string]bool{"file": u.Exists && !u.Whiteout, "whiteout": u.Whiteout, "opaque": u.Opaque}[kind]
	if kind == "opaque" {
		src += " (xattr trusted.overlay.opaque)"
	}
	return Evidence{Target: pc.In, Source: src, Expected: want, Actual: actual, Pass: ok}
}

func (e *Engine) linkCheck(c *Check) Evidence {
	in := ""
	if c.LinkHasAddress != nil {
		in = c.LinkHasAddress.In
	} else {
		in = c.LinkCount.In
	}
	ns := ""
	if in != "host" {
		pid, err := e.pidOf(in)
		if err != nil {
			return Evidence{Target: in, Source: "netlink", Actual: "(unreadable)", Err: err.Error()}
		}
		ns = fmt.Sprintf("/proc/%d/ns/net", pid)
	}
	links, src, err := kstate.Links(ns)
	if err != nil {
		return Evidence{Target: in, Source: src, Actual: "(unreadable)", Err: err.Error()}
	}
	if c.LinkCount != nil {
		var names []string
		for _, l := range links {
			names = append(names, l.Name)
		}
		ok, _ := compareNum(float64(len(links)), c.LinkCount.Op, float64(c.LinkCount.Value))
		return Evidence{Target: in, Source: src, Expected: fmt.Sprintf("link count %s %d", c.LinkCount.Op, c.LinkCount.Value),
			Actual: fmt.Sprintf("%d %v", len(links), names), Pass: ok}
	}
	t := c.LinkHasAddress
	var seen []string
	ok := false
	for _, l := range links {
		if t.Link != "" && l.Name != t.Link {
			continue
		}
		for _, a := range l.Addrs {
			seen = append(seen, l.Name+" "+a)
			if addrMatches(a, t.Address) {
				ok = true
			}
		}
	}
	want := "address " + t.Address
	if t.Link != "" {
		want += " on " + t.Link
	}
	return Evidence{Target: in, Source: src, Expected: want, Actual: fmt.Sprintf("%v", seen), Pass: ok}
}

// addrMatches: have is a CIDR from the kernel; want is "any" (a non-
// loopback IPv4), a CIDR (exact) or an address.
func addrMatches(have, want string) bool {
	p, err := netip.ParsePrefix(have)
	if err != nil {
		return false
	}
	if want == "any" {
		return p.Addr().Is4() && !p.Addr().IsLoopback()
	}
	if w, err := netip.ParsePrefix(want); err == nil {
		return w == p
	}
	if a, err := netip.ParseAddr(want); err == nil {
		return a == p.Addr()
	}
	return false
}

// httpCheck does GET on 127.0.0.1 inside the container's net namespace:
// the socket is created on a thread that has joined that namespace, and a
// socket stays in the namespace it was made in.
func (e *Engine) httpCheck(ctx context.Context, t *HTTPCheck) Evidence {
	pid, err := e.pidOf(t.In)
	src := fmt.Sprintf("GET http://127.0.0.1:%d%s in /proc/<pid>/ns/net", t.Port, t.Path)
	want := "body containing " + strconv.Quote(t.Value)
	if t.Status != 0 {
		want = fmt.Sprintf("status %d, %s", t.Status, want)
	}
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	src = fmt.Sprintf("GET http://127.0.0.1:%d%s in /proc/%d/ns/net", t.Port, t.Path, pid)
	var conn net.Conn
	err = kstate.InNamespace(pid, "net", func() error {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var derr error
		conn, derr = d.DialContext(dctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port)))
		return derr
	})
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "no connection: " + err.Error()}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: ctlab\r\nConnection: close\r\n\r\n", t.Path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "bad response: " + err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ok := strings.Contains(string(body), t.Value) && (t.Status == 0 || resp.StatusCode == t.Status)
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(truncate(string(body), 300))), Pass: ok}
}

// hostnameOf reads the hostname of pid's uts namespace.
func hostnameOf(pid int) (string, error) {
	h, _, _, err := kstate.UTSNames(pid)
	return h, err
}
