package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Checks of namespaces: what a process sees depends on which namespace of
// each kind it is in, so these read /proc/<pid>/ns and values read after
// joining the target's namespace.

// NSCheck compares one namespace kind of two targets (b defaults to host).
type NSCheck struct {
	Kind string `yaml:"kind" json:"kind"` // mnt uts ipc pid net user cgroup time pid_for_children time_for_children
	A    string `yaml:"a" json:"a"`
	B    string `yaml:"b,omitempty" json:"b,omitempty" vocab:"host"`
}

// NamespaceDiffers passes when a and b are in different namespaces of kind.
type NamespaceDiffers NSCheck

// NamespaceSame passes when a and b share the namespace of kind.
type NamespaceSame NSCheck

func (t *NamespaceDiffers) validate(v *validator) { (*NSCheck)(t).validate(v) }
func (t *NamespaceSame) validate(v *validator)    { (*NSCheck)(t).validate(v) }

func (t *NamespaceDiffers) eval(_ context.Context, e *Engine) Evidence {
	return (*NSCheck)(t).eval(e, false)
}

func (t *NamespaceSame) eval(_ context.Context, e *Engine) Evidence {
	return (*NSCheck)(t).eval(e, true)
}

func (n *NSCheck) validate(v *validator) {
	if !slices.Contains(nsCompare, n.Kind) {
		v.errf("kind %q: want one of %s", n.Kind, strings.Join(nsCompare, ", "))
	}
	v.target(n.A, "host", "container", "process")
	if n.B == "" {
		n.B = "host"
	}
	v.target(n.B, "host", "container", "process")
}

func (n *NSCheck) eval(e *Engine, same bool) Evidence {
	b := n.B
	if b == "" {
		b = "host"
	}
	pa, err := e.pidOf(n.A)
	if err != nil {
		return failed(n.A, "/proc/<pid>/ns/"+n.Kind, err)
	}
	pb, err := e.pidOf(b)
	if err != nil {
		return failed(b, "/proc/<pid>/ns/"+n.Kind, err)
	}
	src := fmt.Sprintf("/proc/%d/ns/%s vs /proc/%d/ns/%s", pa, n.Kind, pb, n.Kind)
	ia, err := kstate.NSInode(pa, n.Kind)
	if err != nil {
		return failed(n.A, src, err)
	}
	ib, err := kstate.NSInode(pb, n.Kind)
	if err != nil {
		return failed(b, src, err)
	}
	ev := Evidence{Target: n.A + " vs " + b, Source: src, Actual: fmt.Sprintf("%s:[%d] vs %s:[%d]", n.Kind, ia, n.Kind, ib)}
	if same {
		ev.Expected, ev.Pass = "the same inode", ia == ib
	} else {
		ev.Expected, ev.Pass = "different inodes", ia != ib
	}
	return ev
}

// ValueCheck compares one value read in a target with an expected string.
type ValueCheck struct {
	In    string `yaml:"in" json:"in"`
	Value string `yaml:"value" json:"value"`
}

// HostnameEquals reads the hostname in the target's uts namespace.
type HostnameEquals ValueCheck

// DomainnameEquals reads the NIS domain name in the target's uts namespace.
type DomainnameEquals ValueCheck

// HostnameUnchanged compares the target's hostname with the one it had
// when the scenario started.
type HostnameUnchanged Target

func (t *HostnameEquals) validate(v *validator)    { v.target(t.In, "host", "container", "process") }
func (t *DomainnameEquals) validate(v *validator)  { v.target(t.In, "host", "container", "process") }
func (t *HostnameUnchanged) validate(v *validator) { v.target(t.In, "host", "container", "process") }
func (*HostnameUnchanged) alwaysGuard()            {}

func (t *HostnameEquals) eval(_ context.Context, e *Engine) Evidence {
	return utsEval(e, t.In, t.Value, false)
}

func (t *DomainnameEquals) eval(_ context.Context, e *Engine) Evidence {
	return utsEval(e, t.In, t.Value, true)
}

func (t *HostnameUnchanged) eval(_ context.Context, e *Engine) Evidence {
	e.mu.Lock()
	h, ok := e.hostname0[t.In]
	e.mu.Unlock()
	if !ok {
		return failed(t.In, "", errors.New("no hostname was recorded at start for "+t.In))
	}
	return utsEval(e, t.In, h, false)
}

// utsEval compares the hostname (or domain name) of target with want.
func utsEval(e *Engine, target, want string, domain bool) Evidence {
	pid, err := e.pidOf(target)
	if err != nil {
		return failed(target, "/proc/sys/kernel/hostname", err)
	}
	h, d, src, err := kstate.UTSNames(pid)
	file, got := "hostname", h
	if domain {
		file, got = "domainname", d
	}
	if err != nil {
		return failed(target, src+file, err)
	}
	return Evidence{Target: target, Source: src + file, Expected: want, Actual: got, Pass: got == want}
}

// PidInNSEquals compares the target's pid as its own pid namespace numbers it.
type PidInNSEquals ValueCheck

func (t *PidInNSEquals) validate(v *validator) {
	v.target(t.In, "container", "process")
	if _, err := strconv.Atoi(t.Value); err != nil {
		v.errf("value %q: want a number", t.Value)
	}
}

func (t *PidInNSEquals) eval(_ context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(t.In)
	if err != nil {
		return failed(t.In, "/proc/<pid>/status NSpid", err)
	}
	src := fmt.Sprintf("/proc/%d/status NSpid", pid)
	st, err := kstate.ReadStatus(pid)
	if err != nil {
		return failed(t.In, src, err)
	}
	got := strconv.Itoa(st.InnerPid())
	return Evidence{Target: t.In, Source: src, Expected: t.Value, Actual: fmt.Sprintf("%s (NSpid %v)", got, st.NSpid), Pass: got == t.Value}
}

// UIDMapEquals compares the target's uid_map (whitespace-normalised).
type UIDMapEquals ValueCheck

func (t *UIDMapEquals) validate(v *validator) { v.target(t.In, "host", "container", "process") }

func (t *UIDMapEquals) eval(_ context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(t.In)
	if err != nil {
		return failed(t.In, "/proc/<pid>/uid_map", err)
	}
	m, src, err := kstate.ReadIDMap(pid, "uid")
	if err != nil {
		return failed(t.In, src, err)
	}
	var lines []string
	for _, x := range m {
		lines = append(lines, x.String())
	}
	got, want := strings.Join(lines, "; "), normMap(t.Value)
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: got, Pass: got == want}
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

// TimeOffset compares the offset of a clock in the target's time namespace.
type TimeOffset struct {
	In    string        `yaml:"in" json:"in"`
	Clock string        `yaml:"clock" json:"clock" vocab:"monotonic|boottime"`
	Op    string        `yaml:"op,omitempty" json:"op,omitempty" vocab:"=="`
	Value time.Duration `yaml:"value" json:"value"`
}

func (t *TimeOffset) validate(v *validator) {
	v.target(t.In, "host", "container", "process")
	if t.Clock != "monotonic" && t.Clock != "boottime" {
		v.errf("clock %q: want monotonic or boottime", t.Clock)
	}
	if t.Op == "" {
		t.Op = "=="
	}
	v.op(t.Op)
}

func (t *TimeOffset) eval(_ context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(t.In)
	if err != nil {
		return failed(t.In, "/proc/<pid>/timens_offsets", err)
	}
	src := fmt.Sprintf("/proc/%d/timens_offsets", pid)
	off, err := kstate.ReadTimeOffsets(pid)
	if err != nil {
		return failed(t.In, src, err)
	}
	got := off.Monotonic
	if t.Clock == "boottime" {
		got = off.Boottime
	}
	ok, _ := compareNum(float64(got), t.Op, float64(t.Value))
	return Evidence{Target: t.In, Source: src, Expected: fmt.Sprintf("%s %s %s", t.Clock, t.Op, t.Value), Actual: got.String(), Pass: ok}
}

// IPCObjectVisible: a SysV IPC object of a kind (optionally with a key) is
// visible in the target's ipc namespace.
type IPCObjectVisible struct {
	In   string `yaml:"in" json:"in"`
	Kind string `yaml:"kind" json:"kind" vocab:"shm|msg|sem"`
	Key  string `yaml:"key,omitempty" json:"key,omitempty"` // decimal or 0x hex; empty = any
}

func (t *IPCObjectVisible) validate(v *validator) {
	v.target(t.In, "host", "container", "process")
	if !slices.Contains([]string{"shm", "msg", "sem"}, t.Kind) {
		v.errf("kind %q: want shm, msg or sem", t.Kind)
	}
	if t.Key != "" {
		if _, err := strconv.ParseInt(t.Key, 0, 64); err != nil {
			v.errf("key %q: want a number (0x.. for hex)", t.Key)
		}
	}
}

func (t *IPCObjectVisible) eval(_ context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(t.In)
	if err != nil {
		return failed(t.In, "/proc/sysvipc/"+t.Kind, err)
	}
	ipc, src, err := kstate.IPCObjects(pid)
	if err != nil {
		return failed(t.In, src, err)
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
}

// KernelReleaseSame compares the release uname(2) gives inside the target
// with the one it gives ctlab: one kernel serves both.
type KernelReleaseSame Target

func (t *KernelReleaseSame) validate(v *validator) { v.target(t.In, "container", "process") }

func (t *KernelReleaseSame) eval(_ context.Context, e *Engine) Evidence {
	host, herr := kstate.HostRelease()
	pid, err := e.pidOf(t.In)
	if err != nil {
		return Evidence{Target: t.In, Source: "uname(2) on the host vs /proc/sys/kernel/osrelease in " + t.In, Expected: host, Actual: "(unreadable)", Err: err.Error()}
	}
	in, src, err := kstate.KernelRelease(pid)
	src = "uname(2) on the host vs " + src
	if err == nil {
		err = herr
	}
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: host, Actual: "(unreadable)", Err: err.Error()}
	}
	return Evidence{Target: t.In, Source: src, Expected: "the host's release " + host, Actual: in, Pass: in == host}
}

// UptimeOffset compares /proc/uptime read inside a target with the host's.
type UptimeOffset struct {
	In        string        `yaml:"in" json:"in"`
	Op        string        `yaml:"op,omitempty" json:"op,omitempty" vocab:"=="`
	Value     time.Duration `yaml:"value" json:"value"`
	Tolerance time.Duration `yaml:"tolerance,omitempty" json:"tolerance,omitempty" vocab:"2s"` // for ==
}

func (t *UptimeOffset) validate(v *validator) {
	v.target(t.In, "container", "process")
	if t.Op == "" {
		t.Op = "=="
	}
	v.numericOp(t.Op)
	if t.Tolerance < 0 || t.Tolerance > time.Hour {
		v.errf("tolerance %s: want 0..1h", t.Tolerance)
	}
}

// eval reads /proc/uptime inside the target (by a process exec'd into its
// namespaces, time included) between two reads of ctlab's own.
func (t *UptimeOffset) eval(ctx context.Context, e *Engine) Evidence {
	tol := t.Tolerance
	if tol == 0 {
		tol = 2 * time.Second
	}
	want := fmt.Sprintf("uptime inside - uptime on the host %s %s", t.Op, t.Value)
	if t.Op == "==" {
		want += fmt.Sprintf(" (± %s)", tol)
	}
	src := "/proc/uptime inside " + t.In + " vs ctlab's /proc/uptime"
	fail := func(err error) Evidence {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	name, err := e.containerOf(t.In)
	if err != nil {
		return fail(err)
	}
	h1, err := kstate.HostUptime()
	if err != nil {
		return fail(err)
	}
	zero := 0
	out, _, err := e.execIn(ctx, name, []string{"cat", "/proc/uptime"}, "", 10*time.Second, &zero)
	if err != nil {
		return fail(err)
	}
	h2, err := kstate.HostUptime()
	if err != nil {
		return fail(err)
	}
	in, err := kstate.ParseUptime(out)
	if err != nil {
		return fail(err)
	}
	host := (h1 + h2) / 2
	diff := in - host
	var ok bool
	if t.Op == "==" {
		ok = math.Abs(float64(diff-t.Value)) <= float64(tol+(h2-h1)/2)
	} else {
		ok, _ = compareNum(float64(diff), t.Op, float64(t.Value))
	}
	return Evidence{Target: t.In, Source: src, Expected: want,
		Actual: fmt.Sprintf("%s (inside %s, host %s)", diff.Round(10*time.Millisecond), in.Round(10*time.Millisecond), host.Round(10*time.Millisecond)), Pass: ok}
}
