package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

func asInputError(err error, target **InputError) bool { return errors.As(err, target) }

func runToEnd(t *testing.T, cfg Config) (*Container, int, string) {
	t.Helper()
	c, out := startT(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return c, code, out.String()
}

func TestMemoryLimitOOMKills(t *testing.T) {
	c, code, out := runToEnd(t, Config{
		Limits: cgroups.Limits{MemoryMax: 32 << 20},
		Args:   []string{"/.ctlab/ctlab", "load", "mem", strconv.Itoa(128 << 20), "--seconds", "5"},
	})
	if code != 128+9 {
		t.Errorf("exit status %d, want 137 (SIGKILL by the OOM killer); output:\n%s", code, out)
	}
	cg, err := c.Cgroup()
	if err != nil {
		t.Fatal(err)
	}
	st, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.OOMKills < 1 {
		t.Errorf("the kernel counted %d OOM kills", st.OOMKills)
	}
}

func TestCPULimitThrottles(t *testing.T) {
	c, _ := startT(t, Config{
		Limits: cgroups.Limits{CPUs: 0.2},
		Args:   []string{"/.ctlab/ctlab", "load", "cpu", "--seconds", "30"},
	})
	cg, _ := c.Cgroup()
	time.Sleep(200 * time.Millisecond)
	s1, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	time.Sleep(1500 * time.Millisecond)
	s2, _ := cg.Stats()
	used := float64(s2.CPUUsageUsec-s1.CPUUsageUsec) / 1e6 / time.Since(t1).Seconds()
	// The quota's own invariant, in the kernel's units: in the periods the
	// group ran, it used at most 20 ms of each (plus one period of slack
	// for the window's edges). Wall-clock cores are only a second opinion:
	// in an emulated VM on a loaded host the guest clock and the periods
	// drift apart, and a 1.5 s window then shows 0.3 cores or more although
	// every period held its quota.
	periods := s2.NrPeriods - s1.NrPeriods
	perPeriod := float64(s2.CPUUsageUsec-s1.CPUUsageUsec) / float64(max(periods, 1))
	t.Logf("%.2f cores by the wall clock; %.0f µs per period over %d periods (quota 20000)", used, perPeriod, periods)
	if periods == 0 || float64(s2.CPUUsageUsec-s1.CPUUsageUsec) > 20000*float64(periods+1) {
		t.Errorf("a busy loop under --cpus 0.2 used %d µs in %d periods: more than the 20000 µs quota per period", s2.CPUUsageUsec-s1.CPUUsageUsec, periods)
	}
	if used < 0.05 {
		t.Errorf("a busy loop under --cpus 0.2 used %.2f cores: it hardly ran", used)
	}
	if s2.NrThrottled == 0 {
		t.Errorf("nr_throttled stayed 0")
	}
}

func TestPidsLimitRefusesForks(t *testing.T) {
	_, code, out := runToEnd(t, Config{
		Limits: cgroups.Limits{PidsMax: 8},
		Args:   []string{"/.ctlab/ctlab", "load", "fork", "30"},
	})
	if code != 3 || !strings.Contains(out, "refused") {
		t.Errorf("fork of 30 under pids.max 8: exit %d, output %q", code, out)
	}
}

func TestFreezerStopsAndResumes(t *testing.T) {
	c, _ := startT(t, Config{Args: []string{"/.ctlab/ctlab", "load", "count", "/tmp/count", "--seconds", "60"}})
	counter := filepath.Join(c.Layout.Upper, "tmp", "count")
	read := func() int {
		b, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	// eventually polls until cond holds (the v2 VM runs 5-10x slower).
	eventually := func(cond func() bool) bool {
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if cond() {
				return true
			}
		}
		return false
	}
	if !eventually(func() bool { return read() > 2 }) {
		t.Fatalf("the counter never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	cg, _ := c.Cgroup()
	if s, _ := cg.FreezerState(); s != "FROZEN" {
		t.Errorf("freezer state %q after pause", s)
	}
	a := read()
	time.Sleep(300 * time.Millisecond)
	if b := read(); b != a {
		t.Errorf("counter moved from %d to %d while frozen", a, b)
	}
	if err := c.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return read() > a }) {
		t.Errorf("counter stuck at %d after thaw", read())
	}
}

func TestDevicesDenyZeroAllowNull(t *testing.T) {
	zero, _ := cgroups.ParseDeviceRule("c 1:5 rwm")
	c, _ := startT(t, Config{Limits: cgroups.Limits{DenyDevices: []cgroups.DeviceRule{zero}}, Args: []string{"sleep", "60"}})
	if out, code := execOut(t, c, "sh", "-c", "head -c 1 /dev/zero"); code == 0 {
		t.Errorf("reading /dev/zero succeeded: %q", out)
	} else if !strings.Contains(strings.ToLower(out), "not permitted") {
		t.Errorf("reading /dev/zero failed without EPERM: %q", out)
	}
	if out, code := execOut(t, c, "sh", "-c", "echo x > /dev/null && echo ok"); code != 0 || out != "ok" {
		t.Errorf("/dev/null refused: %d %q", code, out)
	}
}

func TestIOThrottleCapsDirectReads(t *testing.T) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(DataDir, &sfs); err == nil && (sfs.Type == unix.TMPFS_MAGIC || sfs.Type == 0x858458f6 /* ramfs */) {
		t.Skipf("%s is on tmpfs here: no block device to throttle", DataDir)
	}
	os.MkdirAll(DataDir, 0o700)
	rate, err := cgroups.ParseIORate(DataDir + ":4M")
	if err != nil {
		t.Skipf("no block device behind %s: %v", DataDir, err)
	}
	_, code, out := runToEnd(t, Config{
		Limits: cgroups.Limits{IOReadBPS: []cgroups.IOLimit{rate}},
		Args:   []string{"/.ctlab/ctlab", "load", "io", "/var/tmp/io.dat", strconv.Itoa(12 << 20)},
	})
	if code != 0 {
		t.Fatalf("io load failed: %s", out)
	}
	i := strings.Index(out, ": ")
	f := strings.Fields(out[i+2:])
	mibs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("parse rate from %q", out)
	}
	if mibs < 3 || mibs > 5 {
		t.Errorf("O_DIRECT read at %.2f MiB/s under a 4 MiB/s limit (want within 25%%)", mibs)
	}
}

func TestOverlayCopyUpWhiteoutOpaque(t *testing.T) {
	c, _ := startT(t, sleeper())
	script := "echo changed > /etc/hostname && rm /etc/group && rm -rf /var/tmp && mkdir /var/tmp && touch /var/tmp/new"
	if out, code := execOut(t, c, "sh", "-c", script); code != 0 {
		t.Fatalf("script failed: %s", out)
	}
	up := c.Layout.Upper
	if b, err := os.ReadFile(filepath.Join(up, "etc/hostname")); err != nil || strings.TrimSpace(string(b)) != "changed" {
		t.Errorf("no copy-up of /etc/hostname in upperdir: %q %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(up, "etc/group"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("no 0/0 whiteout for /etc/group: mode %o rdev %d %v", st.Mode, st.Rdev, err)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(up, "var/tmp"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("var/tmp not opaque: %q %v", buf[:n], err)
	}
	changes, err := overlay.Diff(c.Layout)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, ch := range changes {
		kinds[ch.Path] = ch.Kind.String()
	}
	t.Logf("overlay.Diff: %v", kinds)
}
