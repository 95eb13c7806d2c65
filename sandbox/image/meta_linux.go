package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Image metadata (index.json, manifests, configs, docker-save's
// manifest.json) is untrusted input that ends up in memory. Each is opened
// without following links, must be a regular file (a FIFO would block the
// grader, /dev/zero never ends), and its size is checked on the open file
// before a byte is read. Readers are bounded by that size anyway.

// errNotRegular marks metadata that is a link, device, FIFO or directory.
var errNotRegular = errors.New("not a regular file")

// openRegular opens p (the image the operator named: symlinks in the path
// are the operator's) read-only and non-blocking, and refuses anything but
// a regular file, so a submission that is a FIFO or a link to /dev/zero
// fails at once instead of hanging or streaming forever.
func openRegular(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return regularFile(fd, p)
}

// regularFile wraps fd after checking it is a regular file (and clears
// O_NONBLOCK, which means nothing for one).
func regularFile(fd int, name string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", Quote(name), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is %w (mode %o)", ErrInvalidLayer, Quote(name), errNotRegular, st.Mode&unix.S_IFMT)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openBeneath opens rel inside the directory dirfd: no symlink anywhere in
// rel, no escape, and only a regular file.
func openBeneath(dirfd int, rel string) (*os.File, error) {
	fd, err := openat2(dirfd, rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY,
		unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		if err == unix.ELOOP || err == unix.EXDEV {
			return nil, fmt.Errorf("%w: %s: a symlink or an escape from the layout", ErrInvalidLayer, Quote(rel))
		}
		return nil, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	return regularFile(fd, rel)
}

// readBounded reads all of f after checking its size against max (and,
// when want >= 0, against the size a descriptor claims for it).
func readBounded(f *os.File, max, want int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%w: %s is %d bytes (max %d)", ErrLimit, Quote(f.Name()), st.Size(), max)
	}
	if want >= 0 && st.Size() != want {
		return nil, fmt.Errorf("%w: %s is %d bytes, its descriptor says %d", ErrDigest, Quote(f.Name()), st.Size(), want)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%w: %s grew past %d bytes while read", ErrLimit, Quote(f.Name()), max)
	}
	return b, err
}

// layoutCopier copies the metadata of an OCI layout (oci-layout,
// index.json, the indexes and manifests it names, their configs) into a
// private directory that ggcr's layout package then reads; layers stay
// where they are and are opened with openBeneath.
type layoutCopier struct {
	src    int    // layout dir fd
	dst    string // private copy
	copied int64  // metadata bytes so far
	blobs  int
}

const (
	maxMetaTotal = 64 << 20 // all metadata of one layout
	maxMetaBlobs = 1024
)

func (lc *layoutCopier) file(rel string, want int64) ([]byte, error) {
	f, err := openBeneath(lc.src, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readBounded(f, maxMetaBytes, want)
	if err != nil {
		return nil, err
	}
	if lc.copied += int64(len(b)); lc.copied > maxMetaTotal {
		return nil, fmt.Errorf("%w: more than %d bytes of image metadata", ErrLimit, maxMetaTotal)
	}
	dst := filepath.Join(lc.dst, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return nil, err
	}
	return b, os.WriteFile(dst, b, 0o600)
}

func blobPath(d v1.Hash) (string, error) {
	if d.Algorithm != "sha256" || !blobName.MatchString("blobs/sha256/"+d.Hex) {
		return "", fmt.Errorf("%w: unsupported digest %q", ErrInvalidLayer, d.String())
	}
	return "blobs/sha256/" + d.Hex, nil
}

// index copies the index at rel and, depth-first, what it names.
func (lc *layoutCopier) index(rel string, want int64, depth int) error {
	if depth > 4 {
		return fmt.Errorf("%w: image indexes nested too deeply", ErrInvalidLayer)
	}
	b, err := lc.file(rel, want)
	if err != nil {
		return err
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return fmt.Errorf("%w: parse %s: %w", ErrInvalidLayer, rel, err)
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsIndex() && !d.MediaType.IsImage() {
			continue
		}
		if lc.blobs++; lc.blobs > maxMetaBlobs {
			return fmt.Errorf("%w: more than %d manifests", ErrLimit, maxMetaBlobs)
		}
		p, err := blobPath(d.Digest)
		if err != nil {
			return err
		}
		if d.MediaType.IsIndex() {
			err = lc.index(p, d.Size, depth+1)
		} else {
			err = lc.manifest(p, d.Size)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (lc *layoutCopier) manifest(rel string, want int64) error {
	b, err := lc.file(rel, want)
	if err != nil {
		return err
	}
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%w: parse manifest %s: %w", ErrInvalidLayer, rel, err)
	}
	p, err := blobPath(m.Config.Digest)
	if err != nil {
		return err
	}
	_, err = lc.file(p, m.Config.Size)
	return err
}

// copyLayoutMeta opens the layout dir and copies its metadata into dst. It
// returns the layout's dir fd (for opening layers in place).
func copyLayoutMeta(dir, dst string) (int, error) {
	src, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open OCI layout %s: %w", Quote(dir), err)
	}
	lc := &layoutCopier{src: src, dst: dst}
	if _, err := lc.file("oci-layout", -1); err != nil {
		unix.Close(src)
		return -1, fmt.Errorf("read oci-layout: %w", err)
	}
	if err := lc.index("index.json", -1, 0); err != nil {
		unix.Close(src)
		return -1, fmt.Errorf("read index.json: %w", err)
	}
	return src, nil
}

// dockerSaveEntry is what sniffArchive learns of one tar entry.
type dockerSaveEntry struct {
	typ  byte
	size int64
}

// checkDockerSaveConfigs checks, before ggcr reads anything, that
// manifest.json is a regular entry and that every config it names is a
// regular entry of metadata size. ggcr would otherwise read a config of
// any size (and follow in-tar symlinks to find it).
func checkDockerSaveConfigs(entries map[string]dockerSaveEntry, manifest []byte) error {
	var tm []struct{ Config string }
	if err := json.Unmarshal(manifest, &tm); err != nil {
		return fmt.Errorf("%w: parse manifest.json: %w", ErrInvalidLayer, err)
	}
	if len(tm) == 0 {
		return fmt.Errorf("%w: manifest.json lists no image", ErrInvalidLayer)
	}
	for _, m := range tm {
		name := cleanTarName(m.Config)
		e, ok := entries[name]
		switch {
		case !ok:
			return fmt.Errorf("%w: config %s is not in the archive", ErrInvalidLayer, Quote(m.Config))
		case e.typ != tar.TypeReg && e.typ != tar.TypeRegA:
			return fmt.Errorf("%w: config %s is not a regular file", ErrInvalidLayer, Quote(m.Config))
		case e.size > maxMetaBytes:
			return fmt.Errorf("%w: config %s is %d bytes", ErrLimit, Quote(m.Config), e.size)
		}
	}
	return nil
}

func cleanTarName(n string) string {
	return path.Clean(strings.TrimPrefix(strings.TrimLeft(n, "/"), "./"))
}
