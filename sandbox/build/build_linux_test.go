package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// TestMain: the test binary is also the container init RUN re-executes.
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == AsUserArg { // /.ctlab/ctlab as-user ...
		err := AsUser(os.Args[2:])
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(127)
	}
	os.Exit(m.Run())
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (euid %d)", os.Geteuid())
	}
}

var (
	baseOnce sync.Once
	baseErr  error
	baseB    *image.Build
)

// testEnv is a private store and build cache holding "base:latest": ctlab's
// default rootfs (busybox), made offline.
type testEnv struct {
	store *image.Store
	cache string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	needRoot(t)
	ctx := context.Background()
	baseOnce.Do(func() {
		var dir string
		dir, baseErr = rootfs.Ensure(ctx, "default", filepath.Join(sandbox.DataDir, "rootfs"), rootfs.Owner{})
		if baseErr != nil {
			return
		}
		tmp, _ := os.MkdirTemp("", "ctlab-build-test-")
		// No packages: the base is the rootfs alone (no dpkg needed, so
		// this also runs in the v2 VM).
		baseB, baseErr = image.PackageImport{RootfsDir: dir, TmpDir: tmp}.Import(ctx)
	})
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	cache, err := image.NewCache(t.TempDir(), image.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := image.OpenStore(filepath.Join(t.TempDir(), "images"), cache)
	if err != nil {
		t.Fatal(err)
	}
	img, err := baseB.Image()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, img, []string{"base:latest"}, nil); err != nil {
		t.Fatal(err)
	}
	return &testEnv{store: s, cache: t.TempDir()}
}

// build writes files into a new context and builds it.
func (e *testEnv) build(t *testing.T, files map[string]string, mod func(*Options)) (*Result, string, error) {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	o := Options{Context: dir, Store: e.store, CacheDir: e.cache, Log: &log, Tags: []string{"out:latest"}}
	if mod != nil {
		mod(&o)
	}
	r, err := Build(context.Background(), o)
	return r, log.String(), err
}

// merged opens the image's merged tree.
func (e *testEnv) merged(t *testing.T, ref string) (*image.Image, *image.Merged) {
	t.Helper()
	im, err := e.store.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := e.store.Unpack(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	m, err := image.NewMerged(dirs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return im, m
}

func readFile(t *testing.T, m *image.Merged, p string) string {
	t.Helper()
	b, _, err := m.ReadFile(p, 1<<20)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return string(b)
}

// layerNames lists the tar entries of the image's top layer.
func layerNames(t *testing.T, e *testEnv, ref string, idx int) []string {
	t.Helper()
	img, _, err := e.store.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	rc, err := ls[idx].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
	sort.Strings(out)
	return out
}

func noBuildContainers(t *testing.T) {
	t.Helper()
	cs, _ := sandbox.List()
	for _, c := range cs {
		if strings.HasPrefix(c.Name, "build-") {
			t.Errorf("container %s left behind", c.Name)
		}
	}
	left, _ := filepath.Glob(filepath.Join(sandbox.DataDir, "containers", "build-*"))
	if len(left) > 0 {
		t.Errorf("container dirs left behind: %v", left)
	}
}

// TestBuildLayers: RUN's upperdir becomes the layer, with a whiteout for a
// deleted file and an opaque marker for a replaced directory; COPY honours
// .dockerignore; the config follows ENV/ARG/WORKDIR/USER/EXPOSE/CMD; a
// rebuild is all CACHED and --no-cache runs again.
func TestBuildLayers(t *testing.T) {
	e := newEnv(t)
	df := `ARG GREETING=hello
FROM base:latest
ARG GREETING
ENV APP=/srv/app
RUN mkdir -p $APP/old && echo x > $APP/old/f && echo big > /big && echo $GREETING > /greeting
RUN rm /big && rm -rf $APP/old && mkdir $APP/old && echo new > $APP/old/g
COPY --chmod=0600 site/ ${APP}/site/
COPY *.txt /txt/
WORKDIR $APP
USER 1000:1000
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["./run"]
`
	files := map[string]string{"Dockerfile": df, "site/index.html": "hi", "site/secret.key": "k", "a.txt": "a", "b.txt": "b", ".dockerignore": "site/*.key\n"}
	r, log, err := e.build(t, files, func(o *Options) { o.BuildArgs = map[string]string{"GREETING": "bonjour"} })
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if r.Cached != 0 || !strings.Contains(log, "--> container build-") || !strings.Contains(log, "- /big") {
		t.Fatalf("log:\n%s", log)
	}
	im, m := e.merged(t, "out")
	c := im.Config.Config
	if c.WorkingDir != "/srv/app" || c.User != "1000:1000" || strings.Join(c.Cmd, " ") != "./run" || c.StopSignal != "SIGQUIT" {
		t.Errorf("config: %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || !hasEnv(c.Env, "APP") || hasEnv(c.Env, "GREETING") {
		t.Errorf("config ports/env: %+v %v", c.ExposedPorts, c.Env)
	}
	if got := readFile(t, m, "/greeting"); got != "bonjour\n" {
		t.Errorf("/greeting = %q", got)
	}
	if _, err := m.Stat("/big"); err == nil {
		t.Error("/big still visible")
	}
	if fi, err := m.Stat("/srv/app/site/index.html"); err != nil || fi.Mode.Perm() != 0o600 {
		t.Errorf("site/index.html: %+v %v", fi, err)
	}
	for _, p := range []string{"/srv/app/site/secret.key", "/srv/app/old/f"} {
		if _, err := m.Stat(p); err == nil {
			t.Errorf("%s is in the image", p)
		}
	}
	if readFile(t, m, "/txt/a.txt")+readFile(t, m, "/txt/b.txt") != "ab" {
		t.Error("COPY *.txt")
	}
	n := len(im.Manifest.Layers)
	run2 := strings.Join(layerNames(t, e, "out", n-3), " ")
	if !strings.Contains(run2, ".wh.big") || !strings.Contains(run2, "srv/app/old/.wh..wh..opq") {
		t.Errorf("second RUN's layer: %s", run2)
	}
	r2, log2, err := e.build(t, files, func(o *Options) { o.BuildArgs = map[string]string{"GREETING": "bonjour"} })
	if err != nil || r2.Cached != 4 || strings.Contains(log2, "--> container") {
		t.Errorf("rebuild: cached %v, %v\n%s", r2, err, log2)
	}
	r3, _, err := e.build(t, files, func(o *Options) { o.NoCache = true; o.BuildArgs = map[string]string{"GREETING": "hola"} })
	if err != nil || r3.Cached != 0 {
		t.Errorf("--no-cache: %+v %v", r3, err)
	}
	noBuildContainers(t)
}

// TestBuildMultiStage: COPY --from by name, by index and from an image;
// only the target stage's layers are in the result; --target picks a stage.
func TestBuildMultiStage(t *testing.T) {
	e := newEnv(t)
	df := `FROM base:latest AS builder
RUN mkdir /out && echo artifact > /out/app && chmod 755 /out/app && echo junk > /junk
FROM base:latest
COPY --from=builder /out/app /usr/local/bin/app
COPY --from=0 /out /copy0
COPY --from=base:latest /etc/passwd /from-image
RUN test -x /usr/local/bin/app
`
	_, log, err := e.build(t, map[string]string{"Dockerfile": df}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	im, m := e.merged(t, "out")
	base, _, _ := e.store.Resolve("base")
	bl, _ := base.Layers()
	if got := len(im.Manifest.Layers); got != len(bl)+4 {
		t.Errorf("%d layers, want base %d + 4", got, len(bl))
	}
	if _, err := m.Stat("/junk"); err == nil {
		t.Error("the builder stage's /junk is in the final image")
	}
	if readFile(t, m, "/usr/local/bin/app") != "artifact\n" || readFile(t, m, "/copy0/app") != "artifact\n" {
		t.Error("COPY --from")
	}
	if _, err := m.Stat("/from-image"); err != nil {
		t.Errorf("COPY --from=image: %v", err)
	}
	if _, log, err := e.build(t, map[string]string{"Dockerfile": df}, func(o *Options) { o.Target = "builder" }); err != nil {
		t.Fatalf("--target: %v\n%s", err, log)
	}
	if _, m := e.merged(t, "out"); readFile(t, m, "/junk") != "junk\n" {
		t.Error("--target builder")
	}
}

// TestBuildNetwork: RUN shares the host's network by default and has only
// lo with --network none.
func TestBuildNetwork(t *testing.T) {
	e := newEnv(t)
	df := "FROM base:latest\nRUN ls /sys/class/net > /ifs\n"
	for _, n := range []string{"host", "none"} {
		_, log, err := e.build(t, map[string]string{"Dockerfile": df}, func(o *Options) { o.Network = n; o.NoCache = true })
		if err != nil {
			t.Fatalf("%s: %v\n%s", n, err, log)
		}
		_, m := e.merged(t, "out")
		ifs := strings.Fields(readFile(t, m, "/ifs"))
		var host []string
		ents, _ := os.ReadDir("/sys/class/net")
		for _, e := range ents {
			host = append(host, e.Name())
		}
		sort.Strings(host)
		// Compared with the host's own list (the v2 VM may have only lo;
		// other tests add and remove veths meanwhile, so only "more than lo").
		if n == "none" && strings.Join(ifs, " ") != "lo" || n == "host" && (len(ifs) > 1) != (len(host) > 1) {
			t.Errorf("--network %s: interfaces %v (host: %v)", n, ifs, host)
		}
	}
}

// TestBuildBadInput: each mistake is an *Error with file:line where there
// is one, status 2 (1 for a failing RUN), and no container is left.
func TestBuildBadInput(t *testing.T) {
	e := newEnv(t)
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("s"), 0o644)
	cases := []struct {
		name, df string
		status   int
		want     string
		mod      func(*Options)
	}{
		{"malformed", "FROM base:latest\nENV\n", 2, "Dockerfile:2", nil},
		{"empty run", "FROM base:latest\nRUN\n", 2, "Dockerfile:2", nil},
		{"unknown instruction", "FROM base:latest\nFROBNICATE x\n", 2, "Dockerfile:2", nil},
		{"unknown stage", "FROM base:latest\nCOPY --from=nope /x /y\n", 2, "Dockerfile:2", nil},
		{"unknown target", "FROM base:latest\n", 2, "--target", func(o *Options) { o.Target = "nope" }},
		{"outside context", "FROM base:latest\nCOPY ../secret /s\n", 2, "outside the build context", nil},
		{"symlink out", "FROM base:latest\nCOPY link /s\n", 2, "outside the build context", nil},
		{"missing base", "FROM 127.0.0.1:1/none:latest\n", 2, "Dockerfile:1", nil},
		{"run mount", "FROM base:latest\nRUN --mount=type=cache,target=/c true\n", 2, "Dockerfile:2: RUN --mount", nil},
		{"add url", "FROM base:latest\nADD https://example.com/x /x\n", 2, "Dockerfile:2: ADD https://example.com/x: remote", nil},
		{"onbuild", "FROM base:latest\nONBUILD RUN true\n", 2, "Dockerfile:2: ONBUILD", nil},
		{"failing run", "FROM base:latest\nRUN echo doomed-output; exit 3\n", 1, "exit status 3", nil},
		{"bad tag", "FROM base:latest\n", 2, "-t", func(o *Options) { o.Tags = []string{"Bad Tag"} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"Dockerfile": c.df}
			mod := c.mod
			if c.name == "symlink out" {
				mod = func(o *Options) { os.Symlink(outside, filepath.Join(o.Context, "link")) }
			}
			_, log, err := e.build(t, files, mod)
			var be *Error
			if !errors.As(err, &be) || be.Status != c.status || !strings.Contains(be.Msg, c.want) {
				t.Fatalf("got %v, want status %d with %q\n%s", err, c.status, c.want, log)
			}
			if c.name == "failing run" && !strings.Contains(be.Msg, "doomed-output") {
				t.Errorf("no last lines: %s", be.Msg)
			}
		})
	}
	noBuildContainers(t)
}

// TestBuildUser: RUN after USER runs with the user's ids (resolved in the
// image's passwd), its files belong to it, and /.ctlab stays out of the layer.
func TestBuildUser(t *testing.T) {
	e := newEnv(t)
	df := "FROM base:latest\nUSER nobody\nRUN id -u > /tmp/uid && id -g >> /tmp/uid\nUSER 0\nRUN chown 65534 /tmp && echo root > /tmp/by-root\n"
	_, log, err := e.build(t, map[string]string{"Dockerfile": df}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	im, m := e.merged(t, "out")
	if got := readFile(t, m, "/tmp/uid"); got != "65534\n65534\n" {
		t.Errorf("id -u, id -g as nobody: %q", got)
	}
	if fi, err := m.Lstat("/tmp/uid"); err != nil || fi.UID != 65534 {
		t.Errorf("/tmp/uid owner: %+v %v", fi, err)
	}
	n := len(im.Manifest.Layers)
	if names := strings.Join(layerNames(t, e, "out", n-2), " "); strings.Contains(names, ".ctlab") {
		t.Errorf("the USER step's layer holds /.ctlab: %s", names)
	}
}

// TestPruneCache: after a prune nothing is CACHED.
func TestPruneCache(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"Dockerfile": "FROM base:latest\nRUN echo a > /a\n"}
	if _, log, err := e.build(t, files, nil); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	n, size, err := PruneCache(e.cache)
	if err != nil || n != 1 || size == 0 {
		t.Fatalf("prune: %d layers, %d bytes, %v", n, size, err)
	}
	if r, _, err := e.build(t, files, nil); err != nil || r.Cached != 0 {
		t.Fatalf("after prune: %+v %v", r, err)
	}
}

// TestBuildDockerBase: on a base with Docker media types (docker save,
// docker.io) the new layers are Docker layers too, never a mix.
func TestBuildDockerBase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tar := filepath.Join(t.TempDir(), "base.tar")
	if err := e.store.Save(ctx, []string{"base"}, image.SaveDockerArchive, tar); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Remove(ctx, "base", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Load(ctx, tar, nil); err != nil {
		t.Fatal(err)
	}
	if _, log, err := e.build(t, map[string]string{"Dockerfile": "FROM base:latest\nRUN echo d > /d\n"}, nil); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	im, _ := e.merged(t, "out")
	for i, l := range im.Manifest.Layers {
		if l.MediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
			t.Errorf("layer %d: %s", i, l.MediaType)
		}
	}
}
