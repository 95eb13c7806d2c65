package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// Format names the way an image was handed in.
type Format string

// The image forms Open understands.
const (
	FormatDockerArchive Format = "docker-archive" // `docker save` tarball
	FormatOCILayout     Format = "oci-layout"     // directory with oci-layout + index.json
	FormatOCIArchive    Format = "oci-archive"    // the same directory, as a tar
	FormatRegistry      Format = "registry"       // docker://REF
	FormatDaemon        Format = "docker-daemon"  // docker-daemon:REF (via `docker save`)
)

var configHex = regexp.MustCompile(`(?:^|/)([0-9a-f]{64})(?:\.json)?$`)

// Metadata blobs (manifests, configs, index) are small; a huge one is an attack.
const maxMetaBytes = 8 << 20

// Image is an opened image: its manifest, config and layer sources.
type Image struct {
	Ref      string
	Format   Format
	Digest   v1.Hash // manifest digest
	Manifest *v1.Manifest
	Config   *v1.ConfigFile
	// RawConfig is the config blob as stored (digest-checked where the format has a claim).
	RawConfig []byte
	img       v1.Image
	layers    []LayerSource
	cleanup   []func()
}

// Close releases temp files (daemon exports, open archives).
func (im *Image) Close() error {
	for i := len(im.cleanup) - 1; i >= 0; i-- {
		im.cleanup[i]()
	}
	im.cleanup = nil
	return nil
}

// Layers returns the layer sources, bottom first.
func (im *Image) Layers() []LayerSource { return im.layers }

// Open loads an image reference:
//
//	path/to/image.tar          docker save output or oci-archive (detected)
//	path/to/dir                OCI image layout directory
//	docker-archive:FILE, oci-archive:FILE, oci:DIR   explicit forms
//	docker://REF               a registry (e.g. docker://localhost:5000/nginx:latest)
//	docker-daemon:REF          the local Docker daemon, exported with `docker save`
func Open(ctx context.Context, ref string) (*Image, error) {
	im, err := open(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", Quote(ref), err)
	}
	return im, nil
}

func open(ctx context.Context, ref string) (*Image, error) {
	switch {
	case strings.HasPrefix(ref, "docker://"):
		return openRegistry(ctx, ref, strings.TrimPrefix(ref, "docker://"))
	case strings.HasPrefix(ref, "docker-daemon:"):
		return openDaemon(ctx, ref, strings.TrimPrefix(ref, "docker-daemon:"))
	case strings.HasPrefix(ref, "docker-archive:"):
		return openDockerArchive(ref, strings.TrimPrefix(ref, "docker-archive:"))
	case strings.HasPrefix(ref, "oci-archive:"):
		return openOCIArchive(ref, strings.TrimPrefix(ref, "oci-archive:"))
	case strings.HasPrefix(ref, "oci:"):
		return openLayout(ref, strings.TrimPrefix(ref, "oci:"))
	}
	st, err := os.Stat(ref)
	if err != nil {
		if im, serr := openFromStore(ref); serr == nil {
			return im, nil
		}
		return nil, fmt.Errorf("not a file, directory, image in ctlab's store, docker:// or docker-daemon: reference: %w", err)
	}
	if st.IsDir() {
		return openLayout(ref, ref)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is neither a directory nor a regular file", ErrInvalidLayer, Quote(ref))
	}
	kind, err := sniffArchive(ref)
	if err != nil {
		return nil, err
	}
	if kind == FormatOCIArchive {
		return openOCIArchive(ref, ref)
	}
	return openDockerArchive(ref, ref)
}

// sniffArchive reads only tar headers (skipping data with seeks) to tell a
// docker-save tar (manifest.json) from an oci-archive (index.json), and to
// refuse outer tars that are compressed, enormous in entry count, or carry
// oversized metadata files before any library reads them into memory:
// manifest.json and index.json must be regular entries, and so must every
// config manifest.json names, each within maxMetaBytes.
func sniffArchive(p string) (Format, error) {
	f, err := openRegular(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [2]byte
	if _, err := io.ReadFull(f, magic[:]); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		return "", errors.New("the archive is gzip-compressed: run gunzip first (docker save writes a plain tar)")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tr := tar.NewReader(f)
	hasManifest, hasIndex := false, false
	entries := map[string]dockerSaveEntry{}
	var manifest []byte
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: not a tar archive: %w", ErrInvalidLayer, err)
		}
		if n > 100_000 {
			return "", fmt.Errorf("%w: image archive has more than 100000 entries", ErrLimit)
		}
		name := cleanTarName(hdr.Name)
		entries[name] = dockerSaveEntry{typ: hdr.Typeflag, size: hdr.Size}
		switch name {
		case "manifest.json", "index.json":
			if hdr.Size > maxMetaBytes {
				return "", fmt.Errorf("%w: %s is %d bytes", ErrLimit, name, hdr.Size)
			}
			if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
				return "", fmt.Errorf("%w: %s in the archive is not a regular file", ErrInvalidLayer, name)
			}
			if name == "index.json" {
				hasIndex = true
				break
			}
			hasManifest = true
			if manifest, err = io.ReadAll(io.LimitReader(tr, hdr.Size)); err != nil {
				return "", fmt.Errorf("%w: read manifest.json: %w", ErrInvalidLayer, err)
			}
		}
		if strings.HasSuffix(hdr.Name, ".json") && hdr.Size > maxMetaBytes {
			return "", fmt.Errorf("%w: %s is %d bytes", ErrLimit, Quote(hdr.Name), hdr.Size)
		}
	}
	switch {
	case hasManifest: // docker save (v25+ writes an OCI layout too; manifest.json is simpler)
		if err := checkDockerSaveConfigs(entries, manifest); err != nil {
			return "", err
		}
		return FormatDockerArchive, nil
	case hasIndex:
		return FormatOCIArchive, nil
	}
	return "", errors.New("tar has neither manifest.json (docker save) nor index.json (oci-archive)")
}

func openDockerArchive(ref, p string) (*Image, error) {
	if _, err := sniffArchive(p); err != nil {
		return nil, err
	}
	opener := func() (io.ReadCloser, error) { return openRegular(p) }
	img, err := tarball.Image(opener, nil)
	if err != nil {
		return nil, fmt.Errorf("read docker-save tar: %w", err)
	}
	im := &Image{Ref: ref, Format: FormatDockerArchive, img: img}
	if err := im.loadMeta(nil); err != nil {
		return nil, err
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	tm, err := tarball.LoadManifest(opener)
	if err != nil || len(tm) == 0 {
		return nil, fmt.Errorf("%w: read manifest.json: %v", ErrInvalidLayer, err)
	}
	// docker save names the config after its own digest ("<hex>.json" or
	// "blobs/sha256/<hex>"): the only claim a docker-save tar makes about it.
	if m := configHex.FindStringSubmatch(tm[0].Config); m != nil && m[1] != im.Digest.Hex {
		return nil, fmt.Errorf("%w: config %s has digest sha256:%s", ErrDigest, Quote(tm[0].Config), im.Digest.Hex)
	}
	n := len(im.Config.RootFS.DiffIDs)
	if len(ls) != n || len(tm[0].Layers) != n || n == 0 {
		return nil, fmt.Errorf("%w: manifest.json lists %d layers, config has %d diff_ids", ErrInvalidLayer, len(tm[0].Layers), n)
	}
	for i, l := range ls {
		im.layers = append(im.layers, &uncompressedSource{diffID: im.Config.RootFS.DiffIDs[i], l: l})
	}
	return im, nil
}

// openLayout reads an OCI layout directory. Its metadata is copied into a
// private temp layout first (copyLayoutMeta: no symlinks, regular files
// only, sizes checked before reading); ggcr reads that copy, and layers are
// opened in place beneath the layout dir, again without following links.
func openLayout(ref, dir string) (*Image, error) {
	tmp, err := os.MkdirTemp("", "ctlab-oci-layout-")
	if err != nil {
		return nil, err
	}
	src, err := copyLayoutMeta(dir, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	cleanup := func() { unix.Close(src); os.RemoveAll(tmp) }
	open := func(h v1.Hash) (io.ReadCloser, bool, error) {
		p, err := blobPath(h)
		if err != nil {
			return nil, true, err
		}
		f, err := openBeneath(src, p)
		return f, true, err
	}
	im, err := openBlobLayout(ref, FormatOCILayout, tmp, open)
	if err != nil {
		cleanup()
		return nil, err
	}
	im.cleanup = append(im.cleanup, cleanup)
	return im, nil
}

// openBlobLayout opens the image an OCI layout at dir (a private copy of
// the metadata) selects; open provides the layer blobs.
func openBlobLayout(ref string, f Format, dir string, open func(v1.Hash) (io.ReadCloser, bool, error)) (*Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout: %w", err)
	}
	desc, err := pickManifest(idx, 0)
	if err != nil {
		return nil, err
	}
	img, err := layout.Path(dir).Image(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", desc.Digest, err)
	}
	im, err := newBlobImage(ref, f, img, desc)
	if err != nil {
		return nil, err
	}
	for _, l := range im.layers {
		l.(*blobSource).open = open
	}
	return im, nil
}

// pickManifest chooses the image to grade: the only one, or the one for
// this machine's platform; nested indexes are followed a few levels deep.
func pickManifest(idx v1.ImageIndex, depth int) (*v1.Descriptor, error) {
	if depth > 4 {
		return nil, fmt.Errorf("%w: image indexes nested too deeply", ErrInvalidLayer)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var cands []v1.Descriptor
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() || d.MediaType.IsIndex() {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return nil, errors.New("the index lists no image")
	}
	choice := cands[0]
	if len(cands) > 1 {
		found := false
		for _, d := range cands {
			if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
				choice, found = d, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("the index lists %d images and none for linux/%s", len(cands), runtime.GOARCH)
		}
	}
	if choice.MediaType.IsIndex() {
		child, err := idx.ImageIndex(choice.Digest)
		if err != nil {
			return nil, fmt.Errorf("read nested index: %w", err)
		}
		return pickManifest(child, depth+1)
	}
	return &choice, nil
}

func openRegistry(ctx context.Context, ref, r string) (*Image, error) {
	nref, err := name.ParseReference(r)
	if err != nil {
		return nil, fmt.Errorf("parse reference: %w", err)
	}
	img, err := remote.Image(nref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		return nil, fmt.Errorf("fetch from registry: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("manifest digest: %w", err)
	}
	mt, _ := img.MediaType()
	return newBlobImage(ref, FormatRegistry, img, &v1.Descriptor{Digest: d, MediaType: mt})
}

// openDaemon exports the image with the docker CLI into a private temp file.
// This keeps the Docker client library (and its dependency tree) out of
// ctlab; the daemon's own `docker save` is the documented export.
func openDaemon(ctx context.Context, ref, r string) (*Image, error) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		return nil, fmt.Errorf("docker-daemon: needs the docker CLI: %w", err)
	}
	tmp, err := os.MkdirTemp("", "ctlab-daemon-")
	if err != nil {
		return nil, err
	}
	out := path.Join(tmp, "image.tar")
	cmd := exec.CommandContext(ctx, docker, "save", "-o", out, r)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("docker save %s: %w: %s", Quote(r), err, Quote(strings.TrimSpace(stderr.String())))
	}
	im, err := openDockerArchive(ref, out)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	im.Format = FormatDaemon
	im.cleanup = append(im.cleanup, func() { os.RemoveAll(tmp) })
	return im, nil
}

// newBlobImage wraps an image whose layers are content-addressed blobs
// (OCI layout, oci-archive, registry): the manifest is checked against the
// descriptor that named it, the config against the manifest, and each layer
// blob (later, while unpacking) against its manifest digest and diffID.
func newBlobImage(ref string, f Format, img v1.Image, desc *v1.Descriptor) (*Image, error) {
	im := &Image{Ref: ref, Format: f, img: img}
	if err := im.loadMeta(desc); err != nil {
		return nil, err
	}
	m := im.Manifest
	if len(m.Layers) != len(im.Config.RootFS.DiffIDs) || len(m.Layers) == 0 {
		return nil, fmt.Errorf("%w: manifest has %d layers but config has %d diff_ids", ErrInvalidLayer, len(m.Layers), len(im.Config.RootFS.DiffIDs))
	}
	for i, ld := range m.Layers {
		if !ld.MediaType.IsLayer() && ld.MediaType != "" {
			return nil, fmt.Errorf("%w: layer %d has media type %q", ErrInvalidLayer, i, ld.MediaType)
		}
		if !ld.MediaType.IsDistributable() {
			return nil, fmt.Errorf("layer %d is a foreign (non-distributable) layer; not supported", i)
		}
		im.layers = append(im.layers, &blobSource{img: img, desc: ld, diffID: im.Config.RootFS.DiffIDs[i]})
	}
	return im, nil
}

func (im *Image) loadMeta(desc *v1.Descriptor) error {
	if im.Format == FormatDockerArchive {
		// A docker-save tar has no manifest of its own: ggcr would
		// synthesise one by gzip-compressing every layer to learn its
		// digest. The image ID (config digest) identifies it instead.
		cfgRaw, err := im.img.RawConfigFile()
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if len(cfgRaw) > maxMetaBytes {
			return fmt.Errorf("%w: config of %d bytes", ErrLimit, len(cfgRaw))
		}
		sum := sha256.Sum256(cfgRaw)
		im.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
		if err != nil {
			return fmt.Errorf("%w: parse config: %w", ErrInvalidLayer, err)
		}
		im.Config, im.RawConfig = cfg, cfgRaw
		return nil
	}
	raw, err := im.img.RawManifest()
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if len(raw) > maxMetaBytes {
		return fmt.Errorf("%w: manifest of %d bytes", ErrLimit, len(raw))
	}
	sum := sha256.Sum256(raw)
	im.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if desc != nil && desc.Digest != im.Digest {
		return fmt.Errorf("%w: manifest is %s, index says %s", ErrDigest, im.Digest, desc.Digest)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%w: parse manifest: %w", ErrInvalidLayer, err)
	}
	im.Manifest = &m
	if desc != nil && m.Config.Size > maxMetaBytes {
		return fmt.Errorf("%w: config of %d bytes", ErrLimit, m.Config.Size)
	}
	cfgRaw, err := im.img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if desc != nil {
		sum := sha256.Sum256(cfgRaw)
		if got := hex.EncodeToString(sum[:]); got != m.Config.Digest.Hex || m.Config.Digest.Algorithm != "sha256" {
			return fmt.Errorf("%w: config is sha256:%s, manifest says %s", ErrDigest, got, m.Config.Digest)
		}
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return fmt.Errorf("%w: parse config: %w", ErrInvalidLayer, err)
	}
	im.Config, im.RawConfig = cfg, cfgRaw
	return nil
}

// blobSource opens a layer blob as stored, with its manifest digest.
type blobSource struct {
	img    v1.Image
	desc   v1.Descriptor
	diffID v1.Hash
	// open, if set, is tried first (oci-archive, OCI layout: layer blobs
	// are read in place instead of from the metadata copy); ok=false means
	// "not mine, ask ggcr".
	open func(v1.Hash) (rc io.ReadCloser, ok bool, err error)
}

func (b *blobSource) DiffID() v1.Hash { return b.diffID }

func (b *blobSource) Open(ctx context.Context) (io.ReadCloser, *v1.Hash, error) {
	d := b.desc.Digest
	if b.open != nil {
		if rc, ok, err := b.open(d); ok {
			if err != nil {
				return nil, nil, fmt.Errorf("open layer %s: %w", d, err)
			}
			return rc, &d, nil
		}
	}
	l, err := b.img.LayerByDigest(b.desc.Digest)
	if err != nil {
		return nil, nil, fmt.Errorf("find layer %s: %w", b.desc.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, nil, fmt.Errorf("open layer %s: %w", b.desc.Digest, err)
	}
	return rc, &d, nil
}

// uncompressedSource is a docker-save layer: the file in the tar is the
// layer (plain tar in practice), identified only by its diffID.
type uncompressedSource struct {
	diffID v1.Hash
	l      v1.Layer
}

func (u *uncompressedSource) DiffID() v1.Hash { return u.diffID }

func (u *uncompressedSource) Open(ctx context.Context) (io.ReadCloser, *v1.Hash, error) {
	rc, err := u.l.Uncompressed()
	if err != nil {
		return nil, nil, fmt.Errorf("open layer %s: %w", u.diffID, err)
	}
	return rc, nil, nil
}

// BytesSource is a layer held in memory (tests, small synthetic layers).
type BytesSource struct {
	ID   v1.Hash
	Data []byte
	// Blob, if set, is the digest Data must have as stored (compressed).
	Blob *v1.Hash
}

// DiffID implements LayerSource.
func (b *BytesSource) DiffID() v1.Hash { return b.ID }

// Open implements LayerSource.
func (b *BytesSource) Open(context.Context) (io.ReadCloser, *v1.Hash, error) {
	return io.NopCloser(bytes.NewReader(b.Data)), b.Blob, nil
}
