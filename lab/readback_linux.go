package lab

import (
	"context"
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/kstate"
)

// The checks in this file compare a value read inside a target with one
// read on the host, or read a counter twice: they need a little more than
// one file read each.

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// containerOf names the scenario container a target lives in: itself, or
// the container a background process was exec'd into.
func (e *Engine) containerOf(target string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.containers[target] != nil {
		return target, nil
	}
	if bp := e.procs[target]; bp != nil && bp.in != "" {
		return bp.in, nil
	}
	return "", fmt.Errorf("%s is not a running container or a process exec'd into one", target)
}

// cpuUsage averages the cgroup's CPU time over a window, in CPUs.
func (e *Engine) cpuUsage(ctx context.Context, t *CPUCheck) Evidence {
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

// ioBytes reads the bytes the cgroup moved on the containers' disk.
func (e *Engine) ioBytes(t *IOCheck) Evidence {
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
	limit, _ := ParseBytes(t.Value)
	ok, _ := compareNum(float64(got), t.Op, float64(limit))
	return Evidence{Target: t.In, Source: src, Expected: want,
		Actual: fmt.Sprintf("read %s, written %s", humanBytes(r), humanBytes(w)), Pass: ok}
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

// fileUnchanged reads a file inside the target twice, For apart.
func (e *Engine) fileUnchanged(ctx context.Context, t *StillCheck) Evidence {
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

// initSystem reads who is pid 1, from fixed files only (no trust needed).
func initSystem(t *InitCheck) Evidence {
	want := map[string]string{"systemd": "systemd manages this machine", "other": "pid 1 is not systemd", "any": "any init (shown for the lesson)"}[t.Value]
	i, err := kstate.ReadInit()
	if err != nil {
		return Evidence{Target: "host", Source: kstate.InitSourceFiles, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	ok := t.Value == "any" || (t.Value == "systemd") == i.Systemd()
	return Evidence{Target: "host", Source: kstate.InitSourceFiles + " (what sd_booted() tests)", Expected: want, Actual: i.String(), Pass: ok}
}

// kernelRelease compares the release uname(2) gives inside the target
// with the one it gives ctlab: one kernel serves both.
func (e *Engine) kernelRelease(t *Target) Evidence {
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

// processUID reads the real uid on the Uid: line of the target's
// /proc/<pid>/status, as the reader's user namespace sees it: the kernel
// translates ids for whoever opened the file (fs/proc/array.c,
// task_state: from_kuid_munged(seq_user_ns(m), ...)).
func (e *Engine) processUID(ctx context.Context, t *UIDCheck) Evidence {
	want := fmt.Sprintf("uid %d", t.Value)
	pid, err := e.pidOf(t.In)
	if err != nil {
		return Evidence{Target: t.In, Source: "/proc/<pid>/status Uid", Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	st, err := kstate.ReadStatus(pid)
	src := fmt.Sprintf("/proc/%d/status Uid (read by ctlab on the host)", pid)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	uid := st.UID[0]
	if t.Reader == "inside" {
		name, err := e.containerOf(t.In)
		if err != nil {
			return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
		}
		inner := st.InnerPid()
		src = fmt.Sprintf("cat /proc/%d/status Uid (run inside %s)", inner, name)
		zero := 0
		out, _, err := e.execIn(ctx, name, []string{"cat", fmt.Sprintf("/proc/%d/status", inner)}, "", 10*time.Second, &zero)
		if err != nil {
			return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
		}
		ins, err := kstate.ParseStatus(out)
		if err != nil {
			return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
		}
		uid = ins.UID[0]
	}
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: fmt.Sprintf("uid %d", uid), Pass: uid == t.Value}
}

// fileOwner lstats a file inside the target from the host.
func (e *Engine) fileOwner(t *OwnerCheck) Evidence {
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

// cgroupPath reads the target's /proc/<pid>/cgroup from the host.
func (e *Engine) cgroupPath(t *CgPathCheck) Evidence {
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

// uptimeOffset compares /proc/uptime read inside the target (by a process
// exec'd into its namespaces, time included) with ctlab's own, read just
// before and after.
func (e *Engine) uptimeOffset(ctx context.Context, t *UptimeCheck) Evidence {
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

// rateRE finds the rate `ctlab load io` prints: "...: 4.98 MiB/s".
var rateRE = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) MiB/s`)

// parseRate reads an expect_rate such as "<= 5.5M" (bytes per second;
// k, M, G are powers of 1024, as io.max and load io use).
func parseRate(s string) (op string, bps float64, err error) {
	f := strings.Fields(s)
	if len(f) == 1 {
		// "<=5.5M": split the operator off
		for _, o := range []string{"<=", ">=", "==", "!=", "<", ">"} {
			if strings.HasPrefix(f[0], o) {
				f = []string{o, strings.TrimPrefix(f[0], o)}
				break
			}
		}
	}
	if len(f) != 2 || f[0] == "contains" || !containsOp(f[0]) {
		return "", 0, fmt.Errorf("%q: want OP RATE, e.g. \"<= 5.5M\" (bytes per second)", s)
	}
	u := strings.TrimSuffix(strings.TrimSuffix(f[1], "/s"), "B")
	u = strings.TrimSuffix(u, "i")
	mult := 1.0
	switch {
	case strings.HasSuffix(u, "k"), strings.HasSuffix(u, "K"):
		mult, u = 1<<10, u[:len(u)-1]
	case strings.HasSuffix(u, "M"), strings.HasSuffix(u, "m"):
		mult, u = 1<<20, u[:len(u)-1]
	case strings.HasSuffix(u, "G"), strings.HasSuffix(u, "g"):
		mult, u = 1<<30, u[:len(u)-1]
	}
	n, err := strconv.ParseFloat(u, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return "", 0, fmt.Errorf("%q: want OP RATE, e.g. \"<= 5.5M\" (bytes per second)", s)
	}
	return f[0], n * mult, nil
}

func containsOp(o string) bool {
	for _, x := range ops {
		if x == o {
			return true
		}
	}
	return false
}

// checkRate judges the rate printed by load io against expect_rate.
func checkRate(out, expect string) error {
	op, want, err := parseRate(expect)
	if err != nil {
		return err
	}
	m := rateRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return fmt.Errorf("expect_rate %s: load io printed no rate", expect)
	}
	mib, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	got := mib * (1 << 20)
	if ok, _ := compareNum(got, op, want); !ok {
		return fmt.Errorf("read at %.2f MiB/s (%.0f bytes/s), want %s (%.0f bytes/s)", mib, got, expect, want)
	}
	return nil
}
