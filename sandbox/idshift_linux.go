package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// The fallback for kernels and filesystems without idmapped mounts
// (Docker's userns-remap): a copy of a layer with every owner shifted into
// the container's range, made once per (range base, layer) and kept.

var (
	// shiftedRoot holds the shifted copies: shiftedRoot/<base>/<key>.
	// A variable so that tests can point it at a temp dir.
	shiftedRoot = filepath.Join(DataDir, "layers-shifted")
	// forceIDShift makes idmappedLowers take the copy path without trying
	// an idmapped mount. Set only by tests (not an environment variable
	// the image or a scenario could set).
	forceIDShift bool
)

// overflowID is the owner given to files whose id lies outside the
// range: unmapped inside the container (which shows it as nobody), as an
// idmapped mount shows such ids.
const overflowID = 65534

// noIdmap reports whether err from idmapMount means the kernel or the
// layer's filesystem has no idmapped mounts (rather than a real failure).
func noIdmap(err error) bool {
	for _, e := range []error{unix.EINVAL, unix.EPERM, unix.ENOSYS, unix.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// diffIDName reports whether name is 64 lower-case hex digits (a loop: a
// regexp compiled at package init would cost every process start).
func diffIDName(name string) bool {
	if len(name) != 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// shiftKey names the shifted copy of layer dir l. Cache layers are named
// by their diffid and never change; any other dir (the built-in rootfs, a
// test's layer) is keyed by its path and its root's identity and mtime,
// so that a rebuilt dir at the same path is not served stale.
func shiftKey(l string) (string, error) {
	if diffIDName(filepath.Base(l)) {
		return filepath.Base(l), nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(l, &st); err != nil {
		return "", fmt.Errorf("stat layer %s: %w", l, err)
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d:%d:%d.%d", l, st.Dev, st.Ino, st.Mtim.Sec, st.Mtim.Nsec)))
	return "p" + hex.EncodeToString(h[:16]), nil
}

// shiftedLayer returns the id-shifted copy of layer dir l for the range
// starting at base, making it if missing: into a temp dir under a lock,
// renamed into place when complete, so a reader never sees half a copy
// and a killed run leaves only a temp dir that the next one removes.
func shiftedLayer(ctx context.Context, l string, base int) (string, error) {
	key, err := shiftKey(l)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(shiftedRoot, strconv.Itoa(base))
	dst := filepath.Join(dir, key)
	if _, err := os.Lstat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("shifted layer cache: %w", err)
	}
	unlock, err := rootfs.LockCache(ctx, filepath.Join(dir, ".lock-"+key))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Lstat(dst); err == nil {
		return dst, nil // made by another process while we waited
	}
	stale, _ := filepath.Glob(filepath.Join(dir, ".tmp-"+key+"-*"))
	for _, s := range stale {
		_ = os.RemoveAll(s) // does not follow symlinks
	}
	tmp, err := os.MkdirTemp(dir, ".tmp-"+key+"-")
	if err != nil {
		return "", fmt.Errorf("shifted layer cache: %w", err)
	}
	if err := shiftCopy(ctx, l, tmp, base); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("id-shifted copy of layer %s: %w", l, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("shifted layer cache: %w", err)
	}
	return dst, nil
}

// shifter copies one tree; every access goes through directory fds with
// O_NOFOLLOW / AT_SYMLINK_NOFOLLOW, so a symlink in the layer is copied as
// a link and never followed out of it.
type shifter struct {
	ctx     context.Context // a big layer's copy can be abandoned
	base    int
	dstRoot int                  // fd of the copy's root, for hardlinks
	links   map[[2]uint64]string // (dev, ino) of a multiply-linked file -> its first copy, relative to dstRoot
}

func (s *shifter) id(v uint32) int {
	if v >= IDRange {
		return overflowID
	}
	return s.base + int(v)
}

// shiftCopy copies the tree at src into the existing empty dir dst.
func shiftCopy(ctx context.Context, src, dst string, base int) error {
	sfd, err := unix.Open(src, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(dst, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	s := &shifter{ctx: ctx, base: base, dstRoot: dfd, links: map[[2]uint64]string{}}
	if err := s.dir(sfd, dfd, ""); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return err
	}
	return s.attrs(sfd, dfd, ".", &st)
}

// dir copies the entries of the open dir sfd into the open dir dfd; rel
// is dfd's path relative to the copy's root.
func (s *shifter) dir(sfd, dfd int, rel string) error {
	names, err := readNames(sfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := s.entry(sfd, dfd, n, filepath.Join(rel, n)); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(rel, n), err)
		}
	}
	return nil
}

// readNames lists a dir fd without closing it (a dup is read).
func readNames(fd int) ([]string, error) {
	d, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

func (s *shifter) entry(sfd, dfd int, name, rel string) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	mode := st.Mode & unix.S_IFMT
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		k := [2]uint64{st.Dev, st.Ino}
		if first, ok := s.links[k]; ok {
			return unix.Linkat(s.dstRoot, first, dfd, name, 0)
		}
		s.links[k] = rel
	}
	switch mode {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		cs, err := unix.Openat(sfd, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(cs)
		cd, err := unix.Openat(dfd, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(cd)
		if err := s.dir(cs, cd, rel); err != nil {
			return err
		}
		return s.attrs(cs, cd, ".", &st)
	case unix.S_IFREG:
		if err := copyRegular(sfd, dfd, name); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := readlinkat(sfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFIFO, unix.S_IFSOCK:
		// Extraction makes no device but the whiteout (char 0:0); a copy
		// must not turn a stray one into a node the container's root owns.
		if mode == unix.S_IFCHR && st.Rdev != 0 {
			return fmt.Errorf("device node %d:%d in a layer", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if err := unix.Mknodat(dfd, name, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("block device in a layer")
	}
	return s.attrs(sfd, dfd, name, &st)
}

// copyRegular copies a regular file's content into a new file.
func copyRegular(sfd, dfd int, name string) error {
	in, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	fi := os.NewFile(uintptr(in), name)
	defer fi.Close()
	out, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	fo := os.NewFile(uintptr(out), name)
	if _, err := io.Copy(fo, fi); err != nil {
		fo.Close()
		return err
	}
	return fo.Close()
}

func readlinkat(fd int, name string) (string, error) {
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		l, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			return "", err
		}
		if l < n {
			return string(buf[:l]), nil
		}
	}
}

// attrs gives the copy dfd/name (made by us, so no race with the image)
// its shifted owner, then its mode (chown clears setuid/setgid bits, so
// the mode comes after), then the extended attributes (overlay's opaque
// and redirect markers, file capabilities, which chown would also clear).
func (s *shifter) attrs(sfd, dfd int, name string, st *unix.Stat_t) error {
	if err := unix.Fchownat(dfd, name, s.id(st.Uid), s.id(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	link := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !link {
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	// Through the dir fds' /proc links, with l*xattr: the last component
	// is never followed.
	sp := fmt.Sprintf("/proc/self/fd/%d/%s", sfd, name)
	dp := fmt.Sprintf("/proc/self/fd/%d/%s", dfd, name)
	keys, err := listXattrs(sp)
	if err != nil {
		return err
	}
	for _, k := range keys {
		v, err := getXattr(sp, k)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dp, k, v, 0); err != nil {
			if link && (err == unix.EPERM || err == unix.EOPNOTSUPP) {
				continue // user.* on a symlink: not settable, not needed
			}
			return fmt.Errorf("set xattr %s: %w", k, err)
		}
	}
	var ts = []unix.Timespec{st.Atim, st.Mtim}
	_ = unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW) // cosmetic
	return nil
}

func listXattrs(p string) ([]string, error) {
	n, err := unix.Llistxattr(p, nil)
	if err != nil || n == 0 {
		if err == unix.EOPNOTSUPP {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, n)
	if n, err = unix.Llistxattr(p, buf); err != nil {
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	var keys []string
	for _, k := range splitNul(buf[:n]) {
		keys = append(keys, k)
	}
	return keys, nil
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}

func getXattr(p, k string) ([]byte, error) {
	n, err := unix.Lgetxattr(p, k, nil)
	if err != nil {
		return nil, fmt.Errorf("get xattr %s: %w", k, err)
	}
	buf := make([]byte, n)
	if n, err = unix.Lgetxattr(p, k, buf); err != nil {
		return nil, fmt.Errorf("get xattr %s: %w", k, err)
	}
	return buf[:n], nil
}
