package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// forceShift makes image layers take the id-shifted copy path, into a
// temp cache, for the rest of the test.
func forceShift(t *testing.T) {
	t.Helper()
	oldRoot, oldForce := shiftedRoot, forceIDShift
	shiftedRoot, forceIDShift = t.TempDir(), true
	t.Cleanup(func() { shiftedRoot, forceIDShift = oldRoot, oldForce })
}

// The image-in-a-user-namespace assertions of TestAttackImageUserns
// (uid_map not the identity, owners 0 and 33 of layer files show inside,
// root's writes are host uid 100000, USER web) hold on shifted copies.
func TestIdshiftImageUserns(t *testing.T) {
	requireRoot(t)
	forceShift(t)
	TestAttackImageUserns(t)
	copies, _ := filepath.Glob(filepath.Join(shiftedRoot, strconv.Itoa(DefaultUIDBase), "p*"))
	if len(copies) != 2 {
		t.Fatalf("shifted copies: %v, want the test layer and the base rootfs", copies)
	}
	found := false
	for _, c := range copies {
		if st, err := os.Lstat(filepath.Join(c, "owned33")); err == nil {
			found = true
			if s := st.Sys().(*syscall.Stat_t); s.Uid != DefaultUIDBase+33 || s.Gid != DefaultUIDBase+33 {
				t.Errorf("owned33 in the copy: %d:%d, want %d", s.Uid, s.Gid, DefaultUIDBase+33)
			}
		}
	}
	if !found {
		t.Errorf("no copy of the test layer in %v", copies)
	}
}

// A layer on a filesystem without idmapped mounts (ramfs) takes the
// fallback by itself, without the test switch.
func TestIdshiftNoIdmapFS(t *testing.T) {
	requireRoot(t)
	oldRoot := shiftedRoot
	shiftedRoot = t.TempDir()
	defer func() { shiftedRoot = oldRoot }()
	layers := imageLayer(t, "root:x:0:0::/:/bin/sh\n", "")
	ram := t.TempDir()
	if err := unix.Mount("ramfs", ram, "ramfs", 0, "mode=755"); err != nil {
		t.Skipf("no ramfs to hold a layer without idmapped mounts: %v", err)
	}
	defer unix.Unmount(ram, unix.MNT_DETACH)
	if out, err := runCmd("cp", "-a", layers[0]+"/.", ram); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	os.Chown(filepath.Join(ram, "owned33"), 101, 101)
	layers[0] = ram
	c, _ := startT(t, Config{
		Namespaces: []Namespace{NSUser, NSMount, NSPID, NSNet},
		Layers:     layers, Harden: hardened,
		Args: []string{"sleep", "60"},
	})
	if m, _ := execOut(t, c, "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(m), " ") != "0 100000 65536" {
		t.Errorf("uid_map inside: %q", m)
	}
	if out, _ := execOut(t, c, "stat", "-c", "%u:%g", "/owned0", "/owned33", "/bin/sh"); out != "0:0\n101:101\n0:0" {
		t.Errorf("owners inside: %q, want 0:0 101:101 0:0", out)
	}
	if copies, _ := filepath.Glob(filepath.Join(shiftedRoot, "*", "p*")); len(copies) != 1 {
		t.Errorf("shifted copies %v, want only the ramfs layer's", copies)
	}
}

func runCmd(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// The copy keeps what overlay reads from a layer (a whiteout, an opaque
// dir), setuid bits, hardlinks, and copies symlinks as links: one pointing
// at the host's files is neither followed nor touched.
func TestIdshiftCopy(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Mknod(filepath.Join(src, "wh"), unix.S_IFCHR|0, 0))
	must(os.Mkdir(filepath.Join(src, "op"), 0o750))
	must(unix.Setxattr(filepath.Join(src, "op"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.WriteFile(filepath.Join(src, "op", "suid"), []byte("x"), 0o644))
	must(os.Chown(filepath.Join(src, "op", "suid"), 101, 102))
	must(unix.Chmod(filepath.Join(src, "op", "suid"), 0o4755)) // os.Chmod drops 04000
	must(os.Link(filepath.Join(src, "op", "suid"), filepath.Join(src, "hard")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "out")))
	must(os.Symlink("../../../../../etc", filepath.Join(src, "op", "up")))
	must(os.WriteFile(filepath.Join(src, "far"), nil, 0o600))
	must(os.Chown(filepath.Join(src, "far"), 70000, 70000))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	var before unix.Stat_t
	must(unix.Stat("/etc/passwd", &before))

	oldRoot := shiftedRoot
	shiftedRoot = t.TempDir()
	defer func() { shiftedRoot = oldRoot }()
	dst, err := shiftedLayer(context.Background(), src, 200000)
	must(err)
	if again, err := shiftedLayer(context.Background(), src, 200000); err != nil || again != dst {
		t.Errorf("second call: %q %v, want the cached %q", again, err, dst)
	}
	if left, _ := filepath.Glob(filepath.Join(shiftedRoot, "200000", ".tmp-*")); len(left) != 0 {
		t.Errorf("temp dirs left: %v", left)
	}

	st := func(p string) *unix.Stat_t {
		t.Helper()
		var s unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, p), &s))
		return &s
	}
	if s := st("wh"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if v := make([]byte, 8); true {
		n, err := unix.Getxattr(filepath.Join(dst, "op"), "trusted.overlay.opaque", v)
		if err != nil || string(v[:n]) != "y" {
			t.Errorf("opaque xattr: %q %v", v[:n], err)
		}
	}
	if s := st("op"); s.Mode&0o7777 != 0o750 || s.Uid != 200000 {
		t.Errorf("op: mode %o uid %d", s.Mode&0o7777, s.Uid)
	}
	s := st("op/suid")
	if s.Mode&0o7777 != 0o4755 || s.Uid != 200101 || s.Gid != 200102 {
		t.Errorf("setuid file: mode %o owner %d:%d, want 4755 200101:200102", s.Mode&0o7777, s.Uid, s.Gid)
	}
	if h := st("hard"); h.Ino != s.Ino || h.Nlink != 2 {
		t.Errorf("hardlink not kept: ino %d vs %d, nlink %d", h.Ino, s.Ino, h.Nlink)
	}
	for link, want := range map[string]string{"out": "/etc/passwd", "op/up": "../../../../../etc"} {
		if s := st(link); s.Mode&unix.S_IFMT != unix.S_IFLNK || s.Uid != 200000 {
			t.Errorf("%s: mode %o uid %d, want a symlink owned by 200000", link, s.Mode, s.Uid)
		}
		if got, _ := os.Readlink(filepath.Join(dst, link)); got != want {
			t.Errorf("%s -> %q, want %q", link, got, want)
		}
	}
	if s := st("far"); s.Uid != overflowID {
		t.Errorf("id outside the range: %d, want %d", s.Uid, overflowID)
	}
	if s := st("fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO || s.Mode&0o777 != 0o640 {
		t.Errorf("fifo: mode %o", s.Mode)
	}
	var after unix.Stat_t
	must(unix.Stat("/etc/passwd", &after))
	if after.Uid != before.Uid || after.Mode != before.Mode || after.Ctim != before.Ctim {
		t.Errorf("the host's /etc/passwd changed: %+v -> %+v", before, after)
	}

	// A device other than a whiteout is refused, not copied.
	must(unix.Mknod(filepath.Join(src, "op", "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	if _, err := shiftedLayer(context.Background(), src, 300000); err == nil || !strings.Contains(err.Error(), "device") {
		t.Errorf("layer with /dev/null's device: %v, want refused", err)
	}
}
