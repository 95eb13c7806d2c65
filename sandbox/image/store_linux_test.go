package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/ctlab/ctlab/sandbox/rootfs"
)

func newTestStore(t *testing.T) *Store {
	t.Helper()
	cache, err := NewCache(t.TempDir(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenStore(filepath.Join(t.TempDir(), "images"), cache)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(es []StoreEntry) string {
	var n []string
	for _, e := range es {
		n = append(n, e.Name)
	}
	return strings.Join(n, ",")
}

// TestStoreNames: put, list, resolve by name and ID prefix, tag moves a
// name, rmi by ID needs -f with several names, prune removes the blobs and
// unpacked layers of what is no longer named.
func TestStoreNames(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	img, err := testBuild(t).Image()
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Put(ctx, img, []string{"docker.io/library/web"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "web:latest" || e.Layers != 2 || e.Size == 0 {
		t.Fatalf("put: %+v", e)
	}
	for _, ref := range []string{"web", "web:latest", "index.docker.io/library/web:latest", e.ID.Hex[:6], "sha256:" + e.ID.Hex, e.Digest.Hex[:8]} {
		if _, got, err := s.Resolve(ref); err != nil || got.Digest != e.Digest {
			t.Errorf("resolve %q: %v %+v", ref, err, got)
		}
	}
	if _, _, err := s.Resolve("nope"); !errors.Is(err, ErrNotInStore) {
		t.Errorf("resolve nope: %v", err)
	}
	if _, err := s.Tag(ctx, "web", "localhost:5000/class/web:v1"); err != nil {
		t.Fatal(err)
	}
	all, _ := s.List()
	if got := names(all); got != "localhost:5000/class/web:v1,web:latest" {
		t.Fatalf("list after tag: %s", got)
	}
	im, err := s.Open("web")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := s.Unpack(ctx, im)
	if err != nil || len(dirs) != 2 {
		t.Fatalf("unpack: %v %v", dirs, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dirs[0], "usr/share/nginx/html/index.html")); string(b) != "Hello World" {
		t.Fatalf("top layer index.html = %q", b)
	}
	im.Close() // releases the layers' shared locks: prune may remove them
	if _, err := s.Remove(ctx, e.ID.Hex[:12], false); err == nil {
		t.Fatal("rmi by ID with two names succeeded without force")
	}
	if rm, err := s.Remove(ctx, "web", false); err != nil || len(rm) != 1 {
		t.Fatalf("rmi web: %v %v", rm, err)
	}
	if rep, _ := s.Prune(ctx); rep.Blobs != 0 || rep.Layers != 0 {
		t.Fatalf("prune removed what is still named: %+v", rep)
	}
	if _, err := s.Remove(ctx, "localhost:5000/class/web:v1", false); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Prune(ctx)
	if err != nil || rep.Blobs != 4 || rep.Layers != 2 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	if left, _ := os.ReadDir(filepath.Join(s.Root, "blobs", "sha256")); len(left) != 0 {
		t.Fatalf("blobs left: %v", left)
	}
}

// TestStoreSaveLoad: every save format loads back into another store with
// the same image ID, and the loader the grader uses accepts each file.
func TestStoreSaveLoad(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	img, _ := testBuild(t).Image()
	e, err := s.Put(ctx, img, []string{"hello:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, f := range []string{SaveDockerArchive, SaveOCIArchive, SaveOCIDir} {
		p := filepath.Join(out, "hello."+f)
		if err := s.Save(ctx, []string{"hello:1"}, f, p); err != nil {
			t.Fatalf("save %s: %v", f, err)
		}
		im, err := Open(ctx, p)
		if err != nil {
			t.Fatalf("open saved %s: %v", f, err)
		}
		im.Close()
		s2 := newTestStore(t)
		var buf bytes.Buffer
		got, err := s2.Load(ctx, p, &Progress{W: &buf})
		if err != nil || len(got) != 1 {
			t.Fatalf("load %s: %v %v", f, got, err)
		}
		if got[0].ID != e.ID || got[0].Name != "hello:1" {
			t.Errorf("load %s: %+v, want ID %s named hello:1", f, got[0], e.ID)
		}
		if strings.Count(buf.String(), "\n") != 2 {
			t.Errorf("load %s progress:\n%s", f, buf.String())
		}
	}
}

// TestStorePullPush pushes to go-containerregistry's registry on loopback
// and pulls into a second store: same manifest digest, layers verified.
func TestStorePullPush(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	s := newTestStore(t)
	img, _ := testBuild(t).Image()
	e, err := s.Put(ctx, img, []string{"hello"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Push(ctx, "hello", host+"/class/hello:v1", RemoteOptions{Insecure: true, Progress: &Progress{W: &buf}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "pushed") {
		t.Errorf("push progress: %q", buf.String())
	}
	s2 := newTestStore(t)
	got, err := s2.Pull(ctx, host+"/class/hello:v1", RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != e.Digest || got.Name != host+"/class/hello:v1" {
		t.Fatalf("pulled %+v, pushed %s", got, e.Digest)
	}
	if _, err := s2.Pull(ctx, host+"/class/missing:v1", RemoteOptions{}); err == nil {
		t.Fatal("pull of a missing image succeeded")
	}
}

// TestImportPackagesNginx builds the nginx base from the host's Debian
// packages and checks the merged tree and the config.
func TestImportPackagesNginx(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (rootfs build)")
	}
	if _, err := os.Stat("/var/lib/dpkg/info/nginx.list"); err != nil {
		t.Skip("nginx is not installed on this host (apt-get install nginx)")
	}
	ctx := context.Background()
	base, err := rootfs.Ensure(ctx, "default", t.TempDir(), rootfs.Owner{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := PackageImport{Packages: []string{"nginx"}, RootfsDir: base, TmpDir: t.TempDir()}.Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := b.Image()
	if err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t)
	if _, err := s.Put(ctx, img, []string{"nginx:latest"}, nil); err != nil {
		t.Fatal(err)
	}
	im, err := s.Open("nginx")
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if c := im.Config.Config; strings.Join(c.Cmd, " ") != "nginx -g daemon off;" || c.StopSignal != "SIGQUIT" || len(c.ExposedPorts) != 1 {
		t.Fatalf("config: %+v", c)
	}
	dirs, err := s.Unpack(ctx, im)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMerged(dirs)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, p := range []string{"/usr/sbin/nginx", "/bin/sh", "/bin/sed", "/usr/share/nginx/html/index.html", "/etc/nginx/mime.types", "/lib64/ld-linux-x86-64.so.2"} {
		if _, err := m.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	conf, _, err := m.ReadFile("/etc/nginx/nginx.conf", 1<<20)
	if err != nil || !strings.Contains(string(conf), "root /usr/share/nginx/html") {
		t.Errorf("nginx.conf: %v\n%s", err, conf)
	}
}
