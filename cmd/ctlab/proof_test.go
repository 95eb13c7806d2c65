package main

// Proof with the real tools: what ctlab builds and saves is read by skopeo,
// unpacked by umoci, loaded and served by podman, and equals what buildah
// builds from the same Dockerfile on the same base.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (make deps installs it)", name)
	}
	return p
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildahEnv is a private buildah/podman storage, removed at the end.
type buildahEnv struct{ root, runroot string }

func newBuildah(t testing.TB) *buildahEnv {
	t.Helper()
	d := t.TempDir()
	e := &buildahEnv{root: filepath.Join(d, "root"), runroot: filepath.Join(d, "run")}
	t.Cleanup(func() {
		exec.Command("buildah", e.args("rm", "--all")...).Run()
		exec.Command("podman", e.args("rm", "-af")...).Run()
		exec.Command("podman", e.args("rmi", "-af")...).Run()
		exec.Command("umount", "-R", e.root).Run()
	})
	return e
}

func (e *buildahEnv) args(a ...string) []string {
	return append([]string{"--root", e.root, "--runroot", e.runroot, "--storage-driver", "overlay"}, a...)
}

// baseFor saves the ctlab base and pulls it into buildah's storage under
// the same name (localhost/..., so neither tool looks for a registry).
func (e *buildahEnv) baseFor(t testing.TB, base, name string) {
	t.Helper()
	ctlOK2(t, "tag", base, name)
	tar := filepath.Join(t.TempDir(), "base.tar")
	ctlOK2(t, "save", "-o", tar, name)
	run(t, "buildah", e.args("pull", "docker-archive:"+tar)...)
	run(t, "buildah", e.args("tag", strings.TrimPrefix(name, "localhost/"), name)...)
}

func ctlOK2(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ctl(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctlab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fsEntry describes one path of an unpacked rootfs, timestamps aside.
type fsEntry struct {
	Type     string
	Mode     os.FileMode
	UID, GID uint32
	Content  string // sha256 of a file, target of a symlink
}

func snapshotRootfs(t testing.TB, root string) map[string]fsEntry {
	t.Helper()
	out := map[string]fsEntry{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		e := fsEntry{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid}
		switch {
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode()&os.ModeSymlink != 0:
			e.Type = "symlink"
			e.Content, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			e.Type = "file"
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			e.Content = hex.EncodeToString(h.Sum(nil))
		default:
			e.Type = fmt.Sprintf("other(%v)", fi.Mode().Type())
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unpackOCI unpacks DIR:latest with umoci and returns the rootfs snapshot
// and the config.
func unpackOCI(t testing.TB, dir string) (map[string]fsEntry, map[string]any) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, "umoci", "unpack", "--image", dir+":latest", bundle)
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	img, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	cfg := map[string]any{"Entrypoint": c.Entrypoint, "Cmd": c.Cmd, "Env": c.Env, "WorkingDir": c.WorkingDir, "User": c.User, "ExposedPorts": c.ExposedPorts}
	return snapshotRootfs(t, filepath.Join(bundle, "rootfs")), cfg
}

var proofDockerfiles = map[string]string{
	"homework": `FROM localhost/ctlab-proof-base:latest
RUN sed -i 's/Welcome to nginx/Hello World/g' /usr/share/nginx/html/index.html
`,
	"whiteouts": `FROM localhost/ctlab-proof-base:latest
RUN rm /usr/share/nginx/html/50x.html && rm -rf /etc/nginx/conf.d && mkdir /etc/nginx/conf.d && echo 'server_tokens off;' > /etc/nginx/conf.d/tokens.conf
RUN rm -rf /var/cache/nginx
`,
	"config": `ARG PORT=8080
FROM localhost/ctlab-proof-base:latest
ARG PORT
ARG GREETING=hello
ENV APP_HOME=/srv/app APP_PORT=$PORT
WORKDIR $APP_HOME
COPY page.html ./
COPY --chown=101:101 --chmod=0640 page.html ${APP_HOME}/private.html
RUN echo "$GREETING on $APP_PORT" > greeting.txt && mkdir -p data && chown 101:101 data
EXPOSE $PORT 9090/udp
USER nginx
RUN id -u > /tmp/uid.txt && id -gn >> /tmp/uid.txt
ENTRYPOINT ["nginx"]
CMD ["-g", "daemon off;"]
`,
	"multistage": `FROM localhost/ctlab-proof-base:latest AS build
RUN mkdir -p /out && echo built > /out/artifact && chmod 0755 /out/artifact
FROM localhost/ctlab-proof-base:latest
COPY --from=0 /out/artifact /usr/local/bin/artifact
COPY --from=build /out /opt/out
COPY --from=localhost/ctlab-proof-base:latest /etc/nginx/mime.types /opt/mime.types
`,
}

// TestSameAsBuildah builds each Dockerfile with ctlab and with buildah on
// the same base and compares the unpacked root filesystems and configs.
func TestSameAsBuildah(t *testing.T) {
	base := nginxBase(t)
	needTool(t, "buildah")
	needTool(t, "umoci")
	e := newBuildah(t)
	e.baseFor(t, base, "localhost/ctlab-proof-base:latest")
	defer ctl("rmi", "localhost/ctlab-proof-base:latest").Run()
	for name, df := range proofDockerfiles {
		t.Run(name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": df, "page.html": "<h1>Hello World</h1>\n"})
			tag := "localhost/ctlab-proof-" + name + ":latest"
			ctlOK2(t, "build", "-t", tag, dir)
			defer ctl("rmi", tag).Run()
			ours := filepath.Join(t.TempDir(), "ctlab-oci")
			ctlOK2(t, "save", "--format", "oci-dir", "-o", ours, tag)
			run(t, "buildah", e.args("bud", "--layers=false", "--runtime", "runc", "--isolation", "oci", "-t", tag, dir)...)
			theirs := filepath.Join(t.TempDir(), "buildah-oci")
			run(t, "buildah", e.args("push", tag, "oci:"+theirs+":latest")...)
			a, ac := unpackOCI(t, ours)
			b, bc := unpackOCI(t, theirs)
			compareTrees(t, a, b)
			for k := range ac {
				if !reflect.DeepEqual(fmt.Sprint(ac[k]), fmt.Sprint(bc[k])) {
					t.Errorf("config %s: ctlab %v, buildah %v", k, ac[k], bc[k])
				}
			}
		})
	}
}

// buildahOnly are paths buildah's RUN leaves as mount points of its own
// (bind-mounted resolv.conf, .containerenv); nothing of the Dockerfile.
var buildahOnly = map[string]bool{"run/.containerenv": true, "etc/resolv.conf": true}

func compareTrees(t *testing.T, a, b map[string]fsEntry) {
	t.Helper()
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		ea, oka := a[k]
		eb, okb := b[k]
		if buildahOnly[k] && !oka {
			continue
		}
		if oka != okb || ea != eb {
			bad++
			if bad <= 20 {
				t.Errorf("%s: ctlab %+v (present %v), buildah %+v (present %v)", k, ea, oka, eb, okb)
			}
		}
	}
	if bad > 20 {
		t.Errorf("... %d differences in all", bad)
	}
}

// TestRealToolsReadSave: skopeo reads ctlab's docker-archive, umoci unpacks
// its OCI form, podman loads the archive and serves the same page.
func TestRealToolsReadSave(t *testing.T) {
	base := nginxBase(t)
	needTool(t, "skopeo")
	needTool(t, "podman")
	dir := writeContext(t, map[string]string{"Dockerfile": strings.Replace(homeworkDockerfile, "%s", base, 1)})
	const tag = "ctlab-test/podman-hello:latest"
	ctlOK2(t, "build", "-t", tag, dir)
	defer ctl("rmi", tag).Run()
	tar := filepath.Join(t.TempDir(), "hello.tar")
	ctlOK2(t, "save", "-o", tar, tag)
	var insp struct {
		Layers []string
		Env    []string
	}
	if err := json.Unmarshal([]byte(run(t, "skopeo", "inspect", "docker-archive:"+tar)), &insp); err != nil || len(insp.Layers) != 3 {
		t.Fatalf("skopeo inspect: %v %+v", err, insp)
	}
	oci := filepath.Join(t.TempDir(), "oci")
	ctlOK2(t, "save", "--format", "oci-dir", "-o", oci, tag)
	rootfs, _ := unpackOCI(t, oci)
	if _, ok := rootfs["usr/sbin/nginx"]; !ok {
		t.Fatal("umoci's rootfs has no usr/sbin/nginx")
	}
	e := newBuildah(t)
	run(t, "podman", e.args("load", "-i", tar)...)
	run(t, "podman", e.args("run", "-d", "--name", "ctlab-proof", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "localhost/"+tag)...)
	ip := strings.TrimSpace(run(t, "podman", e.args("inspect", "ctlab-proof", "--format", "{{.NetworkSettings.IPAddress}}")...))
	var body string
	for i := 0; i < 50 && !strings.Contains(body, "Hello World"); i++ {
		time.Sleep(100 * time.Millisecond)
		if r, err := http.Get("http://" + ip + "/"); err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			body = string(b)
		}
	}
	if !strings.Contains(body, "Hello World") {
		t.Fatalf("podman run of ctlab's image: GET http://%s/ = %q", ip, body)
	}
}
