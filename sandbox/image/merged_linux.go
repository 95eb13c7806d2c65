package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Merged reads the union of unpacked layers the way overlayfs would show
// it, without mounting anything: the top-most layer that has a name wins, a
// char 0/0 whiteout hides the name below it, an opaque directory stops the
// merge with lower directories. Symlinks are resolved against the image's
// own root, never the host's. The grader's file checks read through this.
type Merged struct {
	fds  []int // layer root fds, top-most first
	dirs []string
}

// NewMerged opens the layer directories (top-most first, like lowerdir=).
func NewMerged(dirs []string) (*Merged, error) {
	m := &Merged{dirs: append([]string(nil), dirs...)}
	for _, d := range dirs {
		fd, err := unix.Open(d, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("open layer %s: %w", d, err)
		}
		m.fds = append(m.fds, fd)
	}
	return m, nil
}

// Close releases the layer fds.
func (m *Merged) Close() error {
	for _, fd := range m.fds {
		unix.Close(fd)
	}
	m.fds = nil
	return nil
}

// FileInfo describes a name in the merged view.
type FileInfo struct {
	Path   string      // resolved path inside the image
	Mode   fs.FileMode // type and permission bits
	Size   int64
	Layer  int    // index into the dirs given to NewMerged (0 = top-most)
	Target string // symlink target (Lstat only)
	// UID and GID own the entry (the builder's COPY --from keeps them).
	UID, GID int
}

// IsExecutable reports whether any execute bit is set on a regular file.
func (fi FileInfo) IsExecutable() bool { return fi.Mode.IsRegular() && fi.Mode.Perm()&0o111 != 0 }

const maxSymlinks = 40 // the kernel's MAXSYMLINKS

type mnode struct {
	rel    string // real path inside each contributing layer, "" for the root
	layers []int  // contributing layers, top-most first (directories only)
	st     unix.Stat_t
	layer  int
}

// lstatIn looks up rel inside layer li without following any symlink.
func (m *Merged) lstatIn(li int, rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := openat2(m.fds[li], rel, unix.O_PATH|unix.O_NOFOLLOW, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	err = unix.Fstat(fd, &st)
	return st, err
}

func (m *Merged) opaque(li int, rel string) bool {
	fd, err := openat2(m.fds[li], dotIfEmpty(rel), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var buf [4]byte
	n, err := unix.Fgetxattr(fd, OverlayOpaqueXattr, buf[:])
	return err == nil && n == 1 && buf[0] == 'y'
}

func dotIfEmpty(s string) string {
	if s == "" {
		return "."
	}
	return s
}

// dirNode builds the node for directory rel given the layers where it was
// found, starting with the top-most hit at position start of cands.
func (m *Merged) dirNode(rel string, cands []int, start int) mnode {
	n := mnode{rel: rel, layer: cands[start]}
	for _, li := range cands[start:] {
		st, err := m.lstatIn(li, dotIfEmpty(rel))
		if err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break // a file or whiteout below ends the merge
		}
		if len(n.layers) == 0 {
			n.st = st
		}
		n.layers = append(n.layers, li)
		if m.opaque(li, rel) {
			break
		}
	}
	return n
}

func (m *Merged) root() mnode {
	all := make([]int, len(m.fds))
	for i := range all {
		all[i] = i
	}
	return m.dirNode("", all, 0)
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func (m *Merged) resolve(p string, followLast bool) (mnode, error) {
	if len(m.fds) == 0 {
		return mnode{}, fs.ErrNotExist
	}
	stack := []mnode{m.root()}
	queue := splitPath(p)
	links := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		cur := stack[len(stack)-1]
		if c == ".." {
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if cur.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return mnode{}, &fs.PathError{Op: "lookup", Path: p, Err: unix.ENOTDIR}
		}
		rel := path.Join(cur.rel, c)
		found := -1
		var st unix.Stat_t
		for i, li := range cur.layers {
			s, err := m.lstatIn(li, rel)
			if err != nil {
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
					continue
				}
				return mnode{}, &fs.PathError{Op: "lookup", Path: p, Err: err}
			}
			if isWhiteoutDev(&s) {
				return mnode{}, &fs.PathError{Op: "lookup", Path: p, Err: fs.ErrNotExist}
			}
			found, st = i, s
			break
		}
		if found < 0 {
			return mnode{}, &fs.PathError{Op: "lookup", Path: p, Err: fs.ErrNotExist}
		}
		li := cur.layers[found]
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if len(queue) == 0 && !followLast {
				return mnode{rel: rel, st: st, layer: li}, nil
			}
			links++
			if links > maxSymlinks {
				return mnode{}, &fs.PathError{Op: "lookup", Path: p, Err: unix.ELOOP}
			}
			target, err := m.readlinkIn(li, rel)
			if err != nil {
				return mnode{}, &fs.PathError{Op: "readlink", Path: p, Err: err}
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1] // absolute targets restart at the image root
			}
			queue = append(splitPath(target), queue...)
		case unix.S_IFDIR:
			stack = append(stack, m.dirNode(rel, cur.layers, found))
		default:
			if len(queue) > 0 {
				return mnode{}, &fs.PathError{Op: "lookup", Path: p, Err: unix.ENOTDIR}
			}
			return mnode{rel: rel, st: st, layer: li}, nil
		}
	}
	return stack[len(stack)-1], nil
}

func (m *Merged) readlinkIn(li int, rel string) (string, error) {
	fd, err := openat2(m.fds[li], rel, unix.O_PATH|unix.O_NOFOLLOW, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func toInfo(n mnode) FileInfo {
	mode := fs.FileMode(n.st.Mode & 0o777)
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if n.st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if n.st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if n.st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return FileInfo{Path: "/" + n.rel, Mode: mode, Size: n.st.Size, Layer: n.layer, UID: int(n.st.Uid), GID: int(n.st.Gid)}
}

// Stat follows symlinks (inside the image) and describes the result.
func (m *Merged) Stat(p string) (FileInfo, error) {
	n, err := m.resolve(p, true)
	if err != nil {
		return FileInfo{}, err
	}
	return toInfo(n), nil
}

// Lstat describes p itself, even when it is a symlink.
func (m *Merged) Lstat(p string) (FileInfo, error) {
	n, err := m.resolve(p, false)
	if err != nil {
		return FileInfo{}, err
	}
	fi := toInfo(n)
	if fi.Mode&fs.ModeSymlink != 0 {
		fi.Target, _ = m.readlinkIn(n.layer, n.rel)
	}
	return fi, nil
}

// ReadFile returns up to max bytes of a regular file; truncated reports
// whether the file is longer. A FIFO or device is refused (a read of one
// would block or read the host), as is anything but a regular file.
func (m *Merged) ReadFile(p string, max int64) (data []byte, truncated bool, err error) {
	n, err := m.resolve(p, true)
	if err != nil {
		return nil, false, err
	}
	if n.st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	fd, err := openat2(m.fds[n.layer], n.rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV)
	if err != nil {
		return nil, false, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(data)) > max {
		return data[:max], true, nil
	}
	return data, false, nil
}

// ReadDir lists a directory of the merged view (sorted names), with
// whiteouts and opaque directories applied.
func (m *Merged) ReadDir(p string) ([]string, error) {
	n, err := m.resolve(p, true)
	if err != nil {
		return nil, err
	}
	if n.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: unix.ENOTDIR}
	}
	seen := map[string]bool{}
	var out []string
	for _, li := range n.layers {
		fd, err := openat2(m.fds[li], dotIfEmpty(n.rel), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_XDEV)
		if err != nil {
			return nil, fmt.Errorf("open layer dir: %w", err)
		}
		f := os.NewFile(uintptr(fd), n.rel)
		names, err := f.Readdirnames(-1)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read layer dir: %w", err)
		}
		for _, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			var st unix.Stat_t
			if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && isWhiteoutDev(&st) {
				continue
			}
			out = append(out, name)
		}
		f.Close()
	}
	sort.Strings(out)
	return out, nil
}
