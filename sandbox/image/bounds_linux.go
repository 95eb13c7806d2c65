package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Unpack unpacks every layer of the image into the cache, bottom first,
// within the image's bounds: at most MaxLayers layers, and MaxImageBytes of
// file data over all of them, checked while each layer streams in (a layer
// only gets what is left of the budget, so a bomb split into many layers
// stops at the cap, not after it). A refused image leaves none of the
// layers it added in the cache. The layers stay locked (shared) against
// eviction until im.Close; afterwards the cache is trimmed to
// MaxCacheBytes, least recently used layers first.
func (im *Image) Unpack(ctx context.Context, c *Cache) ([]*Unpacked, error) {
	lim := c.Limits
	if n := len(im.layers); n > lim.MaxLayers {
		return nil, fmt.Errorf("%w: image has %d layers (max %d)", ErrLimit, n, lim.MaxLayers)
	}
	var out []*Unpacked
	var held []func()
	ok := false
	defer func() {
		if ok {
			return
		}
		for _, release := range held {
			release()
		}
		for _, u := range out {
			if !u.Hit {
				c.removeIfUnused(u.DiffID)
			}
		}
	}()
	var total int64
	for i, l := range im.layers {
		left := lim.MaxImageBytes - total
		u, release, err := c.use(ctx, l, left)
		if err != nil {
			if errors.Is(err, ErrLimit) && left < lim.MaxTotalBytes {
				err = fmt.Errorf("image larger than %d bytes: %w", lim.MaxImageBytes, err)
			}
			return nil, fmt.Errorf("layer %d of %d: %w", i+1, len(im.layers), err)
		}
		held = append(held, release)
		out = append(out, u)
		if total += u.Meta.Stats.Bytes; total > lim.MaxImageBytes { // a cache hit counts too
			return nil, fmt.Errorf("%w: image larger than %d bytes at layer %d of %d", ErrLimit, lim.MaxImageBytes, i+1, len(im.layers))
		}
	}
	ok = true
	im.cleanup = append(im.cleanup, held...)
	c.Evict(ctx)
	return out, nil
}

// use unpacks (or finds) one layer and takes a shared lock on it, so
// eviction and a refused image's cleanup leave it alone while it is used.
func (c *Cache) use(ctx context.Context, src LayerSource, maxBytes int64) (*Unpacked, func(), error) {
	_, entries, lockPath, err := c.paths(src.DiffID())
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		u, err := c.unpack(ctx, src, maxBytes)
		if err != nil {
			return nil, nil, err
		}
		release, err := flockFile(ctx, lockPath, unix.LOCK_SH)
		if err != nil {
			return nil, nil, err
		}
		if _, ok := c.Lookup(u.DiffID); ok {
			now := time.Now()
			_ = os.Chtimes(entries, now, now) // LRU: last use
			return u, release, nil
		}
		// Evicted between the unpack and the lock: unpack it again.
		release()
		if attempt == 3 {
			return nil, nil, fmt.Errorf("layer %s was evicted %d times while being unpacked", u.DiffID, attempt+1)
		}
	}
}

// removeIfUnused deletes a layer unless someone holds its lock (a grading
// using it, or an unpack in progress) or a mounted overlay has it as a
// lowerdir (a container of `ctlab run -d IMAGE` holds no lock: only its
// mount says the layer is in use). It reports whether it removed it.
func (c *Cache) removeIfUnused(d v1.Hash) bool {
	dir, entries, lockPath, err := c.paths(d)
	if err != nil {
		return false
	}
	if used, err := c.mountedAsLower(d.Hex); err != nil || used {
		return false // unreadable mountinfo: keep it, removal is not urgent
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false
	}
	if err := os.Remove(entries); err != nil && !os.IsNotExist(err) {
		return false
	}
	return c.remove(filepath.Base(dir)) == nil
}

type cachedLayer struct {
	d     v1.Hash
	bytes int64
	used  time.Time
}

// usage lists the cached layers and the sum of their file bytes (apparent
// sizes, as the caps count them).
func (c *Cache) usage() (total int64, layers []cachedLayer, err error) {
	ents, err := os.ReadDir(c.Root)
	if err != nil {
		return 0, nil, fmt.Errorf("list layer cache: %w", err)
	}
	for _, e := range ents {
		hexd, ok := strings.CutSuffix(e.Name(), ".entries")
		if !ok || strings.HasPrefix(hexd, ".") || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(c.Root, e.Name())
		meta, err := readMeta(p)
		if err != nil {
			continue
		}
		st, err := os.Lstat(p)
		if err != nil {
			continue
		}
		layers = append(layers, cachedLayer{d: v1.Hash{Algorithm: "sha256", Hex: hexd}, bytes: meta.Stats.Bytes, used: st.ModTime()})
		total += meta.Stats.Bytes
	}
	return total, layers, nil
}

// Evict removes least recently used layers until the cache holds at most
// MaxCacheBytes. Layers in use (locked) are skipped, so the cache can stay
// above the cap by what running gradings use: each of those is bounded by
// MaxImageBytes.
func (c *Cache) Evict(ctx context.Context) {
	total, layers, err := c.usage()
	if err != nil || total <= c.Limits.MaxCacheBytes {
		return
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].used.Before(layers[j].used) })
	for _, l := range layers {
		if total <= c.Limits.MaxCacheBytes || ctx.Err() != nil {
			return
		}
		if c.removeIfUnused(l.d) {
			total -= l.bytes
		}
	}
}

// mountedAsLower reports whether an overlay in ctlab's mount namespace (the
// host's, where containers' overlays are mounted) names the layer directory
// hexDigest as a lowerdir. The kernel shows lowerdir as given to mount(2):
// absolute, or relative to a common parent when the options did not fit in a
// page (overlay.Mount's fallback). A layer directory's name is its diffID, so
// a relative entry is matched by its last component.
func (c *Cache) mountedAsLower(hexDigest string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mountinfo: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		_, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(post) // fstype source superoptions
		if len(f) < 3 || f[0] != "overlay" {
			continue
		}
		for _, opt := range strings.Split(f[2], ",") {
			lower, ok := strings.CutPrefix(opt, "lowerdir=")
			if !ok {
				continue
			}
			for _, l := range strings.Split(lower, ":") {
				if l == "" || filepath.Base(l) != hexDigest {
					continue
				}
				if !filepath.IsAbs(l) || filepath.Dir(l) == c.Root || filepath.Dir(filepath.Dir(l)) == c.shiftedRoot() {
					return true, nil
				}
			}
		}
	}
	return false, nil
}
