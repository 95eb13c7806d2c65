package grade

// Test images built offline, at test time, from Debian's nginx package:
// an "nginx:latest"-like base (binary, ELF libraries, config, default page,
// docker-style history) plus student layers on top, written as docker-save
// tars and OCI layouts into t.TempDir(). Nothing here is committed.

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ctlab/ctlab/sandbox/image"
)

// lentry is one file of a layer being built.
type lentry struct {
	path string // absolute path in the image
	typ  byte
	mode int64
	data []byte
	src  string // host file to copy instead of data
	link string
}

func writeLayer(t testing.TB, out string, entries []lentry) string {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	mt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]bool{}
	var addDirs func(p string)
	addDirs = func(p string) {
		d := path.Dir(p)
		if d == "/" || d == "." || dirs[d] {
			return
		}
		addDirs(d)
		dirs[d] = true
		tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt})
	}
	for _, e := range entries {
		addDirs(e.path)
		name := strings.TrimPrefix(e.path, "/")
		h := &tar.Header{Name: name, Typeflag: e.typ, Mode: e.mode, ModTime: mt, Linkname: e.link}
		switch e.typ {
		case tar.TypeDir:
			if dirs[e.path] {
				continue
			}
			dirs[e.path] = true
			h.Name += "/"
		case tar.TypeReg:
			if e.src != "" {
				b, err := os.ReadFile(e.src)
				if err != nil {
					t.Fatal(err)
				}
				e.data = b
			}
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func reg(p string, mode int64, data string) lentry {
	return lentry{path: p, typ: tar.TypeReg, mode: mode, data: []byte(data)}
}

// nginxSource finds nginx's files: the host's installed package, or the
// .deb files fetched with `apt-get download` into a cache directory.
type nginxSource struct {
	root string // a tree containing usr/sbin/nginx and usr/share/nginx/html/index.html
	why  string
}

var (
	nginxOnce sync.Once
	nginxSrc  nginxSource
)

func findNginx() nginxSource {
	nginxOnce.Do(func() {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			if _, err := os.Stat("/usr/share/nginx/html/index.html"); err == nil {
				nginxSrc = nginxSource{root: "/"}
				return
			}
		}
		cache := filepath.Join(os.TempDir(), "ctlab-test-nginx")
		if home, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(home, "ctlab-test", "debs")
		}
		tree := filepath.Join(cache, "tree")
		if _, err := os.Stat(filepath.Join(tree, "usr/sbin/nginx")); err == nil {
			nginxSrc = nginxSource{root: tree}
			return
		}
		if err := os.MkdirAll(cache, 0o755); err != nil {
			nginxSrc.why = err.Error()
			return
		}
		debs, _ := filepath.Glob(filepath.Join(cache, "nginx*.deb"))
		if len(debs) < 2 {
			cmd := exec.Command("apt-get", "download", "nginx", "nginx-common")
			cmd.Dir = cache
			if out, err := cmd.CombinedOutput(); err != nil {
				nginxSrc.why = fmt.Sprintf("nginx is not installed and `apt-get download nginx nginx-common` failed: %v: %s", err, out)
				return
			}
			debs, _ = filepath.Glob(filepath.Join(cache, "nginx*.deb"))
		}
		tmp := tree + ".tmp"
		os.RemoveAll(tmp)
		for _, d := range debs {
			if out, err := exec.Command("dpkg-deb", "-x", d, tmp).CombinedOutput(); err != nil {
				nginxSrc.why = fmt.Sprintf("dpkg-deb -x %s: %v: %s", d, err, out)
				return
			}
		}
		if err := os.Rename(tmp, tree); err != nil {
			nginxSrc.why = err.Error()
			return
		}
		nginxSrc = nginxSource{root: tree}
	})
	return nginxSrc
}

var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// elfDeps returns host paths of the interpreter and every shared library
// bin needs (transitively), keyed by the path they must have in the image.
func elfDeps(bin string) (map[string]string, error) {
	out := map[string]string{}
	queue := []string{bin}
	seen := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		f, err := elf.Open(p)
		if err != nil {
			return nil, err
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				b, _ := io.ReadAll(prog.Open())
				interp := strings.TrimRight(string(b), "\x00")
				out[interp] = interp
			}
		}
		libs, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, l := range libs {
			found := ""
			for _, d := range libDirs {
				if _, err := os.Stat(filepath.Join(d, l)); err == nil {
					found = filepath.Join(d, l)
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("library %s (needed by %s) not found on this host", l, p)
			}
			out["/lib/x86_64-linux-gnu/"+l] = found
			queue = append(queue, found)
		}
	}
	return out, nil
}

const nginxConf = `user nginx;
worker_processes 1;
error_log /var/log/nginx/error.log notice;
pid /run/nginx.pid;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    server {
        listen 80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html index.htm;
        }
        error_page 500 502 503 504 /50x.html;
    }
}
`

// baseImage builds the "nginx:latest" stand-in and returns its Build.
func baseImage(t testing.TB, dir string) *image.Build {
	t.Helper()
	src := findNginx()
	if src.root == "" {
		t.Skipf("no nginx files: %s", src.why)
	}
	nginxBin := filepath.Join(src.root, "usr/sbin/nginx")
	deps, err := elfDeps(nginxBin)
	if err != nil {
		t.Skipf("cannot collect nginx's libraries: %v", err)
	}
	var os0 []lentry
	paths := make([]string, 0, len(deps))
	for p := range deps {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(deps[p])
		if err != nil {
			t.Fatal(err)
		}
		os0 = append(os0, lentry{path: p, typ: tar.TypeReg, mode: 0o755, src: real})
	}
	os0 = append(os0,
		reg("/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx user:/nonexistent:/bin/false\n"),
		reg("/etc/group", 0o644, "root:x:0:\nnginx:x:101:\n"),
		reg("/etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nhosts: files\n"),
		reg("/etc/os-release", 0o644, "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
		lentry{path: "/tmp", typ: tar.TypeDir, mode: 0o1777},
		lentry{path: "/run", typ: tar.TypeDir, mode: 0o755},
		lentry{path: "/root", typ: tar.TypeDir, mode: 0o700},
	)
	index, err := os.ReadFile(filepath.Join(src.root, "usr/share/nginx/html/index.html"))
	if err != nil || !strings.Contains(string(index), "Welcome to nginx") {
		t.Skipf("Debian's default page is missing or changed: %v", err)
	}
	mime := filepath.Join(src.root, "etc/nginx/mime.types")
	ngx := []lentry{
		{path: "/usr/sbin/nginx", typ: tar.TypeReg, mode: 0o755, src: nginxBin},
		reg("/etc/nginx/nginx.conf", 0o644, nginxConf),
		{path: "/etc/nginx/mime.types", typ: tar.TypeReg, mode: 0o644, src: mime},
		{path: "/usr/share/nginx/html/index.html", typ: tar.TypeReg, mode: 0o644, data: index},
		reg("/usr/share/nginx/html/50x.html", 0o644, "<html><body><h1>An error occurred.</h1></body></html>\n"),
		{path: "/var/log/nginx", typ: tar.TypeDir, mode: 0o755},
		{path: "/var/lib/nginx", typ: tar.TypeDir, mode: 0o755},
		{path: "/var/cache/nginx", typ: tar.TypeDir, mode: 0o755},
		{path: "/usr/lib/nginx/modules", typ: tar.TypeDir, mode: 0o755},
	}
	return &image.Build{
		Config: v1.Config{
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.22.1"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			StopSignal:   "SIGQUIT",
			Labels:       map[string]string{"maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>"},
		},
		Layers: []image.BuildLayer{
			{TarPath: writeLayer(t, filepath.Join(dir, "os.tar"), os0), CreatedBy: "/bin/sh -c #(nop) ADD file:bookworm-slim-rootfs in / "},
			{TarPath: writeLayer(t, filepath.Join(dir, "nginx.tar"), ngx), CreatedBy: "/bin/sh -c set -x && apt-get install --no-install-recommends -y nginx=1.22.1"},
		},
		Extra: []image.ExtraHistory{
			{AfterLayer: 0, CreatedBy: `/bin/sh -c #(nop)  CMD ["bash"]`},
			{AfterLayer: 0, CreatedBy: "/bin/sh -c #(nop)  ENV NGINX_VERSION=1.22.1"},
			{AfterLayer: 1, CreatedBy: "/bin/sh -c #(nop)  EXPOSE 80"},
			{AfterLayer: 1, CreatedBy: "/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT"},
			{AfterLayer: 1, CreatedBy: `/bin/sh -c #(nop)  CMD ["nginx" "-g" "daemon off;"]`},
		},
	}
}

// submission is one test image and what the grader must say about it.
type submission struct {
	name   string
	build  func(t testing.TB, dir string, base *image.Build) *image.Build
	expect map[string]Status // criterion id -> status
}

// studentLayer appends one layer (and its history) to a copy of base.
func studentLayer(t testing.TB, dir string, base *image.Build, file, createdBy string, entries ...lentry) *image.Build {
	b := *base
	b.Layers = append(append([]image.BuildLayer{}, base.Layers...), image.BuildLayer{TarPath: writeLayer(t, filepath.Join(dir, file), entries), CreatedBy: createdBy})
	b.Extra = append([]image.ExtraHistory{}, base.Extra...)
	return &b
}

func welcomePage(t testing.TB) string {
	b, err := os.ReadFile(filepath.Join(findNginx().root, "usr/share/nginx/html/index.html"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	nginxImage  = "nginx-image"
	helloPage   = "hello-page"
	servesHello = "serves-hello"
)

func submissions() []submission {
	return []submission{
		{"run-sed", func(t testing.TB, dir string, base *image.Build) *image.Build {
			page := strings.ReplaceAll(welcomePage(t), "Welcome to nginx", "Hello World")
			return studentLayer(t, dir, base, "sed.tar", `RUN /bin/sh -c sed -i 's/Welcome to nginx/Hello World/g' /usr/share/nginx/html/index.html`,
				reg("/usr/share/nginx/html/index.html", 0o644, page))
		}, map[string]Status{nginxImage: Pass, helloPage: Pass, servesHello: Pass}},
		{"copy-page", func(t testing.TB, dir string, base *image.Build) *image.Build {
			return studentLayer(t, dir, base, "copy.tar", "COPY index.html /usr/share/nginx/html/index.html # buildkit",
				reg("/usr/share/nginx/html/index.html", 0o644, "<!DOCTYPE html><html><body><h1>Hello World</h1></body></html>\n"))
		}, map[string]Status{nginxImage: Pass, helloPage: Pass, servesHello: Pass}},
		{"opaque-dir", func(t testing.TB, dir string, base *image.Build) *image.Build {
			return studentLayer(t, dir, base, "opaque.tar", `RUN /bin/sh -c rm -rf /usr/share/nginx/html && mkdir -p /usr/share/nginx/html && echo '<h1>Hello World</h1>' > /usr/share/nginx/html/index.html`,
				lentry{path: "/usr/share/nginx/html", typ: tar.TypeDir, mode: 0o755},
				reg("/usr/share/nginx/html/.wh..wh..opq", 0o644, ""),
				reg("/usr/share/nginx/html/index.html", 0o644, "<h1>Hello World</h1>\n"))
		}, map[string]Status{nginxImage: Pass, helloPage: Pass, servesHello: Pass}},
		{"base-untouched", func(t testing.TB, dir string, base *image.Build) *image.Build {
			return base
		}, map[string]Status{nginxImage: Pass, helloPage: Fail, servesHello: Fail}},
		{"page-deleted", func(t testing.TB, dir string, base *image.Build) *image.Build {
			return studentLayer(t, dir, base, "deleted.tar", "RUN /bin/sh -c rm /usr/share/nginx/html/index.html",
				reg("/usr/share/nginx/html/.wh.index.html", 0o644, ""))
		}, map[string]Status{nginxImage: Pass, helloPage: Fail, servesHello: Fail}},
		{"wrong-file", func(t testing.TB, dir string, base *image.Build) *image.Build {
			return studentLayer(t, dir, base, "wrong.tar", "RUN /bin/sh -c echo Hello World > /usr/share/nginx/html/hello.html",
				reg("/usr/share/nginx/html/hello.html", 0o644, "Hello World\n"))
		}, map[string]Status{nginxImage: Pass, helloPage: Fail, servesHello: Fail}},
		{"never-listens", func(t testing.TB, dir string, base *image.Build) *image.Build {
			page := strings.ReplaceAll(welcomePage(t), "Welcome to nginx", "Hello World")
			conf := strings.Replace(nginxConf, "listen 80;", "listen 8080;", 1)
			b := studentLayer(t, dir, base, "nolisten.tar", `RUN /bin/sh -c sed -i 's/Welcome to nginx/Hello World/g' /usr/share/nginx/html/index.html && sed 's/listen 80/listen 8080/' /etc/nginx/nginx.conf > /etc/nginx/nolisten.conf`,
				reg("/usr/share/nginx/html/index.html", 0o644, page), reg("/etc/nginx/nolisten.conf", 0o644, conf))
			b.Config.Cmd = []string{"nginx", "-g", "daemon off;", "-c", "/etc/nginx/nolisten.conf"}
			b.Extra = append(b.Extra, image.ExtraHistory{AfterLayer: len(b.Layers) - 1, CreatedBy: `/bin/sh -c #(nop)  CMD ["nginx" "-g" "daemon off;" "-c" "/etc/nginx/nolisten.conf"]`})
			return b
		}, map[string]Status{nginxImage: Pass, helloPage: Pass, servesHello: Fail}},
	}
}

// writeImage writes b in the given form and returns the path to grade.
func writeImage(t testing.TB, b *image.Build, dir, name string, f image.Format) string {
	t.Helper()
	var p string
	var err error
	switch f {
	case image.FormatDockerArchive:
		p = filepath.Join(dir, name+".tar")
		err = b.WriteDockerArchive(p)
	case image.FormatOCILayout:
		p = filepath.Join(dir, name+".oci")
		err = b.WriteOCILayout(p)
	case image.FormatOCIArchive:
		p = filepath.Join(dir, name+".oci.tar")
		err = b.WriteOCIArchive(p)
	default:
		err = errors.New("unknown format")
	}
	if err != nil {
		t.Fatalf("write %s %s: %v", name, f, err)
	}
	return p
}

// bigLayer writes n MiB of incompressible files (a stand-in for the ~140 MB
// of a real nginx image's Debian userland) as one layer, streamed so the
// test process itself stays small.
func bigLayer(t testing.TB, out string, mib int) string {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	rng := rand.New(rand.NewSource(1))
	data := make([]byte, 256<<10)
	for i := 0; i < mib*4; i++ {
		if i%50 == 0 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/lib/bulk/d%02d/", i/50), Typeflag: tar.TypeDir, Mode: 0o755})
		}
		rng.Read(data)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/lib/bulk/d%02d/f%04d.so", i/50, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
