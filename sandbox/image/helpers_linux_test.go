package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// te is one tar entry for the adversarial tests.
type te struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	size     int64 // if >0 and != len(body): header lies
	pax      map[string]string
	major    int64
	format   tar.Format
}

func file(name, body string) te   { return te{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dir(name string) te          { return te{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) te  { return te{name: name, typ: tar.TypeSymlink, link: to, mode: 0o777} }
func hardlink(name, to string) te { return te{name: name, typ: tar.TypeLink, link: to, mode: 0o644} }

// mkTar writes entries into a tar. Entries the stdlib writer refuses (it
// validates some fields) make the test fail loudly instead of silently
// testing something else.
func mkTar(t testing.TB, entries ...te) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: time.Unix(1700000000, 0), PAXRecords: e.pax, Devmajor: e.major, Format: e.format}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: e.typ, Name: e.name, PAXRecords: e.pax}
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
			if e.size > 0 {
				h.Size = e.size
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg && e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil && e.size == 0 {
				t.Fatalf("tar body %q: %v", e.name, err)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		// a lying header leaves the writer short; emit what we have
		return buf.Bytes()
	}
	tw.Close()
	return buf.Bytes()
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// canary is the oracle from security-checklist §1.9: a host-like tree next
// to the unpack root that must come out byte-, mode-, owner- and
// mtime-identical, plus "nothing new outside the root".
type canary struct {
	base   string // contains root/ (the cache) and canary/
	cache  string
	before map[string]string
	fds    int
	mounts string
}

func newCanary(t testing.TB) *canary {
	t.Helper()
	base := t.TempDir()
	c := &canary{base: base, cache: filepath.Join(base, "cache")}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(base, "canary/etc"), 0o755))
	must(os.MkdirAll(filepath.Join(base, "canary/dir"), 0o755))
	must(os.WriteFile(filepath.Join(base, "canary/etc/passwd"), []byte("root:x:0:0:canary:/root:/bin/sh\n"), 0o400))
	must(os.Chmod(filepath.Join(base, "canary/etc/passwd"), 0o400))
	must(os.Symlink("/etc", filepath.Join(base, "canary/link")))
	c.before = snapshot(t, base, "cache")
	c.fds = countFDs(t)
	c.mounts = mountsUnder(base)
	return c
}

func (c *canary) passwd() string { return filepath.Join(c.base, "canary/etc/passwd") }

// snapshot lists every path under base except skip, with what must not change.
func snapshot(t testing.TB, base, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		if rel == skip {
			return filepath.SkipDir
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return nil
		}
		v := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			b, _ := os.ReadFile(p)
			v += " sha=" + sha(b).Hex
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			l, _ := os.Readlink(p)
			v += " -> " + l
		}
		if rel != "." { // the base dir's mtime changes when cache/ is created
			out[rel] = v
		}
		return nil
	})
	return out
}

// mountsUnder returns the mountinfo lines that mention base. Only those:
// other people's tests on the same machine mount things concurrently.
func mountsUnder(base string) string {
	m, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(m), "\n") {
		if strings.Contains(l, base) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// check asserts the oracle: canary unchanged, nothing new outside the
// cache, no temp dirs in the cache, no /tmp/breakout*, same fds and mounts.
func (c *canary) check(t testing.TB) {
	t.Helper()
	after := snapshot(t, c.base, "cache")
	for k, v := range c.before {
		if after[k] != v {
			t.Errorf("canary changed: %s: %q -> %q", k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := c.before[k]; !ok {
			t.Errorf("new path outside the unpack root: %s", k)
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(c.cache, ".tmp-*"))
	if len(tmps) > 0 {
		t.Errorf("temp dirs left behind: %v", tmps)
	}
	if b, _ := filepath.Glob("/tmp/breakout*"); len(b) > 0 {
		t.Errorf("host files created: %v", b)
	}
	if n := countFDs(t); n != c.fds {
		t.Errorf("fd count %d -> %d", c.fds, n)
	}
	if m := mountsUnder(c.base); m != c.mounts {
		t.Errorf("mounts under the test dir changed: %q -> %q", c.mounts, m)
	}
}

// tree lists root as "path type [extra]" lines, sorted, for comparisons.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		var st syscall.Stat_t
		syscall.Lstat(p, &st)
		kind := map[uint32]string{syscall.S_IFREG: "f", syscall.S_IFDIR: "d", syscall.S_IFLNK: "l", syscall.S_IFCHR: "c", syscall.S_IFBLK: "b", syscall.S_IFIFO: "p"}[st.Mode&syscall.S_IFMT]
		out = append(out, rel+" "+kind)
		return nil
	})
	sort.Strings(out)
	return out
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func joinLines(l []string) string { return strings.Join(l, "\n") }
