package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ChangeKind says what an upperdir entry means for the merged view.
type ChangeKind int

const (
	// Added: the path exists only in upperdir (no lower has it, or an opaque
	// directory above it hides the lowers).
	Added ChangeKind = iota
	// Modified: a lower has the same path; the kernel copied it up before the
	// first write, chmod, chown, touch... (for a directory: because something
	// below it changed).
	Modified
	// Deleted: a whiteout, i.e. a character device with device number 0/0 that
	// hides the lower path of the same name.
	Deleted
	// Opaque: a directory with the xattr trusted.overlay.opaque=y; nothing of
	// the lowers is visible below it (rm -r of a lower dir, then mkdir again).
	Opaque
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Modified:
		return "modified"
	case Deleted:
		return "deleted"
	case Opaque:
		return "opaque"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Symbol is the one-letter code `docker diff` prints (A, C, D) plus O for an
// opaque directory.
func (k ChangeKind) Symbol() string {
	switch k {
	case Added:
		return "A"
	case Modified:
		return "C"
	case Deleted:
		return "D"
	case Opaque:
		return "O"
	}
	return "?"
}

// Change is one entry of the upperdir.
//
// Path is absolute inside the container ("/etc/hostname"). Mode and Size
// describe the upperdir entry itself, so a whiteout has
// Mode&fs.ModeCharDevice != 0 and Size 0.
type Change struct {
	Path string
	Kind ChangeKind
	Mode fs.FileMode
	Size int64
}

// Names of the xattrs overlayfs uses. The "trusted." ones are written when
// the mounter is root in the initial user namespace (our case); mounts with
// the userxattr option use "user.overlay.*".
const (
	xattrOpaque     = "trusted.overlay.opaque"
	xattrUserOpaque = "user.overlay.opaque"
)

// IsWhiteout reports whether fi is an overlay whiteout: a character device
// with device number 0/0.
func IsWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 || fi.Mode()&fs.ModeDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// IsOpaque reports whether the directory at path carries the overlay opaque
// xattr with value "y".
func IsOpaque(path string) (bool, error) {
	for _, name := range []string{xattrOpaque, xattrUserOpaque} {
		v, err := getxattr(path, name)
		if err != nil {
			return false, err
		}
		if v == "y" {
			return true, nil
		}
	}
	return false, nil
}

// getxattr returns "" when the attribute is absent or unsupported.
func getxattr(path, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		switch {
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return "", nil
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, len(buf)*4)
			continue
		case err != nil:
			return "", fmt.Errorf("overlay: getxattr %s %s: %w", path, name, err)
		}
		return string(buf[:n]), nil
	}
}

// Diff walks the upperdir (never following symlinks) and classifies each
// entry by looking the same path up in the lowers, in lexical order.
func Diff(l Layout) ([]Change, error) {
	if l.Upper == "" {
		return nil, errors.New("overlay: diff: no upperdir (read-only overlay)")
	}
	var out []Change
	// opaque directories seen so far: everything below them is Added.
	var opaque []string
	err := filepath.WalkDir(l.Upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(l.Upper, p)
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
		c := Change{Path: "/" + filepath.ToSlash(rel), Mode: fi.Mode(), Size: fi.Size()}
		switch {
		case IsWhiteout(fi):
			c.Kind, c.Size = Deleted, 0
		default:
			if fi.IsDir() {
				op, err := IsOpaque(p)
				if err != nil {
					return err
				}
				if op {
					c.Kind = Opaque
					opaque = append(opaque, rel)
					break
				}
			}
			if underAny(rel, opaque) {
				c.Kind = Added
				break
			}
			in, err := inLowers(l.Lower, rel)
			if err != nil {
				return err
			}
			if in {
				c.Kind = Modified
			} else {
				c.Kind = Added
			}
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("overlay: diff %s: %w", l.Upper, err)
	}
	return out, nil
}

func underAny(rel string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// inLowers reports whether rel is visible in the merged view of the lowers
// alone, honouring whiteouts and opaque directories inside the lowers (a
// lower produced by CommitDir has them).
func inLowers(lowers []string, rel string) (bool, error) {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for _, low := range lowers {
		p := low
		blocked := false
		for i, part := range parts {
			p = filepath.Join(p, part)
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
				break // this layer does not have it; look further down
			}
			if err != nil {
				return false, err
			}
			if IsWhiteout(fi) {
				return false, nil // deleted in this layer: hidden below too
			}
			if i == len(parts)-1 {
				return true, nil
			}
			if !fi.IsDir() {
				return false, nil // a file here hides a directory below
			}
			op, err := IsOpaque(p)
			if err != nil {
				return false, err
			}
			if op {
				blocked = true // lowers below this one are hidden for this subtree
			}
		}
		if blocked {
			return false, nil
		}
	}
	return false, nil
}
