package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Fuzz targets for the metadata readers (index.json, docker-save's
// manifest.json, the image config). Whatever the bytes, Open must return
// (no panic, no hang, no unbounded read), and an image it accepts must be
// consistent.
//
//	go test ./sandbox/image/ -run '^$' -fuzz FuzzIndexJSON -fuzztime 30s
//	go test ./sandbox/image/ -run '^$' -fuzz FuzzDockerManifest -fuzztime 30s
//	go test ./sandbox/image/ -run '^$' -fuzz FuzzImageConfig -fuzztime 30s

// fuzzBuild is a one-layer image for the fuzz seeds.
func fuzzBuild(f *testing.F) *Build {
	d := f.TempDir()
	p := filepath.Join(d, "layer.tar")
	if err := os.WriteFile(p, mkTar(f, dir("etc"), file("etc/hello", "hello")), 0o644); err != nil {
		f.Fatal(err)
	}
	return &Build{Config: v1.Config{Cmd: []string{"sh"}}, Layers: []BuildLayer{{TarPath: p, CreatedBy: "ADD"}}}
}

// copyTree copies a small layout directory (regular files only).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// openChecked is the oracle: Open returns, and an image it accepts has
// a config and layers that agree. (Unpacking is FuzzExtract's job; its
// syncfs would make each exec here take a second on a busy disk.)
func openChecked(t *testing.T, ref string) {
	im, err := Open(context.Background(), ref)
	if err != nil {
		return
	}
	defer im.Close()
	if im.Config == nil || len(im.Layers()) != len(im.Config.RootFS.DiffIDs) {
		t.Fatalf("accepted an image whose config and layers disagree")
	}
}

func FuzzIndexJSON(f *testing.F) {
	good := filepath.Join(f.TempDir(), "layout")
	if err := fuzzBuild(f).WriteOCILayout(good); err != nil {
		f.Fatal(err)
	}
	idx, _ := os.ReadFile(filepath.Join(good, "index.json"))
	f.Add(idx)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + sha(idx).Hex + `","size":1}]}`))
	f.Add([]byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := filepath.Join(t.TempDir(), "layout")
		copyTree(t, good, d)
		if err := os.WriteFile(filepath.Join(d, "index.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		openChecked(t, d)
	})
}

func FuzzDockerManifest(f *testing.F) {
	good := filepath.Join(f.TempDir(), "good.tar")
	if err := fuzzBuild(f).WriteDockerArchive(good); err != nil {
		f.Fatal(err)
	}
	entries := readTarEntries(f, good)
	f.Add(entries["manifest.json"])
	f.Add([]byte(`[{"Config":"manifest.json","Layers":["manifest.json"]}]`))
	f.Add([]byte(`[{"Config":"../../etc/passwd","Layers":["/dev/zero"]}]`))
	f.Add([]byte(`[{}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var all []te
		for name, body := range entries {
			if name == "manifest.json" {
				body = data
			}
			all = append(all, file(name, string(body)))
		}
		p := filepath.Join(t.TempDir(), "save.tar")
		if err := os.WriteFile(p, mkTar(t, all...), 0o644); err != nil {
			t.Fatal(err)
		}
		openChecked(t, p)
	})
}

func FuzzImageConfig(f *testing.F) {
	good := filepath.Join(f.TempDir(), "layout")
	if err := fuzzBuild(f).WriteOCILayout(good); err != nil {
		f.Fatal(err)
	}
	var idx v1.IndexManifest
	b, _ := os.ReadFile(filepath.Join(good, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		f.Fatalf("index: %v", err)
	}
	mb, _ := os.ReadFile(filepath.Join(good, "blobs/sha256", idx.Manifests[0].Digest.Hex))
	var m v1.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		f.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(good, "blobs/sha256", m.Config.Digest.Hex))
	f.Add(cfg)
	f.Add([]byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:00"]},"config":{"WorkingDir":"/proc/self/fd/7"}}`))
	f.Add([]byte(`{"rootfs":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := filepath.Join(t.TempDir(), "layout")
		copyTree(t, good, d)
		cm := m
		cm.Config.Digest, cm.Config.Size = sha(data), int64(len(data))
		writeBlob(t, d, data)
		mraw, _ := json.Marshal(cm)
		writeBlob(t, d, mraw)
		ci := idx
		ci.Manifests = []v1.Descriptor{idx.Manifests[0]}
		ci.Manifests[0].Digest, ci.Manifests[0].Size = sha(mraw), int64(len(mraw))
		iraw, _ := json.Marshal(ci)
		if err := os.WriteFile(filepath.Join(d, "index.json"), iraw, 0o644); err != nil {
			t.Fatal(err)
		}
		openChecked(t, d)
	})
}

func writeBlob(t testing.TB, layout string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(layout, "blobs/sha256", sha(b).Hex), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTarEntries returns the regular files of a (small) tar by name.
func readTarEntries(t testing.TB, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[h.Name] = b
		}
	}
	return out
}
