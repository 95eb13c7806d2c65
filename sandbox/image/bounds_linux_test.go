package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// zeroLayer is a gzip layer holding one file of n zero bytes: 64 MiB
// compresses to ~64 KiB, the shape of the layer bomb in issue 12.
func zeroLayer(t testing.TB, name string, n int64) *BytesSource {
	t.Helper()
	var gz bytes.Buffer
	diff := sha256.New()
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	tw := tar.NewWriter(io.MultiWriter(diff, zw))
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: n}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, n); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	return &BytesSource{ID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))}, Data: gz.Bytes()}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// cachedLayers lists the layer dirs and entry files in a cache root.
func cachedLayers(t testing.TB, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			out = append(out, e.Name())
		}
	}
	return out
}

// diskUsage is the allocated size of everything under root.
func diskUsage(root string) int64 {
	var n int64
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		var st syscall.Stat_t
		if err == nil && syscall.Lstat(p, &st) == nil {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// TestLayerBomb: 10 gzip layers of 64 MiB of zeros each against a 256 MiB
// image cap (the 10 x 3 GiB bomb, scaled down), on top of a shared
// one-byte base layer. The image is refused while its fourth bomb layer
// streams in (1 + 3 x 64 MiB leave less than 64 MiB); the layers it added are gone from the
// cache, a layer another image shares stays; disk and memory stay bounded.
func TestLayerBomb(t *testing.T) {
	c := newCanary(t)
	cache, err := NewCache(c.cache, Limits{MaxImageBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	base := &Image{layers: []LayerSource{&BytesSource{ID: sha(mkTar(t, file("etc/os-release", "x"))), Data: mkTar(t, file("etc/os-release", "x"))}}}
	if _, err := base.Unpack(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	base.Close()
	bomb := &Image{layers: []LayerSource{base.layers[0]}}
	for i := 0; i < 10; i++ {
		bomb.layers = append(bomb.layers, zeroLayer(t, fmt.Sprintf("zero%d", i), 64<<20))
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = bomb.Unpack(context.Background(), cache)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "layer 5 of 11") {
		t.Fatalf("want the image cap to stop layer 5 of 11 while it streams in, got %v", err)
	}
	if got := cachedLayers(t, c.cache); len(got) != 2 || !strings.HasPrefix(got[0], base.layers[0].DiffID().Hex) {
		t.Errorf("cache after the refused image: %v, want only the shared base layer", got)
	}
	if du := diskUsage(c.cache); du > 1<<20 {
		t.Errorf("cache uses %d bytes on disk after the refusal", du)
	}
	if grew := after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB while unpacking", grew>>20)
	}
	bomb.Close()
	c.check(t)
}

// TestLayerCount: an image with more layers than MaxLayers is refused
// before any is unpacked.
func TestLayerCount(t *testing.T) {
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{MaxLayers: 3})
	im := &Image{}
	for i := 0; i < 4; i++ {
		d := mkTar(t, file(fmt.Sprintf("f%d", i), "x"))
		im.layers = append(im.layers, &BytesSource{ID: sha(d), Data: d})
	}
	if _, err := im.Unpack(context.Background(), cache); !errors.Is(err, ErrLimit) {
		t.Fatalf("want ErrLimit for 4 layers with MaxLayers 3, got %v", err)
	}
	if got := cachedLayers(t, c.cache); len(got) != 0 {
		t.Errorf("cache holds %v", got)
	}
	c.check(t)
}

// TestCacheLRU: over MaxCacheBytes, the least recently used layer that no
// open image holds is evicted; layers of open images never are.
func TestCacheLRU(t *testing.T) {
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{MaxCacheBytes: 3 << 20})
	img := func(name string) *Image {
		d := mkTar(t, file(name, strings.Repeat("x", 2<<20)))
		return &Image{layers: []LayerSource{&BytesSource{ID: sha(d), Data: d}}}
	}
	a, b := img("a"), img("b")
	has := func(im *Image) bool { _, ok := cache.Lookup(im.layers[0].DiffID()); return ok }
	if _, err := a.Unpack(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	a.Close()
	time.Sleep(20 * time.Millisecond) // distinct last-use times
	if _, err := b.Unpack(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	if has(a) || !has(b) {
		t.Fatalf("after b: a cached %v (want evicted), b cached %v", has(a), has(b))
	}
	// b is still open: unpacking a again must not evict it, even over the cap.
	if _, err := a.Unpack(context.Background(), cache); err != nil {
		t.Fatal(err)
	}
	if !has(a) || !has(b) {
		t.Fatalf("in-use layers evicted: a %v b %v", has(a), has(b))
	}
	b.Close()
	a.Close()
	cache.Evict(context.Background())
	if total, _, _ := cache.usage(); total > 3<<20 {
		t.Errorf("cache holds %d bytes after eviction, cap %d", total, 3<<20)
	}
	c.check(t)
}

// TestCacheEvictSkipsMountedLower: a layer no image holds open but that a
// mounted overlay uses as a lowerdir (the container of `ctlab run -d IMAGE`)
// survives eviction, with its absolute or relative lowerdir name; once the
// overlay is gone, eviction removes it.
func TestCacheEvictSkipsMountedLower(t *testing.T) {
	if b, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(b), "overlay") {
		t.Skip("kernel has no overlay filesystem")
	}
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{MaxCacheBytes: 1 << 20})
	d := mkTar(t, file("big", strings.Repeat("x", 2<<20)))
	im := &Image{layers: []LayerSource{&BytesSource{ID: sha(d), Data: d}}}
	us, err := im.Unpack(context.Background(), cache)
	if err != nil {
		t.Fatal(err)
	}
	im.Close()
	layer := us[0].Dir
	has := func() bool { _, ok := cache.Lookup(us[0].DiffID); return ok }
	merged, empty := t.TempDir(), t.TempDir()
	for _, lower := range []string{layer, filepath.Base(layer)} {
		opts := "lowerdir=" + lower + ":" + empty
		mount := func() error { return unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts) }
		if !filepath.IsAbs(lower) { // relative to the cwd, as overlay.Mount's long-options fallback does
			mount = func() error {
				return inDir(cache.Root, func() error { return unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, opts) })
			}
		}
		if err := mount(); err != nil {
			t.Fatalf("mount overlay %s: %v", opts, err)
		}
		cache.Evict(context.Background())
		inUse := has()
		if err := unix.Unmount(merged, 0); err != nil {
			t.Fatal(err)
		}
		if !inUse {
			t.Fatalf("layer %s was evicted while mounted as lowerdir %s", layer, lower)
		}
	}
	cache.Evict(context.Background())
	if has() {
		t.Errorf("layer %s not evicted after its overlay was unmounted", layer)
	}
	c.check(t)
}

// inDir runs fn from dir on a locked thread with its own cwd.
func inDir(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// TestSparseKeptSparse: a PAX sparse entry of 1 GiB apparent size with one
// byte of data unpacks into a sparse file (a few blocks on disk) with the
// right size and content; its apparent size still counts against the caps.
func TestSparseKeptSparse(t *testing.T) {
	const size = 1 << 30
	data := sparseTar("big", size)

	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{MaxFileBytes: 2 << 30, MaxTotalBytes: 2 << 30})
	u, err := cache.Unpack(context.Background(), &BytesSource{ID: sha(data), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(u.Dir, "big"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size || st.Blocks*512 > 1<<20 {
		t.Errorf("big: size %d, %d bytes allocated; want %d apparent and a sparse file", st.Size, st.Blocks*512, size)
	}
	if u.Meta.Stats.Bytes != size {
		t.Errorf("counted %d bytes, want the apparent size %d", u.Meta.Stats.Bytes, size)
	}
	f, _ := os.Open(filepath.Join(u.Dir, "big"))
	last := make([]byte, 2)
	f.ReadAt(last, size-2)
	f.Close()
	if string(last) != "\x00x" {
		t.Errorf("tail %q", last)
	}
	c.check(t)
}

// openWithin runs Open with a deadline: a FIFO must fail, not hang.
func openWithin(t *testing.T, ref string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		im, err := Open(context.Background(), ref)
		if err == nil {
			im.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Open(%s) still blocked after 10 s", ref)
		return nil
	}
}

// TestLayoutIndexNotRegular: an OCI layout whose index.json is a symlink to
// /dev/zero, a FIFO, or a symlink to a host file is refused at once,
// without reading it (or blocking on it).
func TestLayoutIndexNotRegular(t *testing.T) {
	b := testBuild(t)
	for _, tc := range []struct {
		name string
		make func(p string) error
	}{
		{"devzero", func(p string) error { return os.Symlink("/dev/zero", p) }},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"hostfile", func(p string) error { return os.Symlink("/etc/passwd", p) }},
		{"dir", func(p string) error { return os.Mkdir(p, 0o755) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			if err := b.WriteOCILayout(dir); err != nil {
				t.Fatal(err)
			}
			idx := filepath.Join(dir, "index.json")
			os.Remove(idx)
			if err := tc.make(idx); err != nil {
				t.Fatal(err)
			}
			if err := openWithin(t, dir); !errors.Is(err, ErrInvalidLayer) {
				t.Errorf("want ErrInvalidLayer, got %v", err)
			}
		})
	}
}

// TestLayoutBlobSymlink: a manifest or layer blob that is a symlink (to a
// host file or a FIFO) is refused too.
func TestLayoutBlobSymlink(t *testing.T) {
	b := testBuild(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := b.WriteOCILayout(dir); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs/sha256/*"))
	for _, p := range blobs {
		moved := p + ".real"
		os.Rename(p, moved)
		os.Symlink(moved, p)
	}
	c := newCanary(t)
	cache, _ := NewCache(c.cache, Limits{})
	err := openWithin(t, dir)
	if err == nil {
		im, _ := Open(context.Background(), dir)
		_, err = im.Unpack(context.Background(), cache)
		im.Close()
	}
	if !errors.Is(err, ErrInvalidLayer) {
		t.Errorf("symlinked blobs: want ErrInvalidLayer, got %v", err)
	}
	c.check(t)
}

// dockerSave writes a docker-save tar with the given extra entries and a
// manifest.json naming config as the config.
func dockerSave(t *testing.T, config string, entries ...te) string {
	t.Helper()
	m, _ := json.Marshal([]map[string]any{{"Config": config, "RepoTags": nil, "Layers": []string{"l/layer.tar"}}})
	all := append([]te{file("manifest.json", string(m))}, entries...)
	p := filepath.Join(t.TempDir(), "save.tar")
	if err := os.WriteFile(p, mkTar(t, all...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDockerSaveConfigBounded: a docker-save config whose name does not end
// in .json is size-checked from its tar header before it is read (the
// heap does not grow by its size); a config that is a symlink or missing is
// refused.
func TestDockerSaveConfigBounded(t *testing.T) {
	huge := dockerSave(t, "cfg", te{name: "cfg", typ: tar.TypeReg, body: strings.Repeat(" ", 32<<20), mode: 0o644})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := openWithin(t, huge)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) {
		t.Errorf("32 MiB config: want ErrLimit, got %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("opening allocated %d MiB: the config was read", alloc>>20)
	}
	link := dockerSave(t, "cfg", symlink("cfg", "/etc/passwd"))
	if err := openWithin(t, link); !errors.Is(err, ErrInvalidLayer) {
		t.Errorf("symlinked config: want ErrInvalidLayer, got %v", err)
	}
	if err := openWithin(t, dockerSave(t, "missing")); !errors.Is(err, ErrInvalidLayer) {
		t.Errorf("missing config: want ErrInvalidLayer, got %v", err)
	}
}

// TestSubmissionNotRegular: the submitted file itself may be a FIFO or a
// link to /dev/zero (a class's submissions directory is untrusted too).
func TestSubmissionNotRegular(t *testing.T) {
	d := t.TempDir()
	fifo := filepath.Join(d, "fifo.tar")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(d, "zero.tar")
	os.Symlink("/dev/zero", zero)
	for _, ref := range []string{fifo, zero, "docker-archive:" + fifo, "oci-archive:" + zero} {
		if err := openWithin(t, ref); err == nil {
			t.Errorf("%s opened", ref)
		}
	}
}
