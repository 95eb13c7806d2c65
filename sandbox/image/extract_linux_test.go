package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

type breakout struct {
	name    string
	entries func(c *canary) []te
	raw     func(t *testing.T) []byte // instead of entries
	lim     Limits
	wantErr error // nil: must succeed; errAny: any error
	check   func(t *testing.T, c *canary, root string)
}

var errAny = errors.New("any error")

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Lstat(p)
	return err == nil
}

func wantFile(name, content string) func(t *testing.T, c *canary, root string) {
	return func(t *testing.T, c *canary, root string) {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || string(b) != content {
			t.Errorf("%s: got %q, %v; want %q", name, b, err, content)
		}
	}
}

// TestExtractBreakouts is the extractor catalogue of security-checklist §1.9
// (rows 1-22, 28-39) with the canary oracle on every case.
func TestExtractBreakouts(t *testing.T) {
	cases := []breakout{
		{name: "01 dotdot regular", entries: func(c *canary) []te { return []te{file("../../canary/etc/passwd", "pwned")} }, wantErr: ErrInvalidLayer},
		{name: "01b dotdot via absolute canary path", entries: func(c *canary) []te {
			return []te{file("../../../../../../../.."+c.passwd(), "pwned")}
		}, wantErr: ErrInvalidLayer},
		{name: "02 absolute name lands inside", entries: func(c *canary) []te { return []te{file("/etc/x", "x")} }, check: wantFile("etc/x", "x")},
		{name: "03 a/../../x", entries: func(c *canary) []te { return []te{file("a/../../x", "x")} }, wantErr: ErrInvalidLayer},
		{name: "03 /../x", entries: func(c *canary) []te { return []te{file("/../x", "x")} }, wantErr: ErrInvalidLayer},
		{name: "03 /./../.././x", entries: func(c *canary) []te { return []te{file("/./../.././x", "x")} }, wantErr: ErrInvalidLayer},
		{name: "03 inner dotdot that stays inside", entries: func(c *canary) []te { return []te{file("a/b/../c", "c")} }, check: wantFile("a/c", "c")},
		{name: "04 root as symlink dot", entries: func(c *canary) []te { return []te{symlink(".", "/")} }, wantErr: ErrInvalidLayer},
		{name: "04 root as symlink slash", entries: func(c *canary) []te { return []te{symlink("/", c.base)} }, wantErr: ErrInvalidLayer},
		{name: "04 root as file", entries: func(c *canary) []te { return []te{file(".", "x")} }, wantErr: ErrInvalidLayer},
		{name: "05 odd names are literal", entries: func(c *canary) []te {
			return []te{file("back\\slash", "1"), file("nl\nname", "2"), file("esc\x1b[2Jname", "3"), file("bad\xffutf8", "4")}
		}, check: func(t *testing.T, c *canary, root string) {
			for _, n := range []string{"back\\slash", "nl\nname", "esc\x1b[2Jname", "bad\xffutf8"} {
				if !exists(t, filepath.Join(root, n)) {
					t.Errorf("missing literal name %q", n)
				}
			}
			if q := Quote("esc\x1b[2J"); strings.ContainsRune(q, 0x1b) {
				t.Errorf("Quote left an escape: %s", q)
			}
		}},
		{name: "06 name longer than 4096", entries: func(c *canary) []te { return []te{file(strings.Repeat("a/", 2100)+"x", "x")} }, wantErr: ErrLimit},
		{name: "06 component longer than 255", entries: func(c *canary) []te { return []te{file(strings.Repeat("n", 256), "x")} }, wantErr: ErrLimit},
		{name: "06 deep nesting", entries: func(c *canary) []te { return []te{file(strings.Repeat("d/", 300)+"x", "x")} }, wantErr: ErrLimit},
		{name: "07 SymlinkAbsolute", entries: func(c *canary) []te {
			return []te{dir("etc"), symlink("localetc", "/etc"), file("/localetc/unbroken", "u")}
		}, check: func(t *testing.T, c *canary, root string) {
			wantFile("etc/unbroken", "u")(t, c, root)
			if exists(t, "/etc/unbroken") {
				t.Error("host /etc/unbroken created")
			}
		}},
		{name: "07b symlink to the canary's absolute path", entries: func(c *canary) []te {
			return []te{symlink("cet", filepath.Dir(c.passwd())), file("cet/passwd", "pwned")}
		}, wantErr: errAny}, // resolves to <root><canary>/etc which does not exist: dangling parent
		{name: "08 SymlinkUpAndOut", entries: func(c *canary) []te {
			return []te{dir("etc"), symlink("up", "../../../../../../../../.."), file("up/etc/x", "x")}
		}, check: wantFile("etc/x", "x")},
		{name: "08 SymlinkMultipleAbsolute", entries: func(c *canary) []te {
			return []te{dir("etc"), symlink("b", "/etc"), symlink("a", "/b"), file("a/x", "x")}
		}, check: wantFile("etc/x", "x")},
		{name: "08 SymlinkMultipleRelative", entries: func(c *canary) []te {
			return []te{dir("etc"), dir("d"), symlink("d/b", "../etc"), symlink("a", "d/b"), file("a/x", "x")}
		}, check: wantFile("etc/x", "x")},
		{name: "09 SymlinkOverridePath", entries: func(c *canary) []te {
			return []te{symlink("foo", "/"), file("foo/tmp/breakout-ctlab", "x")}
		}, check: wantFile("tmp/breakout-ctlab", "x")},
		{name: "10 symlink named ..", entries: func(c *canary) []te { return []te{symlink("..", "/")} }, wantErr: ErrInvalidLayer},
		{name: "10 symlink with empty name", entries: func(c *canary) []te { return []te{symlink("", "/")} }, wantErr: ErrInvalidLayer},
		{name: "10 SymlinkParentRelative", entries: func(c *canary) []te { return []te{dir("etc"), symlink("etc/..", "/")} }, wantErr: ErrInvalidLayer},
		{name: "10 SymlinkSlashEnded", entries: func(c *canary) []te {
			return []te{symlink("foo/", "/"), file("foo/x", "x")}
		}, check: wantFile("x", "x")},
		{name: "11 SymlinkOverrideDirectory", entries: func(c *canary) []te {
			return []te{dir("etc"), file("etc/a", "a"), symlink("etc", "/"), file("etc/b", "b")}
		}, check: func(t *testing.T, c *canary, root string) {
			wantFile("b", "b")(t, c, root)
			if l, _ := os.Readlink(filepath.Join(root, "etc")); l != "/" {
				t.Errorf("etc should be the symlink, got %q", l)
			}
		}},
		{name: "11 SymlinkOverrideDirectoryRelative", entries: func(c *canary) []te {
			return []te{dir("etc"), symlink("etc", "../../../"), file("etc/b", "b")}
		}, check: wantFile("b", "b")},
		{name: "11 DirectoryOverrideSymlink", entries: func(c *canary) []te {
			return []te{symlink("foo", "/etc/"), dir("foo"), file("foo/x", "x")}
		}, check: func(t *testing.T, c *canary, root string) {
			wantFile("foo/x", "x")(t, c, root)
			if st, err := os.Lstat(filepath.Join(root, "foo")); err != nil || !st.IsDir() {
				t.Errorf("foo should be a real dir: %v", err)
			}
		}},
		{name: "11 DirectoryOverrideSymlinkAndHardlink", entries: func(c *canary) []te {
			return []te{symlink("foo", c.base), hardlink("bar", "foo"), dir("foo"), file("foo/x", "x"), file("bar", "y")}
		}, check: wantFile("foo/x", "x")},
		{name: "12 symlink loop", entries: func(c *canary) []te {
			return []te{symlink("a", "b"), symlink("b", "a"), file("a/x", "x")}
		}, wantErr: ErrInvalidLayer},
		{name: "13 escaping relative symlink kept verbatim", entries: func(c *canary) []te {
			return []te{symlink("d", "../../../../.."), file("d/x", "x")}
		}, check: func(t *testing.T, c *canary, root string) {
			if l, _ := os.Readlink(filepath.Join(root, "d")); l != "../../../../.." {
				t.Errorf("target changed: %q", l)
			}
			wantFile("x", "x")(t, c, root)
		}},
		{name: "14 HardlinkDirectAbsolute to missing", entries: func(c *canary) []te { return []te{hardlink("passwd", "/etc/passwd")} }, wantErr: ErrInvalidLayer},
		{name: "14 HardlinkDirectAbsolute to canary", entries: func(c *canary) []te { return []te{hardlink("passwd", c.passwd())} }, wantErr: ErrInvalidLayer},
		{name: "14 HardlinkDirectRelative", entries: func(c *canary) []te {
			return []te{hardlink("passwd", "../../../../../canary/etc/passwd")}
		}, wantErr: ErrInvalidLayer},
		{name: "14 hardlink to an in-root file", entries: func(c *canary) []te {
			return []te{file("etc/passwd", "in"), hardlink("passwd", "/etc/passwd")}
		}, check: func(t *testing.T, c *canary, root string) {
			a, _ := os.Stat(filepath.Join(root, "passwd"))
			b, _ := os.Stat(filepath.Join(root, "etc/passwd"))
			h, _ := os.Stat(c.passwd())
			if a == nil || !os.SameFile(a, b) || os.SameFile(a, h) {
				t.Error("hardlink must point at the in-root file only")
			}
		}},
		{name: "15 HardlinkRelativeUpAndOut via symlink", entries: func(c *canary) []te {
			return []te{symlink("up", c.base), hardlink("hl", "up/canary/etc/passwd")}
		}, wantErr: ErrInvalidLayer},
		{name: "15 HardlinkDownAndOut", entries: func(c *canary) []te {
			return []te{dir("d"), symlink("d/up", "../.."), hardlink("hl", "d/up/../canary/etc/passwd")}
		}, wantErr: ErrInvalidLayer},
		{name: "16 HardlinkSymlinkChmod CVE-2021-32760", entries: func(c *canary) []te {
			return []te{symlink("slink", c.passwd()), {name: "hl", typ: tar.TypeLink, link: "slink", mode: 0o777}, {name: "hl", typ: tar.TypeLink, link: "slink", mode: 0o4777}}
		}, check: func(t *testing.T, c *canary, root string) {
			st, err := os.Stat(c.passwd())
			if err != nil || st.Mode().Perm() != 0o400 {
				t.Errorf("canary mode changed: %v %v", st.Mode(), err)
			}
			fi, err := os.Lstat(filepath.Join(root, "hl"))
			if err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("hl should be a hardlink to the symlink itself: %v", err)
			}
		}},
		{name: "17 HardlinkSymlinkBeforeCreateTarget", entries: func(c *canary) []te {
			return []te{symlink("s", "/target"), hardlink("h", "s"), file("target", "t"), file("h", "overwrite")}
		}, check: func(t *testing.T, c *canary, root string) {
			wantFile("target", "t")(t, c, root)
			wantFile("h", "overwrite")(t, c, root)
		}},
		{name: "17 HardlinkSymlinkAbsolute", entries: func(c *canary) []te {
			return []te{symlink("s", "/etc/passwd"), hardlink("h", "/s"), {name: "h", typ: tar.TypeReg, body: "x", mode: 0o777}}
		}, check: wantFile("h", "x")},
		{name: "18 hardlink to a directory", entries: func(c *canary) []te { return []te{dir("d"), hardlink("h", "d")} }, wantErr: ErrInvalidLayer},
		{name: "18 hardlink to the root", entries: func(c *canary) []te { return []te{hardlink("h", "/")} }, wantErr: ErrInvalidLayer},
		{name: "19 WhiteoutRoot .wh..", entries: func(c *canary) []te { return []te{file(".wh..", "")} }, wantErr: ErrInvalidLayer},
		{name: "19 WhiteoutRootParent .wh...", entries: func(c *canary) []te { return []te{file(".wh...", "")} }, wantErr: ErrInvalidLayer},
		{name: "19 WhiteoutParent", entries: func(c *canary) []te { return []te{dir("foo"), file("foo/.wh..", "")} }, wantErr: ErrInvalidLayer},
		{name: "20 empty whiteout name", entries: func(c *canary) []te { return []te{file("a/.wh.", "")} }, wantErr: ErrInvalidLayer},
		{name: "22 WhiteoutSymlinkPath", entries: func(c *canary) []te {
			return []te{symlink("hostcanary", c.base+"/canary/etc"), symlink("localetc", "/etc"), dir("etc"), file("localetc/.wh.passwd", "")}
		}, check: func(t *testing.T, c *canary, root string) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, "etc/passwd"), &st); err != nil || !isWhiteoutDev(&st) {
				t.Errorf("whiteout should land at <root>/etc/passwd: %v", err)
			}
		}},
		{name: "22 WhiteoutDirectoryName", entries: func(c *canary) []te { return []te{file(".wh.etc/somefile", "s")} }, check: wantFile(".wh.etc/somefile", "s")},
		{name: "22 WhiteoutRelativePath", entries: func(c *canary) []te { return []te{file("foo/../.wh.bar", "")} }, check: func(t *testing.T, c *canary, root string) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, "bar"), &st); err != nil || !isWhiteoutDev(&st) {
				t.Errorf("want whiteout device at bar: %v", err)
			}
		}},
		{name: "22 whiteout through a dead symlink parent", entries: func(c *canary) []te {
			return []te{symlink("dead", "/nonexistent"), file("dead/.wh.x", "")}
		}, wantErr: ErrInvalidLayer},
		{name: "27 whiteout with a dir typeflag", entries: func(c *canary) []te { return []te{dir("a/.wh.b")} }, check: func(t *testing.T, c *canary, root string) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, "a/b"), &st); err != nil || !isWhiteoutDev(&st) {
				t.Errorf("want whiteout device at a/b: %v", err)
			}
		}},
		{name: "28 device nodes dropped", entries: func(c *canary) []te {
			return []te{dir("dev"), {name: "dev/sda", typ: tar.TypeBlock, major: 8, mode: 0o666}, {name: "dev/mem", typ: tar.TypeChar, major: 1, mode: 0o666}}
		}, check: func(t *testing.T, c *canary, root string) {
			if exists(t, filepath.Join(root, "dev/sda")) || exists(t, filepath.Join(root, "dev/mem")) {
				t.Error("device nodes from the image were created")
			}
		}},
		{name: "29 uid 2^32", entries: func(c *canary) []te { return []te{{name: "x", typ: tar.TypeReg, uid: 1 << 32, mode: 0o644}} }, wantErr: ErrInvalidLayer},
		{name: "29 gid 2^32-1", entries: func(c *canary) []te { return []te{{name: "x", typ: tar.TypeReg, gid: 1<<32 - 1, mode: 0o644}} }, wantErr: ErrInvalidLayer},
		{name: "29 device major > 2^32", entries: func(c *canary) []te {
			return []te{{name: "d", typ: tar.TypeChar, major: 1<<32 + 1, format: tar.FormatGNU}}
		}, wantErr: ErrInvalidLayer},
		{name: "31 overlay and security xattrs dropped", entries: func(c *canary) []te {
			return []te{
				{name: "d", typ: tar.TypeDir, mode: 0o755, pax: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.overlay.redirect": "/etc", "SCHILY.xattr.user.keep": "1"}},
				{name: "bin", typ: tar.TypeReg, mode: 0o755, body: "x", pax: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "SCHILY.xattr.trusted.overlay.metacopy": "", "SCHILY.xattr.trusted.overlay.origin": "x"}},
			}
		}, check: func(t *testing.T, c *canary, root string) {
			buf := make([]byte, 64)
			for _, x := range []struct{ p, a string }{{"d", "trusted.overlay.opaque"}, {"d", "user.overlay.redirect"}, {"bin", "security.capability"}, {"bin", "trusted.overlay.metacopy"}, {"bin", "trusted.overlay.origin"}} {
				if _, err := unix.Lgetxattr(filepath.Join(root, x.p), x.a, buf); err == nil {
					t.Errorf("%s kept xattr %s", x.p, x.a)
				}
			}
			if n, err := unix.Lgetxattr(filepath.Join(root, "d"), "user.keep", buf); err != nil || string(buf[:n]) != "1" {
				t.Errorf("user.keep dropped: %v", err)
			}
		}},
		{name: "32 too many xattrs", lim: Limits{MaxXattrs: 4}, entries: func(c *canary) []te {
			pax := map[string]string{}
			for i := 0; i < 10; i++ {
				pax["SCHILY.xattr.user.a"+string(rune('a'+i))] = "v"
			}
			return []te{{name: "f", typ: tar.TypeReg, mode: 0o644, pax: pax}}
		}, wantErr: ErrLimit},
		{name: "32 huge xattr", lim: Limits{MaxXattrBytes: 1024}, entries: func(c *canary) []te {
			return []te{{name: "f", typ: tar.TypeReg, mode: 0o644, pax: map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 4096)}}}
		}, wantErr: ErrLimit},
		{name: "33 fifo ok, global header ignored", entries: func(c *canary) []te {
			return []te{{name: "pax_global_header", typ: tar.TypeXGlobalHeader, pax: map[string]string{"comment": "x"}}, {name: "fifo", typ: tar.TypeFifo, mode: 0o600}}
		}, check: func(t *testing.T, c *canary, root string) {
			st, err := os.Lstat(filepath.Join(root, "fifo"))
			if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
				t.Errorf("fifo missing: %v", err)
			}
			if exists(t, filepath.Join(root, "pax_global_header")) {
				t.Error("global header became a file")
			}
		}},
		{name: "33 unknown typeflag", entries: func(c *canary) []te { return []te{{name: "u", typ: 'Z'}} }, wantErr: ErrInvalidLayer},
		{name: "34 gzip bomb", lim: Limits{MaxTotalBytes: 1 << 20, MaxEntries: 16}, raw: func(t *testing.T) []byte {
			var buf bytes.Buffer
			zw, _ := kgzip.NewWriterLevel(&buf, kgzip.BestCompression)
			tw := tar.NewWriter(zw)
			tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: 200 << 20, Mode: 0o644})
			zero := make([]byte, 1<<20)
			for i := 0; i < 200; i++ {
				tw.Write(zero)
			}
			tw.Close()
			zw.Close()
			return buf.Bytes()
		}, wantErr: ErrLimit},
		{name: "34 bomb of end-of-archive zeros", lim: Limits{MaxTotalBytes: 1 << 20, MaxEntries: 16}, raw: func(t *testing.T) []byte {
			var buf bytes.Buffer
			zw, _ := kgzip.NewWriterLevel(&buf, kgzip.BestCompression)
			zero := make([]byte, 1<<20)
			for i := 0; i < 100; i++ {
				zw.Write(zero)
			}
			zw.Close()
			return buf.Bytes()
		}, wantErr: ErrLimit},
		{name: "35 truncated entry", raw: func(t *testing.T) []byte {
			b := mkTar(t, te{name: "big", typ: tar.TypeReg, body: strings.Repeat("x", 10), size: 4096, mode: 0o644})
			return b
		}, wantErr: ErrInvalidLayer},
		{name: "36 file larger than the file cap", lim: Limits{MaxFileBytes: 1 << 20}, raw: func(t *testing.T) []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644})
			return buf.Bytes() // header only: must be refused before any data is read
		}, wantErr: ErrLimit},
		{name: "37 entry count cap", lim: Limits{MaxEntries: 100}, entries: func(c *canary) []te {
			var es []te
			for i := 0; i < 101; i++ {
				es = append(es, file("f", "x"))
			}
			return es
		}, wantErr: ErrLimit},
		{name: "37 10k duplicates of one path", entries: func(c *canary) []te {
			var es []te
			for i := 0; i < 10000; i++ {
				es = append(es, file("dup", "x"))
			}
			return es
		}, check: wantFile("dup", "x")},
		{name: "39 non-tar bytes mid-layer", raw: func(t *testing.T) []byte {
			b := mkTar(t, file("a", "a"))
			b = b[:1024]
			return append(b, bytes.Repeat([]byte("garbage!"), 256)...)
		}, wantErr: ErrInvalidLayer},
	}
	g0 := runtime.NumGoroutine()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCanary(t)
			var data []byte
			if tc.raw != nil {
				data = tc.raw(t)
			} else {
				data = mkTar(t, tc.entries(c)...)
			}
			cache, err := NewCache(c.cache, tc.lim)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			u, err := cache.Unpack(ctx, &BytesSource{ID: sha(data), Data: data})
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr == errAny && err == nil, tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if entries, _ := os.ReadDir(c.cache); len(entries) > 1 { // only the lock file may remain
					t.Errorf("cache not clean after error: %v", entries)
				}
			}
			if tc.check != nil && u != nil {
				tc.check(t, c, u.Dir)
			}
			c.check(t)
		})
	}
	time.Sleep(10 * time.Millisecond)
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Errorf("goroutines leaked: %d -> %d", g0, g)
	}
}

// TestDigestTamper: a changed byte, or garbage after the end-of-archive
// marker, is caught after the drain and nothing is installed (row 38).
func TestDigestTamper(t *testing.T) {
	good := mkTar(t, file("etc/hello", "hello world"))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"flipped byte", bytes.Replace(good, []byte("hello world"), []byte("hello World"), 1)},
		{"trailing garbage", append(append([]byte{}, good...), []byte("trailing")...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCanary(t)
			cache, _ := NewCache(c.cache, Limits{})
			_, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(good), Data: tc.data})
			if !errors.Is(err, ErrDigest) {
				t.Fatalf("want digest error, got %v", err)
			}
			if _, ok := cache.Lookup(sha(good)); ok {
				t.Fatal("tampered layer installed in the cache")
			}
			c.check(t)
		})
	}
	t.Run("compressed blob digest", func(t *testing.T) {
		c := newCanary(t)
		cache, _ := NewCache(c.cache, Limits{})
		var gz bytes.Buffer
		zw := kgzip.NewWriter(&gz)
		zw.Write(good)
		zw.Close()
		wrong := sha([]byte("other"))
		_, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(good), Data: gz.Bytes(), Blob: &wrong})
		if !errors.Is(err, ErrDigest) {
			t.Fatalf("want digest error for the blob, got %v", err)
		}
		right := sha(gz.Bytes())
		u, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(good), Data: gz.Bytes(), Blob: &right})
		if err != nil {
			t.Fatal(err)
		}
		wantFile("etc/hello", "hello world")(t, c, u.Dir)
		c.check(t)
	})
}

// TestCachePermissions: the cache and its parents are 0700, so an
// unprivileged host user cannot reach a setuid binary in a layer (row 30).
func TestCachePermissions(t *testing.T) {
	c := newCanary(t)
	cache, _ := NewCache(filepath.Join(c.cache, "deep", "layers"), Limits{})
	data := mkTar(t, te{name: "bin/sh", typ: tar.TypeReg, body: "#!", mode: 0o4755})
	u, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(data), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(u.Dir, "bin/sh"))
	if st.Mode()&os.ModeSetuid == 0 {
		t.Error("setuid bit should be kept inside the layer (chown before chmod)")
	}
	for _, d := range []string{c.cache, filepath.Join(c.cache, "deep"), cache.Root} {
		st, _ := os.Stat(d)
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s is %v, want 0700", d, st.Mode().Perm())
		}
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skipf("setpriv not installed: %v", err)
	}
	out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "stat", filepath.Join(u.Dir, "bin/sh")).CombinedOutput()
	if err == nil {
		t.Errorf("nobody could stat a file in the cache: %s", out)
	}
}

// TestCacheConcurrent: several graders unpacking the same layer at once get
// one extraction and the same directory.
func TestCacheConcurrent(t *testing.T) {
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{})
	var es []te
	for i := 0; i < 500; i++ {
		es = append(es, file("d/f"+strings.Repeat("x", i%50)+string(rune('a'+i%26)), strings.Repeat("y", i)))
	}
	data := mkTar(t, es...)
	type res struct {
		u   *Unpacked
		err error
	}
	ch := make(chan res, 8)
	for i := 0; i < 8; i++ {
		go func() {
			u, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(data), Data: data})
			ch <- res{u, err}
		}()
	}
	hits := 0
	for i := 0; i < 8; i++ {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.u.Hit {
			hits++
		}
	}
	if hits != 7 {
		t.Errorf("want exactly one extraction and 7 cache hits, got %d hits", hits)
	}
	c.check(t)
}

// TestExtractCancel: a cancelled context stops an extraction promptly.
func TestExtractCancel(t *testing.T) {
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := mkTar(t, file("a", "a"))
	if _, err := cache.Unpack(ctx, &BytesSource{ID: sha(data), Data: data}); err == nil {
		t.Fatal("cancelled unpack succeeded")
	}
	c.check(t)
}

var _ = syscall.Getpid
