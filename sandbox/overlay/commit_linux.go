package overlay

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// OCI image-spec layer markers (image-spec/layer.md "Whiteouts").
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
)

// entry is one upperdir item handed to the commit writers.
type entry struct {
	rel  string // slash-separated, no leading "/"
	path string // absolute path in upperdir
	fi   fs.FileInfo
	st   *syscall.Stat_t
}

// walkUpper visits every upperdir entry (never following symlinks) in
// lexical order, refusing trees the kernel wrote with features whose data
// lives outside upperdir.
func walkUpper(upper string, fn func(e entry) error) error {
	if upper == "" {
		return errors.New("overlay: no upperdir (read-only overlay)")
	}
	return filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		for _, x := range []string{"trusted.overlay.redirect", "trusted.overlay.metacopy"} {
			if fi.Mode()&fs.ModeSymlink != 0 {
				break
			}
			if _, present, err := lgetxattrRaw(p, x); err != nil {
				return err
			} else if present {
				return fmt.Errorf("%s has %s: this upperdir was written with redirect_dir or metacopy on, part of its content lives in the lowers; remount with redirect_dir=off,metacopy=off before committing", p, x)
			}
		}
		return fn(entry{rel: filepath.ToSlash(rel), path: p, fi: fi, st: st})
	})
}

// layerXattrs returns the xattrs worth keeping in a layer: everything except
// overlayfs bookkeeping (origin file handles, impure markers ...), which only
// means something to the mount that wrote it. The opaque marker is kept by
// the callers in their own format.
func layerXattrs(p string) (map[string][]byte, error) {
	names, err := listxattr(p)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.overlay.") || strings.HasPrefix(n, "user.overlay.") {
			continue
		}
		v, present, err := lgetxattrRaw(p, n)
		if err != nil {
			return nil, err
		}
		if present {
			out[n] = v
		}
	}
	return out, nil
}

func listxattr(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		switch {
		case errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, len(buf)*4)
			continue
		case err != nil:
			return nil, fmt.Errorf("listxattr %s: %w", p, err)
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func lgetxattrRaw(p, name string) ([]byte, bool, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		switch {
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return nil, false, nil
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, len(buf)*4)
			continue
		case err != nil:
			return nil, false, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		return buf[:n], true, nil
	}
}

// CommitDir turns the upperdir into a new layer directory at dst that can be
// stacked as an overlay lowerdir: what `docker commit` or one Dockerfile RUN
// produces. Whiteouts (char 0/0) and opaque directories
// (trusted.overlay.opaque=y) are kept as they are, since overlayfs reads them
// the same way in a lowerdir. Ownership, permission bits, times, hard links
// and non-overlay xattrs are preserved.
//
// The layer is built in a temporary sibling and renamed onto dst, so dst
// either does not exist or is complete. dst must not exist (an empty
// directory is replaced). Commit a stopped container or accept that writes
// racing the walk may be missed.
func CommitDir(l Layout, dst string) error {
	dst = filepath.Clean(dst)
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("overlay: commit: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dst)+".commit-")
	if err != nil {
		return fmt.Errorf("overlay: commit: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := commitInto(l.Upper, tmp); err != nil {
		return fmt.Errorf("overlay: commit %s to %s: %w", l.Upper, dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("overlay: commit: rename onto %s (must not exist or be empty): %w", dst, err)
	}
	ok = true
	return nil
}

func commitInto(upper, out string) error {
	// The layer root takes the upperdir root's owner and mode.
	rfi, err := os.Lstat(upper)
	if err != nil {
		return err
	}
	rst := rfi.Sys().(*syscall.Stat_t)
	if err := os.Lchown(out, int(rst.Uid), int(rst.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(out, rst.Mode&0o7777); err != nil {
		return err
	}

	type dirTime struct {
		path string
		st   *syscall.Stat_t
	}
	var dirs []dirTime
	links := map[[2]uint64]string{} // (dev, ino) -> first copy, for hard links
	err = walkUpper(upper, func(e entry) error {
		target := filepath.Join(out, filepath.FromSlash(e.rel))
		perm := e.st.Mode & 0o7777
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{target, e.st})
		case unix.S_IFREG:
			key := [2]uint64{e.st.Dev, e.st.Ino}
			if e.st.Nlink > 1 {
				if first, seen := links[key]; seen {
					return os.Link(first, target)
				}
				links[key] = target
			}
			if err := copyFile(e.path, target); err != nil {
				return err
			}
		case unix.S_IFLNK:
			dest, err := os.Readlink(e.path)
			if err != nil {
				return err
			}
			if err := os.Symlink(dest, target); err != nil {
				return err
			}
		default: // char/block devices (whiteouts included), fifos, sockets
			if err := unix.Mknod(target, (e.st.Mode&unix.S_IFMT)|perm, int(e.st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", target, err)
			}
		}
		// chown before chmod: chown clears setuid/setgid bits.
		if err := os.Lchown(target, int(e.st.Uid), int(e.st.Gid)); err != nil {
			return err
		}
		if e.st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Chmod(target, perm); err != nil {
				return err
			}
		}
		xs, err := layerXattrs(e.path)
		if err != nil {
			return err
		}
		if e.fi.IsDir() {
			if op, err := IsOpaque(e.path); err != nil {
				return err
			} else if op {
				xs[xattrOpaque] = []byte("y")
			}
		}
		for n, v := range xs {
			if err := unix.Lsetxattr(target, n, v, 0); err != nil {
				return fmt.Errorf("setxattr %s %s: %w", target, n, err)
			}
		}
		if !e.fi.IsDir() {
			return setTimes(target, e.st)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory times last, deepest first: creating children bumps them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setTimes(dirs[i].path, dirs[i].st); err != nil {
			return err
		}
	}
	return setTimes(out, rst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func setTimes(p string, st *syscall.Stat_t) error {
	ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimensat %s: %w", p, err)
	}
	return nil
}

// CommitTar writes the upperdir to w as an OCI image layer tar: a whiteout
// becomes an empty file "<dir>/.wh.<name>", an opaque directory gets an empty
// "<dir>/.wh..wh..opq" right after its own entry. Hard links become tar
// links, xattrs (other than overlayfs bookkeeping) become PAX SCHILY.xattr
// records. The tar trailer is written; w is not closed.
func CommitTar(l Layout, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	err := walkUpper(l.Upper, func(e entry) error {
		hdr := &tar.Header{
			Name:    e.rel,
			Mode:    int64(e.st.Mode & 0o7777),
			Uid:     int(e.st.Uid),
			Gid:     int(e.st.Gid),
			ModTime: e.fi.ModTime(),
		}
		if IsWhiteout(e.fi) {
			dir, base := path.Split(e.rel)
			wh := &tar.Header{
				Name: dir + WhiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o644,
				Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime,
			}
			return tw.WriteHeader(wh)
		}
		xs, err := layerXattrs(e.path)
		if err != nil {
			return err
		}
		for n, v := range xs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+n] = string(v)
		}
		var body string // path to copy content from
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.rel+"/"
		case unix.S_IFREG:
			key := [2]uint64{e.st.Dev, e.st.Ino}
			if first, seen := links[key]; seen && e.st.Nlink > 1 {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			} else {
				if e.st.Nlink > 1 {
					links[key] = e.rel
				}
				hdr.Typeflag, hdr.Size, body = tar.TypeReg, e.fi.Size(), e.path
			}
		case unix.S_IFLNK:
			dest, err := os.Readlink(e.path)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, dest
		case unix.S_IFCHR, unix.S_IFBLK:
			hdr.Typeflag = tar.TypeChar
			if e.st.Mode&unix.S_IFMT == unix.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(e.st.Rdev)), int64(unix.Minor(e.st.Rdev))
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		default:
			return nil // sockets cannot be stored in a tar
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar header %s: %w", hdr.Name, err)
		}
		if body != "" {
			f, err := os.Open(body)
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, hdr.Size)
			f.Close()
			if err != nil {
				return fmt.Errorf("tar %s: %w", body, err)
			}
		}
		if hdr.Typeflag == tar.TypeDir {
			if op, err := IsOpaque(e.path); err != nil {
				return err
			} else if op {
				return tw.WriteHeader(&tar.Header{
					Name: e.rel + "/" + WhiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o644,
					Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime,
				})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("overlay: commit tar %s: %w", l.Upper, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("overlay: commit tar: %w", err)
	}
	return nil
}
