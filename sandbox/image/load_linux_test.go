package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func writeLayerFile(t *testing.T, dir, name string, entries ...te) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, mkTar(t, entries...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func testBuild(t *testing.T) *Build {
	d := t.TempDir()
	return &Build{
		Config: v1.Config{Cmd: []string{"nginx", "-g", "daemon off;"}, Env: []string{"PATH=/usr/sbin:/usr/bin"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}},
		Layers: []BuildLayer{
			{TarPath: writeLayerFile(t, d, "base.tar", dir("usr"), dir("usr/share"), dir("usr/share/nginx"), dir("usr/share/nginx/html"),
				file("usr/share/nginx/html/index.html", "Welcome to nginx"), file("usr/share/nginx/html/50x.html", "error")), CreatedBy: "/bin/sh -c #(nop) ADD file:base in /"},
			{TarPath: writeLayerFile(t, d, "student.tar", dir("usr/share/nginx/html"), file("usr/share/nginx/html/index.html", "Hello World"),
				file("usr/share/nginx/html/.wh.50x.html", ""), file("usr/share/nginx/html/new.txt", "n")), CreatedBy: "RUN sed -i s/Welcome/Hello/ index.html"},
		},
		Extra: []ExtraHistory{{AfterLayer: 1, CreatedBy: `CMD ["nginx" "-g" "daemon off;"]`}},
	}
}

// TestOpenFormats loads the same image as docker-save tar, OCI layout and
// oci-archive; all three verify, unpack to the same diffIDs (cache hits
// after the first) and show the same merged file and layer changes.
func TestOpenFormats(t *testing.T) {
	b := testBuild(t)
	out := t.TempDir()
	paths := map[Format]string{
		FormatDockerArchive: filepath.Join(out, "docker.tar"),
		FormatOCILayout:     filepath.Join(out, "layout"),
		FormatOCIArchive:    filepath.Join(out, "oci.tar"),
	}
	if err := b.WriteDockerArchive(paths[FormatDockerArchive]); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteOCILayout(paths[FormatOCILayout]); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteOCIArchive(paths[FormatOCIArchive]); err != nil {
		t.Fatal(err)
	}
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{})
	for i, f := range []Format{FormatDockerArchive, FormatOCILayout, FormatOCIArchive} {
		t.Run(string(f), func(t *testing.T) {
			im, err := Open(context.Background(), paths[f])
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.Format != f {
				t.Errorf("format %s, want %s", im.Format, f)
			}
			ls, err := im.Unpack(context.Background(), cache)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && (!ls[0].Hit || !ls[1].Hit) {
				t.Errorf("same diffIDs should hit the cache")
			}
			m, err := NewMerged(LowerDirs(ls))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if b, _, err := m.ReadFile("/usr/share/nginx/html/index.html", 100); err != nil || string(b) != "Hello World" {
				t.Errorf("merged index.html %q %v", b, err)
			}
			if _, err := m.Stat("/usr/share/nginx/html/50x.html"); err == nil {
				t.Error("whited-out 50x.html visible")
			}
			info, err := im.Describe(ls, 100)
			if err != nil {
				t.Fatal(err)
			}
			ch := info.Layers[1].Changes
			if ch.Added != 1 || ch.Modified != 1 || ch.Deleted != 1 {
				t.Errorf("changes %+v", ch)
			}
			if len(info.History) != 3 || info.History[2].Layer != -1 || info.Layers[1].CreatedBy == "" {
				t.Errorf("history %+v", info.History)
			}
			if len(info.Cmd) != 3 || len(info.Ports) != 1 {
				t.Errorf("config %+v", info)
			}
		})
	}
	c.check(t)
}

// TestOpenRegistry pulls from an in-process registry on loopback.
func TestOpenRegistry(t *testing.T) {
	b := testBuild(t)
	img, err := b.image()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/student/nginx:hello"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	im, err := Open(context.Background(), "docker://"+ref)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	cache, _ := NewCache(t.TempDir(), Limits{})
	ls, err := im.Unpack(context.Background(), cache)
	if err != nil || len(ls) != 2 {
		t.Fatalf("unpack: %v", err)
	}
}

// TestOpenMalformed: outer-container attacks give errors, not panics (rows 40, 41).
func TestOpenMalformed(t *testing.T) {
	b := testBuild(t)
	out := t.TempDir()
	good := filepath.Join(out, "docker.tar")
	var rewriteN func(name string, edit func(hname string, data []byte) (string, []byte)) string
	if err := b.WriteDockerArchive(good); err != nil {
		t.Fatal(err)
	}
	// Rewrite the docker-save tar with a config missing rootfs.diff_ids.
	rewrite := func(name string, edit func(hname string, data []byte) []byte) string {
		return rewriteN(name, func(n string, d []byte) (string, []byte) { return n, edit(n, d) })
	}
	_ = rewrite
	rewriteN = func(name string, edit func(hname string, data []byte) (string, []byte)) string {
		src, _ := os.ReadFile(good)
		tr := tar.NewReader(bytes.NewReader(src))
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			data := new(bytes.Buffer)
			data.ReadFrom(tr)
			n, d := edit(h.Name, data.Bytes())
			h.Name, h.Size = n, int64(len(d))
			tw.WriteHeader(h)
			tw.Write(d)
		}
		tw.Close()
		p := filepath.Join(out, name)
		os.WriteFile(p, buf.Bytes(), 0o644)
		return p
	}
	// The config is renamed so the missing diff_ids, not its digest, is what fails.
	noDiffIDs := rewriteN("nodiff.tar", func(n string, d []byte) (string, []byte) {
		if n == "manifest.json" {
			var m []map[string]any
			json.Unmarshal(d, &m)
			m[0]["Config"] = "config.json"
			d, _ = json.Marshal(m)
		} else if strings.HasSuffix(n, ".json") {
			var m map[string]any
			json.Unmarshal(d, &m)
			delete(m, "rootfs")
			d, _ = json.Marshal(m)
			n = "config.json"
		}
		return n, d
	})
	extraLayer := rewrite("extra.tar", func(n string, d []byte) []byte {
		if n == "manifest.json" {
			var m []map[string]any
			json.Unmarshal(d, &m)
			m[0]["Layers"] = append(m[0]["Layers"].([]any), "nope/layer.tar")
			d, _ = json.Marshal(m)
		}
		return d
	})
	tamperedConfig := rewrite("cfg.tar", func(n string, d []byte) []byte {
		if strings.HasSuffix(n, ".json") && n != "manifest.json" {
			return bytes.Replace(d, []byte("daemon off;"), []byte("daemon on;;"), 1)
		}
		return d
	})
	// ggcr#2232: symlinks in the outer tar (docker v25 writes some) that loop.
	loop := rewrite("loop.tar", func(n string, d []byte) []byte {
		if n == "manifest.json" {
			var m []map[string]any
			json.Unmarshal(d, &m)
			ls := m[0]["Layers"].([]any)
			ls[0] = "loop/layer.tar"
			d, _ = json.Marshal(m)
		}
		return d
	})
	{
		src, _ := os.ReadFile(loop)
		src = src[:len(src)-1024] // drop the end-of-archive marker and append links
		var buf bytes.Buffer
		buf.Write(src)
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "loop/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../loop2/layer.tar"})
		tw.WriteHeader(&tar.Header{Name: "loop2/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../loop/layer.tar"})
		tw.Close()
		os.WriteFile(loop, buf.Bytes(), 0o644)
	}
	layoutDir := filepath.Join(out, "layout")
	if err := b.WriteOCILayout(layoutDir); err != nil {
		t.Fatal(err)
	}
	// Replace a layer blob with a symlink to a host file.
	lim, err := Open(context.Background(), layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(layoutDir, "blobs/sha256", lim.Manifest.Layers[0].Digest.Hex)
	lim.Close()
	os.Remove(victim)
	os.Symlink("/etc/shadow", victim)

	cache, _ := NewCache(t.TempDir(), Limits{})
	for _, p := range []string{noDiffIDs, extraLayer, tamperedConfig, loop, layoutDir, filepath.Join(out, "missing.tar")} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panic %v", p, r)
				}
			}()
			im, err := Open(context.Background(), p)
			if err == nil {
				_, err = im.Unpack(context.Background(), cache)
				im.Close()
			}
			if err == nil {
				t.Errorf("%s: malformed image accepted", filepath.Base(p))
			}
			t.Logf("%s: %v", filepath.Base(p), err)
		}()
	}
}
