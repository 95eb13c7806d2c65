// Package image loads container images (docker-save, OCI layout, oci-archive, registry, daemon), verifies them and unpacks their layers safely into a per-diffID cache of overlay lowerdirs.
package image

import (
	"errors"
	"time"
)

// Limits bound what one layer, one image and the layer cache may cost. An image is untrusted input: a
// 10 MB gzip can expand to 100 GB, a tar can hold a million empty files, a
// sparse entry can claim a 1 TiB size. Every cap is checked while the stream
// is read, so an oversized layer is aborted early and its temp dir removed.
type Limits struct {
	MaxTotalBytes int64         // sum of file sizes (apparent, so sparse files count fully)
	MaxFileBytes  int64         // one file
	MaxEntries    int           // tar headers, including directories and whiteouts
	MaxPathLen    int           // bytes in a cleaned entry name (PATH_MAX)
	MaxDepth      int           // path components in one name
	MaxXattrs     int           // xattrs kept per entry
	MaxXattrBytes int           // one xattr value
	MaxDuration   time.Duration // wall time for one layer (0: only the caller's context)

	// Per image and for the cache as a whole (Image.Unpack): a bomb split
	// over many layers, each under the per-layer caps, is still one image.
	MaxImageBytes int64 // sum of the file sizes of all of an image's layers (apparent sizes)
	MaxLayers     int   // layers in one image
	MaxCacheBytes int64 // the layer cache; least recently used layers beyond it are evicted
}

// DefaultLimits are generous for real images (the biggest official images
// are a few GiB) and still stop bombs long before a disk fills up.
func DefaultLimits() Limits {
	return Limits{
		MaxTotalBytes: 4 << 30,
		MaxFileBytes:  4 << 30,
		MaxEntries:    1_000_000,
		MaxPathLen:    4096,
		MaxDepth:      256,
		MaxXattrs:     32,
		MaxXattrBytes: 64 << 10,
		MaxDuration:   10 * time.Minute,
		MaxImageBytes: 8 << 30,
		MaxLayers:     128, // overlayfs stacks ~500 lowerdirs; Docker used to cap at 127
		MaxCacheBytes: 32 << 30,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.MaxTotalBytes, d.MaxTotalBytes)
	orDefault(&l.MaxFileBytes, d.MaxFileBytes)
	orDefault(&l.MaxEntries, d.MaxEntries)
	orDefault(&l.MaxPathLen, d.MaxPathLen)
	orDefault(&l.MaxDepth, d.MaxDepth)
	orDefault(&l.MaxXattrs, d.MaxXattrs)
	orDefault(&l.MaxXattrBytes, d.MaxXattrBytes)
	orDefault(&l.MaxImageBytes, d.MaxImageBytes)
	orDefault(&l.MaxLayers, d.MaxLayers)
	orDefault(&l.MaxCacheBytes, d.MaxCacheBytes)
	return l
}

// orDefault replaces an unset (zero or negative) limit with its default.
func orDefault[T int | int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// ErrInvalidLayer marks a layer that is malformed or malicious (as opposed
// to an I/O failure on our side). Callers can tell a student "your image is
// broken" from "the grader is broken" with errors.Is.
var ErrInvalidLayer = errors.New("invalid layer")

// ErrLimit marks a layer that exceeded one of the Limits.
var ErrLimit = errors.New("layer exceeds a limit")

// ErrDigest marks content whose digest differs from the one the image claims.
var ErrDigest = errors.New("digest mismatch")
