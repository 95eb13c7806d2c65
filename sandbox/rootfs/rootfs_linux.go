// Package rootfs builds the default container root filesystem offline, from the host's busybox or the host's own binaries and their ELF dependencies, and caches it.
package rootfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Kinds of rootfs.
const (
	KindDefault = "default" // busybox when BusyboxPath exists, else host
	KindBusybox = "busybox" // BusyboxPath plus one symlink per applet
	KindHost    = "host"    // host binaries plus their shared libraries
)

// NoBusyboxEnv, set to "1", makes the default kind ignore the host's busybox:
// the host kind is what a learner's VM without busybox gets, and tests
// (and a curious learner) can build and use it on a machine that has busybox.
const NoBusyboxEnv = "CTLAB_NO_BUSYBOX"

// BusyboxPath is where Debian's busybox-static installs its binary.
var BusyboxPath = "/bin/busybox"

// formatVersion is part of the cache key: bump it when the layout changes
// so old cached trees are not reused.
const formatVersion = "1"

// MetaPath is the metadata file inside every built rootfs, relative to its root.
const MetaPath = ".ctlab/rootfs.json"

// CtlabPath is an empty regular file (mode 0755) inside every rootfs, the
// bind-mount target for the ctlab binary so load generators exist in any
// container.
const CtlabPath = ".ctlab/ctlab"

// Owner is the host uid/gid every file is chowned to: the host id that
// container root maps to (e.g. 100000), or {0, 0} without a user namespace.
type Owner struct{ UID, GID int }

// Info describes a built rootfs (for `ctlab doctor` and inspect).
type Info struct {
	Dir      string
	Kind     string    // "busybox" or "host"
	Key      string    // cache key (hash of kind, owner and source binaries)
	Owner    Owner     // from the metadata
	Built    time.Time // when it was built
	Binaries []string  // command names in /bin
	Skipped  []string  // host tools left out and why ("lsns: not installed")
	Sources  []string  // host files it was built from: "path size mtime"
	Files    int       // regular files
	Size     int64     // bytes in regular files
}

// meta is the on-disk form of Info in MetaPath.
type meta struct {
	Kind     string    `json:"kind"`
	Key      string    `json:"key"`
	Owner    Owner     `json:"owner"`
	Built    time.Time `json:"built"`
	Binaries []string  `json:"binaries"`
	Skipped  []string  `json:"skipped,omitempty"`
	Sources  []string  `json:"sources"`
}

// ResolveKind maps "default" to "busybox" or "host" and validates the name.
func ResolveKind(kind string) (string, error) {
	switch kind {
	case KindDefault, "":
		// CTLAB_NO_BUSYBOX=1 builds what a learner's VM without busybox gets.
		if os.Getenv(NoBusyboxEnv) == "1" {
			return KindHost, nil
		}
		if fi, err := os.Stat(BusyboxPath); err == nil && fi.Mode().IsRegular() {
			return KindBusybox, nil
		}
		return KindHost, nil
	case KindBusybox, KindHost:
		return kind, nil
	}
	return "", fmt.Errorf("rootfs: unknown kind %q (want default, busybox or host)", kind)
}

// Ensure returns a cached rootfs of the given kind owned by owner, building
// it first if needed. The cache key covers kind, owner and every host file
// the tree is copied from (path, size, mtime), so a package upgrade on the
// host gives a new tree. Builds happen in a temporary directory renamed into
// place, under an exclusive flock on cacheRoot/.lock, so concurrent callers
// (goroutines or processes) get the same complete directory.
//
// Old trees are never removed here: a running container may still use one
// as its lowerdir.
func Ensure(ctx context.Context, kind, cacheRoot string, owner Owner) (string, error) {
	k, err := ResolveKind(kind)
	if err != nil {
		return "", err
	}
	var p *plan
	if k == KindBusybox {
		p, err = planBusybox()
	} else {
		p, err = planHost()
	}
	if err != nil {
		return "", err
	}
	sources, err := p.sources()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "ctlab-rootfs v%s\nkind %s\nowner %d:%d\n", formatVersion, k, owner.UID, owner.GID)
	for _, s := range sources {
		fmt.Fprintln(h, s)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	dir := filepath.Join(cacheRoot, fmt.Sprintf("%s-%d.%d-%s", k, owner.UID, owner.GID, key))

	if err := os.MkdirAll(cacheRoot, 0o700); err != nil {
		return "", fmt.Errorf("rootfs: create cache %s: %w", cacheRoot, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, MetaPath)); err == nil {
		return dir, nil // fast path: complete trees only ever appear by rename
	}
	unlock, err := LockCache(ctx, filepath.Join(cacheRoot, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Lstat(filepath.Join(dir, MetaPath)); err == nil {
		return dir, nil // built by whoever held the lock before us
	}
	// Leftovers of a build that was killed: nobody else builds while we hold the lock.
	if old, _ := filepath.Glob(filepath.Join(cacheRoot, ".build-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(cacheRoot, ".build-")
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	m := meta{Kind: k, Key: key, Owner: owner, Built: time.Now().UTC(), Sources: sources}
	if err := build(ctx, p, tmp, owner, &m); err != nil {
		return "", fmt.Errorf("rootfs: build %s rootfs: %w", k, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	ok = true
	return dir, nil
}

// LockCache takes an exclusive flock on path (made if missing), polling
// so ctx can cancel the wait. Also used for the id-shifted layer copies.
func LockCache(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rootfs: lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("rootfs: flock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("rootfs: waiting for %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sources lists every host file the plan copies as "path size mtime",
// sorted, plus the recreated symlinks as "link -> target".
func (p *plan) sources() ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, src := range p.files {
		if seen[src] {
			continue
		}
		seen[src] = true
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
		out = append(out, fmt.Sprintf("%s %d %d", src, fi.Size(), fi.ModTime().UnixNano()))
	}
	for l, t := range p.links {
		out = append(out, l+" -> "+t)
	}
	sort.Strings(out)
	return out, nil
}

const (
	etcPasswd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	etcGroup  = "root:x:0:\nnogroup:x:65534:\n"
	etcHosts  = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	etcNSS    = "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n"
)

// build writes the tree for p into root.
func build(ctx context.Context, p *plan, root string, owner Owner, m *meta) error {
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"bin", 0o755}, {"etc", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755},
		{"tmp", fs.ModeSticky | 0o777}, {"root", 0o700}, {"run", 0o755}, {"var", 0o755}, {"var/tmp", fs.ModeSticky | 0o777},
		{"usr", 0o755}, {".ctlab", 0o755},
	}
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(root, d.path), 0o700); err != nil {
			return err
		}
		// Mkdir applies the umask; chmod sets the exact bits (sticky included).
		if err := os.Chmod(filepath.Join(root, d.path), d.mode); err != nil {
			return err
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	// One bin directory; the other usual PATH entries point to it.
	for l, t := range map[string]string{"sbin": "bin", "usr/bin": "../bin", "usr/sbin": "../bin"} {
		if err := os.Symlink(t, filepath.Join(root, l)); err != nil {
			return err
		}
	}

	for dst, src := range p.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := copyFile(src, filepath.Join(root, dst)); err != nil {
			return err
		}
	}
	for l, t := range p.links {
		dst := filepath.Join(root, l)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
	}
	bins := p.binaries
	if p.kind == KindBusybox {
		applets, err := busyboxApplets(ctx)
		if err != nil {
			return err
		}
		for _, a := range applets {
			if a == "busybox" {
				continue
			}
			if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		bins = append(bins, applets...)
	}
	sort.Strings(bins)

	for name, content := range map[string]string{
		"etc/passwd": etcPasswd, "etc/group": etcGroup, "etc/hostname": "ctlab\n",
		"etc/hosts": etcHosts, "etc/nsswitch.conf": etcNSS,
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, CtlabPath), nil, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(root, CtlabPath), 0o755); err != nil {
		return err
	}

	m.Binaries, m.Skipped = dedupe(bins), p.skipped
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, MetaPath), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return chownTree(root, owner)
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// copyFile copies a regular file's content and permission bits. setuid and
// setgid bits are dropped on purpose (mount is setuid on the host): the lab
// rootfs must not hand out privilege escalation helpers.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Chmod(fi.Mode().Perm()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// chownTree lchowns every entry (symlinks themselves, never their targets).
func chownTree(root string, o Owner) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, o.UID, o.GID); err != nil {
			return err
		}
		// chown may clear the sticky/suid bits on some filesystems; restore dirs' bits.
		if d.IsDir() {
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			return os.Chmod(p, fi.Mode()&(fs.ModePerm|fs.ModeSticky))
		}
		return nil
	})
}

// busyboxApplets runs `busybox --list`.
func busyboxApplets(ctx context.Context) ([]string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, BusyboxPath, "--list")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s --list: %w: %s", BusyboxPath, err, strings.TrimSpace(errb.String()))
	}
	var applets []string
	for _, l := range strings.Fields(out.String()) {
		if l != "" && !strings.Contains(l, "/") {
			applets = append(applets, l)
		}
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list printed no applets", BusyboxPath)
	}
	return applets, nil
}

// Describe reports what a rootfs built by Ensure contains. The kind, key,
// owner and binary list come from its metadata file; file count and size
// are measured now.
func Describe(dir string) (Info, error) {
	info := Info{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, MetaPath))
	if err != nil {
		return info, fmt.Errorf("rootfs: describe %s: not a ctlab rootfs: %w", dir, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return info, fmt.Errorf("rootfs: describe %s: %w", dir, err)
	}
	info.Kind, info.Key, info.Owner, info.Built = m.Kind, m.Key, m.Owner, m.Built
	info.Binaries, info.Skipped, info.Sources = m.Binaries, m.Skipped, m.Sources
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			info.Files++
			info.Size += fi.Size()
		}
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("rootfs: describe %s: %w", dir, err)
	}
	return info, nil
}
