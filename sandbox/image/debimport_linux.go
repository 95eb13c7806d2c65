package image

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// PackageImport builds a base image offline from Debian packages installed
// on the host: layer 1 is ctlab's default rootfs (a shell and the usual
// tools, standing in for debian:bookworm-slim), layer 2 holds the files dpkg
// lists for the packages (and their siblings built from the same source
// package), the shared libraries their ELF files need, and, for packages
// ctlab knows (nginx), the configuration and metadata of the official image.
type PackageImport struct {
	Packages []string
	// RootfsDir is a built default rootfs (rootfs.Ensure) for layer 1.
	RootfsDir string
	// TmpDir holds the layer tars while the image is written.
	TmpDir string
	// DpkgInfo is dpkg's database directory (default /var/lib/dpkg/info).
	DpkgInfo string
}

// skipPrefixes are package paths an image does not need.
var skipPrefixes = []string{"/usr/share/doc/", "/usr/share/man/", "/usr/share/lintian/", "/usr/share/bug/"}

// Import writes the two layers and returns the image.
func (pi PackageImport) Import(ctx context.Context) (*Build, error) {
	if pi.DpkgInfo == "" {
		pi.DpkgInfo = "/var/lib/dpkg/info"
	}
	pkgs, versions, err := pi.expand(ctx)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(pi.TmpDir, "base.tar")
	if err := writeTar(base, func(lt *layerTar) error { return lt.tree(ctx, pi.RootfsDir) }); err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	var files []string
	for _, p := range pkgs {
		fs, err := pi.listFiles(p)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	sort.Strings(files)
	var elfs []string
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && (st.Mode().Perm()&0o111 != 0 || strings.Contains(path.Base(f), ".so")) {
			elfs = append(elfs, f)
		}
	}
	libs, err := rootfs.ELFDeps(elfs)
	if err != nil {
		return nil, fmt.Errorf("shared libraries: %w", err)
	}
	rec := recipeFor(pkgs, versions)
	pkgTar := filepath.Join(pi.TmpDir, "packages.tar")
	err = writeTar(pkgTar, func(lt *layerTar) error {
		// The recipe's files first: they override the package's.
		if err := rec.files(lt, pi.RootfsDir); err != nil {
			return err
		}
		for _, f := range files {
			if pi.baseHas(f) {
				continue
			}
			if err := lt.host(f, f, false); err != nil {
				return err
			}
		}
		for _, l := range libs {
			if err := lt.host(l, l, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("package layer: %w", err)
	}
	b := &Build{Config: rec.config, Layers: []BuildLayer{
		{TarPath: base, CreatedBy: "ctlab image import-packages: ctlab's default rootfs (busybox)"},
		{TarPath: pkgTar, CreatedBy: "ctlab image import-packages " + strings.Join(pi.Packages, " ") + ": " + strings.Join(pkgs, " ")},
	}}
	for _, h := range rec.history {
		b.Extra = append(b.Extra, ExtraHistory{AfterLayer: 1, CreatedBy: h})
	}
	return b, nil
}

// expand adds, for each package, the installed packages it depends on that
// come from the same source package (nginx -> nginx-common).
func (pi PackageImport) expand(ctx context.Context) ([]string, map[string]string, error) {
	info := map[string][3]string{} // package -> source, version, depends
	query := func(p string) ([3]string, error) {
		if v, ok := info[p]; ok {
			return v, nil
		}
		out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${source:Package}\t${Version}\t${Depends}", p).Output()
		if err != nil || !strings.HasPrefix(string(out), "ii") {
			return [3]string{}, fmt.Errorf("package %q is not installed on this host (dpkg-query -W %s): install it with apt-get first", p, p)
		}
		f := strings.SplitN(string(out), "\t", 4)
		v := [3]string{f[1], f[2], f[3]}
		info[p] = v
		return v, nil
	}
	seen := map[string]bool{}
	var out []string
	versions := map[string]string{}
	var visit func(p string, top bool) error
	visit = func(p string, top bool) error {
		if seen[p] {
			return nil
		}
		v, err := query(p)
		if err != nil {
			if top {
				return err
			}
			return nil
		}
		seen[p] = true
		out = append(out, p)
		versions[p] = v[1]
		for _, alt := range strings.Split(v[2], ",") {
			dep := strings.Fields(strings.Split(alt, "|")[0])
			if len(dep) == 0 {
				continue
			}
			dn := strings.Split(dep[0], ":")[0]
			if dv, err := query(dn); err == nil && dv[0] == v[0] {
				if err := visit(dn, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, p := range pi.Packages {
		if err := visit(p, true); err != nil {
			return nil, nil, err
		}
	}
	return out, versions, nil
}

// baseHas reports whether the package path f is a directory or symlink
// that layer 1 already has: on a merged-/usr host /bin is a symlink to
// usr/bin, which must not replace the base's own /bin.
func (pi PackageImport) baseHas(f string) bool {
	hfi, err := os.Lstat(f)
	if err != nil || !(hfi.IsDir() || hfi.Mode()&os.ModeSymlink != 0) {
		return false
	}
	_, err = os.Lstat(filepath.Join(pi.RootfsDir, f))
	return err == nil
}

// listFiles reads dpkg's file list of package p (plain or :arch-qualified).
func (pi PackageImport) listFiles(p string) ([]string, error) {
	cands, _ := filepath.Glob(filepath.Join(pi.DpkgInfo, p+":*.list"))
	cands = append([]string{filepath.Join(pi.DpkgInfo, p+".list")}, cands...)
	for _, c := range cands {
		f, err := os.Open(c)
		if err != nil {
			continue
		}
		defer f.Close()
		var out []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := sc.Text()
			if l == "/." || l == "" || hasAnyPrefix(l, skipPrefixes) {
				continue
			}
			if _, err := os.Lstat(l); err == nil {
				out = append(out, l)
			}
		}
		return out, sc.Err()
	}
	return nil, fmt.Errorf("no dpkg file list for %s in %s", p, pi.DpkgInfo)
}

func hasAnyPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// layerTar writes one layer: entries in the order given, missing parent
// directories first (root-owned 0755), each path once (later ones win by
// being skipped: callers add overrides first).
type layerTar struct {
	tw   *tar.Writer
	seen map[string]bool
}

func writeTar(out string, fn func(*layerTar) error) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	lt := &layerTar{tw: tar.NewWriter(f), seen: map[string]bool{}}
	if err := fn(lt); err != nil {
		return err
	}
	if err := lt.tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func (lt *layerTar) parents(p string) error {
	d := path.Dir(p)
	if d == "/" || d == "." || lt.seen[d] {
		return nil
	}
	if err := lt.parents(d); err != nil {
		return err
	}
	lt.seen[d] = true
	return lt.tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(d, "/") + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: buildTime})
}

// add writes hdr (Name is an absolute image path) and its body.
func (lt *layerTar) add(hdr *tar.Header, body io.Reader) error {
	p := path.Clean(hdr.Name)
	if lt.seen[p] {
		return nil
	}
	if err := lt.parents(p); err != nil {
		return err
	}
	lt.seen[p] = true
	hdr.Name = strings.TrimPrefix(p, "/")
	if hdr.Typeflag == tar.TypeDir {
		hdr.Name += "/"
	}
	hdr.ModTime = buildTime
	if err := lt.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", p, err)
	}
	if body != nil {
		if _, err := io.CopyN(lt.tw, body, hdr.Size); err != nil {
			return fmt.Errorf("tar %s: %w", p, err)
		}
	}
	return nil
}

// data adds a regular file with the given content.
func (lt *layerTar) data(p string, mode int64, content string) error {
	return lt.add(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(content))}, strings.NewReader(content))
}

// host adds the host file src at image path p, keeping type, mode and
// owner; follow stores a symlink's target content (libraries).
func (lt *layerTar) host(p, src string, follow bool) error {
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	fi, err := stat(src)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	hdr := &tar.Header{Name: p, Mode: TarMode(fi.Mode()), Uid: int(st.Uid), Gid: int(st.Gid)}
	switch {
	case fi.IsDir():
		hdr.Typeflag = tar.TypeDir
		return lt.add(hdr, nil)
	case fi.Mode()&os.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = os.Readlink(src); err != nil {
			return err
		}
		return lt.add(hdr, nil)
	case fi.Mode().IsRegular():
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		return lt.add(hdr, f)
	}
	return nil // devices, fifos and sockets are not package content
}

// TarMode is the tar header mode of m: permission bits plus setuid,
// setgid and sticky.
func TarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// tree adds every entry under dir as the image's root (not dir itself).
func (lt *layerTar) tree(ctx context.Context, dir string) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == rootfs.MetaPath {
			return nil // host-specific build metadata
		}
		return lt.host("/"+filepath.ToSlash(rel), p, false)
	})
}

// recipe is what ctlab knows about a package beyond its files: the
// configuration and metadata of the package's official image.
type recipe struct {
	config  v1.Config
	history []string
	files   func(lt *layerTar, base string) error
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func recipeFor(pkgs []string, versions map[string]string) recipe {
	for _, p := range pkgs {
		if p == "nginx" {
			return nginxRecipe(versions[p])
		}
	}
	return recipe{
		config:  v1.Config{Env: []string{defaultPath}, Cmd: []string{"/bin/sh"}},
		history: []string{`/bin/sh -c #(nop)  CMD ["/bin/sh"]`},
		files:   func(*layerTar, string) error { return nil },
	}
}

// NginxConf is the configuration of the official nginx image, reduced: the
// default site serves /usr/share/nginx/html on port 80, and the logs go to
// the container's stdout and stderr.
const NginxConf = `user nginx;
worker_processes auto;
error_log /var/log/nginx/error.log notice;
pid /var/run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
    server {
        listen 80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html index.htm;
        }
        error_page 500 502 503 504 /50x.html;
        location = /50x.html { root /usr/share/nginx/html; }
    }
}
`

func nginxRecipe(version string) recipe {
	v := strings.SplitN(version, "-", 2)[0]
	return recipe{
		config: v1.Config{
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			Env:          []string{defaultPath, "NGINX_VERSION=" + v},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			StopSignal:   "SIGQUIT",
			Labels:       map[string]string{"maintainer": "NGINX Docker Maintainers <docker-maint@nginx.com>"},
		},
		history: []string{
			"/bin/sh -c #(nop)  ENV NGINX_VERSION=" + v,
			"/bin/sh -c #(nop)  EXPOSE 80",
			"/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT",
			`/bin/sh -c #(nop)  CMD ["nginx" "-g" "daemon off;"]`,
		},
		files: func(lt *layerTar, base string) error {
			passwd, _ := os.ReadFile(filepath.Join(base, "etc/passwd"))
			group, _ := os.ReadFile(filepath.Join(base, "etc/group"))
			for _, f := range []struct{ p, c string }{
				{"/etc/passwd", string(passwd) + "nginx:x:101:101:nginx user:/nonexistent:/bin/false\n"},
				{"/etc/group", string(group) + "nginx:x:101:\n"},
				{"/etc/nginx/nginx.conf", NginxConf},
				{"/usr/share/nginx/html/50x.html", "<html><body><h1>An error occurred.</h1></body></html>\n"},
			} {
				if err := lt.data(f.p, 0o644, f.c); err != nil {
					return err
				}
			}
			for _, d := range []string{"/etc/nginx/conf.d", "/var/cache/nginx", "/var/lib/nginx", "/var/log/nginx", "/run", "/usr/lib/nginx/modules"} {
				if err := lt.add(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}, nil); err != nil {
					return err
				}
			}
			for l, t := range map[string]string{"/var/log/nginx/access.log": "/dev/stdout", "/var/log/nginx/error.log": "/dev/stderr", "/var/run": "/run"} {
				if err := lt.add(&tar.Header{Name: l, Typeflag: tar.TypeSymlink, Linkname: t, Mode: 0o777}, nil); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
