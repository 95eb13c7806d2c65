package kstate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to create namespaces: euid %d", os.Geteuid())
	}
}

// startChild starts argv with extra clone flags and returns it; it is
// killed when the test ends.
func startChild(t *testing.T, flags uintptr, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	// Own process group, so cleanup also kills grandchildren (unshare --fork).
	// No Pdeathsig: it fires when the *thread* that forked exits, and Go
	// throws threads away (kstate's setns threads among them).
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd
}

// eventually polls f until it returns "" or 5s pass.
func eventually(t *testing.T, f func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostSnapshot(t *testing.T) {
	h, err := Host()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup"} {
		if r := h.Namespaces[k]; !r.OK() || r.Value == 0 || r.Source != "/proc/"+itoa(os.Getpid())+"/ns/"+k {
			t.Errorf("ns %s = %+v", k, r)
		}
	}
	if h.Status.Value.Pid != os.Getpid() || h.Status.Value.Name == "" {
		t.Errorf("status = %+v", h.Status)
	}
	name, _ := os.Hostname()
	if h.Hostname.Value != name {
		t.Errorf("hostname %q, os.Hostname %q", h.Hostname.Value, name)
	}
	if FindMount(h.Mounts.Value, "/") == nil || FindMount(h.Mounts.Value, "/proc") == nil {
		t.Errorf("mountinfo lacks / or /proc: %d mounts", len(h.Mounts.Value))
	}
	if len(h.Cgroups.Value) == 0 || !h.UIDMap.OK() {
		t.Errorf("cgroup %+v uid_map %+v", h.Cgroups, h.UIDMap)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestUTSChildHasOwnHostname(t *testing.T) {
	needRoot(t)
	host, _ := os.Hostname()
	child := startChild(t, syscall.CLONE_NEWUTS, "sh", "-c", "hostname kstate-test && exec sleep 60")
	pid := child.Process.Pid
	eventually(t, func() string {
		h, _, src, err := UTSNames(pid)
		if err != nil || h != "kstate-test" {
			return "child hostname via " + src + ": " + h + " " + errString(err)
		}
		return ""
	})
	p, err := Of(pid)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := Host()
	if p.Namespaces["uts"].Value == h.Namespaces["uts"].Value {
		t.Errorf("child uts inode %d equals the host's", p.Namespaces["uts"].Value)
	}
	if p.Namespaces["net"].Value != h.Namespaces["net"].Value {
		t.Errorf("child net inode differs although no CLONE_NEWNET")
	}
	if p.Hostname.Value != "kstate-test" || !strings.Contains(p.Hostname.Source, "setns") {
		t.Errorf("snapshot hostname %+v", p.Hostname)
	}
	if now, _ := os.Hostname(); now != host || h.Hostname.Value != host {
		t.Errorf("host hostname changed: %q -> %q", host, now)
	}
}

func TestIPCObjectOnlyInsideItsNamespace(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("ipcmk"); err != nil {
		t.Skipf("util-linux ipcmk not installed: %v", err)
	}
	child := startChild(t, syscall.CLONE_NEWIPC, "sh", "-c", "ipcmk -M 4096 >/dev/null && exec sleep 60")
	pid := child.Process.Pid
	var key int64
	eventually(t, func() string {
		ipc, _, err := IPCObjects(pid)
		if err != nil || len(ipc.Shm) != 1 {
			return "child shm objects: " + errString(err)
		}
		key = ipc.Shm[0].Key
		return ""
	})
	host, src, err := IPCObjects(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range host.Shm {
		if o.Key == key {
			t.Errorf("shm key %#x of the child's namespace is visible on the host (%s)", key, src)
		}
	}
	p, _ := Of(pid)
	if len(p.IPC.Value.Of("shm")) != 1 {
		t.Errorf("snapshot ipc %+v", p.IPC)
	}
}

func TestTimeNamespaceOffsets(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skipf("kernel has no time namespaces: %v", err)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("util-linux unshare not installed: %v", err)
	}
	// A new time namespace applies to children of the unsharer, hence --fork.
	child := startChild(t, 0, "unshare", "--time", "--monotonic", "3600", "--boottime", "7200", "--fork", "sleep", "60")
	var sleepPid int
	eventually(t, func() string {
		d, err := Descendants(child.Process.Pid)
		if err != nil || len(d) == 0 || d[0].Comm != "sleep" {
			return "no sleep below unshare yet"
		}
		sleepPid = d[0].Pid
		return ""
	})
	p, err := Of(sleepPid)
	if err != nil {
		t.Fatal(err)
	}
	if off := p.TimeOffsets.Value; off.Monotonic != time.Hour || off.Boottime != 2*time.Hour {
		t.Fatalf("offsets %+v (%s)", p.TimeOffsets, p.TimeOffsets.Source)
	}
	h, _ := Host()
	if diff := p.Clocks.Value.Monotonic - h.Clocks.Value.Monotonic; diff < 59*time.Minute || diff > 61*time.Minute {
		t.Errorf("monotonic inside - host = %s, want ~1h", diff)
	}
	if p.Namespaces["time"].Value == h.Namespaces["time"].Value {
		t.Errorf("time ns inode equals the host's")
	}
}

func TestMountAndUserNamespace(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	child := startChild(t, 0, "unshare", "--mount", "--propagation", "private", "--user", "--map-root-user",
		"sh", "-c", "mount -t tmpfs kstate-test "+dir+" && exec sleep 60")
	pid := child.Process.Pid
	eventually(t, func() string {
		ms, err := ReadMountinfo(pid)
		if err != nil {
			return err.Error()
		}
		if m := FindMount(ms, dir); m == nil || m.FSType != "tmpfs" || m.Source != "kstate-test" {
			return "tmpfs not yet in the child's mountinfo"
		}
		// The mount shows before sh has exec'd sleep (a wide window on a
		// slow VM): wait for the exec too.
		if p, _ := Of(pid); p == nil || p.Status.Value.Name != "sleep" {
			return "the child has not exec'd sleep yet"
		}
		return ""
	})
	host, _ := ReadMountinfo(os.Getpid())
	if FindMount(host, dir) != nil {
		t.Errorf("the child's tmpfs at %s is visible on the host", dir)
	}
	p, _ := Of(pid)
	if m := p.UIDMap.Value; len(m) != 1 || m[0].String() != "0 0 1" {
		t.Errorf("uid_map = %v, want [0 0 1]", m)
	}
	if p.Status.Value.Name != "sleep" {
		t.Errorf("status name %q", p.Status.Value.Name)
	}
}

func TestParsers(t *testing.T) {
	ms, err := parseMountinfo(`36 35 98:0 /mnt1 /mnt/my\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue` + "\n")
	if err != nil || len(ms) != 1 || ms[0].MountPoint != "/mnt/my dir" || ms[0].Optional[0] != "master:1" || ms[0].SuperOptions != "rw,errors=continue" {
		t.Errorf("mountinfo %+v %v", ms, err)
	}
	p, err := parseStat(7, "7 (a) b)) S 3 7 7")
	if err != nil || p.Comm != "a) b)" || p.PPid != 3 {
		t.Errorf("stat %+v %v", p, err)
	}
	objs := parseSysvipc("       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime        rss       swap\n 123 5 600 4096 1 1 0 0 0 0 0 0 0 0 0 0\n")
	if len(objs) != 1 || objs[0].Key != 123 || objs[0].ID != 5 || objs[0].Perms != "600" {
		t.Errorf("sysvipc %+v", objs)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSetnsLeavesNoThreadBehind: many reads inside a child's uts and ipc
// namespaces must not leave any thread of ours there, in particular not
// the main thread, whose namespaces /proc/<pid>/ns shows for the process.
func TestSetnsLeavesNoThreadBehind(t *testing.T) {
	needRoot(t)
	child := startChild(t, syscall.CLONE_NEWUTS|syscall.CLONE_NEWIPC, "sleep", "60")
	utsBefore, _ := NSInode(os.Getpid(), "uts")
	ipcBefore, _ := NSInode(os.Getpid(), "ipc")
	done := make(chan error, 64)
	for i := 0; i < 64; i++ {
		go func() {
			_, _, _, err := UTSNames(child.Process.Pid)
			if err == nil {
				_, _, err = IPCObjects(child.Process.Pid)
			}
			done <- err
		}()
	}
	for i := 0; i < 64; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if u, _ := NSInode(os.Getpid(), "uts"); u != utsBefore {
		t.Errorf("our uts namespace changed: %d -> %d", utsBefore, u)
	}
	if i, _ := NSInode(os.Getpid(), "ipc"); i != ipcBefore {
		t.Errorf("our ipc namespace changed: %d -> %d", ipcBefore, i)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/self/task/"+task.Name()+"/ns/uts", &st); err == nil && st.Ino != utsBefore {
			t.Errorf("thread %s is still in the child's uts namespace", task.Name())
		}
	}
	if h, _ := os.Hostname(); h == "" {
		t.Error("empty hostname")
	}
}

func TestCgroupFileBothNames(t *testing.T) {
	needRoot(t)
	name := "kstate-test-" + strconv.Itoa(os.Getpid())
	cg, err := cgroups.Create(name, cgroups.Limits{MemoryMax: 64 << 20, PidsMax: 42})
	if err != nil {
		t.Skipf("cannot create a cgroup here: %v", err)
	}
	defer cgroups.Remove(context.Background(), name)
	_ = cg
	for _, f := range []string{"memory.max", "memory.limit_in_bytes"} {
		v, src, err := CgroupFile(name, f, "")
		if err != nil || v != strconv.Itoa(64<<20) || !strings.Contains(src, name) {
			t.Errorf("%s = %q from %s (%v)", f, v, src, err)
		}
	}
	if v, _, err := CgroupFile(name, "pids.max", ""); err != nil || v != "42" {
		t.Errorf("pids.max = %q (%v)", v, err)
	}
	if v, _, err := CgroupFile(name, "pids.events", "max"); err != nil || v != "0" {
		t.Errorf("pids.events max = %q (%v)", v, err)
	}
	if _, _, err := CgroupFile(name, "pids.events", "nope"); err == nil {
		t.Error("a missing key was found")
	}
	if v, _, err := CgroupFile(name, "cpu.max", ""); err != nil || !strings.HasPrefix(v, "max ") {
		t.Errorf("cpu.max = %q (%v), want unlimited", v, err)
	}
	st, files, err := Cgroup(name)
	if err != nil || st.PidsMax != 42 || len(files) == 0 {
		t.Errorf("Cgroup: %+v %d files %v", st, len(files), err)
	}
}

func TestUpperEntryKinds(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	l := overlay.Layout{Lower: []string{filepath.Join(dir, "lower")}, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged")}
	for _, d := range []string{l.Lower[0] + "/etc", l.Lower[0] + "/data", l.Upper, l.Work, l.Merged} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(l.Lower[0]+"/etc/motd", []byte("hi"), 0o644)
	os.WriteFile(l.Lower[0]+"/etc/gone", []byte("x"), 0o644)
	os.WriteFile(l.Lower[0]+"/data/old", []byte("x"), 0o644)
	if err := overlay.Mount(l); err != nil {
		t.Skipf("overlayfs not available: %v", err)
	}
	defer overlay.Unmount(l.Merged)
	os.WriteFile(l.Merged+"/etc/motd", []byte("changed"), 0o644) // copy-up
	os.Remove(l.Merged + "/etc/gone")                            // whiteout
	os.RemoveAll(l.Merged + "/data")                             // replaced by
	os.Mkdir(l.Merged+"/data", 0o755)                            // an opaque dir
	for path, want := range map[string]UpperFile{
		"/etc/motd":  {Exists: true},
		"/etc/gone":  {Exists: true, Whiteout: true},
		"/data":      {Exists: true, Opaque: true},
		"/etc/never": {},
	} {
		u, src, err := UpperEntry(l, path)
		if err != nil || u.Exists != want.Exists || u.Whiteout != want.Whiteout || u.Opaque != want.Opaque {
			t.Errorf("%s: %+v from %s (%v), want %+v", path, u, src, err, want)
		}
	}
	// a path cannot climb out of the upperdir
	if u, _, _ := UpperEntry(l, "/../../../etc/passwd"); u.Exists {
		t.Error("UpperEntry followed .. out of the upperdir")
	}
}
