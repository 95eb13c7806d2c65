package cgroups

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"golang.org/x/sys/unix"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{"64M": 64 << 20, "1G": 1 << 30, "512k": 512 << 10, "4096": 4096, "1.5G": 3 << 29, "2MiB": 2 << 20, "10mb": 10 << 20, "max": -1, " max ": -1, "0.5k": 512}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "M", "12X", "abc", "99999999999999999999", "9000000000G", "MAX", "maxx", "-max", "1.5.G"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseDeviceRule(t *testing.T) {
	good := map[string]DeviceRule{
		"c 1:3 rwm": {Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rwm"},
		"c 1:* rw":  {Allow: true, Type: 'c', Major: 1, Minor: -1, Access: "rw"},
		"a":         {Allow: true, Type: 'a', Major: -1, Minor: -1, Access: "rwm"},
		"b 8:0":     {Allow: true, Type: 'b', Major: 8, Minor: 0, Access: "rwm"},
		"c *:* m":   {Allow: true, Type: 'c', Major: -1, Minor: -1, Access: "m"},
	}
	for in, want := range good {
		got, err := ParseDeviceRule(in)
		if err != nil || got != want {
			t.Errorf("ParseDeviceRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x 1:3 rwm", "c 1:3 rwx", "c 1:3 rr", "c a:3", "c 1:3 rwm extra", "c rwm"} {
		if got, err := ParseDeviceRule(in); err == nil {
			t.Errorf("ParseDeviceRule(%q) = %+v, want an error", in, got)
		}
	}
}

func TestParseIORate(t *testing.T) {
	if _, err := ParseIORate("/dev/null:5M"); err == nil {
		t.Error("ParseIORate on a character device should fail")
	}
	if _, err := ParseIORate("/proc:5M"); err == nil {
		t.Error("ParseIORate on /proc (no block device) should fail")
	}
	if _, err := ParseIORate("/var/tmp"); err == nil {
		t.Error("ParseIORate without a rate should fail")
	}
	if _, err := ParseIORate("/var/tmp:0"); err == nil {
		t.Error("ParseIORate with rate 0 should fail")
	}
	l, err := ParseIORate("/var/tmp:5M")
	if err != nil {
		t.Skipf("/var/tmp is not on a block device here: %v", err)
	}
	if l.Rate != 5<<20 {
		t.Errorf("rate = %d, want %d", l.Rate, 5<<20)
	}
	// The result must be a whole disk: /sys/dev/block/M:m has no "partition".
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", l.Major, l.Minor)
	if _, err := os.Stat(sys); err != nil {
		t.Fatalf("%s: %v", sys, err)
	}
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		t.Errorf("%d:%d is a partition, want its disk", l.Major, l.Minor)
	}
}

func TestEmulateV1Devices(t *testing.T) {
	l := Limits{DenyDevices: []DeviceRule{{Type: 'c', Major: 1, Minor: 5, Access: "rwm"}}}
	got := strings.Join(emulateV1Devices(l.DeviceRules()), ",")
	if strings.Contains(got, "c 1:5 ") || !strings.Contains(got, "c 1:3 rwm") || !strings.Contains(got, "c 136:* rwm") {
		t.Errorf("emulated list %q: want 1:3 and 136:* allowed, 1:5 gone", got)
	}
	if got := emulateV1Devices([]DeviceRule{{Allow: true, Type: 'a', Access: "rwm"}}); len(got) != 1 || got[0] != "a *:* rwm" {
		t.Errorf("allow-all = %q", got)
	}
	if got := emulateV1Devices([]DeviceRule{{Type: 'a'}, {Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rw"}, {Type: 'c', Major: 1, Minor: 3, Access: "w"}}); len(got) != 1 || got[0] != "c 1:3 r" {
		t.Errorf("partial deny = %q", got)
	}
}

func TestModeAndDriver(t *testing.T) {
	m := HostMode()
	if m == Unavailable {
		t.Skip("no cgroup filesystem mounted at /sys/fs/cgroup")
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	if (st.Type == unix.CGROUP2_SUPER_MAGIC) != (m == V2) {
		t.Errorf("HostMode %v but /sys/fs/cgroup statfs type %#x", m, st.Type)
	}
	if m == Hybrid && Effective() != V1 {
		t.Errorf("Effective() = %v on a hybrid host, want v1", Effective())
	}
	name, why := Driver()
	if (name != "systemd" && name != "cgroupfs") || why == "" {
		t.Errorf("Driver() = %q, %q", name, why)
	}
	ctrls, err := Controllers()
	if err != nil || len(ctrls) == 0 {
		t.Errorf("Controllers() = %v, %v", ctrls, err)
	}
	t.Logf("host %v, effective %v, driver %s, controllers %v", m, Effective(), name, ctrls)
}

// TestV1UsualMatchesDefault: the short way to the v1 hierarchies finds
// what containerd's mountinfo scan finds, controller by controller and
// directory by directory (then reduced to ctlab's controllers, as every
// caller does).
func TestV1UsualMatchesDefault(t *testing.T) {
	if Effective() != V1 {
		t.Skipf("the host's cgroups are %v: v1 hierarchies exist only on a v1 or hybrid host", HostMode())
	}
	usual := v1Usual()
	if usual == nil {
		t.Fatal("v1Usual found no usual layout on a v1 host whose hierarchies are under /sys/fs/cgroup")
	}
	def, err := cgroup1.Default()
	if err != nil {
		t.Fatal(err)
	}
	want := map[cgroup1.Name]bool{cgroup1.Cpuset: true}
	for _, n := range v1Controllers {
		want[n] = true
	}
	describe := func(subs []cgroup1.Subsystem) []string {
		var out []string
		for _, s := range subs {
			if want[s.Name()] {
				out = append(out, string(s.Name())+"="+s.(pather).Path("/"))
			}
		}
		return out
	}
	got, exp := describe(usual), describe(def)
	if strings.Join(got, " ") != strings.Join(exp, " ") {
		t.Errorf("v1Usual: %v\ncgroup1.Default: %v", got, exp)
	}
	t.Logf("%v", got)
}

// TestCreateOverLeftoverResets: a new group skips writing the kernel's
// defaults (withoutV1Defaults), so a directory left over with other values
// (a crash before the cleanup) must still be reset to them, and a fresh one
// must read them back.
func TestCreateOverLeftoverResets(t *testing.T) {
	needRoot(t)
	if Effective() != V1 {
		t.Skipf("the host's cgroups are %v: the default-skipping is v1's", HostMode())
	}
	needController(t, "cpu", "pids")
	roots, err := v1Roots()
	if err != nil {
		t.Fatal(err)
	}
	name := testName()
	if _, err := Create(name, Limits{}); err != nil { // /ctlab exists; the group is fresh
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(context.Background(), name) })
	shares := filepath.Join(roots["cpu"], parentName, name, "cpu.shares")
	pids := filepath.Join(roots["pids"], parentName, name, "pids.max")
	read := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if got := read(shares); got != "1024" {
		t.Fatalf("fresh group: cpu.shares %s, want the kernel's 1024", got)
	}
	// Leave it behind with other values, as a killed create would.
	if err := os.WriteFile(shares, []byte("512"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pids, []byte("7"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(name, Limits{}); err != nil {
		t.Fatal(err)
	}
	if got, gotPids := read(shares), read(pids); got != "1024" || gotPids != "max" {
		t.Errorf("over a leftover: cpu.shares %s, pids.max %s; want 1024 and max", got, gotPids)
	}
}

// TestCreateDelete: the directories appear with the kernel holding our
// values, Delete removes every one of them, and cgroups we did not create
// (beside /ctlab and inside it) are left exactly as they were.
func TestCreateDelete(t *testing.T) {
	needRoot(t)
	needController(t, "memory", "cpu", "pids")

	// Unrelated pre-existing groups: one next to /ctlab, one inside it.
	roots := map[string]string{}
	if Effective() == V1 {
		r, err := v1Roots()
		if err != nil {
			t.Fatal(err)
		}
		roots = r
	} else {
		roots["pids"] = unifiedRoot
	}
	pre := testName()
	if _, err := Create(pre, Limits{}); err != nil { // makes sure /ctlab exists
		t.Fatal(err)
	}
	unrelatedOut := filepath.Join(roots["pids"], fmt.Sprintf("ctlabtest-unrelated-%d", os.Getpid()))
	unrelatedIn := filepath.Join(roots["pids"], parentName, fmt.Sprintf("unrelated-%d", os.Getpid()))
	for _, d := range []string{unrelatedOut, unrelatedIn} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Rmdir(d) })
		if exists(filepath.Join(d, "pids.max")) {
			if err := os.WriteFile(filepath.Join(d, "pids.max"), []byte("7"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := Remove(context.Background(), pre); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{"", "../etc", "a/b", "UPPER", ".hidden", strings.Repeat("x", 64)} {
		if _, err := Create(bad, Limits{}); err == nil {
			t.Errorf("Create(%q) succeeded, want a name error", bad)
		}
	}

	name := testName()
	c, err := Create(name, Limits{MemoryMax: 64 << 20, CPUs: 0.5, PidsMax: 100, CPUWeight: 200})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	paths := c.Paths()
	if len(paths) == 0 {
		t.Fatal("Paths() is empty")
	}
	for ctrl, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			t.Errorf("%s dir %s: %v", ctrl, p, err)
		}
		if !strings.Contains(p, "/"+parentName+"/"+name) {
			t.Errorf("%s dir %s not under /%s/%s", ctrl, p, parentName, name)
		}
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.MemoryMax != 64<<20 || st.PidsMax != 100 || st.CPUQuotaUsec != 50000 || st.CPUPeriodUsec != 100000 {
		t.Errorf("kernel says memory max %d, pids max %d, cpu %d/%d; want 64MiB, 100, 50000/100000",
			st.MemoryMax, st.PidsMax, st.CPUQuotaUsec, st.CPUPeriodUsec)
	}
	files := c.Files()
	if len(files) < 8 {
		t.Errorf("Files() has %d rows: %+v", len(files), files)
	}
	sawLimit := false
	for _, f := range files {
		if f.Path == "" || f.Value == "" || f.V1Name == "" || f.V2Name == "" {
			t.Errorf("incomplete Files row %+v", f)
		}
		if f.V2Name == "memory.max" {
			sawLimit = f.Value == "67108864"
		}
		t.Logf("%-8s %-40s %-34s %s = %q", f.Controller, f.V1Name, f.V2Name, f.Path, f.Value)
	}
	if !sawLimit {
		t.Error("Files() has no memory.max row reading 67108864")
	}
	names, err := List()
	if err != nil || !contains(names, name) {
		t.Errorf("List() = %v, %v; want it to contain %s", names, err, name)
	}

	// A second Create of a group that holds a process must be refused.
	h := startHelper(t, c, "sleep")
	h.line(t, 10*time.Second)
	if _, err := Create(name, Limits{}); err == nil {
		t.Error("Create of an existing non-empty cgroup succeeded")
	}
	if o, err := Open(name); err != nil || o.Name() != name {
		t.Errorf("Open(%s): %v", name, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Delete(ctx); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if st := h.wait(t, 10*time.Second); st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("helper ended with %v, want SIGKILL", st)
	}
	for ctrl, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s dir %s still there after Delete (%v)", ctrl, p, err)
		}
	}
	if names, _ := List(); contains(names, name) {
		t.Errorf("List() still has %s", name)
	}
	if _, err := Open(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open after Delete = %v, want ErrNotExist", err)
	}
	if err := c.Delete(ctx); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := Remove(ctx, name); err != nil {
		t.Errorf("Remove of a gone cgroup: %v", err)
	}
	for _, d := range []string{unrelatedOut, unrelatedIn} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("unrelated cgroup %s disappeared: %v", d, err)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "pids.max")); err == nil && strings.TrimSpace(string(b)) != "7" {
			t.Errorf("unrelated %s/pids.max changed to %q", d, b)
		}
	}
	if err := Prune(); err != nil { // /ctlab still has unrelatedIn: must be kept
		t.Errorf("Prune: %v", err)
	}
	if _, err := os.Stat(unrelatedIn); err != nil {
		t.Errorf("Prune removed %s: %v", unrelatedIn, err)
	}
}

// TestCreateFailureLeavesNothing: a Create that fails half-way (the kernel
// refuses a throttle on a number that is no block device) removes what it
// made. Not 1:3 (/dev/null's number): block major 1 is the RAM disk, and a
// host with a module tree (the systemd VM) loads brd on the lookup, which
// makes 1:3 = /dev/ram3 a real disk. Major 4095 has no driver.
func TestCreateFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	if Effective() == V1 {
		needController(t, "blkio")
	} else {
		needController(t, "io")
	}
	name := testName()
	_, err := Create(name, Limits{MemoryMax: 64 << 20, IOReadBPS: []IOLimit{{Major: 4095, Minor: 0, Rate: 1 << 20}}})
	if err == nil {
		_ = Remove(context.Background(), name)
		t.Fatal("Create with a throttle on 4095:0 (no such block device) succeeded")
	}
	t.Logf("Create failed as expected: %v", err)
	if names, _ := List(); contains(names, name) {
		t.Errorf("failed Create left %s behind", name)
	}
}

// TestUpdate: limits change on a live group, and zero removes a limit.
func TestUpdate(t *testing.T) {
	needRoot(t)
	needController(t, "memory", "cpu", "pids")
	c := newCgroup(t, Limits{MemoryMax: 32 << 20, CPUs: 0.25, PidsMax: 10})
	h := startHelper(t, c, "sleep")
	h.line(t, 10*time.Second)
	if err := c.Update(Limits{MemoryMax: 96 << 20, CPUs: 1.5, PidsMax: 20}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryMax != 96<<20 || st.CPUQuotaUsec != 150000 || st.PidsMax != 20 {
		t.Errorf("after update: memory %d cpu %d pids %d", st.MemoryMax, st.CPUQuotaUsec, st.PidsMax)
	}
	if err := c.Update(Limits{}); err != nil {
		t.Fatalf("Update to no limits: %v", err)
	}
	if st, err = c.Stats(); err != nil {
		t.Fatal(err)
	}
	if st.MemoryMax != -1 || st.CPUQuotaUsec != -1 || st.PidsMax != -1 {
		t.Errorf("after removing limits: memory %d cpu %d pids %d, want -1 each", st.MemoryMax, st.CPUQuotaUsec, st.PidsMax)
	}
	if err := c.Update(Limits{MemoryMax: 48 << 20}); err != nil {
		t.Fatalf("Update back to a limit: %v", err)
	}
	if st, _ = c.Stats(); st.MemoryMax != 48<<20 {
		t.Errorf("memory max %d, want 48MiB", st.MemoryMax)
	}
	if !inCgroup(t, c, h.cmd.Process.Pid) {
		t.Error("helper left the cgroup during updates")
	}
}

// TestCPUQuota: 0.2 CPU must cap two spinning threads far below one core.
func TestCPUQuota(t *testing.T) {
	needRoot(t)
	needController(t, "cpu")
	c := newCgroup(t, Limits{CPUs: 0.2})
	h := startHelper(t, c, "spin")
	h.line(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // let the first periods settle
	s0, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(1200 * time.Millisecond)
	s1, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	cores := float64(s1.CPUUsageUsec-s0.CPUUsageUsec) / float64(time.Since(t0).Microseconds())
	t.Logf("usage %.3f cores, throttled %d of %d periods", cores, s1.NrThrottled-s0.NrThrottled, s1.NrPeriods-s0.NrPeriods)
	if cores >= 0.35 {
		t.Errorf("a 0.2 CPU quota let the group use %.2f cores", cores)
	}
	if cores < 0.05 {
		t.Errorf("the group used only %.3f cores: is the helper running?", cores)
	}
	if s1.NrThrottled <= s0.NrThrottled {
		t.Errorf("nr_throttled did not grow (%d -> %d)", s0.NrThrottled, s1.NrThrottled)
	}
}

// TestMemoryOOM: a 32 MiB group whose process touches 128 MiB is OOM-killed,
// and the kernel counts the kill.
func TestMemoryOOM(t *testing.T) {
	needRoot(t)
	needController(t, "memory")
	c := newCgroup(t, Limits{MemoryMax: 32 << 20})
	h := startHelper(t, c, "hog")
	st := h.wait(t, 60*time.Second)
	ws := st.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("hog exited with %v, want SIGKILL by the OOM killer", st)
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("oom events %d, oom kills %d, limit hits %d, peak %d", s.OOMEvents, s.OOMKills, s.MemoryLimitHits, s.MemoryPeak)
	if s.OOMKills < 1 {
		t.Errorf("OOMKills = %d, want >= 1", s.OOMKills)
	}
	if s.MemoryPeak > 33<<20 {
		t.Errorf("peak %d exceeds the 32 MiB limit", s.MemoryPeak)
	}
}

// TestPidsMax: with pids.max 5 the group cannot fork beyond 5 tasks; the
// helper's fork fails with EAGAIN. (Go threads count as tasks too.)
func TestPidsMax(t *testing.T) {
	needRoot(t)
	needController(t, "pids")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("no sleep binary for the fork helper: %v", err)
	}
	c := newCgroup(t, Limits{PidsMax: 5})
	h := startHelper(t, c, "forker", "CTLAB_CGTEST_SLEEP="+sleep, "GOMAXPROCS=1")
	out := h.line(t, 20*time.Second)
	t.Logf("helper: %s", out)
	var errName string
	var n int
	if _, err := fmt.Sscanf(out, "ERR %s after %d", &errName, &n); err != nil {
		t.Fatalf("helper output %q: forks did not fail", out)
	}
	if errName != "EAGAIN" {
		t.Errorf("fork failed with %s, want EAGAIN", errName)
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.PidsMax != 5 {
		t.Errorf("pids.max = %d, want 5", s.PidsMax)
	}
	if s.PidsCurrent < 5 {
		t.Errorf("fork failed with pids.current %d < 5", s.PidsCurrent)
	}
	pids, _ := c.Procs()
	if len(pids) != 1+n {
		t.Errorf("%d processes in the group, want helper + %d children", len(pids), n)
	}
}

// TestFreezeThaw: a frozen counter stops advancing, a thawed one resumes.
func TestFreezeThaw(t *testing.T) {
	needRoot(t)
	needController(t, "freezer")
	c := newCgroup(t, Limits{})
	file := filepath.Join(t.TempDir(), "counter")
	h := startHelper(t, c, "counter", "CTLAB_CGTEST_FILE="+file)
	h.line(t, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	a := readCounter(t, file)
	time.Sleep(100 * time.Millisecond)
	if b := readCounter(t, file); b <= a {
		t.Fatalf("counter not advancing before freeze (%d -> %d)", a, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Freeze(ctx); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if st, err := c.FreezerState(); err != nil || st != "FROZEN" {
		t.Errorf("FreezerState = %q, %v; want FROZEN", st, err)
	}
	if s, err := c.Stats(); err != nil || !s.Frozen {
		t.Errorf("Stats().Frozen = false (%v)", err)
	}
	f1 := readCounter(t, file)
	time.Sleep(300 * time.Millisecond)
	if f2 := readCounter(t, file); f2 != f1 {
		t.Errorf("counter advanced while frozen: %d -> %d", f1, f2)
	}
	if err := c.Thaw(ctx); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if st, err := c.FreezerState(); err != nil || st != "THAWED" {
		t.Errorf("FreezerState = %q, %v; want THAWED", st, err)
	}
	time.Sleep(300 * time.Millisecond)
	if f3 := readCounter(t, file); f3 <= f1 {
		t.Errorf("counter did not resume after thaw: %d -> %d", f1, f3)
	}
	// Freeze then Delete: Kill must still work on a frozen group.
	if err := c.Freeze(ctx); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if err := c.Delete(ctx); err != nil {
		t.Fatalf("Delete of a frozen group: %v", err)
	}
	h.wait(t, 10*time.Second)
}

// TestIOThrottle: an O_DIRECT read of 16 MiB at a 4 MiB/s limit runs at 4 MiB/s (±25%).
func TestIOThrottle(t *testing.T) {
	needRoot(t)
	if Effective() == V1 {
		needController(t, "blkio")
	} else {
		needController(t, "io")
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/var/tmp", &sfs); err != nil {
		t.Skipf("no /var/tmp: %v", err)
	}
	switch sfs.Type {
	case unix.TMPFS_MAGIC, unix.RAMFS_MAGIC, unix.OVERLAYFS_SUPER_MAGIC:
		t.Skipf("/var/tmp is not disk-backed (statfs type %#x)", sfs.Type)
	}
	f, err := os.CreateTemp("/var/tmp", "ctlab-iotest-*")
	if err != nil {
		t.Skipf("cannot create a file in /var/tmp: %v", err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	data := make([]byte, 16<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	const rate = 4 << 20
	lim, err := ParseIORate(f.Name() + ":4M")
	if err != nil {
		t.Skipf("/var/tmp has no throttleable block device: %v", err)
	}
	c := newCgroup(t, Limits{IOReadBPS: []IOLimit{lim}})
	h := startHelper(t, c, "ioread", "CTLAB_CGTEST_FILE="+f.Name())
	out := h.line(t, 60*time.Second)
	var n int
	var secs float64
	if _, err := fmt.Sscanf(out, "%d %f", &n, &secs); err != nil || n != len(data) {
		t.Fatalf("helper output %q (%v)", out, err)
	}
	got := float64(n) / secs
	t.Logf("read %d bytes in %.2fs = %.2f MiB/s (limit %d:%d 4 MiB/s)", n, secs, got/(1<<20), lim.Major, lim.Minor)
	if got < rate*0.75 || got > rate*1.25 {
		t.Errorf("rate %.2f MiB/s is not within 25%% of 4 MiB/s", got/(1<<20))
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d:%d", lim.Major, lim.Minor)
	if len(s.IOMax) == 0 || !strings.Contains(strings.Join(s.IOMax, "\n"), want) {
		t.Errorf("IOMax %q does not mention %s", s.IOMax, want)
	}
	if s.IOReadBytes < uint64(len(data)) {
		t.Errorf("IOReadBytes %d < %d", s.IOReadBytes, len(data))
	}
	// Removing the limit must clear it in the kernel.
	if err := c.Update(Limits{}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if s, _ = c.Stats(); strings.Contains(strings.Join(s.IOMax, "\n"), want+" "+strconv.Itoa(rate)) || strings.Contains(strings.Join(s.IOMax, "\n"), "rbps="+strconv.Itoa(rate)) {
		t.Errorf("limit still there after Update(Limits{}): %q", s.IOMax)
	}
}

// TestDevices: deny /dev/zero while /dev/null stays allowed; then lift the
// deny on the live group (v2: the eBPF program is replaced, not stacked).
func TestDevices(t *testing.T) {
	needRoot(t)
	needController(t, "devices")
	c := newCgroup(t, Limits{DenyDevices: []DeviceRule{{Type: 'c', Major: 1, Minor: 5, Access: "rwm"}}})
	h := startHelper(t, c, "devices")
	if out := h.line(t, 10*time.Second); out != "/dev/null=ok /dev/zero=EPERM" {
		t.Errorf("with /dev/zero denied: %q", out)
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("devices: %q", s.Devices)
	if len(s.Devices) == 0 {
		t.Error("Stats().Devices is empty")
	}
	if err := c.Update(Limits{}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	h2 := startHelper(t, c, "devices")
	if out := h2.line(t, 10*time.Second); out != "/dev/null=ok /dev/zero=ok" {
		t.Errorf("after lifting the deny: %q", out)
	}
	// An unchanged policy must not reload anything (v2: same program id).
	before, _ := c.Stats()
	if err := c.Update(Limits{}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	after, _ := c.Stats()
	if strings.Join(before.Devices, "\n") != strings.Join(after.Devices, "\n") {
		t.Errorf("an identical Update changed the device policy: %q -> %q", before.Devices, after.Devices)
	}
}

// TestRemoveKillsEverything: Remove by name kills all processes and removes the group.
func TestRemoveKillsEverything(t *testing.T) {
	needRoot(t)
	name := testName()
	c, err := Create(name, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h1 := startHelper(t, c, "spin")
	h2 := startHelper(t, c, "sleep")
	h1.line(t, 10*time.Second)
	h2.line(t, 10*time.Second)
	if pids, _ := c.Procs(); len(pids) != 2 {
		t.Fatalf("Procs = %v, want 2", pids)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Remove(ctx, name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	h1.wait(t, 5*time.Second)
	h2.wait(t, 5*time.Second)
	if names, _ := List(); contains(names, name) {
		t.Errorf("%s still listed", name)
	}
	if err := Remove(ctx, "../../etc"); err == nil {
		t.Error("Remove accepted a path outside /ctlab")
	}
}

// BenchmarkCreateAddDelete: one container's cgroup lifecycle. A single
// sleeping helper hops from the previous group into the new one, so each
// iteration is Create + Add + Delete of an (by then) empty group.
func BenchmarkCreateAddDelete(b *testing.B) {
	needRoot(b)
	first := newCgroup(b, Limits{})
	h := startHelper(b, first, "sleep")
	h.line(b, 10*time.Second)
	prev := first
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := Create(testName(), Limits{MemoryMax: 64 << 20, CPUs: 0.5, PidsMax: 64})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Add(h.cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
		if prev != first {
			if err := prev.Delete(ctx); err != nil {
				b.Fatal(err)
			}
		}
		prev = c
	}
	b.StopTimer()
	if err := prev.Delete(ctx); err != nil {
		b.Fatal(err)
	}
}

func TestParseProcCgroup(t *testing.T) {
	in := "12:pids:/ctlab/a\n4:cpu,cpuacct:/ctlab/a\n1:name=systemd:/user.slice\n0::/ctlab/with:colon\nbogus\nx:y:z\n"
	got := ParseProcCgroup(in)
	want := []Member{
		{Hierarchy: 12, Controllers: []string{"pids"}, Path: "/ctlab/a"},
		{Hierarchy: 4, Controllers: []string{"cpu", "cpuacct"}, Path: "/ctlab/a"},
		{Hierarchy: 1, Controllers: []string{"name=systemd"}, Path: "/user.slice"},
		{Hierarchy: 0, Path: "/ctlab/with:colon"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseProcCgroup = %+v\nwant %+v", got, want)
	}
	own, err := ReadProcCgroup("/proc/self/cgroup")
	if err != nil || len(own) == 0 {
		t.Errorf("ReadProcCgroup(/proc/self/cgroup) = %v, %v", own, err)
	}
}

// RemovePath removes a group another runtime made under a ctlab-* name in
// every hierarchy, with its processes, and refuses any other path.
func TestRemovePath(t *testing.T) {
	needRoot(t)
	rel := fmt.Sprintf("/ctlab-runc-test-%d", os.Getpid())
	var made []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	if Effective() == V2 {
		ents = nil
		made = append(made, "/sys/fs/cgroup"+rel)
	}
	for _, e := range ents {
		made = append(made, filepath.Join("/sys/fs/cgroup", e.Name(), rel))
	}
	seen := map[string]bool{}
	for _, d := range made {
		real, _ := filepath.EvalSymlinks(filepath.Dir(d))
		if seen[real] {
			continue
		}
		seen[real] = true
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Logf("mkdir %s: %v", d, err) // a hierarchy that refuses (e.g. cpuset unset) is skipped
		}
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	go sleep.Wait() // reap it once RemovePath kills it
	procs := "/sys/fs/cgroup" + rel + "/cgroup.procs"
	if Effective() == V1 {
		procs = "/sys/fs/cgroup/pids" + rel + "/cgroup.procs"
	}
	if err := os.WriteFile(procs, []byte(fmt.Sprint(sleep.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/other", "/ctlab/x", "/ctlab-a/../b", "ctlab-rel"} {
		if err := RemovePath(context.Background(), bad); err == nil {
			t.Errorf("RemovePath(%q) accepted", bad)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := RemovePath(ctx, rel); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s survived", d)
		}
	}
	if err := RemovePath(ctx, rel); err != nil {
		t.Errorf("second RemovePath: %v", err)
	}
}
