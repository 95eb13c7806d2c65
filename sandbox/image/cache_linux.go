package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// DefaultCacheRoot holds one directory per layer diffID. Each directory is a
// ready overlay lowerdir; the parents are 0700 so unprivileged host users
// cannot reach setuid binaries inside (CVE-2021-41103, CVE-2021-41091).
const DefaultCacheRoot = "/var/lib/ctlab/layers"

// Cache unpacks layers once per diffID. Two gradings of images that share
// the nginx base unpack the base only once; concurrent ones wait on a flock.
type Cache struct {
	Root   string
	Limits Limits
}

// NewCache creates root (and missing parents) with mode 0700.
func NewCache(root string, lim Limits) (*Cache, error) {
	if root == "" {
		root = DefaultCacheRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("layer cache path: %w", err)
	}
	if err := mkdirAll0700(root); err != nil {
		return nil, err
	}
	return &Cache{Root: root, Limits: lim.withDefaults()}, nil
}

// mkdirAll0700 creates missing directories 0700 and tightens root itself.
func mkdirAll0700(p string) error {
	if err := os.MkdirAll(p, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if err := os.Chmod(p, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	return nil
}

// LayerSource is one layer as the loader provides it: its claimed diffID and
// a way to open its bytes as stored (compressed or not).
type LayerSource interface {
	DiffID() v1.Hash
	// Open returns the stored bytes and, when the source knows it, the
	// digest those stored bytes must have (nil for docker-save layers that
	// are stored uncompressed: there the diffID is the only claim).
	Open(ctx context.Context) (io.ReadCloser, *v1.Hash, error)
}

// Unpacked is one layer in the cache.
type Unpacked struct {
	DiffID  v1.Hash
	Dir     string // overlay lowerdir
	Hit     bool   // already in the cache
	Meta    LayerMeta
	entries string
}

// LayerMeta is stored as the first line of the entries file.
type LayerMeta struct {
	Version     int   `json:"v"`
	StreamBytes int64 `json:"stream_bytes"` // uncompressed tar size
	Stats       Stats `json:"stats"`
}

func (c *Cache) paths(d v1.Hash) (dir, entries, lock string, err error) {
	if d.Algorithm != "sha256" || len(d.Hex) != 64 {
		return "", "", "", fmt.Errorf("%w: unsupported diffID %q", ErrInvalidLayer, d.String())
	}
	if _, err := hex.DecodeString(d.Hex); err != nil || strings.ToLower(d.Hex) != d.Hex {
		return "", "", "", fmt.Errorf("%w: malformed diffID %q", ErrInvalidLayer, d.String())
	}
	base := filepath.Join(c.Root, d.Hex)
	return base, base + ".entries", base + ".lock", nil
}

// Lookup returns the cached layer without unpacking, or ok=false.
func (c *Cache) Lookup(d v1.Hash) (*Unpacked, bool) {
	dir, entries, _, err := c.paths(d)
	if err != nil {
		return nil, false
	}
	meta, err := readMeta(entries)
	if err != nil {
		return nil, false
	}
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return nil, false
	}
	return &Unpacked{DiffID: d, Dir: dir, Hit: true, Meta: meta, entries: entries}, true
}

// Unpack returns the cached directory for src, unpacking it first if needed:
// into a temp dir next to the final one, digests checked after draining the
// stream, then renamed into place, so a crash or a bad layer never leaves a
// half-unpacked directory under the final name.
func (c *Cache) Unpack(ctx context.Context, src LayerSource) (*Unpacked, error) {
	return c.unpack(ctx, src, c.Limits.MaxTotalBytes)
}

// unpack is Unpack with the layer's file bytes capped at maxBytes (at most
// the per-layer cap): what is left of the image's budget.
func (c *Cache) unpack(ctx context.Context, src LayerSource, maxBytes int64) (*Unpacked, error) {
	d := src.DiffID()
	dir, entries, lockPath, err := c.paths(d)
	if err != nil {
		return nil, err
	}
	if u, ok := c.Lookup(d); ok {
		return u, nil
	}
	unlock, err := lockFile(ctx, lockPath)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if u, ok := c.Lookup(d); ok { // another grader finished while we waited
		return u, nil
	}
	// We hold the lock: temp dirs for this diffID are leftovers of a killed run.
	c.removeStale(d.Hex)
	if _, err := os.Lstat(dir); err == nil {
		if err := c.remove(filepath.Base(dir)); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp(c.Root, ".tmp-"+d.Hex+"-")
	if err != nil {
		return nil, fmt.Errorf("create temp layer dir: %w", err)
	}
	ok := false
	tmpEntries := tmp + ".entries"
	defer func() {
		if !ok {
			_ = c.remove(filepath.Base(tmp))
			_ = os.Remove(tmpEntries)
		}
	}()
	// The layer root becomes "/" of the container: world-traversable like
	// any root dir (the tar's "." entry may still set its own mode).
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("chmod temp layer dir: %w", err)
	}
	lim := c.Limits
	lim.MaxTotalBytes = max(min(maxBytes, lim.MaxTotalBytes), 1)
	meta, err := c.extractVerified(ctx, src, tmp, tmpEntries, lim)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", d.String(), err)
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmpEntries, entries); err != nil {
		return nil, fmt.Errorf("install layer entries: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("install layer dir: %w", err)
	}
	ok = true
	return &Unpacked{DiffID: d, Dir: dir, Meta: meta, entries: entries}, nil
}

func (c *Cache) extractVerified(ctx context.Context, src LayerSource, dir, entriesPath string, lim Limits) (LayerMeta, error) {
	meta := LayerMeta{Version: 1}
	raw, digest, err := src.Open(ctx)
	if err != nil {
		return meta, fmt.Errorf("open layer: %w", err)
	}
	defer raw.Close()
	var rawHash hash.Hash
	var rawR io.Reader = raw
	if digest != nil {
		if digest.Algorithm != "sha256" {
			return meta, fmt.Errorf("%w: unsupported digest algorithm %q", ErrInvalidLayer, digest.Algorithm)
		}
		rawHash = sha256.New()
		rawR = io.TeeReader(raw, rawHash)
	}
	// The uncompressed stream may be a little larger than the files it
	// holds (headers, padding); beyond that it is a bomb.
	streamCap := lim.MaxTotalBytes + int64(lim.MaxEntries)*1536 + 1<<20
	rawCap := &capReader{r: rawR, n: streamCap}
	dec, err := decompress(rawCap)
	if err != nil {
		return meta, err
	}
	defer dec.Close()
	diffHash := sha256.New()
	counted := &capReader{r: dec, n: streamCap}
	tee := io.TeeReader(counted, diffHash)

	ef, err := os.OpenFile(entriesPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_TRUNC, 0o600)
	if err != nil {
		return meta, fmt.Errorf("create entries file: %w", err)
	}
	defer ef.Close()
	bw := bufio.NewWriterSize(ef, 64<<10)
	enc := json.NewEncoder(bw)
	// Placeholder meta line, rewritten below: readers only trust the file
	// after the rename, which happens after the rewrite.
	if _, err := bw.WriteString(strings.Repeat(" ", 255) + "\n"); err != nil {
		return meta, err
	}
	stats, err := Extract(ctx, tee, dir, lim, func(e Entry) error { return enc.Encode(e) })
	if err != nil {
		return meta, err
	}
	// Drain: the tar reader stops at the end-of-archive marker, but the
	// digest covers every byte (ggcr#2303). Trailing garbage changes it.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return meta, fmt.Errorf("drain layer: %w", wrapLimit(err))
	}
	if err := dec.Close(); err != nil {
		return meta, fmt.Errorf("%w: decompress: %w", ErrInvalidLayer, err)
	}
	if _, err := io.Copy(io.Discard, rawCap); err != nil {
		return meta, fmt.Errorf("drain compressed layer: %w", wrapLimit(err))
	}
	want := src.DiffID()
	if got := hex.EncodeToString(diffHash.Sum(nil)); got != want.Hex {
		return meta, fmt.Errorf("%w: uncompressed layer is sha256:%s, config says %s", ErrDigest, got, want)
	}
	if rawHash != nil {
		if got := hex.EncodeToString(rawHash.Sum(nil)); got != digest.Hex {
			return meta, fmt.Errorf("%w: layer blob is sha256:%s, manifest says %s", ErrDigest, got, digest)
		}
	}
	meta.Stats = stats
	meta.StreamBytes = counted.read
	if err := bw.Flush(); err != nil {
		return meta, fmt.Errorf("write entries: %w", err)
	}
	line, err := json.Marshal(meta)
	if err != nil || len(line) > 255 {
		return meta, fmt.Errorf("encode layer meta: %v", err)
	}
	if _, err := ef.WriteAt(line, 0); err != nil {
		return meta, fmt.Errorf("write layer meta: %w", err)
	}
	if err := ef.Sync(); err != nil {
		return meta, fmt.Errorf("sync entries: %w", err)
	}
	return meta, nil
}

func wrapLimit(err error) error {
	if errors.Is(err, errCap) {
		return fmt.Errorf("%w: %w", ErrLimit, err)
	}
	return err
}

var errCap = errors.New("stream larger than the layer size limit")

// capReader fails (instead of truncating) once more than n bytes are read:
// this is what stops a gzip bomb while it is being inflated.
type capReader struct {
	r    io.Reader
	n    int64
	read int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		// Allow detecting a clean EOF exactly at the cap.
		var one [1]byte
		k, err := c.r.Read(one[:])
		if k > 0 {
			return 0, errCap
		}
		return 0, err
	}
	if int64(len(p)) > c.n-c.read {
		p = p[:c.n-c.read]
	}
	k, err := c.r.Read(p)
	c.read += int64(k)
	return k, err
}

type decoder struct {
	io.Reader
	close func() error
}

func (d *decoder) Close() error {
	if d.close == nil {
		return nil
	}
	err := d.close()
	d.close = nil
	return err
}

// decompress sniffs the magic bytes instead of trusting media types:
// docker-save layers are usually plain tar, registries serve gzip, newer
// images zstd. No goroutines: a malformed stream must not leave a reader
// blocked forever (CVE-2021-20291).
func decompress(r io.Reader) (*decoder, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read layer: %w", wrapLimit(err))
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := kgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrInvalidLayer, err)
		}
		return &decoder{Reader: zr, close: zr.Close}, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(64<<20),
			zstd.WithDecoderMaxMemory(1<<40))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %w", ErrInvalidLayer, err)
		}
		return &decoder{Reader: zr, close: func() error { zr.Close(); return nil }}, nil
	default:
		return &decoder{Reader: br}, nil
	}
}

func readMeta(entries string) (LayerMeta, error) {
	var m LayerMeta
	f, err := os.Open(entries)
	if err != nil {
		return m, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 512).ReadString('\n')
	if err != nil {
		return m, fmt.Errorf("read %s: %w", entries, err)
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &m); err != nil || m.Version != 1 {
		return m, fmt.Errorf("bad layer meta in %s", entries)
	}
	return m, nil
}

// Entries streams the entry list recorded when the layer was unpacked.
func (u *Unpacked) Entries(fn func(Entry) error) error {
	f, err := os.Open(u.entries)
	if err != nil {
		return fmt.Errorf("open layer entries: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(f, 64<<10))
	var m LayerMeta
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("read layer meta: %w", err)
	}
	for {
		var e Entry
		if err := dec.Decode(&e); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read layer entries: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// lockFile takes an exclusive flock, polling so the caller's context can
// cancel the wait.
func lockFile(ctx context.Context, p string) (func(), error) {
	return flockFile(ctx, p, unix.LOCK_EX)
}

// flockFile takes a flock of kind how (LOCK_EX or LOCK_SH). A layer in use
// by a grading holds LOCK_SH on its lock file until the image is closed;
// unpacking and removal need LOCK_EX.
func flockFile(ctx context.Context, p string, how int) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for layer lock: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeStale deletes temp dirs and entry files for hex left by a killed run.
func (c *Cache) removeStale(hexDigest string) {
	names, _ := filepath.Glob(filepath.Join(c.Root, ".tmp-"+hexDigest+"-*"))
	for _, n := range names {
		b := filepath.Base(n)
		if strings.HasSuffix(b, ".entries") {
			_ = os.Remove(n)
			continue
		}
		_ = c.remove(b)
	}
}

// remove deletes a direct child of the cache root without following links.
func (c *Cache) remove(name string) error {
	fd, err := unix.Open(c.Root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cache root: %w", err)
	}
	defer unix.Close(fd)
	if err := removeAllAt(fd, name, 0); err != nil {
		return err
	}
	// The layer's id-shifted copies (sandbox's fallback for kernels
	// without idmapped mounts) go with it.
	shifted, _ := filepath.Glob(filepath.Join(c.shiftedRoot(), "*", name))
	for _, p := range shifted {
		if err := os.RemoveAll(p); err != nil { // never follows symlinks
			return fmt.Errorf("remove shifted copy: %w", err)
		}
	}
	return nil
}

// shiftedRoot is where sandbox keeps id-shifted copies of this cache's
// layers, per range: ROOT/../layers-shifted/<base>/<diffid>.
func (c *Cache) shiftedRoot() string {
	return filepath.Join(filepath.Dir(c.Root), "layers-shifted")
}

// Remove deletes one layer from the cache (under its lock).
func (c *Cache) Remove(ctx context.Context, d v1.Hash) error {
	dir, entries, lockPath, err := c.paths(d)
	if err != nil {
		return err
	}
	unlock, err := lockFile(ctx, lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(entries); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove layer entries: %w", err)
	}
	return c.remove(filepath.Base(dir))
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	// syncfs, like containerd's doSyncFs: the rename must not become
	// durable before the files it names.
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
