package overlay

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("overlayfs mounts and trusted.* xattrs need root: euid is %d", os.Geteuid())
	}
}

func write(t testing.TB, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mountsUnder lists mount points at or below dir, from our mountinfo.
func mountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	mps, err := mountPoints()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range mps {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// tree describes every entry below root: type, permission bits and content.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func unmountCleanup(t testing.TB, merged string) {
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
}

func TestOverlayCopyUpWhiteoutOpaqueCommit(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	before := mountsUnder(t, base)

	lower := filepath.Join(base, "lower")
	write(t, filepath.Join(lower, "etc/hostname"), "lower\n")
	write(t, filepath.Join(lower, "etc/motd"), "hello\n")
	write(t, filepath.Join(lower, "data/a"), "a")
	write(t, filepath.Join(lower, "data/sub/b"), "b")
	write(t, filepath.Join(lower, "keep"), "k")
	if err := os.Symlink("keep", filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}

	l := Layout{
		Lower:  []string{lower},
		Upper:  filepath.Join(base, "upper"),
		Work:   filepath.Join(base, "work"),
		Merged: filepath.Join(base, "merged"),
	}
	if err := Mount(l); err != nil {
		t.Fatal(err)
	}
	unmountCleanup(t, l.Merged)
	if m, err := IsMounted(l.Merged); err != nil || !m {
		t.Fatalf("IsMounted after Mount = %v, %v; want true", m, err)
	}
	if err := Mount(l); err == nil {
		t.Fatal("second Mount on the same merged dir succeeded")
	}

	// 1. copy-up: writing a lower file puts a full copy in upperdir.
	write(t, filepath.Join(l.Merged, "etc/hostname"), "changed\n")
	if b, err := os.ReadFile(filepath.Join(l.Upper, "etc/hostname")); err != nil || string(b) != "changed\n" {
		t.Fatalf("upperdir copy-up = %q, %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(lower, "etc/hostname")); string(b) != "lower\n" {
		t.Fatalf("lowerdir was modified: %q", b)
	}

	// 2. whiteout: deleting a lower file leaves a 0/0 char device.
	if err := os.Remove(filepath.Join(l.Merged, "etc/motd")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(l.Upper, "etc/motd"), &st); err != nil {
		t.Fatalf("no whiteout in upperdir: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout mode %o rdev %d, want char device 0/0", st.Mode, st.Rdev)
	}

	// 3. opaque: rm -r a lower dir and create it again.
	if err := os.RemoveAll(filepath.Join(l.Merged, "data")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(l.Merged, "data/new"), "new")
	buf := make([]byte, 8)
	n, err := unix.Getxattr(filepath.Join(l.Upper, "data"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("trusted.overlay.opaque on upper/data = %q, %v; want y", buf[:n], err)
	}
	if _, err := os.Stat(filepath.Join(l.Merged, "data/a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lower data/a visible through opaque dir: %v", err)
	}
	write(t, filepath.Join(l.Merged, "added"), "x")

	changes, err := Diff(l)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ChangeKind{}
	for _, c := range changes {
		got[c.Path] = c.Kind
	}
	want := map[string]ChangeKind{
		"/etc":          Modified,
		"/etc/hostname": Modified,
		"/etc/motd":     Deleted,
		"/data":         Opaque,
		"/data/new":     Added,
		"/added":        Added,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Diff = %v\nwant   %v", got, want)
	}
	for _, c := range changes {
		if c.Path == "/etc/motd" && c.Mode&fs.ModeCharDevice == 0 {
			t.Errorf("whiteout change mode %v, want char device", c.Mode)
		}
		if c.Path == "/etc/hostname" && c.Size != int64(len("changed\n")) {
			t.Errorf("hostname size %d", c.Size)
		}
	}
	mergedView := tree(t, l.Merged)

	// 4. CommitDir: the new layer stacked on the old lower gives the same view.
	layer := filepath.Join(base, "layer1")
	if err := CommitDir(l, layer); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(layer, "etc/motd"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("layer lost the whiteout: mode %o rdev %d err %v", st.Mode, st.Rdev, err)
	}
	if op, err := IsOpaque(filepath.Join(layer, "data")); err != nil || !op {
		t.Fatalf("layer lost the opaque dir: %v %v", op, err)
	}
	if err := CommitDir(l, layer); err == nil {
		t.Fatal("CommitDir onto an existing non-empty layer succeeded")
	}
	l2 := Layout{
		Lower:  []string{layer, lower},
		Upper:  filepath.Join(base, "upper2"),
		Work:   filepath.Join(base, "work2"),
		Merged: filepath.Join(base, "merged2"),
	}
	if err := Mount(l2); err != nil {
		t.Fatal(err)
	}
	unmountCleanup(t, l2.Merged)
	if v2 := tree(t, l2.Merged); fmt.Sprint(v2) != fmt.Sprint(mergedView) {
		t.Fatalf("committed view differs:\n got %v\nwant %v", v2, mergedView)
	}
	// A file recreated over a whiteout of a lower layer is Added, not Modified.
	write(t, filepath.Join(l2.Merged, "etc/motd"), "again")
	write(t, filepath.Join(l2.Merged, "keep"), "k2")
	ch2, err := Diff(l2)
	if err != nil {
		t.Fatal(err)
	}
	got2 := map[string]ChangeKind{}
	for _, c := range ch2 {
		got2[c.Path] = c.Kind
	}
	if got2["/etc/motd"] != Added || got2["/keep"] != Modified {
		t.Fatalf("Diff over committed layer = %v", got2)
	}

	// 5. CommitTar: OCI whiteout markers.
	var tb bytes.Buffer
	if err := CommitTar(l, &tb); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&tb)
	entries := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		entries[h.Name] = string(rune(h.Typeflag)) + ":" + string(b)
	}
	for name, want := range map[string]string{
		"etc/.wh.motd":      "0:",
		"data/.wh..wh..opq": "0:",
		"etc/hostname":      "0:changed\n",
		"data/new":          "0:new",
		"data/":             "5:",
		"etc/":              "5:",
		"added":             "0:x",
	} {
		if entries[name] != want {
			t.Errorf("tar entry %q = %q, want %q (all: %v)", name, entries[name], want, entries)
		}
	}
	if _, ok := entries["etc/motd"]; ok {
		t.Error("tar contains the raw whiteout device etc/motd")
	}

	// 6. Unmount restores mountinfo.
	for _, m := range []string{l2.Merged, l.Merged} {
		if err := Unmount(m); err != nil {
			t.Fatal(err)
		}
		if mounted, err := IsMounted(m); err != nil || mounted {
			t.Fatalf("IsMounted(%s) after Unmount = %v, %v", m, mounted, err)
		}
	}
	if after := mountsUnder(t, base); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("mounts under %s: before %v after %v", base, before, after)
	}
	if err := Unmount(l.Merged); err != nil {
		t.Fatalf("Unmount of an unmounted dir: %v", err)
	}
	if err := Unmount(filepath.Join(base, "nonexistent")); err != nil {
		t.Fatalf("Unmount of a missing dir: %v", err)
	}
}

// Many long lowerdir paths exceed the one-page mount(2) data limit; Mount
// must fall back to relative paths and still stack them in order.
func TestMountLongOptions(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	var lowers []string
	for i := 0; i < 120; i++ {
		d := filepath.Join(base, fmt.Sprintf("layer-%03d-xxxxxxxxxxxx", i))
		write(t, filepath.Join(d, fmt.Sprintf("f%03d", i)), fmt.Sprint(i))
		write(t, filepath.Join(d, "top"), fmt.Sprint(i))
		lowers = append(lowers, d)
	}
	l := Layout{Lower: lowers, Upper: filepath.Join(base, "u"), Work: filepath.Join(base, "w"), Merged: filepath.Join(base, "m")}
	if o, _ := l.Options(); len(o) <= maxOptions {
		t.Fatalf("test setup: options only %d bytes, need > %d", len(o), maxOptions)
	}
	if err := Mount(l); err != nil {
		t.Fatal(err)
	}
	unmountCleanup(t, l.Merged)
	if b, err := os.ReadFile(filepath.Join(l.Merged, "top")); err != nil || string(b) != "0" {
		t.Fatalf("top = %q, %v; want the top-most lower's", b, err)
	}
	if _, err := os.Stat(filepath.Join(l.Merged, "f119")); err != nil {
		t.Fatalf("bottom lower not visible: %v", err)
	}
	if err := Unmount(l.Merged); err != nil {
		t.Fatal(err)
	}
	// The process's own cwd was not changed by the trick.
	if wd, err := os.Getwd(); err != nil || strings.HasPrefix(wd, base) {
		t.Fatalf("cwd changed to %q (%v)", wd, err)
	}
}

func TestMountErrors(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	if err := Mount(Layout{Merged: filepath.Join(base, "m")}); err == nil {
		t.Fatal("Mount without lowers succeeded")
	}
	if err := Mount(Layout{Lower: []string{filepath.Join(base, "a:b")}, Upper: base + "/u", Work: base + "/w", Merged: base + "/m"}); err == nil {
		t.Fatal("Mount with ':' in a path succeeded")
	}
	// A missing lower is a kernel error, returned with context.
	err := Mount(Layout{Lower: []string{filepath.Join(base, "missing")}, Upper: base + "/u", Work: base + "/w", Merged: base + "/m"})
	if err == nil {
		unix.Unmount(base+"/m", unix.MNT_DETACH)
		t.Fatal("Mount with a missing lower succeeded")
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Logf("missing lower error: %v", err)
	}
}

func BenchmarkOverlayMountUnmount(b *testing.B) {
	needRoot(b)
	base := b.TempDir()
	write(b, filepath.Join(base, "lower/f"), "x")
	l := Layout{Lower: []string{filepath.Join(base, "lower")}, Upper: base + "/u", Work: base + "/w", Merged: base + "/m"}
	unmountCleanup(b, l.Merged)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Mount(l); err != nil {
			b.Fatal(err)
		}
		if err := Unmount(l.Merged); err != nil {
			b.Fatal(err)
		}
	}
}
