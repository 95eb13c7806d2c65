package kstate

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

func TestCPUUsageAndIOBytesOfACgroup(t *testing.T) {
	needRoot(t)
	name := "kstate-usage-" + strconv.Itoa(os.Getpid())
	cg, err := cgroups.Create(name, cgroups.Limits{})
	if err != nil {
		t.Skipf("cannot create a cgroup here: %v", err)
	}
	defer cgroups.Remove(context.Background(), name)
	u0, src, err := CPUUsage(name)
	if err != nil || u0 != 0 {
		t.Fatalf("a new cgroup used %s of CPU (%s, %v), want 0", u0, src, err)
	}
	busy := startChild(t, 0, "sh", "-c", "while :; do :; done")
	if err := cg.Add(busy.Process.Pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	u1, src, err := CPUUsage(name)
	if err != nil || u1 < 50*time.Millisecond {
		t.Errorf("a busy loop for 300ms: %s of CPU from %s (%v)", u1, src, err)
	}
	syscall.Kill(busy.Process.Pid, syscall.SIGKILL)
	// No I/O yet on any disk: zero, not an error (the kernel prints no line).
	r, w, src, err := IOBytes(name, 8, 0)
	if err != nil || r != 0 || w != 0 {
		t.Errorf("IOBytes of a cgroup that did no I/O: %d %d from %s (%v)", r, w, src, err)
	}
}

func TestInitReleaseUptimeCgroupPath(t *testing.T) {
	needRoot(t)
	i, err := ReadInit()
	comm, _ := os.ReadFile("/proc/1/comm")
	if err != nil || i.Comm != strings.TrimSpace(string(comm)) || i.Cgroup == "" {
		t.Errorf("ReadInit = %+v (%v), /proc/1/comm %q", i, err, comm)
	}
	if _, err := os.Stat("/run/systemd/system"); (err == nil) != i.Systemd() {
		t.Errorf("Systemd() = %v, but stat /run/systemd/system: %v", i.Systemd(), err)
	}
	child := startChild(t, syscall.CLONE_NEWUTS, "sleep", "60")
	host, err := HostRelease()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() string {
		in, _, err := KernelRelease(child.Process.Pid)
		if err != nil {
			return err.Error()
		}
		if in != host {
			return "release " + in + " inside a uts namespace, host " + host
		}
		return ""
	})
	up, err := HostUptime()
	if err != nil || up <= 0 {
		t.Errorf("uptime %s (%v)", up, err)
	}
	if d, err := ParseUptime("86400.50 12.00\n"); err != nil || d != 86400*time.Second+500*time.Millisecond {
		t.Errorf("ParseUptime = %s, %v", d, err)
	}
	ctl := ""
	if cgroups.Effective() == cgroups.V1 {
		ctl = "memory"
	}
	p, src, err := CgroupPath(os.Getpid(), ctl)
	b, _ := os.ReadFile("/proc/self/cgroup")
	if err != nil || !strings.Contains(string(b), ":"+p+"\n") {
		t.Errorf("CgroupPath(self, %q) = %q from %s (%v); file:\n%s", ctl, p, src, err, b)
	}
	if _, _, err := CgroupPath(os.Getpid(), "no-such-controller"); err == nil {
		t.Error("a missing controller was found")
	}
}

func TestReadFileUnderStaysInside(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "app.conf"), []byte("version=2\n"), 0o644)
	os.Symlink("/etc/hostname", filepath.Join(dir, "abs"))
	os.Symlink("../../../../../../etc/hostname", filepath.Join(dir, "rel"))
	if b, _, err := ReadFileUnder(dir, "/etc/app.conf", 100); err != nil || string(b) != "version=2\n" {
		t.Errorf("read = %q, %v", b, err)
	}
	if b, _, err := ReadFileUnder(dir, "/../../etc/app.conf", 100); err != nil || string(b) != "version=2\n" {
		t.Errorf("a path with .. is not cleaned inside the dir: %q, %v", b, err)
	}
	for _, p := range []string{"/abs", "/rel"} {
		if b, _, err := ReadFileUnder(dir, p, 100); err == nil {
			t.Errorf("%s escaped the dir and read %q", p, b)
		}
	}
}

func TestFileOwnerAsTheHostSeesIt(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "owned")
	os.WriteFile(f, nil, 0o600)
	if err := os.Chown(f, 100000, 100001); err != nil {
		t.Fatal(err)
	}
	o, src, err := FileOwner(os.Getpid(), f)
	if err != nil || o.UID != 100000 || o.GID != 100001 || !strings.Contains(src, "/root"+f) {
		t.Errorf("FileOwner = %+v from %s (%v)", o, src, err)
	}
	if _, _, err := FileOwner(os.Getpid(), filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file has an owner")
	}
}
