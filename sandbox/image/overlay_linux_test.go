package image

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// mountedListing mounts the layers (top-most first) read-only with
// overlayfs in a throw-away mount namespace and returns `find` of the
// merged view: what a container would really see.
func mountedListing(t *testing.T, lowers []string) []string {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("unshare(1) not installed: %v", err)
	}
	if b, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(b), "overlay") {
		t.Skip("kernel has no overlay filesystem")
	}
	empty := t.TempDir() // overlay needs two lowers when there is no upper
	mnt := t.TempDir()
	opts := "ro,nodev,nosuid,lowerdir=" + strings.Join(append(lowers, empty), ":")
	script := `mount -t overlay overlay -o "$1" "$2" && cd "$2" && find . -mindepth 1 -printf '%P %y\n'`
	out, err := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", opts, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("overlay mount: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	sort.Strings(lines)
	return lines
}

// mergedListing walks the same layers through Merged (no mount).
func mergedListing(t *testing.T, lowers []string) []string {
	t.Helper()
	m, err := NewMerged(lowers)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out []string
	var walk func(p string)
	walk = func(p string) {
		names, err := m.ReadDir(p)
		if err != nil {
			t.Fatalf("ReadDir %s: %v", p, err)
		}
		for _, n := range names {
			q := path.Join(p, n)
			fi, err := m.Lstat(q)
			if err != nil {
				t.Fatalf("Lstat %s: %v", q, err)
			}
			k := "f"
			switch {
			case fi.Mode&fs.ModeSymlink != 0:
				k = "l"
			case fi.Mode.IsDir():
				k = "d"
			case fi.Mode&fs.ModeNamedPipe != 0:
				k = "p"
			case fi.Mode&fs.ModeDevice != 0:
				k = "c"
			}
			out = append(out, strings.TrimPrefix(q, "/")+" "+k)
			if k == "d" {
				walk(q)
			}
		}
	}
	walk("/")
	sort.Strings(out)
	return out
}

func unpackAll(t *testing.T, c *Cache, layers ...[]te) []string {
	t.Helper()
	var dirs []string
	for _, l := range layers {
		data := mkTar(t, l...)
		u, err := c.Unpack(context.Background(), &BytesSource{ID: sha(data), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		dirs = append([]string{u.Dir}, dirs...) // top-most first
	}
	return dirs
}

// TestOverlayConversion mounts converted layers and checks the kernel's
// merged view (security-checklist §6 P0.3, rows 21, 23-27), and that
// Merged (the grader's mount-free reader) sees exactly the same tree.
func TestOverlayConversion(t *testing.T) {
	base := []te{dir("a"), dir("a/b"), file("a/b/x", "x"), file("a/b/y", "y"), file("a/keep", "k"), dir("etc"), file("etc/passwd", "p"), symlink("localetc", "/etc"), file("f", "file")}
	cases := []struct {
		name  string
		upper []te
		want  []string
	}{
		{"plain whiteout", []te{file("a/b/.wh.x", "")},
			[]string{"a d", "a/b d", "a/b/y f", "a/keep f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"23 whiteout with missing parent dirs", []te{file("a/b/.wh.y", "")},
			[]string{"a d", "a/b d", "a/b/x f", "a/keep f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"opaque dir", []te{dir("a"), file("a/.wh..wh..opq", ""), file("a/new", "n")},
			[]string{"a d", "a/new f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"24 opaque where lower has a file", []te{file("f/.wh..wh..opq", ""), file("f/inside", "i")},
			[]string{"a d", "a/b d", "a/b/x f", "a/b/y f", "a/keep f", "etc d", "etc/passwd f", "f d", "f/inside f", "localetc l"}},
		{"25 opaque then plain whiteout", []te{file("a/.wh..wh..opq", ""), file("a/.wh.keep", ""), file("a/z", "z")},
			[]string{"a d", "a/z f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"25 plain whiteout then opaque", []te{file("a/b/.wh.x", ""), file("a/.wh..wh..opq", ""), file("a/z", "z")},
			[]string{"a d", "a/z f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"26 whiteout then re-add", []te{file("a/.wh.keep", ""), file("a/keep", "again")},
			[]string{"a d", "a/b d", "a/b/x f", "a/b/y f", "a/keep f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"26 re-add then whiteout (same layer)", []te{file("a/keep", "again"), file("a/.wh.keep", "")},
			[]string{"a d", "a/b d", "a/b/x f", "a/b/y f", "a/keep f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"26 whiteout dir then re-create it", []te{file("a/.wh.b", ""), dir("a/b"), file("a/b/fresh", "f")},
			[]string{"a d", "a/b d", "a/b/fresh f", "a/keep f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"27 whiteout as a symlink entry", []te{symlink("a/.wh.keep", "whatever")},
			[]string{"a d", "a/b d", "a/b/x f", "a/b/y f", "etc d", "etc/passwd f", "f f", "localetc l"}},
		{"21 whiteout of a symlink", []te{file(".wh.localetc", "")},
			[]string{"a d", "a/b d", "a/b/x f", "a/b/y f", "a/keep f", "etc d", "etc/passwd f", "f f"}},
		{"31 forged opaque xattr is ignored", []te{{name: "a", typ: 53, mode: 0o755, pax: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}}, file("a/extra", "e")},
			[]string{"a d", "a/b d", "a/b/x f", "a/b/y f", "a/extra f", "a/keep f", "etc d", "etc/passwd f", "f f", "localetc l"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCanary(t)
			cache, err := NewCache(c.cache, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			lowers := unpackAll(t, cache, base, tc.upper)
			got := mountedListing(t, lowers)
			if joinLines(got) != joinLines(tc.want) {
				t.Errorf("mounted view:\n%s\nwant:\n%s", joinLines(got), joinLines(tc.want))
			}
			if m := mergedListing(t, lowers); joinLines(m) != joinLines(got) {
				t.Errorf("Merged differs from the kernel:\n%s\nkernel:\n%s", joinLines(m), joinLines(got))
			}
			if host, err := os.Stat("/etc/passwd"); err != nil || host.Size() == 0 {
				t.Error("host /etc/passwd touched")
			}
			c.check(t)
		})
	}
}

// TestMergedReads: file reads through Merged honour whiteouts and resolve
// symlinks inside the image, never on the host (rows 42, 44).
func TestMergedReads(t *testing.T) {
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{})
	lowers := unpackAll(t, cache,
		[]te{dir("usr/share/nginx/html"), file("usr/share/nginx/html/index.html", "Welcome to nginx"), dir("etc"), file("etc/real", "real")},
		[]te{symlink("etc/passwd", "/dev/zero"), symlink("etc/hostfile", c.passwd()), symlink("etc/rel", "../../../../etc/real"), symlink("etc/loop", "loop")},
		[]te{file("usr/share/nginx/html/index.html", "Hello World")},
	)
	m, err := NewMerged(lowers)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, _, err := m.ReadFile("/usr/share/nginx/html/index.html", 1<<20)
	if err != nil || string(b) != "Hello World" {
		t.Errorf("index.html: %q %v", b, err)
	}
	if _, _, err := m.ReadFile("/etc/passwd", 1<<20); err == nil {
		t.Error("/etc/passwd -> /dev/zero must not be readable (no /dev/zero in the image)")
	}
	if _, _, err := m.ReadFile("/etc/hostfile", 1<<20); err == nil {
		t.Error("a symlink to a host path must resolve inside the image")
	}
	if b, _, err := m.ReadFile("/etc/rel", 1<<20); err != nil || string(b) != "real" {
		t.Errorf("relative escaping symlink should clamp at the image root: %q %v", b, err)
	}
	if _, err := m.Stat("/etc/loop"); err == nil {
		t.Error("symlink loop resolved")
	}
	if b, trunc, err := m.ReadFile("/etc/real", 2); err != nil || !trunc || string(b) != "re" {
		t.Errorf("bounded read: %q %v %v", b, trunc, err)
	}
	m.Close()
	c.check(t)
	_ = filepath.Join
}
