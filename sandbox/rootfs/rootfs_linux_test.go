package rootfs

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("chown and chroot need root: euid is %d", os.Geteuid())
	}
}

// inChroot runs a shell command with dir as its root directory.
func inChroot(t *testing.T, dir, script string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chroot %s sh -c %q: %v\nstdout: %s\nstderr: %s", dir, script, err, out.String(), errb.String())
	}
	return out.String()
}

func checkOwner(t *testing.T, dir string, o Owner) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != o.UID || int(st.Gid) != o.GID {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, o.UID, o.GID)
			return filepath.SkipAll
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d entries in %s", n, dir)
	}
}

func checkCommon(t *testing.T, dir string) {
	t.Helper()
	out := inChroot(t, dir, "ls / && cat /etc/hostname")
	for _, want := range []string{"bin", "etc", "proc", "tmp", "ctlab\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("chroot output %q lacks %q", out, want)
		}
	}
	fi, err := os.Lstat(filepath.Join(dir, CtlabPath))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s = %v, %v; want empty regular file 0755", CtlabPath, fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "tmp")); err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode %v (%v), want drwxrwxrwt", fi.Mode(), err)
	}
}

func TestEnsureDefault(t *testing.T) {
	needRoot(t)
	cache := filepath.Join(t.TempDir(), "rootfs")
	owner := Owner{0, 0}
	dir, err := Ensure(context.Background(), KindDefault, cache, owner)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache root mode %v (%v), want 0700", fi.Mode(), err)
	}
	checkCommon(t, dir)
	checkOwner(t, dir, owner)
	info, err := Describe(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ResolveKind(KindDefault)
	if info.Kind != want || len(info.Binaries) < 10 || info.Size == 0 {
		t.Fatalf("Describe = kind %q, %d binaries, %d bytes", info.Kind, len(info.Binaries), info.Size)
	}
	t.Logf("default rootfs: kind %s, %d binaries, %d files, %d bytes", info.Kind, len(info.Binaries), info.Files, info.Size)

	start := time.Now()
	dir2, err := Ensure(context.Background(), KindDefault, cache, owner)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); dir2 != dir || d > time.Second {
		t.Fatalf("second Ensure = %s in %v; want cache hit %s", dir2, d, dir)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 2 { // the tree and .lock
		t.Fatalf("cache holds %v", entries)
	}
}

func TestEnsureHost(t *testing.T) {
	needRoot(t)
	cache := filepath.Join(t.TempDir(), "rootfs")
	owner := Owner{100000, 100000}
	start := time.Now()
	dir, err := Ensure(context.Background(), KindHost, cache, owner)
	if err != nil {
		t.Fatal(err)
	}
	build := time.Since(start)
	checkCommon(t, dir)
	checkOwner(t, dir, owner)
	// Dynamically linked tools with several libraries, and NSS through /etc/passwd.
	out := inChroot(t, dir, "id -un && ip -V && ls -l /etc/passwd && domainname && echo ok | sed s/ok/fine/")
	for _, want := range []string{"root\n", "ip utility", "root", "fine"} {
		if !strings.Contains(out, want) {
			t.Errorf("host tools output %q lacks %q", out, want)
		}
	}
	info, err := Describe(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != KindHost || info.Owner != owner {
		t.Fatalf("Describe = %+v", info)
	}
	for _, b := range []string{"sh", "ls", "cat", "mount", "ip", "unshare", "nsenter"} {
		found := false
		for _, x := range info.Binaries {
			found = found || x == b
		}
		if !found {
			t.Errorf("binary %s missing from %v (skipped %v)", b, info.Binaries, info.Skipped)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/mount")); err != nil || fi.Mode()&fs.ModeSetuid != 0 {
		t.Errorf("bin/mount %v %v: want present without setuid", fi.Mode(), err)
	}
	t.Logf("host rootfs: %d binaries, %d files, %d bytes, built in %v, skipped %v", len(info.Binaries), info.Files, info.Size, build, info.Skipped)

	// Concurrent callers and a cache hit all get the same directory.
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	start = time.Now()
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Ensure(context.Background(), KindHost, cache, owner)
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dir {
			t.Fatalf("concurrent Ensure %d = %s, %v; want %s", i, dirs[i], errs[i], dir)
		}
	}
	t.Logf("4 concurrent cache hits in %v", time.Since(start))

	// A different owner is a different tree.
	dir0, err := Ensure(context.Background(), KindHost, cache, Owner{})
	if err != nil {
		t.Fatal(err)
	}
	if dir0 == dir {
		t.Fatal("owner is not part of the cache key")
	}
}

// Two processes building the same uncached tree at once: flock makes one
// wait, and both end with the same complete directory.
func TestEnsureConcurrentBuild(t *testing.T) {
	needRoot(t)
	cache := filepath.Join(t.TempDir(), "rootfs")
	var wg sync.WaitGroup
	dirs := make([]string, 3)
	errs := make([]error, 3)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Ensure(context.Background(), KindDefault, cache, Owner{})
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("Ensure %d = %s, %v; want %s", i, dirs[i], errs[i], dirs[0])
		}
	}
	left, _ := filepath.Glob(filepath.Join(cache, ".build-*"))
	if len(left) != 0 {
		t.Fatalf("temporary build dirs left: %v", left)
	}
}

func TestBusyboxMissing(t *testing.T) {
	old := BusyboxPath
	BusyboxPath = filepath.Join(t.TempDir(), "no-busybox")
	defer func() { BusyboxPath = old }()
	_, err := Ensure(context.Background(), KindBusybox, t.TempDir(), Owner{})
	if err == nil || !strings.Contains(err.Error(), "apt-get install busybox-static") {
		t.Fatalf("Ensure(busybox) without busybox = %v; want the apt-get hint", err)
	}
	if k, _ := ResolveKind(KindDefault); k != KindHost {
		t.Fatalf("default without busybox resolves to %s, want host", k)
	}
	if _, err := Ensure(context.Background(), "alpine", t.TempDir(), Owner{}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
