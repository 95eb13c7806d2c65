package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// DefaultStoreRoot is the image store: one OCI image layout (oci-layout,
// index.json, blobs/sha256/...) holding every image ctlab pulled, loaded,
// imported or built. Layers are unpacked from it into the shared layer
// cache (DefaultCacheRoot), the same one the grader uses.
const DefaultStoreRoot = "/var/lib/ctlab/images"

// Annotations naming an image in an index, as `docker save` (v25+) and
// containerd write them: the full name, and the tag alone.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// StoreRoot is where OpenStore("") and Open look for the store.
var StoreRoot = DefaultStoreRoot

// openFromStore opens ref from the store at StoreRoot, without creating
// anything (Open is also the grader's entry point).
func openFromStore(ref string) (*Image, error) {
	if _, err := os.Stat(filepath.Join(StoreRoot, "index.json")); err != nil {
		return nil, err
	}
	s := &Store{Root: StoreRoot, path: layout.Path(StoreRoot)}
	return s.Open(ref)
}

// ErrNotInStore is returned for a name or ID the store does not hold.
var ErrNotInStore = errors.New("no such image in the store")

// Store is the image store. Every change to index.json happens under an
// flock on Root+".lock" and is an atomic rename, so concurrent ctlab
// processes (a build and a pull) never lose each other's names.
type Store struct {
	Root  string
	Cache *Cache
	path  layout.Path
}

// StoreEntry is one image in the store under one name ("" when untagged).
type StoreEntry struct {
	Name    string    `json:"name,omitempty"`
	Digest  v1.Hash   `json:"digest"` // manifest digest
	ID      v1.Hash   `json:"id"`     // config digest: docker's IMAGE ID
	Created time.Time `json:"created"`
	Size    int64     `json:"size"` // stored (compressed) layer bytes
	Layers  int       `json:"layers"`
}

// ShortID is the 12 hex digits docker prints as IMAGE ID.
func (e StoreEntry) ShortID() string { return shortHex(e.ID) }

func shortHex(h v1.Hash) string {
	if len(h.Hex) < 12 {
		return h.Hex
	}
	return h.Hex[:12]
}

// OpenStore opens (creating if needed) the store at root; cache is where
// its layers are unpacked (nil: DefaultCacheRoot with default limits).
func OpenStore(root string, cache *Cache) (*Store, error) {
	if root == "" {
		root = StoreRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("image store path: %w", err)
	}
	if cache == nil {
		if cache, err = NewCache("", Limits{}); err != nil {
			return nil, err
		}
	}
	if err := mkdirAll0700(root); err != nil {
		return nil, err
	}
	s := &Store{Root: root, Cache: cache, path: layout.Path(root)}
	if _, err := os.Stat(filepath.Join(root, "index.json")); errors.Is(err, os.ErrNotExist) {
		if _, err := layout.Write(root, empty.Index); err != nil {
			return nil, fmt.Errorf("create image store: %w", err)
		}
	}
	return s, nil
}

// lock serialises changes to the store (index.json and blob removal).
func (s *Store) lock(ctx context.Context) (func(), error) {
	return lockFile(ctx, s.Root+".lock")
}

// NormalizeName turns "nginx" into "nginx:latest" and
// "docker.io/library/nginx:1" into "nginx:1": the familiar form docker
// prints, validated by go-containerregistry's reference grammar.
func NormalizeName(s string) (string, error) {
	t, err := name.NewTag(s)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", s, err)
	}
	return familiar(t), nil
}

func familiar(t name.Tag) string {
	reg, repo := t.RegistryStr(), t.RepositoryStr()
	if reg == name.DefaultRegistry {
		return strings.TrimPrefix(repo, "library/") + ":" + t.TagStr()
	}
	return reg + "/" + repo + ":" + t.TagStr()
}

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(filepath.Join(s.Root, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("read image store index: %w", err)
	}
	var m v1.IndexManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse image store index: %w", err)
	}
	return &m, nil
}

// writeIndex replaces index.json atomically (temp file, fsync, rename).
func (s *Store) writeIndex(m *v1.IndexManifest) error {
	if m.SchemaVersion == 0 {
		m.SchemaVersion = 2
	}
	if m.MediaType == "" {
		m.MediaType = "application/vnd.oci.image.index.v1+json"
	}
	b, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		return err
	}
	return atomicWrite(filepath.Join(s.Root, "index.json"), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// atomicWrite writes final through a temp file beside it (fill, fsync,
// rename), so readers see the old or the new content, never a part.
func atomicWrite(final string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(final), ".tmp-"+filepath.Base(final)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", final, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), final)
}

func descName(d v1.Descriptor) string {
	if n := d.Annotations[AnnotationImageName]; n != "" {
		return n
	}
	return ""
}

// entry reads what List shows about one index descriptor.
func (s *Store) entry(d v1.Descriptor) (StoreEntry, error) {
	e := StoreEntry{Name: descName(d), Digest: d.Digest}
	img, err := s.path.Image(d.Digest)
	if err != nil {
		return e, fmt.Errorf("image %s: %w", d.Digest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return e, fmt.Errorf("image %s: manifest: %w", d.Digest, err)
	}
	e.ID = m.Config.Digest
	for _, l := range m.Layers {
		e.Size += l.Size
	}
	e.Layers = len(m.Layers)
	if cf, err := img.ConfigFile(); err == nil {
		e.Created = cf.Created.Time
	}
	return e, nil
}

// List returns every name in the store (and untagged images), newest first.
func (s *Store) List() ([]StoreEntry, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []StoreEntry
	for _, d := range idx.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		e, err := s.entry(d)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Resolve finds ref in the store: a name ("nginx", "nginx:latest",
// "localhost:5000/x:1"), or an image ID or manifest digest, whole or as a
// prefix of at least 4 hex digits (with or without "sha256:").
func (s *Store) Resolve(ref string) (v1.Image, StoreEntry, error) {
	all, err := s.List()
	if err != nil {
		return nil, StoreEntry{}, err
	}
	if n, err := NormalizeName(ref); err == nil {
		for _, e := range all {
			if e.Name == n {
				img, err := s.path.Image(e.Digest)
				return img, e, err
			}
		}
	}
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) >= 4 && strings.Trim(hex, "0123456789abcdef") == "" {
		var hit *StoreEntry
		for i, e := range all {
			if strings.HasPrefix(e.ID.Hex, hex) || strings.HasPrefix(e.Digest.Hex, hex) {
				if hit != nil && hit.Digest != e.Digest {
					return nil, StoreEntry{}, fmt.Errorf("%q matches more than one image: give more digits", ref)
				}
				if hit == nil {
					hit = &all[i]
				}
			}
		}
		if hit != nil {
			img, err := s.path.Image(hit.Digest)
			return img, *hit, err
		}
	}
	return nil, StoreEntry{}, fmt.Errorf("%w: %s (see ctlab images)", ErrNotInStore, Quote(ref))
}

// Open returns a store image as an *Image the grader and the runner read:
// manifest and config digest-checked, layers ready for Cache.Unpack.
func (s *Store) Open(ref string) (*Image, error) {
	img, e, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	return newBlobImage(ref, FormatOCILayout, img, &v1.Descriptor{Digest: e.Digest, MediaType: mt})
}

// Unpack unpacks every layer of im into the shared cache and returns the
// directories top-most first, ready to be an overlay's lowerdir list. The
// layers stay share-locked against eviction and prune until im.Close.
func (s *Store) Unpack(ctx context.Context, im *Image) ([]string, error) {
	us, err := im.Unpack(ctx, s.Cache)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, len(us))
	for i, u := range us {
		dirs[len(us)-1-i] = u.Dir
	}
	return dirs, nil
}

// Put writes img's blobs (skipping those already present) and names it.
// Each name moves to img, as `docker tag` does; without names the image is
// kept untagged. progress may be nil.
func (s *Store) Put(ctx context.Context, img v1.Image, names []string, progress *Progress) (StoreEntry, error) {
	var norm []string
	for _, n := range names {
		nn, err := NormalizeName(n)
		if err != nil {
			return StoreEntry{}, err
		}
		norm = append(norm, nn)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return StoreEntry{}, err
	}
	defer unlock()
	if err := s.writeBlobs(ctx, img, progress); err != nil {
		return StoreEntry{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return StoreEntry{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return StoreEntry{}, err
	}
	sz, err := img.Size()
	if err != nil {
		return StoreEntry{}, err
	}
	desc := v1.Descriptor{MediaType: mt, Digest: d, Size: sz}
	if err := s.setNames(desc, norm); err != nil {
		return StoreEntry{}, err
	}
	e, err := s.entry(desc)
	if len(norm) > 0 {
		e.Name = norm[0]
	}
	return e, err
}

// setNames points each name at desc (caller holds the lock); with no names,
// desc is added untagged unless some descriptor already lists it.
func (s *Store) setNames(desc v1.Descriptor, names []string) error {
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	var keep []v1.Descriptor
	present := false
	for _, d := range idx.Manifests {
		n := descName(d)
		if drop[n] || (n == "" && d.Digest == desc.Digest && len(names) > 0) {
			continue // the name moves; an untagged entry of the same image is superseded
		}
		if d.Digest == desc.Digest {
			present = true
		}
		keep = append(keep, d)
	}
	for _, n := range names {
		d := desc
		tag := n[strings.LastIndex(n, ":")+1:]
		d.Annotations = map[string]string{AnnotationImageName: n, AnnotationRefName: tag}
		keep = append(keep, d)
	}
	if len(names) == 0 && !present {
		keep = append(keep, desc)
	}
	idx.Manifests = keep
	return s.writeIndex(idx)
}

// writeBlobs writes the layers (with progress), then config and manifest.
func (s *Store) writeBlobs(ctx context.Context, img v1.Image, progress *Progress) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer digest: %w", err)
		}
		if _, err := os.Stat(s.blobPath(d)); err == nil {
			progress.done(d, "already exists")
			continue
		}
		size, _ := l.Size()
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("open layer %s: %w", d, err)
		}
		err = s.writeBlob(d, progress.reader(ctx, d, size, rc))
		rc.Close()
		if err != nil {
			return fmt.Errorf("write layer %s: %w", d, err)
		}
		progress.done(d, "done")
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := s.writeBlob(cfgName, bytes.NewReader(cfg)); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	m, err := img.RawManifest()
	if err != nil {
		return err
	}
	if err := s.writeBlob(d, bytes.NewReader(m)); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// writeBlob stores r as blob d unless present: into a temp file, checked
// against d, then renamed, so a killed pull never leaves a truncated blob
// under its final name (go-containerregistry's WriteBlob writes in place).
func (s *Store) writeBlob(d v1.Hash, r io.Reader) error {
	final := s.blobPath(d)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	return atomicWrite(final, func(w io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex {
			return fmt.Errorf("%w: blob is sha256:%s, expected %s", ErrDigest, got, d)
		}
		return nil
	})
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.Root, "blobs", h.Algorithm, h.Hex)
}

// Tag gives the image src the name dst.
func (s *Store) Tag(ctx context.Context, src, dst string) (StoreEntry, error) {
	img, _, err := s.Resolve(src)
	if err != nil {
		return StoreEntry{}, err
	}
	return s.Put(ctx, img, []string{dst}, nil)
}

// Remove drops a name; given an image ID (or digest) it drops every name
// of that image, which needs force when there is more than one, as in
// docker. Blobs stay until Prune. It returns the names removed.
func (s *Store) Remove(ctx context.Context, ref string, force bool) ([]string, error) {
	_, e, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	byName := e.Name != "" && func() bool { n, err := NormalizeName(ref); return err == nil && n == e.Name }()
	var keep []v1.Descriptor
	var removed []string
	for _, d := range idx.Manifests {
		hit := d.Digest == e.Digest && (!byName || descName(d) == e.Name)
		if !hit {
			keep = append(keep, d)
			continue
		}
		removed = append(removed, descName(d))
	}
	if !byName && len(removed) > 1 && !force {
		return nil, fmt.Errorf("image %s has %d names (%s): remove them one by one or use -f", e.ShortID(), len(removed), strings.Join(removed, ", "))
	}
	idx.Manifests = keep
	return removed, s.writeIndex(idx)
}

// PruneReport says what Prune removed.
type PruneReport struct {
	Blobs      int   // blobs no image in the store refers to
	BlobBytes  int64 // their size
	Layers     int   // unpacked layers no store image uses and no mount holds
	LayerBytes int64 // their tar stream size
}

// Prune removes blobs no store image refers to (untagged images stay:
// `ctlab rmi` them first) and unpacked layers in the cache that no store
// image lists and no mounted overlay uses. The cache is shared with the
// grader: a graded image's layers are unpacked again on its next grading.
func (s *Store) Prune(ctx context.Context) (PruneReport, error) {
	var rep PruneReport
	unlock, err := s.lock(ctx)
	if err != nil {
		return rep, err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return rep, err
	}
	blobs := map[string]bool{}
	diffIDs := map[string]bool{}
	for _, d := range idx.Manifests {
		blobs[d.Digest.Hex] = true
		img, err := s.path.Image(d.Digest)
		if err != nil {
			continue // an index or a foreign entry: keep what it names only
		}
		m, err := img.Manifest()
		if err != nil {
			return rep, err
		}
		blobs[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			blobs[l.Digest.Hex] = true
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return rep, err
		}
		for _, h := range cf.RootFS.DiffIDs {
			diffIDs[h.Hex] = true
		}
	}
	dir := filepath.Join(s.Root, "blobs", "sha256")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if blobs[e.Name()] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			rep.BlobBytes += fi.Size()
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return rep, fmt.Errorf("remove blob: %w", err)
		}
		rep.Blobs++
	}
	return rep, s.pruneLayers(ctx, diffIDs, &rep)
}

func (s *Store) pruneLayers(ctx context.Context, keep map[string]bool, rep *PruneReport) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	ents, err := os.ReadDir(s.Cache.Root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := v1.NewHash("sha256:" + e.Name())
		if err != nil || !e.IsDir() || keep[h.Hex] {
			continue
		}
		// A running container or a grading mounts it as a lowerdir.
		if strings.Contains(string(mounts), filepath.Join(s.Cache.Root, h.Hex)) {
			continue
		}
		u, ok := s.Cache.Lookup(h)
		if !ok {
			continue
		}
		if !s.Cache.removeIfUnused(h) {
			continue // locked: a grading or an unpack uses it right now
		}
		rep.Layers++
		rep.LayerBytes += u.Meta.StreamBytes
	}
	return nil
}
