package image

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BuildLayer is one layer to write: an uncompressed tar file on disk and
// the Dockerfile step that made it.
type BuildLayer struct {
	TarPath   string
	CreatedBy string
}

// Build describes an image to write (what `docker build` would produce):
// layers bottom first, plus metadata-only history steps (CMD, ENV, ...)
// placed after the layer with the same index in AfterLayer.
type Build struct {
	Config v1.Config
	Layers []BuildLayer
	// Extra are history entries without a layer, e.g. "CMD [...]"; each is
	// placed after layer number AfterLayer (bottom first, -1 = before all).
	Extra []ExtraHistory
	Tag   string
}

// ExtraHistory is a metadata-only Dockerfile step.
type ExtraHistory struct {
	AfterLayer int
	CreatedBy  string
}

var buildTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// image assembles a v1.Image with ggcr (diffIDs and digests computed by
// the library from the layer files).
func (b *Build) image() (v1.Image, error) {
	img := EmptyOCI()
	var hist []v1.History
	addExtra := func(after int) {
		for _, e := range b.Extra {
			if e.AfterLayer == after {
				hist = append(hist, v1.History{Created: v1.Time{Time: buildTime}, CreatedBy: e.CreatedBy, EmptyLayer: true})
			}
		}
	}
	addExtra(-1)
	var adds []mutate.Addendum
	for i, l := range b.Layers {
		layer, err := tarball.LayerFromFile(l.TarPath, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.TarPath, err)
		}
		h := v1.History{Created: v1.Time{Time: buildTime}, CreatedBy: l.CreatedBy}
		adds = append(adds, mutate.Addendum{Layer: layer, History: h})
		hist = append(hist, h)
		addExtra(i)
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = b.Config
	cf.History = hist
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: buildTime}
	return mutate.ConfigFile(img, cf)
}

// EmptyOCI is an image without layers (FROM scratch) with OCI media types
// throughout, so layouts written from it suit OCI-only tools (umoci).
func EmptyOCI() v1.Image {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// Image returns the image as go-containerregistry assembles it (OCI media
// types, gzip layers), e.g. to put it in the Store.
func (b *Build) Image() (v1.Image, error) { return b.image() }

// WriteDockerArchive writes what `docker save` writes: manifest.json, the
// config as <hex>.json and each layer as an uncompressed <diffid>/layer.tar.
func (b *Build) WriteDockerArchive(path string) error {
	img, err := b.image()
	if err != nil {
		return err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	var layerNames []string
	for i, l := range b.Layers {
		name := cf.RootFS.DiffIDs[i].Hex + "/layer.tar"
		layerNames = append(layerNames, name)
		if err := tarFile(tw, name, l.TarPath); err != nil {
			return err
		}
	}
	tag := b.Tag
	if tag == "" {
		tag = "ctlab/test:latest"
	}
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName.Hex + ".json", "RepoTags": []string{tag}, "Layers": layerNames}})
	if err := tarBytes(tw, cfgName.Hex+".json", rawCfg); err != nil {
		return err
	}
	if err := tarBytes(tw, "manifest.json", manifest); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// WriteOCILayout writes an OCI image layout directory with gzip layers.
func (b *Build) WriteOCILayout(dir string) error {
	img, err := b.image()
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	// The ref name lets tools such as umoci and skopeo address the image as DIR:latest.
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"}))
}

// WriteOCIArchive writes the layout as a tar (the oci-archive form).
func (b *Build) WriteOCIArchive(path string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := b.WriteOCILayout(tmp); err != nil {
		return err
	}
	return tarDir(tmp, path)
}

func tarBytes(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(b)), Mode: 0o644, ModTime: buildTime}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func tarFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(name, "/"), Typeflag: tar.TypeReg, Size: st.Size(), Mode: 0o644, ModTime: buildTime}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
