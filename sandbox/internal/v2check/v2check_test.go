package v2check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	cgroupRoot = "/sys/fs/cgroup"
	// testCgroup is removed at the end of the test (and before it, if a killed run left it).
	testCgroup = cgroupRoot + "/ctlab-v2check"
)

// requirePureV2 skips unless /sys/fs/cgroup itself is a cgroup2 mount: a hybrid host
// (v1 controllers, empty v2 tree at /sys/fs/cgroup/unified) has tmpfs there.
func requirePureV2(t *testing.T) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		t.Fatalf("statfs %s: %v", cgroupRoot, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skipf("not a pure cgroup v2 host: %s has filesystem magic %#x, want cgroup2 %#x (hybrid or v1 host)",
			cgroupRoot, st.Type, unix.CGROUP2_SUPER_MAGIC)
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to create kernel objects: euid is %d", os.Geteuid())
	}
}

func TestCgroupV2Controllers(t *testing.T) {
	requirePureV2(t)
	have := strings.Fields(readTrim(t, filepath.Join(cgroupRoot, "cgroup.controllers")))
	for _, want := range []string{"cpu", "memory", "pids", "io"} {
		found := false
		for _, c := range have {
			found = found || c == want
		}
		if !found {
			t.Errorf("controller %q missing from %s/cgroup.controllers: %v", want, cgroupRoot, have)
		}
	}
}

// enableInRoot makes a controller's files appear in child cgroups (systemd has done it
// on a learner's VM; the test VM's init does it too). It undoes only what it changed.
func enableInRoot(t *testing.T, controller string) {
	t.Helper()
	ctl := filepath.Join(cgroupRoot, "cgroup.subtree_control")
	for _, c := range strings.Fields(readTrim(t, ctl)) {
		if c == controller {
			return
		}
	}
	if err := os.WriteFile(ctl, []byte("+"+controller), 0o644); err != nil {
		t.Fatalf("enable %s in %s: %v", controller, ctl, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(ctl, []byte("-"+controller), 0o644); err != nil {
			t.Logf("disable %s in %s again: %v", controller, ctl, err)
		}
	})
}

func TestCgroupV2MemoryMax(t *testing.T) {
	requirePureV2(t)
	requireRoot(t)
	enableInRoot(t, "memory")
	if err := os.Remove(testCgroup); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("remove stale %s: %v", testCgroup, err)
	}
	if err := os.Mkdir(testCgroup, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(testCgroup); err != nil {
			t.Errorf("rmdir %s: %v", testCgroup, err)
		}
	})
	maxFile := filepath.Join(testCgroup, "memory.max")
	if err := os.WriteFile(maxFile, []byte("32M"), 0o644); err != nil {
		t.Fatalf("write 32M to %s: %v", maxFile, err)
	}
	if got := readTrim(t, maxFile); got != "33554432" {
		t.Errorf("%s = %q after writing 32M, want %q", maxFile, got, "33554432")
	}

	// io.max needs a real block device under the test's files: the VM's /dev/vda
	// behind TMPDIR (/var/tmp); not tmpfs.
	t.Run("io.max", func(t *testing.T) {
		enableInRoot(t, "io")
		var st unix.Stat_t
		dir := t.TempDir()
		if err := unix.Stat(dir, &st); err != nil {
			t.Fatalf("stat %s: %v", dir, err)
		}
		majmin := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
		if _, err := os.Stat("/sys/dev/block/" + majmin); err != nil {
			t.Skipf("temp dir %s is not on a block device (%s): %v", dir, majmin, err)
		}
		// A partition cannot be throttled, only its whole disk.
		if _, err := os.Stat("/sys/dev/block/" + majmin + "/partition"); err == nil {
			t.Skipf("temp dir %s is on partition %s; this check wants a whole disk like the VM's /dev/vda", dir, majmin)
		}
		ioFile := filepath.Join(testCgroup, "io.max")
		if err := os.WriteFile(ioFile, []byte(majmin+" rbps=5242880"), 0o644); err != nil {
			t.Fatalf("write %s rbps=5242880 to %s: %v", majmin, ioFile, err)
		}
		if got, want := readTrim(t, ioFile), majmin+" rbps=5242880 wbps=max riops=max wiops=max"; got != want {
			t.Errorf("%s = %q, want %q", ioFile, got, want)
		}
	})
}

func TestOverlayFilesystem(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	dirs := map[string]string{}
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		dirs[d] = filepath.Join(base, d)
		if err := os.Mkdir(dirs[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dirs["lower"], "f"), []byte("lower\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", dirs["lower"], dirs["upper"], dirs["work"])
	if err := unix.Mount("overlay", dirs["merged"], "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay (%s): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dirs["merged"], unix.MNT_DETACH); err != nil {
			t.Errorf("unmount overlay: %v", err)
		}
	})
	// After a mount (which would autoload the module) the kernel must list it.
	if fs := readTrim(t, "/proc/filesystems"); !strings.Contains(fs, "\toverlay\n") && !strings.HasSuffix(fs, "\toverlay") {
		t.Errorf("overlay missing from /proc/filesystems:\n%s", fs)
	}
	// Writing through the merged view copies the file up; the lower layer stays.
	if err := os.WriteFile(filepath.Join(dirs["merged"], "f"), []byte("upper\n"), 0o644); err != nil {
		t.Fatalf("write through overlay: %v", err)
	}
	if got := readTrim(t, filepath.Join(dirs["upper"], "f")); got != "upper" {
		t.Errorf("upperdir copy = %q, want %q", got, "upper")
	}
	if got := readTrim(t, filepath.Join(dirs["lower"], "f")); got != "lower" {
		t.Errorf("lowerdir changed to %q", got)
	}
}

// newNetns creates a network namespace and returns a netlink handle opened in it,
// leaving the calling thread (and the host's links) untouched.
func newNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New() // unshare(CLONE_NEWNET) on this thread
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	defer ns.Close()
	h, herr := netlink.NewHandleAt(ns)
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the new namespace: stay locked so Go retires it.
		t.Fatalf("return to original netns: %v", err)
	}
	runtime.UnlockOSThread()
	if herr != nil {
		t.Fatalf("netlink handle in new netns: %v", herr)
	}
	t.Cleanup(h.Close)
	return h
}

func TestVethPair(t *testing.T) {
	requireRoot(t)
	h := newNetns(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ctlc0ffee01h"}, PeerName: "ctlc0ffee01c"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("create veth pair: %v", err)
	}
	peer, err := h.LinkByName("ctlc0ffee01c")
	if err != nil {
		t.Fatalf("peer not found after create: %v", err)
	}
	if peer.Type() != "veth" {
		t.Errorf("peer type = %q, want veth", peer.Type())
	}
	if err := h.LinkDel(veth); err != nil {
		t.Fatalf("delete veth: %v", err)
	}
	// Deleting one end removes both.
	_, err = h.LinkByName("ctlc0ffee01c")
	var nf netlink.LinkNotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("peer after delete: got %v, want LinkNotFoundError", err)
	}
}

func TestBridge(t *testing.T) {
	requireRoot(t)
	h := newNetns(t)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "ctlc0ffee01b"}}
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("create bridge: %v", err)
	}
	got, err := h.LinkByName(br.Name)
	if err != nil {
		t.Fatalf("bridge not found after create: %v", err)
	}
	if got.Type() != "bridge" {
		t.Errorf("type = %q, want bridge", got.Type())
	}
	if err := h.LinkDel(got); err != nil {
		t.Fatalf("delete bridge: %v", err)
	}
}
