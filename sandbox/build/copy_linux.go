package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/ctlab/ctlab/sandbox/image"
)

// fixedTime stamps entries a build generates (parent and WORKDIR
// directories), so the same input gives the same layer digest.
var fixedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// entryInfo is what COPY needs about a source entry.
type entryInfo struct {
	mode     fs.FileMode
	uid, gid int
	size     int64
	target   string // symlink target
	mtime    time.Time
}

// source is where COPY reads: the build context, or another stage's or an
// image's merged layers. Paths are absolute inside the source ("/a/b").
type source interface {
	glob(pattern string) ([]string, error)
	lstat(p string) (entryInfo, error)
	stat(p string) (entryInfo, error) // the top-level source: symlinks followed, inside the source
	readDir(p string) ([]string, error)
	open(p string) (io.ReadCloser, error)
}

// contextSource is the build context directory with .dockerignore applied.
type contextSource struct {
	root   string // symlink-resolved
	ignore *patternmatcher.PatternMatcher
}

func newContextSource(dir string) (*contextSource, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	cs := &contextSource{root: root}
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err == nil {
		defer f.Close()
		pats, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, inputErr(".dockerignore: %v", err)
		}
		if cs.ignore, err = patternmatcher.New(pats); err != nil {
			return nil, inputErr(".dockerignore: %v", err)
		}
	}
	return cs, nil
}

func (cs *contextSource) ignored(p string) bool {
	if cs.ignore == nil {
		return false
	}
	ok, _ := cs.ignore.MatchesOrParentMatches(strings.TrimPrefix(p, "/"))
	return ok
}

func (cs *contextSource) glob(pattern string) ([]string, error) {
	clean := path.Clean(pattern)
	if clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(pattern, "/..") {
		return nil, inputErr("COPY source %q is outside the build context", pattern)
	}
	matches, err := filepath.Glob(filepath.Join(cs.root, "/", clean))
	if err != nil {
		return nil, inputErr("COPY source %q: %v", pattern, err)
	}
	var out []string
	for _, m := range matches {
		rel, _ := filepath.Rel(cs.root, m)
		p := "/" + filepath.ToSlash(rel)
		if rel == "." {
			p = "/"
		}
		if p == "/" || !cs.ignored(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (cs *contextSource) info(fi os.FileInfo) entryInfo {
	e := entryInfo{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.uid, e.gid = int(st.Uid), int(st.Gid)
	}
	return e
}

func (cs *contextSource) lstat(p string) (entryInfo, error) {
	fi, err := os.Lstat(filepath.Join(cs.root, p))
	if err != nil {
		return entryInfo{}, err
	}
	e := cs.info(fi)
	if fi.Mode()&fs.ModeSymlink != 0 {
		e.target, _ = os.Readlink(filepath.Join(cs.root, p))
	}
	return e, nil
}

// stat follows symlinks, refusing one that leads out of the context.
func (cs *contextSource) stat(p string) (entryInfo, error) {
	real, err := filepath.EvalSymlinks(filepath.Join(cs.root, p))
	if err != nil {
		return entryInfo{}, inputErr("COPY source %s: %v", p, err)
	}
	if real != cs.root && !strings.HasPrefix(real, cs.root+"/") {
		return entryInfo{}, inputErr("COPY source %s is a symlink to %s, outside the build context", p, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return entryInfo{}, err
	}
	return cs.info(fi), nil
}

func (cs *contextSource) readDir(p string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(cs.root, p))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !cs.ignored(path.Join(p, e.Name())) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (cs *contextSource) open(p string) (io.ReadCloser, error) {
	real, err := filepath.EvalSymlinks(filepath.Join(cs.root, p))
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(real, cs.root+"/") {
		return nil, inputErr("COPY source %s leads outside the build context", p)
	}
	return os.Open(real)
}

// mergedSource reads another stage's or an image's layers as overlayfs
// would merge them (image.Merged: symlinks resolved inside the image).
type mergedSource struct{ m *image.Merged }

func (ms mergedSource) glob(pattern string) ([]string, error) {
	p := path.Clean("/" + pattern)
	dir, base := path.Split(p)
	if !strings.ContainsAny(base, "*?[") {
		if _, err := ms.m.Lstat(p); err != nil {
			return nil, nil
		}
		return []string{p}, nil
	}
	names, err := ms.m.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	var out []string
	for _, n := range names {
		if ok, _ := path.Match(base, n); ok {
			out = append(out, path.Join(dir, n))
		}
	}
	return out, nil
}

func (ms mergedSource) conv(fi image.FileInfo) entryInfo {
	return entryInfo{mode: fi.Mode, uid: fi.UID, gid: fi.GID, size: fi.Size, target: fi.Target, mtime: fixedTime}
}

func (ms mergedSource) lstat(p string) (entryInfo, error) {
	fi, err := ms.m.Lstat(p)
	return ms.conv(fi), err
}

func (ms mergedSource) stat(p string) (entryInfo, error) {
	fi, err := ms.m.Stat(p)
	return ms.conv(fi), err
}

func (ms mergedSource) readDir(p string) ([]string, error) { return ms.m.ReadDir(p) }

func (ms mergedSource) open(p string) (io.ReadCloser, error) {
	data, trunc, err := ms.m.ReadFile(p, 1<<30)
	if err != nil {
		return nil, err
	}
	if trunc {
		return nil, fmt.Errorf("%s is larger than 1 GiB", p)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// copySpec is one COPY/ADD after expansion.
type copySpec struct {
	src      source
	sources  []string
	dest     string
	destDir  bool
	uid, gid int
	chown    bool
	chmod    fs.FileMode
	add      bool
}

// copy runs COPY or ADD: a layer written in Go from the source tree.
func (b *builder) copy(ctx context.Context, st *stage, sd instructions.SourcesAndDest, from, chown, chmod string, unsupported, isAdd bool, c instructions.Command) error {
	name := strings.ToUpper(c.Name())
	if unsupported || len(sd.SourceContents) > 0 {
		return inputErr("%s:%d: %s with --link, --parents, --exclude, --checksum or a here-document is not supported by ctlab build", b.dfName, line(c), name)
	}
	for _, src := range sd.SourcePaths {
		if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
			return inputErr("%s:%d: %s %s: remote sources (URLs, git) are not supported by ctlab build: download into the context and COPY", b.dfName, line(c), name, src)
		}
	}
	spec := copySpec{sources: sd.SourcePaths, dest: sd.DestPath, add: isAdd}
	if !path.IsAbs(spec.dest) {
		spec.dest = path.Join("/", st.cfg.Config.WorkingDir, spec.dest)
	}
	spec.destDir = strings.HasSuffix(sd.DestPath, "/") || len(sd.SourcePaths) > 1
	spec.dest = path.Clean(spec.dest)
	src, closeSrc, err := b.copySource(ctx, from, c)
	if err != nil {
		return err
	}
	defer closeSrc()
	spec.src = src
	m, err := image.NewMerged(st.lowerdirs(b))
	if err != nil {
		return err
	}
	if chown != "" {
		spec.chown = true
		if spec.uid, spec.gid, err = parseChown(m, chown); err != nil {
			m.Close()
			return inputErr("%s:%d: %s: %v", b.dfName, line(c), name, err)
		}
	}
	m.Close()
	if chmod != "" {
		v, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || v > 0o7777 {
			return inputErr("%s:%d: %s --chmod=%s: give an octal mode such as 0755", b.dfName, line(c), name, chmod)
		}
		spec.chmod = fs.FileMode(v) | 1<<31 // high bit: set
	}
	text := c.(fmt.Stringer).String()
	return b.layerFrom(ctx, st, text, chainKey(st.key, text), func(lw *layerWriter) error {
		if err := spec.write(lw); err != nil {
			msg := err.Error()
			var be *Error
			if errors.As(err, &be) {
				msg = be.Msg
			}
			return inputErr("%s:%d: %s: %s", b.dfName, line(c), name, msg)
		}
		return nil
	})
}

// copySource opens what COPY reads: the context, an earlier stage (name or
// index), or an image (store, else pulled).
func (b *builder) copySource(ctx context.Context, from string, c instructions.Command) (source, func(), error) {
	if from == "" {
		cs, err := newContextSource(b.opt.Context)
		return cs, func() {}, err
	}
	var dirs []string
	for _, st := range b.stages {
		if strings.EqualFold(st.name, from) || strconv.Itoa(st.index) == from {
			dirs = st.lowerdirs(b)
		}
	}
	if dirs == nil {
		if _, err := strconv.Atoi(from); err == nil {
			return nil, nil, inputErr("%s:%d: COPY --from=%s: no earlier stage with that index", b.dfName, line(c), from)
		}
		im, err := b.openImage(ctx, from)
		if err != nil {
			return nil, nil, inputErr("%s:%d: COPY --from=%s: no earlier stage of that name, and not an image: %v", b.dfName, line(c), from, err)
		}
		if dirs, err = b.opt.Store.Unpack(ctx, im); err != nil {
			return nil, nil, err
		}
		if len(dirs) == 0 {
			dirs = []string{b.emptyLD}
		}
	}
	m, err := image.NewMerged(dirs)
	if err != nil {
		return nil, nil, err
	}
	return mergedSource{m}, func() { m.Close() }, nil
}

// write adds every source to the layer.
func (s *copySpec) write(lw *layerWriter) error {
	for _, pat := range s.sources {
		matches, err := s.src.glob(pat)
		if err != nil {
			return err
		}
		if len(matches) == 0 {
			return inputErr("%s: no such file or directory in the source (check .dockerignore)", pat)
		}
		if len(matches) > 1 {
			s.destDir = true
		}
		for _, m := range matches {
			if err := s.one(lw, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *copySpec) one(lw *layerWriter, p string) error {
	fi, err := s.src.stat(p)
	if err != nil {
		return err
	}
	if fi.mode.IsDir() {
		// COPY dir /dest copies the directory's contents.
		if _, err := lw.lower.Lstat(s.dest); err != nil && s.dest != "/" {
			if err := lw.dir(s.dest, 0o755, s.uid, s.gid); err != nil {
				return err
			}
		}
		return s.tree(lw, p, s.dest)
	}
	target := s.dest
	if lfi, err := lw.lower.Stat(s.dest); s.destDir || (err == nil && lfi.Mode.IsDir()) {
		target = path.Join(s.dest, path.Base(p))
	}
	if s.add && fi.mode.IsRegular() {
		if ok, err := s.addArchive(lw, p, s.dest); ok || err != nil {
			return err
		}
	}
	return s.entry(lw, p, target, fi)
}

// tree copies the children of src into dst, recursively.
func (s *copySpec) tree(lw *layerWriter, src, dst string) error {
	names, err := s.src.readDir(src)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		sp, dp := path.Join(src, n), path.Join(dst, n)
		fi, err := s.src.lstat(sp)
		if err != nil {
			return err
		}
		if err := s.entry(lw, sp, dp, fi); err != nil {
			return err
		}
		if fi.mode.IsDir() {
			if err := s.tree(lw, sp, dp); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry writes one file, directory or symlink at dst.
func (s *copySpec) entry(lw *layerWriter, src, dst string, fi entryInfo) error {
	hdr := &tar.Header{Name: dst, Mode: image.TarMode(fi.mode), ModTime: fi.mtime}
	// docker: context files belong to root unless --chown; --from keeps owners.
	if _, fromCtx := s.src.(*contextSource); !fromCtx {
		hdr.Uid, hdr.Gid = fi.uid, fi.gid
	}
	if s.chown {
		hdr.Uid, hdr.Gid = s.uid, s.gid
	}
	if s.chmod != 0 && fi.mode&fs.ModeSymlink == 0 {
		hdr.Mode = int64(s.chmod & 0o7777)
	}
	switch {
	case fi.mode.IsDir():
		hdr.Typeflag = tar.TypeDir
		return lw.add(hdr, nil)
	case fi.mode&fs.ModeSymlink != 0:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, fi.target
		return lw.add(hdr, nil)
	case fi.mode.IsRegular():
		r, err := s.src.open(src)
		if err != nil {
			return err
		}
		defer r.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.size
		return lw.add(hdr, r)
	}
	return fmt.Errorf("%s: only files, directories and symlinks can be copied", src)
}

// addArchive unpacks a local tar (plain or gzip) for ADD; ok=false when p
// is not an archive (then ADD copies it like COPY).
func (s *copySpec) addArchive(lw *layerWriter, p, dest string) (bool, error) {
	rc, err := s.src.open(p)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, nil
		}
		r = zr
	} else if hdr, _ := br.Peek(263); len(hdr) < 263 || string(hdr[257:262]) != "ustar" {
		return false, nil
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, fmt.Errorf("ADD %s: %w", p, err)
		}
		hdr.Name = path.Join(dest, path.Clean("/"+hdr.Name))
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = strings.TrimPrefix(path.Join(dest, path.Clean("/"+hdr.Linkname)), "/")
		}
		if err := lw.add(hdr, tr); err != nil {
			return true, err
		}
	}
}
