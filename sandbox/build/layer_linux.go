package build

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ctlab/ctlab/sandbox/image"
)

// layerCache maps a cache key (parent + instruction + content) to a layer
// tar, like the classic builder's cache of intermediate images.
type layerCache struct{ dir string }

type cacheRecord struct {
	DiffID    string `json:"diff_id"`
	CreatedBy string `json:"created_by"`
}

func openLayerCache(dir string) (*layerCache, error) {
	for _, d := range []string{dir, filepath.Join(dir, "keys"), filepath.Join(dir, "layers")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
	}
	return &layerCache{dir: dir}, nil
}

func (c *layerCache) tarPath(h v1.Hash) string { return filepath.Join(c.dir, "layers", h.Hex+".tar") }

func (c *layerCache) get(key string) (newLayer, bool) {
	b, err := os.ReadFile(filepath.Join(c.dir, "keys", key))
	if err != nil {
		return newLayer{}, false
	}
	var r cacheRecord
	if json.Unmarshal(b, &r) != nil {
		return newLayer{}, false
	}
	h, err := v1.NewHash(r.DiffID)
	if err != nil {
		return newLayer{}, false
	}
	if _, err := os.Stat(c.tarPath(h)); err != nil {
		return newLayer{}, false
	}
	return newLayer{tar: c.tarPath(h), diffID: h, createdBy: r.CreatedBy}, true
}

// put moves tmp into the cache (renames are atomic: a killed build leaves
// at most a stray temp file in the build's own temp dir).
func (c *layerCache) put(key, tmp string, diffID v1.Hash, createdBy string) (newLayer, error) {
	final := c.tarPath(diffID)
	if _, err := os.Stat(final); err != nil {
		if err := os.Rename(tmp, final); err != nil {
			return newLayer{}, err
		}
	}
	b, _ := json.Marshal(cacheRecord{DiffID: diffID.String(), CreatedBy: createdBy})
	kp := filepath.Join(c.dir, "keys", key)
	if err := os.WriteFile(kp+".tmp", b, 0o600); err != nil {
		return newLayer{}, err
	}
	if err := os.Rename(kp+".tmp", kp); err != nil {
		return newLayer{}, err
	}
	return newLayer{tar: final, diffID: diffID, createdBy: createdBy}, nil
}

// layer is the go-containerregistry layer for the image (gzip, fastest
// level: a build's own layers are small, and build time is what counts).
func (l newLayer) layer(mt types.MediaType) (v1.Layer, error) {
	return tarball.LayerFromFile(l.tar, tarball.WithMediaType(mt), tarball.WithCompressionLevel(gzip.BestSpeed))
}

// fileSource lets the shared layer cache unpack a layer tar on disk.
type fileSource struct {
	diffID v1.Hash
	path   string
}

func (f fileSource) DiffID() v1.Hash { return f.diffID }

func (f fileSource) Open(context.Context) (io.ReadCloser, *v1.Hash, error) {
	r, err := os.Open(f.path)
	return r, nil, err
}

// hashFile is a layer tar being written: its sha256 is the diffID.
type hashFile struct {
	f *os.File
	h hash.Hash
	w io.Writer
}

func newHashFile(dir string) (*hashFile, error) {
	f, err := os.CreateTemp(dir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	return &hashFile{f: f, h: h, w: io.MultiWriter(f, h)}, nil
}

func (hf *hashFile) Write(p []byte) (int, error) { return hf.w.Write(p) }

func (hf *hashFile) finish() (v1.Hash, error) {
	if err := hf.f.Close(); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hf.h.Sum(nil))}, nil
}

// layerWriter writes a COPY/ADD/WORKDIR layer. Missing parent directories
// are added with the metadata they have in the stage (or 0755 root), as
// docker does, so a layer never changes a parent's mode by accident.
type layerWriter struct {
	tw      *tar.Writer
	content hash.Hash // the cache key's content part: entries without mtimes
	lower   *image.Merged
	seen    map[string]bool
	changes []string
}

func (lw *layerWriter) parents(p string) error {
	d := path.Dir(p)
	if d == "/" || d == "." || lw.seen[d] {
		return nil
	}
	if err := lw.parents(d); err != nil {
		return err
	}
	mode, uid, gid := int64(0o755), 0, 0
	if fi, err := lw.lower.Stat(d); err == nil && fi.Mode.IsDir() {
		mode, uid, gid = image.TarMode(fi.Mode), fi.UID, fi.GID
	}
	lw.seen[d] = true
	return lw.tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: gid, ModTime: fixedTime})
}

// add writes hdr (Name: absolute path in the image) and size bytes of body.
func (lw *layerWriter) add(hdr *tar.Header, body io.Reader) error {
	p := path.Clean("/" + hdr.Name)
	if err := lw.parents(p); err != nil {
		return err
	}
	kind := "+"
	if _, err := lw.lower.Lstat(p); err == nil {
		kind = "~"
	}
	if !lw.seen[p] {
		lw.changes = append(lw.changes, kind+" "+p)
	}
	lw.seen[p] = true
	hdr.Name = strings.TrimPrefix(p, "/")
	if hdr.Typeflag == tar.TypeDir {
		hdr.Name += "/"
	}
	if hdr.ModTime.IsZero() {
		hdr.ModTime = fixedTime
	}
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer %s: %w", p, err)
	}
	// Like docker's, the cache key covers names, modes, owners and
	// contents, not times: a fresh checkout of the same files hits.
	fmt.Fprintf(lw.content, "%q %c %o %d:%d %q %d\n", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname, hdr.Size)
	if body != nil && hdr.Size > 0 {
		if _, err := io.CopyN(io.MultiWriter(lw.tw, lw.content), body, hdr.Size); err != nil {
			return fmt.Errorf("layer %s: %w", p, err)
		}
	}
	return nil
}

func (lw *layerWriter) dir(p string, mode int64, uid, gid int) error {
	return lw.add(&tar.Header{Name: p, Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: gid}, nil)
}

// writeLayer builds a layer with fn into a temp tar and returns its diffID.
func (b *builder) writeLayer(st *stage, fn func(*layerWriter) error) (tmp string, diffID v1.Hash, content string, changes []string, err error) {
	m, err := image.NewMerged(st.lowerdirs(b))
	if err != nil {
		return "", v1.Hash{}, "", nil, err
	}
	defer m.Close()
	hf, err := newHashFile(b.tmp)
	if err != nil {
		return "", v1.Hash{}, "", nil, err
	}
	lw := &layerWriter{tw: tar.NewWriter(hf), content: sha256.New(), lower: m, seen: map[string]bool{}}
	err = fn(lw)
	if err == nil {
		err = lw.tw.Close()
	}
	d, ferr := hf.finish()
	if err == nil {
		err = ferr
	}
	if err != nil {
		os.Remove(hf.f.Name())
		return "", v1.Hash{}, "", nil, err
	}
	return hf.f.Name(), d, hex.EncodeToString(lw.content.Sum(nil)), lw.changes, nil
}

// layerFrom builds a layer in Go (COPY, ADD, WORKDIR), keyed by the
// instruction and the layer's own content digest, and adds it to st.
func (b *builder) layerFrom(ctx context.Context, st *stage, createdBy, key string, fn func(*layerWriter) error) error {
	tmp, d, content, changes, err := b.writeLayer(st, fn)
	if err != nil {
		return err
	}
	key = chainKey(key, content)
	if l, ok := b.cache.get(key); ok && !b.opt.NoCache {
		os.Remove(tmp)
		b.res.Cached++
		return b.addLayer(ctx, st, l, key, true, nil)
	}
	l, err := b.cache.put(key, tmp, d, createdBy)
	if err != nil {
		return err
	}
	return b.addLayer(ctx, st, l, key, false, changes)
}

// addLayer unpacks l into the shared layer cache, stacks it on the stage
// and logs its digest, size and changes.
func (b *builder) addLayer(ctx context.Context, st *stage, l newLayer, key string, cached bool, changes []string) error {
	u, err := b.opt.Store.Cache.Unpack(ctx, fileSource{diffID: l.diffID, path: l.tar})
	if err != nil {
		return fmt.Errorf("unpack new layer: %w", err)
	}
	st.layers = append(st.layers, l)
	st.dirs = append([]string{u.Dir}, st.dirs...)
	st.hist = append(st.hist, v1.History{Created: v1.Time{Time: buildTime}, CreatedBy: l.createdBy})
	st.key = key
	const maxShown = 12
	for i, c := range changes {
		if i == maxShown {
			b.logf("     ... and %d more", len(changes)-maxShown)
			break
		}
		b.logf("     %s", c)
	}
	word := "layer"
	if cached {
		word = "CACHED layer"
	}
	b.logf(" --> %s %s, %s (tar stream), unpacked in %s", word, l.diffID, image.HumanSize(u.Meta.StreamBytes), u.Dir)
	b.event(EventDone, fmt.Sprintf("%s %.19s %s, %d changes", word, l.diffID, image.HumanSize(u.Meta.StreamBytes), len(changes)))
	return nil
}

// putFile finishes a layer tar being written and caches it under key.
func (c *layerCache) putFile(key string, hf *hashFile, createdBy string) (newLayer, error) {
	d, err := hf.finish()
	if err != nil {
		os.Remove(hf.f.Name())
		return newLayer{}, err
	}
	return c.put(key, hf.f.Name(), d, createdBy)
}

// PruneCache empties the build cache (docker builder prune): every key and
// layer tar. Builds running now keep their own temp dirs; a layer they
// already stacked stays unpacked in the shared layer cache.
func PruneCache(dir string) (layers int, bytes int64, err error) {
	if dir == "" {
		dir = DefaultCacheDir
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "layers"))
	for _, e := range ents {
		if fi, ierr := e.Info(); ierr == nil {
			bytes += fi.Size()
		}
		if err := os.Remove(filepath.Join(dir, "layers", e.Name())); err != nil {
			return layers, bytes, err
		}
		layers++
	}
	keys, _ := os.ReadDir(filepath.Join(dir, "keys"))
	for _, k := range keys {
		if err := os.Remove(filepath.Join(dir, "keys", k.Name())); err != nil {
			return layers, bytes, err
		}
	}
	return layers, bytes, nil
}
