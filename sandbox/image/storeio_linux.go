package image

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Save formats.
const (
	SaveDockerArchive = "docker-archive"
	SaveOCIArchive    = "oci-archive"
	SaveOCIDir        = "oci-dir"
)

// Save writes images from the store to out: a docker-save tarball (what
// `docker load` reads), an OCI layout directory, or that directory as a tar.
// Files are written beside out and renamed, so out is complete or absent.
func (s *Store) Save(ctx context.Context, refs []string, format, out string) error {
	type named struct {
		img  v1.Image
		name string
	}
	var imgs []named
	for _, r := range refs {
		img, e, err := s.Resolve(r)
		if err != nil {
			return err
		}
		n := e.Name
		if nn, err := NormalizeName(r); err == nil && nn == e.Name {
			n = nn
		}
		imgs = append(imgs, named{img, n})
	}
	switch format {
	case SaveDockerArchive, "":
		m := map[name.Reference]v1.Image{}
		for _, x := range imgs {
			var ref name.Reference
			var err error
			if x.name != "" {
				ref, err = name.NewTag(x.name)
			} else {
				d, _ := x.img.Digest()
				ref, err = name.NewDigest("ctlab-untagged@" + d.String())
			}
			if err != nil {
				return err
			}
			m[ref] = x.img
		}
		return atomicFile(out, func(tmp string) error { return tarball.MultiRefWriteToFile(tmp, m) })
	case SaveOCIDir, SaveOCIArchive:
		write := func(dir string) error {
			p, err := layout.Write(dir, empty.Index)
			if err != nil {
				return err
			}
			for _, x := range imgs {
				var ann map[string]string
				if x.name != "" {
					t, _ := name.NewTag(x.name)
					ann = map[string]string{AnnotationImageName: t.Name(), AnnotationRefName: t.TagStr()}
				}
				if err := p.AppendImage(x.img, layout.WithAnnotations(ann)); err != nil {
					return err
				}
			}
			return nil
		}
		if format == SaveOCIDir {
			return atomicDir(out, write)
		}
		return atomicFile(out, func(tmp string) error {
			dir, err := os.MkdirTemp(filepath.Dir(out), ".oci-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if err := write(dir); err != nil {
				return err
			}
			return tarDir(dir, tmp)
		})
	}
	return fmt.Errorf("unknown save format %q: use docker-archive, oci-archive or oci-dir", format)
}

func atomicFile(out string, fn func(tmp string) error) error {
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp")
	os.Remove(tmp)
	if err := fn(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(tmp, out)
}

func atomicDir(out string, fn func(tmp string) error) error {
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists: give a new directory for an OCI layout", out)
	}
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp")
	os.RemoveAll(tmp)
	if err := fn(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(tmp, out)
}

// tarDir writes the regular files and directories under dir to a tar.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: rel + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: buildTime})
		}
		return tarFile(tw, rel, p)
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Load adds every image of a docker-save tarball, an oci-archive or an OCI
// layout directory to the store, under the names it carries (RepoTags, or
// the io.containerd.image.name annotation). It returns what it added.
func (s *Store) Load(ctx context.Context, file string, progress *Progress) ([]StoreEntry, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return s.loadLayout(ctx, file, progress)
	}
	kind, err := sniffArchive(file)
	if err != nil {
		return nil, err
	}
	if kind == FormatOCIArchive {
		tmp, err := os.MkdirTemp(s.Root, ".load-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := unpackOCIArchive(file, tmp); err != nil {
			return nil, err
		}
		return s.loadLayout(ctx, tmp, progress)
	}
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	tm, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("%w: read manifest.json: %w", ErrInvalidLayer, err)
	}
	var out []StoreEntry
	for _, d := range tm {
		var tag *name.Tag
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("bad RepoTags %q: %w", d.RepoTags[0], err)
			}
			tag = &t
		} else if len(tm) > 1 {
			return nil, errors.New("a docker-save archive with several untagged images is not supported")
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("read image: %w", err)
		}
		e, err := s.Put(ctx, img, d.RepoTags, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// unpackOCIArchive copies an oci-archive's layout files (only oci-layout,
// index.json and blobs/sha256/<hex>, see scanOCIArchive) into dir.
func unpackOCIArchive(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	inPlace, err := scanOCIArchive(f, dir)
	if err != nil {
		return err
	}
	for hex, sec := range inPlace {
		out, err := os.Create(filepath.Join(dir, "blobs", "sha256", hex))
		if err != nil {
			return err
		}
		_, err = io.Copy(out, io.NewSectionReader(f, sec[0], sec[1]))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) loadLayout(ctx context.Context, dir string, progress *Progress) ([]StoreEntry, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []StoreEntry
	for _, d := range im.Manifests {
		desc := &d
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if desc, err = pickManifest(child, 0); err != nil {
				return nil, err
			}
		} else if !d.MediaType.IsImage() {
			continue
		}
		img, err := layout.Path(dir).Image(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("read image %s: %w", desc.Digest, err)
		}
		var names []string
		if n := d.Annotations[AnnotationImageName]; n != "" {
			names = []string{n}
		} else if n := d.Annotations[AnnotationRefName]; strings.ContainsAny(n, ":/") {
			names = []string{n}
		}
		e, err := s.Put(ctx, img, names, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// RemoteOptions configure pull and push.
type RemoteOptions struct {
	// Insecure allows plain HTTP and unverified TLS (a class registry).
	Insecure bool
	Progress *Progress
}

func (o RemoteOptions) parse(ref string) (name.Reference, error) {
	var opts []name.Option
	if o.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	return r, nil
}

// remote options: proxies from HTTP(S)_PROXY/NO_PROXY (net/http's
// ProxyFromEnvironment), credentials from ~/.docker/config.json.
func (o RemoteOptions) remote(ctx context.Context) []remote.Option {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	if o.Insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure
	}
	return []remote.Option{
		remote.WithContext(ctx), remote.WithTransport(t),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
	}
}

// Pull fetches ref from its registry into the store, named as given.
func (s *Store) Pull(ctx context.Context, ref string, o RemoteOptions) (StoreEntry, error) {
	r, err := o.parse(ref)
	if err != nil {
		return StoreEntry{}, err
	}
	img, err := remote.Image(r, o.remote(ctx)...)
	if err != nil {
		return StoreEntry{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	var names []string
	if t, ok := r.(name.Tag); ok {
		names = []string{familiar(t)}
	}
	return s.Put(ctx, img, names, o.Progress)
}

// Push sends a store image to a registry: each layer (with progress; those
// the registry has are skipped), then config and manifest. dst defaults to
// the image's own name.
func (s *Store) Push(ctx context.Context, src, dst string, o RemoteOptions) error {
	img, _, err := s.Resolve(src)
	if err != nil {
		return err
	}
	if dst == "" {
		dst = src
	}
	r, err := o.parse(dst)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		ch := make(chan v1.Update, 16)
		go func() {
			for u := range ch {
				o.Progress.line(d, bar(u.Complete, u.Total), false)
			}
		}()
		err = remote.WriteLayer(r.Context(), l, append(o.remote(ctx), remote.WithProgress(ch))...)
		if err != nil {
			return fmt.Errorf("push layer %s: %w", d, err)
		}
		o.Progress.done(d, "pushed")
	}
	if err := remote.Write(r, img, o.remote(ctx)...); err != nil {
		return fmt.Errorf("push %s: %w", dst, err)
	}
	return nil
}
